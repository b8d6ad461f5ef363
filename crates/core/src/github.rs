//! GitHub: the GraphQL queries contribot sends, the requests that carry them,
//! and the decoding of their answers.
//!
//! One scrape query covers many repos through aliases (`r0`, `r1`, …). Every
//! value travels as a GraphQL variable; the query text depends only on how
//! many repos it covers, so the set of texts the workers can send is small
//! and every one of them is validated against GitHub's schema in a test.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::failure::{classify_github, Failure, ResponseMeta};

/// Issues per page: GitHub's maximum for `first`.
pub const ISSUES_PAGE_SIZE: u32 = 100;
/// Labels fetched when resolving a listed label.
pub const LABELS_PAGE_SIZE: u32 = 100;
/// The most repos one query may cover.
pub const MAX_REPOS_PER_QUERY: usize = 50;
/// Default repos per scrape query.
pub const DEFAULT_REPOS_PER_QUERY: usize = 50;
/// `X-GitHub-Api-Version` sent with every call.
pub const API_VERSION: &str = "2022-11-28";
/// `User-Agent` sent with every call (GitHub rejects requests without one).
pub const USER_AGENT: &str = "contribot/0.1 (+https://github.com/contribot)";
/// Header naming the invocation, so the simulator can count per invocation.
pub const INVOCATION_HEADER: &str = "x-contribot-invocation";

const REPO_STATE_FRAGMENT: &str = "fragment RepoState on Repository {
  nameWithOwner
  isArchived
  description
  stargazerCount
  pushedAt
  primaryLanguage { name }
}";

/// Issue metadata only: no body. A body edit shows in `lastEditedAt`; the
/// processor's enrichment fetches the body itself. The open linked pull
/// requests (`includeClosedPrs: false`) tell whether someone is already on
/// the issue; `first: 1` keeps their cost to one node per issue.
const ISSUE_META_FRAGMENT: &str = "fragment IssueMeta on Issue {
  number
  title
  url
  state
  createdAt
  updatedAt
  lastEditedAt
  labels(first: 20) { nodes { name } }
  assignees { totalCount }
  comments { totalCount }
  closedByPullRequestsReferences(first: 1, includeClosedPrs: false) { totalCount }
}";

/// The scrape query text for `n` repos.
pub fn scrape_query_text(n: usize) -> String {
    let mut vars = String::new();
    let mut body = String::new();
    for i in 0..n {
        let _ = write!(
            vars,
            "$o{i}: String!, $n{i}: String!, $l{i}: [String!], $c{i}: String, $q{i}: String, $wl{i}: Boolean!, $wi{i}: Boolean!, "
        );
        let _ = write!(
            body,
            "  r{i}: repository(owner: $o{i}, name: $n{i}) {{
    ...RepoState
    labels(first: {LABELS_PAGE_SIZE}, query: $q{i}) @include(if: $wl{i}) {{ nodes {{ name }} }}
    issues(first: {ISSUES_PAGE_SIZE}, after: $c{i}, labels: $l{i}, states: [OPEN], orderBy: {{field: CREATED_AT, direction: ASC}}) @include(if: $wi{i}) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ ...IssueMeta }}
    }}
  }}
"
        );
    }
    let vars = vars.trim_end_matches([',', ' ']);
    format!(
        "query Scrape({vars}) {{
  rateLimit {{ cost remaining resetAt }}
{body}}}
{REPO_STATE_FRAGMENT}
{ISSUE_META_FRAGMENT}
"
    )
}

/// One repo's part of a scrape query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoQuery {
    pub owner: String,
    pub name: String,
    /// Fetch open issues carrying this label; `None` skips issues.
    pub issue_label: Option<String>,
    /// Resume issues after this cursor.
    pub after: Option<String>,
    /// Also search the repo's labels with this term, to resolve a listed label.
    pub label_search: Option<String>,
}

/// The JSON body of a scrape request covering `repos` (aliases `r0…`).
pub fn scrape_request_body(repos: &[RepoQuery]) -> Value {
    let mut vars = serde_json::Map::new();
    for (i, r) in repos.iter().enumerate() {
        vars.insert(format!("o{i}"), json!(r.owner));
        vars.insert(format!("n{i}"), json!(r.name));
        vars.insert(
            format!("l{i}"),
            json!(r.issue_label.as_ref().map(|l| vec![l.clone()])),
        );
        vars.insert(format!("c{i}"), json!(r.after));
        vars.insert(format!("q{i}"), json!(r.label_search));
        vars.insert(format!("wl{i}"), json!(r.label_search.is_some()));
        vars.insert(format!("wi{i}"), json!(r.issue_label.is_some()));
    }
    json!({
        "operationName": "Scrape",
        "query": scrape_query_text(repos.len()),
        "variables": Value::Object(vars),
    })
}

/// One repo or issue the processor enriches in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrichTarget {
    Repo {
        owner: String,
        name: String,
    },
    Issue {
        owner: String,
        name: String,
        number: i64,
    },
}

/// The enrich query text for `repos` repos and `issues` issues (aliases
/// `r0…` and `i0…`): languages and topics for repos, bodies for issues.
pub fn enrich_query_text(repos: usize, issues: usize) -> String {
    let mut vars = String::new();
    let mut body = String::new();
    for i in 0..repos {
        let _ = write!(vars, "$ro{i}: String!, $rn{i}: String!, ");
        let _ = write!(
            body,
            "  r{i}: repository(owner: $ro{i}, name: $rn{i}) {{
    nameWithOwner
    description
    isArchived
    primaryLanguage {{ name }}
    languages(first: 25, orderBy: {{field: SIZE, direction: DESC}}) {{ totalSize edges {{ size node {{ name }} }} }}
    repositoryTopics(first: 10) {{ nodes {{ topic {{ name }} }} }}
  }}
"
        );
    }
    for i in 0..issues {
        let _ = write!(vars, "$io{i}: String!, $in{i}: String!, $inum{i}: Int!, ");
        let _ = write!(
            body,
            "  i{i}: repository(owner: $io{i}, name: $in{i}) {{
    issue(number: $inum{i}) {{
      number
      title
      body
      url
      state
      updatedAt
      labels(first: 20) {{ nodes {{ name }} }}
      assignees {{ totalCount }}
      comments {{ totalCount }}
    }}
  }}
"
        );
    }
    let vars = vars.trim_end_matches([',', ' ']);
    format!(
        "query Enrich({vars}) {{
  rateLimit {{ cost remaining resetAt }}
{body}}}
"
    )
}

/// The JSON body of an enrich request.
pub fn enrich_request_body(targets: &[EnrichTarget]) -> Value {
    let mut vars = serde_json::Map::new();
    let (mut r, mut i) = (0usize, 0usize);
    for t in targets {
        match t {
            EnrichTarget::Repo { owner, name } => {
                vars.insert(format!("ro{r}"), json!(owner));
                vars.insert(format!("rn{r}"), json!(name));
                r += 1;
            }
            EnrichTarget::Issue {
                owner,
                name,
                number,
            } => {
                vars.insert(format!("io{i}"), json!(owner));
                vars.insert(format!("in{i}"), json!(name));
                vars.insert(format!("inum{i}"), json!(number));
                i += 1;
            }
        }
    }
    json!({
        "operationName": "Enrich",
        "query": enrich_query_text(r, i),
        "variables": Value::Object(vars),
    })
}

/// Who is calling GitHub. The token is threaded explicitly to every request.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubAuth {
    pub token: Option<String>,
}

impl std::fmt::Debug for GithubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.token.is_some() {
            "Some(<redacted>)"
        } else {
            "None"
        };
        write!(f, "GithubAuth {{ token: {shown} }}")
    }
}

impl GithubAuth {
    pub fn new(token: Option<String>) -> Self {
        GithubAuth {
            token: token.filter(|t| !t.trim().is_empty()),
        }
    }
}

/// An HTTP request the shell should make.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print header values: one of them is a token.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .finish()
    }
}

fn github_headers(auth: &GithubAuth, invocation: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("user-agent".to_string(), USER_AGENT.to_string()),
        (
            "accept".to_string(),
            "application/vnd.github+json".to_string(),
        ),
        ("x-github-api-version".to_string(), API_VERSION.to_string()),
        (INVOCATION_HEADER.to_string(), invocation.to_string()),
    ];
    if let Some(token) = &auth.token {
        headers.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    headers
}

/// A GraphQL POST to `{api_base}/graphql`.
pub fn graphql_request(
    api_base: &str,
    auth: &GithubAuth,
    invocation: &str,
    body: &Value,
) -> HttpRequest {
    let mut headers = github_headers(auth, invocation);
    headers.push(("content-type".to_string(), "application/json".to_string()));
    HttpRequest {
        method: "POST",
        url: format!("{}/graphql", api_base.trim_end_matches('/')),
        headers,
        body: Some(body.to_string()),
    }
}

/// A plain GET (the list, or a REST endpoint), with an optional ETag.
pub fn get_request(
    url: &str,
    auth: Option<&GithubAuth>,
    invocation: &str,
    etag: Option<&str>,
) -> HttpRequest {
    let mut headers = match auth {
        Some(a) => github_headers(a, invocation),
        None => vec![
            ("user-agent".to_string(), USER_AGENT.to_string()),
            (INVOCATION_HEADER.to_string(), invocation.to_string()),
        ],
    };
    if let Some(tag) = etag {
        headers.push(("if-none-match".to_string(), tag.to_string()));
    }
    HttpRequest {
        method: "GET",
        url: url.to_string(),
        headers,
        body: None,
    }
}

/// An HTTP answer as the shell received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn meta(&self) -> ResponseMeta<'_> {
        ResponseMeta {
            status: self.status,
            retry_after: self.header("retry-after"),
            ratelimit_remaining: self.header("x-ratelimit-remaining"),
            ratelimit_reset: self.header("x-ratelimit-reset"),
        }
    }

    /// The failure this response represents, if any.
    pub fn failure(&self) -> Option<Failure> {
        classify_github(&self.meta(), &self.body)
    }
}

/// GraphQL's `rateLimit` block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub cost: i64,
    pub remaining: i64,
    pub reset_at: String,
}

/// An open issue's metadata, as the scrape query returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssueMeta {
    pub number: i64,
    pub title: String,
    /// Empty in scrape answers (the scrape query fetches no bodies); the
    /// processor's enrichment fills it.
    pub body: String,
    pub url: String,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    /// When the body was last edited (`None`: never).
    pub last_edited_at: Option<String>,
    pub labels: Vec<String>,
    pub assignee_count: i64,
    pub comment_count: i64,
    /// Open pull requests that will close this issue when merged.
    pub linked_pr_count: i64,
}

/// A page of a repo's labelled issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePage {
    pub total_count: i64,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
    pub nodes: Vec<IssueMeta>,
}

/// A repo as the scrape query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoState {
    pub name_with_owner: String,
    pub is_archived: bool,
    pub description: Option<String>,
    pub stars: i64,
    pub pushed_at: Option<String>,
    pub primary_language: Option<String>,
    pub labels: Option<Vec<String>>,
    pub issues: Option<IssuePage>,
}

/// What one alias of a scrape answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoOutcome {
    Found(Box<RepoState>),
    /// GitHub answered NOT_FOUND for this repo.
    NotFound {
        message: String,
    },
    /// This alias failed, or came back partial (an error inside its data,
    /// a null node, a next page without a cursor): kept with the reason.
    /// `Permanent` for FORBIDDEN (SAML-protected, blocked), else transient.
    Failed(Failure),
}

/// A decoded scrape answer, by alias index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeAnswer {
    pub rate_limit: Option<RateLimit>,
    pub repos: Vec<RepoOutcome>,
}

/// One step of an error's `path`: a field name or a list index.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
enum PathSegment {
    Field(String),
    Index(i64),
}

#[derive(Deserialize, Debug)]
struct GqlError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    path: Vec<PathSegment>,
}

impl GqlError {
    fn alias(&self) -> Option<&str> {
        match self.path.first() {
            Some(PathSegment::Field(a)) => Some(a),
            _ => None,
        }
    }
}

/// The `data` object of an aliased answer, decoded straight into typed
/// values in one pass: `rateLimit`, and aliases `{prefix}{index}` into
/// their slot. No intermediate `serde_json::Value` tree is built.
struct Aliased<T> {
    rate_limit: Option<RateLimit>,
    slots: BTreeMap<String, Option<T>>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Aliased<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Aliased<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a GraphQL data object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Aliased {
                    rate_limit: None,
                    slots: BTreeMap::new(),
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "rateLimit" {
                        out.rate_limit = map.next_value()?;
                    } else {
                        let value = map.next_value::<Option<T>>()?;
                        out.slots.insert(key.into_owned(), value);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct GqlEnvelope<T> {
    #[serde(default)]
    data: Option<Aliased<T>>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

/// GitHub's answer when a query ran out of time or hit an internal fault:
/// `data: null` with this message (HTTP 200 or 502). Worth retrying.
const GITHUB_SOMETHING_WENT_WRONG: &str = "something went wrong while executing your query";

fn parse_envelope<T: for<'de> Deserialize<'de>>(
    response: &HttpResponse,
) -> Result<(Aliased<T>, Vec<GqlError>), Failure> {
    if let Some(failure) = response.failure() {
        return Err(failure);
    }
    let env: GqlEnvelope<T> = serde_json::from_str(&response.body).map_err(|e| {
        // A cut-off body is a transport fault; a wrong shape is retried a
        // bounded number of times by the caller, then recorded.
        Failure::transient(format!("GitHub GraphQL answer does not decode ({e})"))
    })?;
    if let Some(err) = env
        .errors
        .iter()
        .find(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
    {
        return Err(Failure::RateLimited {
            reason: format!("GitHub GraphQL rate limited: {}", err.message),
            reset_epoch_secs: response
                .header("x-ratelimit-reset")
                .and_then(|v| v.parse().ok()),
        });
    }
    match env.data {
        Some(data) => Ok((data, env.errors)),
        None => {
            let messages: Vec<&str> = env.errors.iter().map(|e| e.message.as_str()).collect();
            let joined = messages.join("; ");
            if joined
                .to_ascii_lowercase()
                .contains(GITHUB_SOMETHING_WENT_WRONG)
            {
                Err(Failure::transient(format!(
                    "GitHub GraphQL failed to execute the query (timeout or GitHub fault): {joined}"
                )))
            } else {
                Err(Failure::permanent(format!(
                    "GitHub GraphQL rejected the query: {joined}"
                )))
            }
        }
    }
}

/// Errors by their top-level alias.
fn alias_errors(errors: &[GqlError]) -> BTreeMap<&str, Vec<&GqlError>> {
    let mut out: BTreeMap<&str, Vec<&GqlError>> = BTreeMap::new();
    for e in errors {
        if let Some(alias) = e.alias() {
            out.entry(alias).or_default().push(e);
        }
    }
    out
}

fn joined_messages(errors: &[&GqlError], alias: &str) -> String {
    let msg = errors
        .iter()
        .map(|e| e.message.as_str())
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if msg.is_empty() {
        format!("no data for `{alias}`")
    } else {
        msg
    }
}

/// What an alias without data means: gone, forbidden, or worth a retry.
fn missing_alias(errors: Option<&Vec<&GqlError>>, alias: &str) -> AliasFault {
    let errors: &[&GqlError] = errors.map(Vec::as_slice).unwrap_or(&[]);
    let msg = joined_messages(errors, alias);
    let has = |kind: &str| errors.iter().any(|e| e.kind.as_deref() == Some(kind));
    if has("NOT_FOUND") {
        AliasFault::Gone(
            errors
                .iter()
                .find(|e| e.kind.as_deref() == Some("NOT_FOUND"))
                .map(|e| e.message.clone())
                .unwrap_or(msg),
        )
    } else if has("FORBIDDEN") {
        AliasFault::Failed(Failure::permanent(format!(
            "GitHub GraphQL FORBIDDEN for {alias}: {msg}"
        )))
    } else {
        AliasFault::Failed(Failure::transient(format!(
            "GitHub GraphQL error for {alias}: {msg}"
        )))
    }
}

enum AliasFault {
    Gone(String),
    Failed(Failure),
}

/// Errors inside data that did come back: the answer is partial.
fn partial(errors: Option<&Vec<&GqlError>>, alias: &str) -> Option<Failure> {
    let inner: Vec<&GqlError> = errors?
        .iter()
        .copied()
        .filter(|e| e.path.len() > 1)
        .collect();
    if inner.is_empty() {
        return None;
    }
    Some(Failure::transient(format!(
        "GitHub GraphQL answer for {alias} is partial: {}",
        joined_messages(&inner, alias)
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRepo {
    name_with_owner: String,
    #[serde(default)]
    is_archived: bool,
    description: Option<String>,
    #[serde(default)]
    stargazer_count: i64,
    pushed_at: Option<String>,
    primary_language: Option<NameNode>,
    labels: Option<Nodes<NameNode>>,
    issues: Option<RawIssuePage>,
}

#[derive(Deserialize)]
struct NameNode {
    name: String,
}

#[derive(Deserialize)]
struct Nodes<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<Option<T>>,
}

impl<T> Nodes<T> {
    /// The nodes, or `None` when one of them came back null (partial data).
    fn whole(self) -> Option<Vec<T>> {
        self.nodes.into_iter().collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TotalCount {
    total_count: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIssuePage {
    total_count: i64,
    page_info: PageInfo,
    nodes: Vec<Option<RawIssue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIssue {
    number: i64,
    title: String,
    #[serde(default)]
    body: Option<String>,
    url: String,
    state: String,
    #[serde(default)]
    created_at: String,
    updated_at: String,
    #[serde(default)]
    last_edited_at: Option<String>,
    labels: Option<Nodes<NameNode>>,
    assignees: Option<TotalCount>,
    comments: Option<TotalCount>,
    #[serde(default)]
    closed_by_pull_requests_references: Option<TotalCount>,
}

impl RawIssue {
    fn into_meta(self) -> IssueMeta {
        IssueMeta {
            number: self.number,
            title: self.title,
            body: self.body.unwrap_or_default(),
            url: self.url,
            state: self.state.to_ascii_lowercase(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_edited_at: self.last_edited_at,
            labels: names(self.labels),
            assignee_count: self.assignees.map_or(0, |c| c.total_count),
            comment_count: self.comments.map_or(0, |c| c.total_count),
            linked_pr_count: self
                .closed_by_pull_requests_references
                .map_or(0, |c| c.total_count),
        }
    }
}

fn names(nodes: Option<Nodes<NameNode>>) -> Vec<String> {
    nodes
        .map(|n| n.nodes.into_iter().flatten().map(|l| l.name).collect())
        .unwrap_or_default()
}

impl RawRepo {
    /// The repo's state, or why its answer cannot count as whole.
    fn into_state(self) -> Result<RepoState, &'static str> {
        let issues = match self.issues {
            None => None,
            Some(p) => {
                if p.page_info.has_next_page && p.page_info.end_cursor.is_none() {
                    return Err("a next page of issues without a cursor");
                }
                let nodes: Option<Vec<RawIssue>> = p.nodes.into_iter().collect();
                let Some(nodes) = nodes else {
                    return Err("a null issue node");
                };
                Some(IssuePage {
                    total_count: p.total_count,
                    has_next_page: p.page_info.has_next_page,
                    end_cursor: p.page_info.end_cursor,
                    nodes: nodes.into_iter().map(RawIssue::into_meta).collect(),
                })
            }
        };
        let labels = match self.labels {
            None => None,
            Some(l) => Some(
                l.whole()
                    .ok_or("a null label node")?
                    .into_iter()
                    .map(|n| n.name)
                    .collect(),
            ),
        };
        Ok(RepoState {
            name_with_owner: self.name_with_owner,
            is_archived: self.is_archived,
            description: self.description,
            stars: self.stargazer_count,
            pushed_at: self.pushed_at,
            primary_language: self.primary_language.map(|l| l.name),
            labels,
            issues,
        })
    }
}

/// Decode the answer to a scrape query that covered `n` repos.
pub fn decode_scrape(response: &HttpResponse, n: usize) -> Result<ScrapeAnswer, Failure> {
    let (mut data, errors) = parse_envelope::<RawRepo>(response)?;
    let by_alias = alias_errors(&errors);
    let mut repos = Vec::with_capacity(n);
    for i in 0..n {
        let alias = format!("r{i}");
        let errs = by_alias.get(alias.as_str());
        let outcome = match data.slots.remove(&alias).flatten() {
            Some(raw) => match (partial(errs, &alias), raw.into_state()) {
                (Some(f), _) => RepoOutcome::Failed(f),
                (None, Err(why)) => RepoOutcome::Failed(Failure::transient(format!(
                    "GitHub GraphQL answer for {alias} is partial: {why}"
                ))),
                (None, Ok(state)) => RepoOutcome::Found(Box::new(state)),
            },
            None => match missing_alias(errs, &alias) {
                AliasFault::Gone(message) => RepoOutcome::NotFound { message },
                AliasFault::Failed(f) => RepoOutcome::Failed(f),
            },
        };
        repos.push(outcome);
    }
    Ok(ScrapeAnswer {
        rate_limit: data.rate_limit,
        repos,
    })
}

/// A repo's enrichment: languages (ordered by size) and topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoEnrichment {
    pub name_with_owner: String,
    pub description: Option<String>,
    pub is_archived: bool,
    pub primary_language: Option<String>,
    /// `(language, bytes)`, largest first.
    pub languages: Vec<(String, i64)>,
    pub topics: Vec<String>,
}

/// An issue's current content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEnrichment {
    pub meta: IssueMeta,
}

/// The outcome for one enrich target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enriched {
    Repo(Box<RepoEnrichment>),
    Issue(Box<IssueEnrichment>),
    /// The repo or issue is gone (NOT_FOUND): a permanent failure.
    Gone {
        message: String,
    },
    Failed(Failure),
}

/// An enrich alias: a repo (`rN`: its fields) or a repo holding one issue
/// (`iN`: `issue`). One flat shape for both, so the answer decodes in one
/// pass without buffering (an untagged enum would build a tree first).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnrichAlias {
    #[serde(default)]
    issue: Option<RawIssue>,
    #[serde(default)]
    name_with_owner: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    is_archived: bool,
    #[serde(default)]
    primary_language: Option<NameNode>,
    #[serde(default)]
    languages: Option<RawLanguages>,
    #[serde(default)]
    repository_topics: Option<Nodes<RawTopicNode>>,
}

#[derive(Deserialize)]
struct RawLanguages {
    #[serde(default)]
    edges: Vec<Option<RawLanguageEdge>>,
}

#[derive(Deserialize)]
struct RawLanguageEdge {
    size: i64,
    node: NameNode,
}

#[derive(Deserialize)]
struct RawTopicNode {
    topic: NameNode,
}

impl RawEnrichAlias {
    /// The outcome for `target`; `None` when the alias holds nothing for it.
    fn into_enriched(self, target: &EnrichTarget) -> Option<Enriched> {
        match target {
            EnrichTarget::Issue { .. } => self.issue.map(|issue| {
                Enriched::Issue(Box::new(IssueEnrichment {
                    meta: issue.into_meta(),
                }))
            }),
            EnrichTarget::Repo { .. } => {
                let name_with_owner = self.name_with_owner?;
                Some(Enriched::Repo(Box::new(RepoEnrichment {
                    name_with_owner,
                    description: self.description,
                    is_archived: self.is_archived,
                    primary_language: self.primary_language.map(|l| l.name),
                    languages: self
                        .languages
                        .map(|l| {
                            l.edges
                                .into_iter()
                                .flatten()
                                .map(|e| (e.node.name, e.size))
                                .collect()
                        })
                        .unwrap_or_default(),
                    topics: self
                        .repository_topics
                        .map(|t| {
                            t.nodes
                                .into_iter()
                                .flatten()
                                .map(|n| n.topic.name)
                                .collect()
                        })
                        .unwrap_or_default(),
                })))
            }
        }
    }
}

/// Decode an enrich answer; outcomes come back in `targets` order.
pub fn decode_enrich(
    response: &HttpResponse,
    targets: &[EnrichTarget],
) -> Result<Vec<Enriched>, Failure> {
    let (mut data, errors) = parse_envelope::<RawEnrichAlias>(response)?;
    let by_alias = alias_errors(&errors);
    let (mut r, mut i) = (0usize, 0usize);
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let alias = match t {
            EnrichTarget::Repo { .. } => {
                r += 1;
                format!("r{}", r - 1)
            }
            EnrichTarget::Issue { .. } => {
                i += 1;
                format!("i{}", i - 1)
            }
        };
        let errs = by_alias.get(alias.as_str());
        let gone_or_failed = || match missing_alias(errs, &alias) {
            AliasFault::Gone(message) => Enriched::Gone { message },
            AliasFault::Failed(f) => Enriched::Failed(f),
        };
        let outcome = match data.slots.remove(&alias).flatten() {
            None => gone_or_failed(),
            Some(raw) => match partial(errs, &alias) {
                Some(f) => Enriched::Failed(f),
                None => raw.into_enriched(t).unwrap_or_else(gone_or_failed),
            },
        };
        out.push(outcome);
    }
    Ok(out)
}
