//! Executes a validated, analysed operation against the world: field
//! resolution for the simulated subset, connections, null propagation and
//! GitHub-shaped field errors.

use apollo_compiler::ast::Type;
use apollo_compiler::executable::{Field, Operation, SelectionSet};
use apollo_compiler::{ExecutableDocument, Node, Schema};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::Serialize;
use serde_json::Value as Json;

use super::analysis::is_simulated;
use super::errors::{GqlError, PathSegment};
use super::page::{paginate, PageArgs, PageInfo, SortKey};
use super::selection::{argument, collect, sub_selections, Variables};
use crate::clock::{iso8601, parse_iso8601};
use crate::faults::{something_went_wrong, FaultKind, FaultRule, ForbiddenReason, UnitFaults};
use crate::pulls::PrState;
use crate::world::{node_id, Lookup, Repo, World, LANGUAGES};

/// The `rateLimit` object's values for this request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateInfo {
    pub cost: u32,
    pub limit: u32,
    pub remaining: u32,
    pub used: u32,
    pub reset_at: i64,
    pub node_count: u64,
}

/// An ordered response value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Null,
    Leaf(Json),
    List(Vec<Out>),
    Object(Vec<(String, Out)>),
}

impl Serialize for Out {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Null => s.serialize_unit(),
            Out::Leaf(v) => v.serialize(s),
            Out::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Out::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// A null that must bubble to the nearest nullable parent.
struct Propagate;

/// A runtime object.
#[derive(Clone)]
enum Obj<'w> {
    Query,
    RateLimit,
    Repo(&'w Repo),
    Owner(&'w Repo),
    User(String),
    Issue(&'w Repo, u32),
    PullRequest(&'w Repo, u32),
    Label(&'w Repo, usize),
    Language(u8),
    RepoTopic(&'static str),
    Topic(&'static str),
    Conn(Box<Conn<'w>>),
    Edge(Box<Edge<'w>>),
    PageInfo(PageInfo),
}

#[derive(Clone)]
struct Conn<'w> {
    typename: &'static str,
    total: usize,
    total_size: u64,
    items: Vec<Edge<'w>>,
    info: PageInfo,
}

#[derive(Clone)]
struct Edge<'w> {
    typename: &'static str,
    cursor: String,
    node: Obj<'w>,
    size: Option<u32>,
    /// An injected null node: the global id GitHub could not resolve.
    missing: Option<String>,
}

enum Val<'w> {
    Null,
    Leaf(Json),
    Obj(Obj<'w>),
    List(Vec<Val<'w>>),
    /// A list item that failed: null, with its error at the item's path.
    Failed(FieldError),
}

fn leaf<'w>(v: impl Into<Json>) -> Val<'w> {
    Val::Leaf(v.into())
}

fn opt_leaf<'w, T: Into<Json>>(v: Option<T>) -> Val<'w> {
    v.map_or(Val::Null, |x| Val::Leaf(x.into()))
}

/// A resolver failure, reported in `errors` at the field's path.
struct FieldError {
    kind: Option<&'static str>,
    code: Option<&'static str>,
    extension: Option<(&'static str, Json)>,
    message: String,
}

impl FieldError {
    fn typed(kind: &'static str, message: String) -> Self {
        FieldError {
            kind: Some(kind),
            code: None,
            extension: None,
            message,
        }
    }
    fn coded(code: &'static str, message: String) -> Self {
        FieldError {
            kind: None,
            code: Some(code),
            extension: None,
            message,
        }
    }
}

pub(crate) struct Executor<'a> {
    pub schema: &'a Schema,
    pub doc: &'a ExecutableDocument,
    pub vars: &'a Variables,
    pub world: &'a World,
    pub rate: RateInfo,
    pub viewer: String,
    pub errors: Vec<GqlError>,
    /// Injected faults that act inside the answer, and the plan's counter.
    pub faults: UnitFaultSink<'a>,
    /// The repository alias being executed, by its names (requested,
    /// listed, current), for unit faults.
    pub alias: Vec<String>,
}

/// Where unit faults come from and where their injections are counted.
pub(crate) struct UnitFaultSink<'a> {
    pub units: Option<&'a UnitFaults>,
    /// Counts an injection of the plan's rule `index`; false past its `max_count`.
    pub fire: &'a dyn Fn(usize) -> bool,
    pub applied: std::cell::RefCell<Vec<&'static str>>,
}

impl UnitFaultSink<'_> {
    /// Whether a `kind` rule hits `unit` of the repository known by `slugs`.
    fn hit(&self, kind: FaultKind, slugs: &[String], unit: &str) -> Option<FaultRule> {
        let units = self.units?;
        let names: Vec<&str> = slugs.iter().map(String::as_str).collect();
        let hit = units.candidate(kind, &names, unit)?;
        if !(self.fire)(hit.index) {
            return None;
        }
        self.applied.borrow_mut().push(kind.name());
        Some(hit.rule.clone())
    }
}

impl<'a> Executor<'a> {
    /// Runs the operation; `None` data means the root itself became null.
    /// Also returns the unit faults it injected.
    pub(crate) fn run(
        mut self,
        op: &'a Operation,
    ) -> (Option<Out>, Vec<GqlError>, Vec<&'static str>) {
        let data = self
            .object(&Obj::Query, &[&op.selection_set], &mut Vec::new())
            .ok();
        (data, self.errors, self.faults.applied.into_inner())
    }

    fn push_field_error(&mut self, e: FieldError, field: &Node<Field>, path: &[PathSegment]) {
        let mut err = GqlError::new(e.message)
            .at(field.location(), &self.doc.sources)
            .with_path(path.to_vec());
        err.kind = e.kind;
        if let Some(code) = e.code {
            err = err.with_extension("code", code.into());
        }
        if let Some((k, v)) = e.extension {
            err = err.with_extension(k, v);
        }
        self.errors.push(err);
    }

    /// For a top-level `repository` field: its names, and the alias fault
    /// (FORBIDDEN, timeout) an injected rule puts in its place.
    fn enter_alias(&mut self, field: &Field, key: &str) -> Option<FieldError> {
        let owner = self.arg(field, "owner");
        let name = self.arg(field, "name");
        let requested = format!(
            "{}/{}",
            owner.as_str().unwrap_or(""),
            name.as_str().unwrap_or("")
        );
        let mut slugs = vec![requested.clone()];
        if let Some(i) = self.world.find_any(&requested) {
            let r = &self.world.repos[i];
            slugs.push(r.listed_slug.clone());
            slugs.push(r.name_with_owner());
        }
        let unit = format!("{}:{key}", slugs[0].to_lowercase());
        let failure = if let Some(rule) = self.faults.hit(FaultKind::AliasForbidden, &slugs, &unit)
        {
            Some(forbidden(rule.forbidden_reason, &slugs[slugs.len() - 1]))
        } else if self
            .faults
            .hit(FaultKind::AliasTimeout, &slugs, &unit)
            .is_some()
        {
            Some(FieldError {
                kind: None,
                code: None,
                extension: None,
                message: something_went_wrong(
                    crate::rng::hash_str(&unit) ^ self.rate.reset_at as u64,
                ),
            })
        } else {
            None
        };
        self.alias = slugs;
        failure
    }

    fn object(
        &mut self,
        obj: &Obj<'a>,
        sets: &[&'a SelectionSet],
        path: &mut Vec<PathSegment>,
    ) -> Result<Out, Propagate> {
        let typename = typename(obj);
        let collected = collect(self.schema, self.doc, self.vars, sets, Some(typename));
        let mut out = Vec::with_capacity(collected.len());
        for c in &collected {
            let (_, field) = c.fields[0];
            path.push(PathSegment::Key(c.key.clone()));
            let top_repo = matches!(obj, Obj::Query) && field.name == "repository";
            let injected = if top_repo {
                self.enter_alias(field, &c.key)
            } else {
                None
            };
            let resolved = match injected {
                Some(e) => Err(e),
                None if field.name == "__typename" => Ok(Val::Leaf(typename.into())),
                None => self.resolve(obj, field),
            };
            let value = match resolved {
                Ok(val) => {
                    let subs = sub_selections(c);
                    self.complete(&field.definition.ty, val, &subs, field, typename, path)
                }
                Err(e) => {
                    self.push_field_error(e, field, path);
                    if field.definition.ty.is_non_null() {
                        Err(Propagate)
                    } else {
                        Ok(Out::Null)
                    }
                }
            };
            if top_repo {
                self.alias.clear();
            }
            path.pop();
            out.push((c.key.clone(), value?));
        }
        Ok(Out::Object(out))
    }

    fn complete(
        &mut self,
        ty: &Type,
        val: Val<'a>,
        subs: &[&'a SelectionSet],
        field: &Node<Field>,
        parent: &str,
        path: &mut Vec<PathSegment>,
    ) -> Result<Out, Propagate> {
        let result = match val {
            Val::Null => Err(()),
            Val::Failed(e) => {
                self.push_field_error(e, field, path);
                Err(())
            }
            Val::Leaf(v) => Ok(Out::Leaf(v)),
            Val::Obj(o) => self.object(&o, subs, path).map_err(|_| ()),
            Val::List(items) => {
                let item_ty = ty.item_type().clone();
                let mut list = Vec::with_capacity(items.len());
                let mut failed = false;
                for (i, item) in items.into_iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    match self.complete(&item_ty, item, subs, field, parent, path) {
                        Ok(o) => list.push(o),
                        Err(Propagate) => failed = true,
                    }
                    path.pop();
                    if failed {
                        break;
                    }
                }
                if failed {
                    Err(())
                } else {
                    Ok(Out::List(list))
                }
            }
        };
        match result {
            Ok(o) => Ok(o),
            Err(()) if !ty.is_non_null() => Ok(Out::Null),
            Err(()) => {
                if matches!(ty, Type::NonNullNamed(_) | Type::NonNullList(_))
                    && path_is_fresh_null(&self.errors, path)
                {
                    self.errors.push(
                        GqlError::new(format!(
                            "Cannot return null for non-nullable field {parent}.{}",
                            field.name
                        ))
                        .at(field.location(), &self.doc.sources)
                        .with_path(path.clone()),
                    );
                }
                Err(Propagate)
            }
        }
    }

    fn arg(&self, field: &Field, name: &str) -> Json {
        argument(field, name, self.vars)
    }

    fn page_args(&self, field: &Field) -> PageArgs {
        PageArgs {
            first: self.arg(field, "first").as_i64(),
            last: self.arg(field, "last").as_i64(),
            after: self.arg(field, "after").as_str().map(str::to_string),
            before: self.arg(field, "before").as_str().map(str::to_string),
        }
    }

    fn resolve(&self, obj: &Obj<'a>, field: &Field) -> Result<Val<'a>, FieldError> {
        let name = field.name.as_str();
        let ty = typename(obj);
        if !is_simulated(ty, name) && !matches!(obj, Obj::Owner(_)) {
            return Err(FieldError::coded(
                "notSimulated",
                format!("Field '{name}' on type '{ty}' is not simulated"),
            ));
        }
        match obj {
            Obj::Query => self.query_field(field),
            Obj::RateLimit => Ok(match name {
                "cost" => leaf(self.rate.cost),
                "limit" => leaf(self.rate.limit),
                "remaining" => leaf(self.rate.remaining),
                "used" => leaf(self.rate.used),
                "resetAt" => leaf(iso8601(self.rate.reset_at)),
                "nodeCount" => leaf(self.rate.node_count),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::Repo(r) => self.repo_field(r, field),
            Obj::Owner(r) => Ok(match name {
                "id" => leaf(node_id(
                    if r.owner_is_org { "O_kgDO" } else { "U_kgDO" },
                    r.owner_id(),
                )),
                "databaseId" => leaf(r.owner_id()),
                "login" | "name" => leaf(r.owner.clone()),
                "url" => leaf(format!("https://github.com/{}", r.owner)),
                "avatarUrl" => leaf(format!(
                    "https://avatars.githubusercontent.com/u/{}?v=4",
                    r.owner_id()
                )),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::User(login) => {
                let id = 1_000 + crate::rng::hash_str(login) % 90_000_000;
                Ok(match name {
                    "id" => leaf(node_id("U_kgDO", id)),
                    "databaseId" => leaf(id),
                    "login" => leaf(login.clone()),
                    "name" => Val::Null,
                    "url" => leaf(format!("https://github.com/{login}")),
                    "avatarUrl" => {
                        leaf(format!("https://avatars.githubusercontent.com/u/{id}?v=4"))
                    }
                    _ => return Err(not_simulated(ty, name)),
                })
            }
            Obj::Issue(r, n) => self.issue_field(r, *n, field),
            Obj::PullRequest(r, n) => self.pull_request_field(r, *n, field),
            Obj::Label(r, i) => self.label_field(r, *i, field),
            Obj::Language(l) => {
                let (lname, color) = LANGUAGES[*l as usize];
                Ok(match name {
                    "id" => leaf(node_id("MDg6TGFuZ3VhZ2U", u64::from(*l) + 1)),
                    "name" => leaf(lname),
                    "color" => leaf(color),
                    _ => return Err(not_simulated(ty, name)),
                })
            }
            Obj::RepoTopic(t) => Ok(match name {
                "id" => leaf(node_id(
                    "MDE1OlJlcG9zaXRvcnlUb3BpYw",
                    crate::rng::hash_str(t) >> 20,
                )),
                "topic" => Val::Obj(Obj::Topic(t)),
                "url" => leaf(format!("https://github.com/topics/{t}")),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::Topic(t) => Ok(match name {
                "id" => leaf(node_id("MDU6VG9waWM", crate::rng::hash_str(t) >> 24)),
                "name" => leaf(*t),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::Conn(c) => Ok(match name {
                "totalCount" => leaf(c.total),
                "totalSize" => leaf(c.total_size),
                "nodes" => Val::List(
                    c.items
                        .iter()
                        .map(|e| match &e.missing {
                            Some(id) => Val::Failed(unresolvable_node(id)),
                            None => Val::Obj(e.node.clone()),
                        })
                        .collect(),
                ),
                "edges" => Val::List(
                    c.items
                        .iter()
                        .map(|e| Val::Obj(Obj::Edge(Box::new(e.clone()))))
                        .collect(),
                ),
                "pageInfo" => Val::Obj(Obj::PageInfo(c.info.clone())),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::Edge(e) => Ok(match name {
                "cursor" => leaf(e.cursor.clone()),
                "node" => match &e.missing {
                    Some(id) => return Err(unresolvable_node(id)),
                    None => Val::Obj(e.node.clone()),
                },
                "size" => opt_leaf(e.size),
                _ => return Err(not_simulated(ty, name)),
            }),
            Obj::PageInfo(p) => Ok(match name {
                "hasNextPage" => leaf(p.has_next),
                "hasPreviousPage" => leaf(p.has_previous),
                "startCursor" => opt_leaf(p.start.clone()),
                "endCursor" => opt_leaf(p.end.clone()),
                _ => return Err(not_simulated(ty, name)),
            }),
        }
    }

    fn query_field(&self, field: &Field) -> Result<Val<'a>, FieldError> {
        match field.name.as_str() {
            "repository" => {
                let owner = self.arg(field, "owner");
                let name = self.arg(field, "name");
                let (owner, name) = (owner.as_str().unwrap_or(""), name.as_str().unwrap_or(""));
                let follow = self.arg(field, "followRenames").as_bool().unwrap_or(true);
                match self.world.lookup(owner, name) {
                    Lookup::Current(i) => Ok(Val::Obj(Obj::Repo(&self.world.repos[i]))),
                    Lookup::Former(i) if follow => Ok(Val::Obj(Obj::Repo(&self.world.repos[i]))),
                    _ => Err(FieldError::typed(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to a Repository with the name '{owner}/{name}'."
                        ),
                    )),
                }
            }
            "rateLimit" => Ok(Val::Obj(Obj::RateLimit)),
            "viewer" => Ok(Val::Obj(Obj::User(self.viewer.clone()))),
            other => Err(not_simulated("Query", other)),
        }
    }

    fn repo_field(&self, r: &'a Repo, field: &Field) -> Result<Val<'a>, FieldError> {
        let name = field.name.as_str();
        Ok(match name {
            "id" => leaf(r.node_id()),
            "databaseId" => leaf(r.id),
            "name" => leaf(r.name.clone()),
            "nameWithOwner" => leaf(r.name_with_owner()),
            "owner" => Val::Obj(Obj::Owner(r)),
            "url" => leaf(r.html_url()),
            "homepageUrl" => opt_leaf(r.homepage.clone()),
            "description" => opt_leaf(r.description.clone()),
            "isArchived" => leaf(r.archived),
            "isFork" | "isPrivate" | "isDisabled" | "isTemplate" | "isLocked" => leaf(false),
            "isEmpty" => leaf(r.languages.is_empty()),
            "hasIssuesEnabled" => leaf(true),
            "stargazerCount" => leaf(r.stars),
            "forkCount" => leaf(r.forks),
            "pushedAt" => leaf(iso8601(r.pushed_at)),
            "createdAt" => leaf(iso8601(r.created_at)),
            "updatedAt" => leaf(iso8601(r.updated_at)),
            "primaryLanguage" => r
                .primary_language()
                .map_or(Val::Null, |l| Val::Obj(Obj::Language(l))),
            "labels" => self.repo_labels(r, field)?,
            "label" => {
                let wanted = self.arg(field, "name");
                r.label_index(wanted.as_str().unwrap_or(""))
                    .map_or(Val::Null, |i| Val::Obj(Obj::Label(r, i)))
            }
            "languages" => self.languages(r, field)?,
            "repositoryTopics" => {
                let items: Vec<(SortKey, Obj<'a>)> = r
                    .topics
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (SortKey::ints(i as i64, 0), Obj::RepoTopic(t)))
                    .collect();
                self.connection(
                    "RepositoryTopicConnection",
                    "RepositoryTopicEdge",
                    items,
                    false,
                    field,
                    0,
                )?
            }
            "issues" => self.issues(r, field, None)?,
            "issue" => {
                let n = self.arg(field, "number").as_i64().unwrap_or(0);
                let found = u32::try_from(n)
                    .ok()
                    .filter(|n| r.issue(*n).is_some_and(|m| !m.is_pr()));
                match found {
                    Some(n) => Val::Obj(Obj::Issue(r, n)),
                    None => {
                        return Err(FieldError::typed(
                            "NOT_FOUND",
                            format!("Could not resolve to an Issue with the number of {n}."),
                        ))
                    }
                }
            }
            _ => return Err(not_simulated("Repository", name)),
        })
    }

    fn issue_field(&self, r: &'a Repo, n: u32, field: &Field) -> Result<Val<'a>, FieldError> {
        let m = r.issue(n).expect("resolved issues exist");
        let name = field.name.as_str();
        Ok(match name {
            "id" => leaf(node_id("I_kwDO", r.issue_id(n))),
            "databaseId" => leaf(r.issue_id(n)),
            "number" => leaf(n),
            "title" => leaf(self.world.issue_title(r.idx, n)),
            "body" => leaf(self.world.issue_body(r.idx, n)),
            "bodyText" => leaf(crate::prose::body_text(&self.world.issue_body(r.idx, n))),
            "url" => leaf(format!("{}/issues/{n}", r.html_url())),
            "state" => leaf(if m.is_open() { "OPEN" } else { "CLOSED" }),
            "stateReason" => {
                if m.is_open() {
                    Val::Null
                } else if m.flags & crate::world::FLAG_NOT_PLANNED != 0 {
                    leaf("NOT_PLANNED")
                } else {
                    leaf("COMPLETED")
                }
            }
            "closed" => leaf(!m.is_open()),
            "closedAt" => {
                if m.is_open() {
                    Val::Null
                } else {
                    leaf(iso8601(i64::from(m.closed)))
                }
            }
            "createdAt" => leaf(iso8601(i64::from(m.created))),
            "updatedAt" => leaf(iso8601(i64::from(m.updated))),
            "locked" => leaf(m.flags & crate::world::FLAG_LOCKED != 0),
            "author" => Val::Obj(Obj::User(self.world.issue_author(r.idx, n))),
            "labels" => {
                let items = label_items(r, field, self.vars, Some(m.labels), None)?;
                self.connection("LabelConnection", "LabelEdge", items.0, items.1, field, 0)?
            }
            "assignees" => {
                let items: Vec<(SortKey, Obj<'a>)> = self
                    .world
                    .issue_assignees(r.idx, n)
                    .into_iter()
                    .enumerate()
                    .map(|(i, login)| (SortKey::ints(i as i64, 0), Obj::User(login)))
                    .collect();
                self.connection("UserConnection", "UserEdge", items, false, field, 0)?
            }
            "comments" => Val::Obj(Obj::Conn(Box::new(Conn {
                typename: "IssueCommentConnection",
                total: usize::from(m.comments),
                total_size: 0,
                items: Vec::new(),
                info: PageInfo {
                    has_next: false,
                    has_previous: false,
                    start: None,
                    end: None,
                },
            }))),
            "repository" => Val::Obj(Obj::Repo(r)),
            "lastEditedAt" => opt_leaf(self.world.issue_last_edited(r.idx, n).map(iso8601)),
            "closedByPullRequestsReferences" => self.closing_pull_requests(r, n, field)?,
            _ => return Err(not_simulated("Issue", name)),
        })
    }

    /// `Issue.closedByPullRequestsReferences`: the PRs that close the issue
    /// when merged; open ones only unless `includeClosedPrs`, open first
    /// with `orderByState`, hand-linked ones only with `userLinkedOnly`.
    fn closing_pull_requests(
        &self,
        r: &'a Repo,
        n: u32,
        field: &Field,
    ) -> Result<Val<'a>, FieldError> {
        let include_closed = self.arg(field, "includeClosedPrs").as_bool() == Some(true);
        let by_state = self.arg(field, "orderByState").as_bool() == Some(true);
        let user_only = self.arg(field, "userLinkedOnly").as_bool() == Some(true);
        let mut items: Vec<(SortKey, Obj<'a>)> = self
            .world
            .linked_prs(r.idx, n)
            .iter()
            .filter(|l| !user_only || l.user_linked)
            .filter_map(|l| r.issue(l.pr).map(|m| (l.pr, m)))
            .filter(|(_, m)| m.is_pr() && (include_closed || m.is_open()))
            .map(|(pr, m)| {
                let state_rank = if by_state && !m.is_open() { 1 } else { 0 };
                (
                    SortKey::ints(state_rank, i64::from(pr)),
                    Obj::PullRequest(r, pr),
                )
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        self.connection(
            "PullRequestConnection",
            "PullRequestEdge",
            items,
            false,
            field,
            0,
        )
    }

    fn pull_request_field(
        &self,
        r: &'a Repo,
        n: u32,
        field: &Field,
    ) -> Result<Val<'a>, FieldError> {
        let m = r.issue(n).expect("linked pull requests exist");
        let state = PrState::of(m);
        let ended = (!m.is_open()).then(|| iso8601(i64::from(m.closed)));
        let name = field.name.as_str();
        Ok(match name {
            "id" => leaf(node_id("PR_kwDO", r.issue_id(n))),
            "databaseId" => leaf(r.issue_id(n)),
            "number" => leaf(n),
            "title" => leaf(self.world.issue_title(r.idx, n)),
            "url" => leaf(format!("{}/pull/{n}", r.html_url())),
            "state" => leaf(state.name()),
            "closed" => leaf(!m.is_open()),
            "closedAt" => opt_leaf(ended),
            "merged" => leaf(state == PrState::Merged),
            "mergedAt" => opt_leaf(ended.filter(|_| state == PrState::Merged)),
            "isDraft" => leaf(false),
            "createdAt" => leaf(iso8601(i64::from(m.created))),
            "updatedAt" => leaf(iso8601(i64::from(m.updated))),
            "author" => Val::Obj(Obj::User(self.world.issue_author(r.idx, n))),
            "repository" => Val::Obj(Obj::Repo(r)),
            _ => return Err(not_simulated("PullRequest", name)),
        })
    }

    fn label_field(&self, r: &'a Repo, i: usize, field: &Field) -> Result<Val<'a>, FieldError> {
        let l = &r.labels[i];
        let name = field.name.as_str();
        Ok(match name {
            "id" => leaf(node_id("LA_kwDO", l.id)),
            "name" => leaf(l.name.clone()),
            "color" => leaf(l.color.clone()),
            "description" => opt_leaf(l.description.clone()),
            "isDefault" => leaf(l.is_default),
            "createdAt" => leaf(iso8601(l.created_at)),
            "updatedAt" => leaf(iso8601(l.updated_at)),
            "url" => leaf(format!("{}/labels/{}", r.html_url(), url_escape(&l.name))),
            "issues" => self.issues(r, field, Some(i))?,
            "repository" => Val::Obj(Obj::Repo(r)),
            _ => return Err(not_simulated("Label", name)),
        })
    }

    fn repo_labels(&self, r: &'a Repo, field: &Field) -> Result<Val<'a>, FieldError> {
        let query = self.arg(field, "query");
        let (items, desc) = label_items(r, field, self.vars, None, query.as_str())?;
        self.connection("LabelConnection", "LabelEdge", items, desc, field, 0)
    }

    fn languages(&self, r: &'a Repo, field: &Field) -> Result<Val<'a>, FieldError> {
        let order = self.arg(field, "orderBy");
        let ascending = order["direction"] == "ASC";
        let mut items: Vec<(SortKey, (u8, u32))> = r
            .languages
            .iter()
            .map(|(l, s)| (SortKey::ints(i64::from(*s), i64::from(*l)), (*l, *s)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if !ascending {
            items.reverse();
        }
        let total_size: u64 = r.languages.iter().map(|(_, s)| u64::from(*s)).sum();
        let page = paginate(items, !ascending, &self.page_args(field)).map_err(invalid_cursor)?;
        Ok(Val::Obj(Obj::Conn(Box::new(Conn {
            typename: "LanguageConnection",
            total: page.total,
            total_size,
            items: page
                .items
                .into_iter()
                .map(|(cursor, (l, s))| Edge {
                    typename: "LanguageEdge",
                    cursor,
                    node: Obj::Language(l),
                    size: Some(s),
                    missing: None,
                })
                .collect(),
            info: page.info,
        }))))
    }

    /// `Repository.issues` and `Label.issues` (which adds its own label).
    fn issues(
        &self,
        r: &'a Repo,
        field: &Field,
        label: Option<usize>,
    ) -> Result<Val<'a>, FieldError> {
        let filter_by = self.arg(field, "filterBy");
        let mut label_sets: Vec<u32> = Vec::new();
        for source in [self.arg(field, "labels"), filter_by["labels"].clone()] {
            if let Some(names) = string_list(&source) {
                label_sets.push(r.label_mask(&names));
            }
        }
        if let Some(i) = label {
            label_sets.push(1 << i);
        }
        let mut state_sets: Vec<Vec<String>> = Vec::new();
        for source in [self.arg(field, "states"), filter_by["states"].clone()] {
            if let Some(states) = string_list(&source) {
                state_sets.push(states);
            }
        }
        let since = filter_by["since"].as_str().and_then(parse_iso8601);
        let assignee = filter_by["assignee"].as_str().map(str::to_lowercase);

        let order = self.arg(field, "orderBy");
        let order_field = order["field"].as_str().unwrap_or("CREATED_AT").to_string();
        let descending = order["direction"] == "DESC";
        let mut items: Vec<(SortKey, Obj<'a>)> = Vec::new();
        for (i, m) in r.issues.iter().enumerate() {
            let n = i as u32 + 1;
            if m.is_pr() {
                continue;
            }
            if label_sets.iter().any(|mask| m.labels & mask == 0) {
                continue;
            }
            let state = if m.is_open() { "OPEN" } else { "CLOSED" };
            if state_sets.iter().any(|s| !s.iter().any(|x| x == state)) {
                continue;
            }
            if since.is_some_and(|s| i64::from(m.updated) < s) {
                continue;
            }
            if let Some(a) = &assignee {
                let logins = self.world.issue_assignees(r.idx, n);
                let ok = if a == "*" {
                    !logins.is_empty()
                } else {
                    logins.iter().any(|l| l.to_lowercase() == *a)
                };
                if !ok {
                    continue;
                }
            }
            let primary = match order_field.as_str() {
                "UPDATED_AT" => i64::from(m.updated),
                "COMMENTS" => i64::from(m.comments),
                _ => i64::from(m.created),
            };
            items.push((SortKey::ints(primary, i64::from(n)), Obj::Issue(r, n)));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if descending {
            items.reverse();
        }
        let conn = self.connection("IssueConnection", "IssueEdge", items, descending, field, 0)?;
        Ok(self.with_unit_faults(r, conn, field))
    }

    /// Injects `null_nodes` and `null_end_cursor` into an issue connection
    /// of the alias being executed.
    fn with_unit_faults(&self, r: &'a Repo, conn: Val<'a>, field: &Field) -> Val<'a> {
        let Val::Obj(Obj::Conn(mut c)) = conn else {
            return conn;
        };
        if self.faults.units.is_none() || self.alias.is_empty() {
            return Val::Obj(Obj::Conn(c));
        }
        let alias = self.alias[0].to_lowercase();
        for e in &mut c.items {
            if let Obj::Issue(_, n) = e.node {
                let unit = format!("{alias}#{n}");
                if self
                    .faults
                    .hit(FaultKind::NullNodes, &self.alias, &unit)
                    .is_some()
                {
                    e.missing = Some(node_id("I_kwDO", r.issue_id(n)));
                }
            }
        }
        let after = self.arg(field, "after");
        let unit = format!(
            "{alias}:{}:{}",
            field.response_key(),
            after.as_str().unwrap_or("")
        );
        if self
            .faults
            .hit(FaultKind::NullEndCursor, &self.alias, &unit)
            .is_some()
        {
            c.info.has_next = true;
            c.info.end = None;
        }
        Val::Obj(Obj::Conn(c))
    }

    fn connection(
        &self,
        typename: &'static str,
        edge_typename: &'static str,
        items: Vec<(SortKey, Obj<'a>)>,
        descending: bool,
        field: &Field,
        total_size: u64,
    ) -> Result<Val<'a>, FieldError> {
        let page = paginate(items, descending, &self.page_args(field)).map_err(invalid_cursor)?;
        Ok(Val::Obj(Obj::Conn(Box::new(Conn {
            typename,
            total: page.total,
            total_size,
            items: page
                .items
                .into_iter()
                .map(|(cursor, node)| Edge {
                    typename: edge_typename,
                    cursor,
                    node,
                    size: None,
                    missing: None,
                })
                .collect(),
            info: page.info,
        }))))
    }
}

/// Labels of a repository (or of one issue, by mask), filtered by `query`
/// and sorted by the `orderBy` argument; returns items and direction.
#[allow(clippy::type_complexity)]
fn label_items<'a>(
    r: &'a Repo,
    field: &Field,
    vars: &Variables,
    mask: Option<u32>,
    query: Option<&str>,
) -> Result<(Vec<(SortKey, Obj<'a>)>, bool), FieldError> {
    let order = argument(field, "orderBy", vars);
    let by_name = order["field"] == "NAME";
    let descending = order["direction"] == "DESC";
    let q = query.map(str::to_lowercase);
    let mut items: Vec<(SortKey, Obj<'a>)> = r
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.is_none_or(|m| m & (1 << i) != 0))
        .filter(|(_, l)| {
            q.as_deref().is_none_or(|q| {
                l.name.to_lowercase().contains(q)
                    || l.description
                        .as_deref()
                        .is_some_and(|d| d.to_lowercase().contains(q))
            })
        })
        .map(|(i, l)| {
            let key = if by_name {
                SortKey(0, 0, l.name.to_lowercase())
            } else {
                SortKey::ints(l.created_at, i as i64)
            };
            (key, Obj::Label(r, i))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    Ok((items, descending))
}

/// A list argument; GraphQL input coercion accepts a single item for a list.
fn string_list(value: &Json) -> Option<Vec<String>> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn typename(obj: &Obj<'_>) -> &'static str {
    match obj {
        Obj::Query => "Query",
        Obj::RateLimit => "RateLimit",
        Obj::Repo(_) => "Repository",
        Obj::Owner(r) => {
            if r.owner_is_org {
                "Organization"
            } else {
                "User"
            }
        }
        Obj::User(_) => "User",
        Obj::Issue(..) => "Issue",
        Obj::PullRequest(..) => "PullRequest",
        Obj::Label(..) => "Label",
        Obj::Language(_) => "Language",
        Obj::RepoTopic(_) => "RepositoryTopic",
        Obj::Topic(_) => "Topic",
        Obj::Conn(c) => c.typename,
        Obj::Edge(e) => e.typename,
        Obj::PageInfo(_) => "PageInfo",
    }
}

/// GitHub's FORBIDDEN for an alias it will not serve to this token.
fn forbidden(reason: Option<ForbiddenReason>, slug: &str) -> FieldError {
    let owner = slug.split('/').next().unwrap_or(slug);
    match reason.unwrap_or(ForbiddenReason::Saml) {
        ForbiddenReason::Saml => FieldError {
            kind: Some("FORBIDDEN"),
            code: None,
            extension: Some(("saml_failure", Json::Bool(true))),
            message: "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.".into(),
        },
        ForbiddenReason::IpAllowList => FieldError::typed(
            "FORBIDDEN",
            format!("Although you appear to have the correct authorization credentials, the `{owner}` organization has an IP allow list enabled, and your IP address is not permitted to access this resource."),
        ),
    }
}

fn unresolvable_node(id: &str) -> FieldError {
    FieldError::typed(
        "NOT_FOUND",
        format!("Could not resolve to a node with the global id of '{id}'."),
    )
}

fn not_simulated(ty: &str, field: &str) -> FieldError {
    FieldError::coded(
        "notSimulated",
        format!("Field '{field}' on type '{ty}' is not simulated"),
    )
}

fn invalid_cursor(e: super::page::InvalidCursor) -> FieldError {
    FieldError::typed(
        "INVALID_CURSOR_ARGUMENTS",
        format!("`{}` does not appear to be a valid cursor.", e.0),
    )
}

/// True when no error was yet reported at or below `path` (so a null from
/// a child's own error isn't reported twice).
fn path_is_fresh_null(errors: &[GqlError], path: &[PathSegment]) -> bool {
    !errors
        .iter()
        .any(|e| e.path.len() >= path.len() && e.path[..path.len()] == *path)
}

fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
