//! The static pass run before execution: rejects fields outside the
//! simulated subset, enforces GitHub's pagination rules and computes the
//! query's rate-limit cost and node count with GitHub's documented formula.

use apollo_compiler::executable::{Operation, SelectionSet};
use apollo_compiler::{ExecutableDocument, Schema};

use super::errors::{GqlError, PathSegment};
use super::selection::{argument, collect, sub_selections, Variables};

/// The simulated subset: (type, fields). Interfaces list the fields their
/// simulated implementors resolve.
const SIMULATED: &[(&str, &[&str])] = &[
    ("Query", &["repository", "rateLimit", "viewer"]),
    (
        "RateLimit",
        &["cost", "limit", "remaining", "resetAt", "used", "nodeCount"],
    ),
    (
        "Repository",
        &[
            "id",
            "databaseId",
            "name",
            "nameWithOwner",
            "owner",
            "url",
            "homepageUrl",
            "description",
            "isArchived",
            "isFork",
            "isPrivate",
            "isDisabled",
            "isTemplate",
            "isLocked",
            "isEmpty",
            "hasIssuesEnabled",
            "stargazerCount",
            "forkCount",
            "pushedAt",
            "createdAt",
            "updatedAt",
            "primaryLanguage",
            "labels",
            "label",
            "languages",
            "repositoryTopics",
            "issues",
            "issue",
        ],
    ),
    (
        "RepositoryInfo",
        &[
            "name",
            "nameWithOwner",
            "owner",
            "url",
            "homepageUrl",
            "description",
            "isArchived",
            "isFork",
            "isPrivate",
            "isTemplate",
            "isLocked",
            "hasIssuesEnabled",
            "forkCount",
            "pushedAt",
            "createdAt",
            "updatedAt",
        ],
    ),
    ("Starrable", &["id", "stargazerCount"]),
    (
        "Organization",
        &["id", "databaseId", "login", "url", "avatarUrl", "name"],
    ),
    (
        "User",
        &["id", "databaseId", "login", "url", "avatarUrl", "name"],
    ),
    ("RepositoryOwner", &["id", "login", "url", "avatarUrl"]),
    ("Actor", &["login", "url", "avatarUrl"]),
    ("Node", &["id"]),
    ("UniformResourceLocatable", &["url"]),
    (
        "Issue",
        &[
            "id",
            "databaseId",
            "number",
            "title",
            "body",
            "bodyText",
            "url",
            "state",
            "stateReason",
            "closed",
            "closedAt",
            "createdAt",
            "updatedAt",
            "locked",
            "author",
            "labels",
            "assignees",
            "comments",
            "repository",
            "lastEditedAt",
            "closedByPullRequestsReferences",
        ],
    ),
    (
        "PullRequest",
        &[
            "id",
            "databaseId",
            "number",
            "title",
            "url",
            "state",
            "closed",
            "closedAt",
            "merged",
            "mergedAt",
            "isDraft",
            "createdAt",
            "updatedAt",
            "author",
            "repository",
        ],
    ),
    (
        "PullRequestConnection",
        &["totalCount", "nodes", "edges", "pageInfo"],
    ),
    ("PullRequestEdge", &["cursor", "node"]),
    ("Labelable", &["labels"]),
    ("Assignable", &["assignees"]),
    ("Closable", &["closed", "closedAt"]),
    ("Lockable", &["locked"]),
    ("RepositoryNode", &["repository"]),
    (
        "Comment",
        &[
            "id",
            "body",
            "bodyText",
            "author",
            "createdAt",
            "updatedAt",
            "lastEditedAt",
        ],
    ),
    ("UpdatableComment", &[]),
    (
        "Label",
        &[
            "id",
            "name",
            "color",
            "description",
            "isDefault",
            "createdAt",
            "updatedAt",
            "url",
            "issues",
            "repository",
        ],
    ),
    ("Language", &["id", "name", "color"]),
    ("RepositoryTopic", &["id", "topic", "url"]),
    ("Topic", &["id", "name"]),
    (
        "IssueConnection",
        &["totalCount", "nodes", "edges", "pageInfo"],
    ),
    ("IssueEdge", &["cursor", "node"]),
    (
        "LabelConnection",
        &["totalCount", "nodes", "edges", "pageInfo"],
    ),
    ("LabelEdge", &["cursor", "node"]),
    (
        "LanguageConnection",
        &["totalCount", "totalSize", "nodes", "edges", "pageInfo"],
    ),
    ("LanguageEdge", &["cursor", "node", "size"]),
    (
        "RepositoryTopicConnection",
        &["totalCount", "nodes", "edges", "pageInfo"],
    ),
    ("RepositoryTopicEdge", &["cursor", "node"]),
    (
        "UserConnection",
        &["totalCount", "nodes", "edges", "pageInfo"],
    ),
    ("UserEdge", &["cursor", "node"]),
    ("IssueCommentConnection", &["totalCount"]),
    (
        "PageInfo",
        &["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    ),
];

/// The fields of `IssueFilters` the simulator applies.
pub(crate) const SIMULATED_ISSUE_FILTERS: &[&str] = &["labels", "states", "since", "assignee"];

pub(crate) fn is_simulated(ty: &str, field: &str) -> bool {
    field == "__typename"
        || SIMULATED
            .iter()
            .any(|(t, fields)| *t == ty && fields.contains(&field))
}

/// GitHub refuses queries that could return more nodes than this.
pub(crate) const MAX_NODES: u64 = 500_000;

/// What the static pass learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Rate-limit points: requests / 100, rounded, at least 1.
    pub cost: u32,
    pub node_count: u64,
    pub requests: u64,
    pub dry_run: bool,
}

struct Walker<'a, 'd> {
    schema: &'a Schema,
    doc: &'d ExecutableDocument,
    vars: &'a Variables,
    requests: u64,
    nodes: u64,
    dry_run: bool,
    errors: Vec<GqlError>,
}

/// Runs the static pass over one operation.
pub(crate) fn analyse(
    schema: &Schema,
    doc: &ExecutableDocument,
    op: &Operation,
    vars: &Variables,
) -> Result<Plan, Vec<GqlError>> {
    let mut w = Walker {
        schema,
        doc,
        vars,
        requests: 0,
        nodes: 0,
        dry_run: false,
        errors: Vec::new(),
    };
    w.walk(&[&op.selection_set], 1, &mut Vec::new());
    if w.errors.is_empty() && w.nodes > MAX_NODES {
        w.errors.push(GqlError::typed(
            "MAX_NODE_LIMIT_EXCEEDED",
            format!(
                "This query requests up to {} possible nodes which exceeds the maximum limit of {MAX_NODES}.",
                w.nodes
            ),
        ));
    }
    if !w.errors.is_empty() {
        return Err(w.errors);
    }
    let cost = ((w.requests as f64) / 100.0).round().max(1.0) as u32;
    Ok(Plan {
        cost,
        node_count: w.nodes,
        requests: w.requests,
        dry_run: w.dry_run,
    })
}

impl<'d> Walker<'_, 'd> {
    fn walk(&mut self, sets: &[&'d SelectionSet], multiplier: u64, path: &mut Vec<PathSegment>) {
        let collected = collect(self.schema, self.doc, self.vars, sets, None);
        for c in &collected {
            path.push(PathSegment::Key(c.key.clone()));
            let mut rejected = false;
            for (parent, field) in &c.fields {
                if !is_simulated(parent, &field.name) {
                    rejected = true;
                    let already = self.errors.iter().any(|e| {
                        e.extensions.as_ref().is_some_and(|x| {
                            x["typeName"] == *parent && x["fieldName"] == field.name.as_str()
                        })
                    });
                    if !already {
                        self.errors.push(
                            GqlError::coded(
                                "notSimulated",
                                format!(
                                    "Field '{}' on type '{parent}' is not simulated",
                                    field.name
                                ),
                            )
                            .at(field.location(), &self.doc.sources)
                            .with_path(path.clone())
                            .with_extension("typeName", (*parent).into())
                            .with_extension("fieldName", field.name.as_str().into()),
                        );
                    }
                }
            }
            if rejected {
                path.pop();
                continue;
            }
            let (_, field) = c.fields[0];
            if field.name == "rateLimit"
                && argument(field, "dryRun", self.vars).as_bool() == Some(true)
            {
                self.dry_run = true;
            }
            if field.name == "issues" {
                self.check_issue_filters(field, path);
            }
            let ty = field.definition.ty.inner_named_type().as_str();
            let subs = sub_selections(c);
            let mut child_multiplier = multiplier;
            if ty.ends_with("Connection") {
                let first = argument(field, "first", self.vars).as_i64();
                let last = argument(field, "last", self.vars).as_i64();
                let wants_items = self.selects_items(&subs);
                if let Some(err) = pagination_error(&field.name, first, last, wants_items) {
                    self.errors.push(
                        err.at(field.location(), &self.doc.sources)
                            .with_path(path.clone()),
                    );
                }
                let page = first.or(last).unwrap_or(0).clamp(0, 100) as u64;
                self.requests += multiplier;
                self.nodes += multiplier * page;
                child_multiplier = multiplier * page;
            }
            if subs.iter().any(|s| !s.selections.is_empty()) {
                self.walk(&subs, child_multiplier, path);
            }
            path.pop();
        }
    }

    fn selects_items(&self, subs: &[&'d SelectionSet]) -> bool {
        collect(self.schema, self.doc, self.vars, subs, None)
            .iter()
            .any(|c| c.key_field_name() == "nodes" || c.key_field_name() == "edges")
    }

    fn check_issue_filters(
        &mut self,
        field: &apollo_compiler::Node<apollo_compiler::executable::Field>,
        path: &[PathSegment],
    ) {
        if let serde_json::Value::Object(filters) = argument(field, "filterBy", self.vars) {
            for (k, v) in filters {
                if v.is_null() || SIMULATED_ISSUE_FILTERS.contains(&k.as_str()) {
                    continue;
                }
                if k == "viewerSubscribed" && v == serde_json::Value::Bool(false) {
                    continue;
                }
                self.errors.push(
                    GqlError::coded(
                        "notSimulated",
                        format!("Input field 'IssueFilters.{k}' is not simulated"),
                    )
                    .at(field.location(), &self.doc.sources)
                    .with_path(path.to_vec()),
                );
            }
        }
    }
}

impl super::selection::Collected<'_> {
    fn key_field_name(&self) -> &str {
        self.fields[0].1.name.as_str()
    }
}

/// GitHub's pagination rules for one connection.
pub(crate) fn pagination_error(
    connection: &str,
    first: Option<i64>,
    last: Option<i64>,
    wants_items: bool,
) -> Option<GqlError> {
    for (arg, value) in [("first", first), ("last", last)] {
        match value {
            Some(v) if v > 100 => {
                return Some(GqlError::typed(
                    "EXCESSIVE_PAGINATION",
                    format!(
                        "Requesting {v} records on the `{connection}` connection exceeds the `{arg}` limit of 100 records."
                    ),
                ))
            }
            Some(v) if v < 0 => {
                return Some(GqlError::typed(
                    "ARGUMENT_LIMIT",
                    format!("`{arg}` on the `{connection}` connection cannot be less than zero."),
                ))
            }
            _ => {}
        }
    }
    if first.is_none() && last.is_none() && wants_items {
        return Some(GqlError::typed(
            "MISSING_PAGINATION_BOUNDARIES",
            format!(
                "You must provide a `first` or `last` value to properly paginate the `{connection}` connection."
            ),
        ));
    }
    None
}
