//! The statements behind every read, and the bodies built from their rows.
//!
//! SQLite writes each item's JSON (`json_object`), so a page crosses from
//! D1 into the worker as one string per row and is joined, not re-encoded.
//! JSON columns are embedded only when they hold a JSON array; anything else
//! reads as `[]`, so a bad stored value can never fail a read.
//!
//! Only open issues of listed (active) repos are served; the repos listed
//! are the active ones GitHub answered for.

use serde_json::{json, Value};

use super::cursor::{IssueCursor, RepoCursor, UNRATED};
use super::params::{Availability, IssueQuery, IssueSort, RepoListQuery};
use super::{ApiError, ReadRoute};
use crate::slug::RepoSlug;
use crate::sql::{SqlValue, Statement};

/// A read, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Issues(IssueQuery),
    Repos(RepoListQuery),
    Repo(RepoSlug, IssueQuery),
    Facets,
}

/// A rendered answer: its status (200, or 404 for an unknown repo) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub body: String,
}

impl Read {
    /// Parse a read route's parameters.
    pub fn parse(route: &ReadRoute, query: &[(String, String)]) -> Result<Self, ApiError> {
        use super::params::*;
        Ok(match route {
            ReadRoute::Issues => Read::Issues(parse_issue_query(query)?),
            ReadRoute::Repos => Read::Repos(parse_repo_list(query)?),
            ReadRoute::Repo { owner, name } => {
                let (slug, issues) = parse_repo_detail(owner, name, query)?;
                Read::Repo(slug, issues)
            }
            ReadRoute::Facets => {
                parse_facets(query)?;
                Read::Facets
            }
        })
    }

    /// What the answer depends on besides the data: path and canonical query.
    pub fn cache_path(&self) -> String {
        match self {
            Read::Issues(q) => format!("/api/issues?{}", q.canonical()),
            Read::Repos(q) => format!("/api/repos?{}", q.canonical()),
            Read::Repo(slug, q) => format!("/api/repos/{slug}?{}", q.canonical()),
            Read::Facets => "/api/facets".to_string(),
        }
    }

    /// The statements of this read, run as one D1 batch.
    pub fn statements(&self) -> Vec<Statement> {
        match self {
            Read::Issues(q) => vec![issue_page(q)],
            Read::Repos(q) => vec![repo_page(q)],
            Read::Repo(slug, q) => vec![repo_by_slug(slug), issue_page(q)],
            Read::Facets => facet_statements(),
        }
    }

    /// The answer, from the rows of [`Read::statements`].
    pub fn render(&self, rows: &[Vec<Value>]) -> Result<Rendered, ApiError> {
        let ok = |body| Rendered { status: 200, body };
        match self {
            Read::Issues(q) => Ok(ok(render_issue_page(q, rows_at(rows, 0)?)?)),
            Read::Repos(q) => Ok(ok(render_repo_page(q, rows_at(rows, 0)?)?)),
            Read::Repo(slug, q) => {
                let Some(repo) = rows_at(rows, 0)?.first() else {
                    let e = ApiError::NoRepo {
                        slug: slug.full_name(),
                    };
                    return Ok(Rendered {
                        status: e.status(),
                        body: e.to_json(),
                    });
                };
                let issues = render_issue_page(q, rows_at(rows, 1)?)?;
                Ok(ok(format!(
                    "{{\"repo\":{},\"issues\":{issues}}}",
                    text(repo, "item")?
                )))
            }
            Read::Facets => Ok(ok(render_facets(rows)?)),
        }
    }
}

fn rows_at(rows: &[Vec<Value>], i: usize) -> Result<&[Value], ApiError> {
    rows.get(i)
        .map(Vec::as_slice)
        .ok_or_else(|| ApiError::Unavailable(format!("D1 returned no result set {i}")))
}

fn text<'a>(row: &'a Value, column: &str) -> Result<&'a str, ApiError> {
    row.get(column)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Unavailable(format!("row without text column {column}")))
}

fn integer(row: &Value, column: &str) -> Result<i64, ApiError> {
    row.get(column)
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::Unavailable(format!("row without integer column {column}")))
}

/// A stored JSON array column, embedded as is when it is one.
fn json_array(column: &str) -> String {
    format!(
        "json(CASE WHEN json_valid({column}) THEN CASE WHEN json_type({column}) = 'array' \
         THEN {column} ELSE '[]' END ELSE '[]' END)"
    )
}

fn boolean(expr: &str) -> String {
    format!("json(CASE WHEN {expr} THEN 'true' ELSE 'false' END)")
}

/// One issue, as the API shows it (`i` joined with its repo `r`).
fn issue_json() -> String {
    format!(
        "json_object('repo', r.owner || '/' || r.name, 'number', i.number, 'title', i.title, \
         'url', i.url, 'labels', {labels}, 'language', r.primary_language, 'intro', i.intro, \
         'difficulty', i.difficulty, 'first_steps', {steps}, 'skills', {skills}, \
         'available', {available}, 'availability', i.availability, \
         'assignee_count', i.assignee_count, 'linked_pr_count', i.linked_pr_count, \
         'comment_count', i.comment_count, 'created_at', i.gh_created_at, \
         'updated_at', i.gh_updated_at, 'analysis_model', i.analysis_model, \
         'fallback_reason', i.fallback_reason)",
        labels = json_array("i.labels"),
        steps = json_array("i.first_steps"),
        skills = json_array("i.skills"),
        available = boolean("i.available = 1"),
    )
}

/// One repo, as the API shows it, with its open and available issue counts.
fn repo_json() -> String {
    format!(
        "json_object('owner', r.owner, 'name', r.name, 'full_name', r.owner || '/' || r.name, \
         'url', 'https://github.com/' || r.owner || '/' || r.name, \
         'description', COALESCE(r.description, r.list_description), 'summary', r.summary, \
         'primary_language', r.primary_language, 'languages', {languages}, 'topics', {topics}, \
         'stars', r.stars, 'archived', {archived}, 'pushed_at', r.pushed_at, \
         'open_issues', (SELECT COUNT(*) FROM issues o WHERE o.repo_id = r.id AND o.state = 'open'), \
         'available_issues', (SELECT COUNT(*) FROM issues o WHERE o.repo_id = r.id \
            AND o.state = 'open' AND o.available = 1), \
         'analysis_model', r.analysis_model, 'fallback_reason', r.fallback_reason)",
        languages = json_array("r.languages"),
        topics = json_array("r.topics"),
        archived = boolean("r.is_archived = 1"),
    )
}

/// SQL text with numbered parameters.
struct Sql {
    text: String,
    params: Vec<SqlValue>,
}

impl Sql {
    fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Bind a value; its placeholder (`?N`).
    fn bind(&mut self, value: impl Into<SqlValue>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn finish(self) -> Statement {
        Statement::new(self.text, self.params)
    }
}

const CREATED: &str = "COALESCE(i.gh_created_at, '')";

fn difficulty_key() -> String {
    format!("COALESCE(i.difficulty, {UNRATED})")
}

/// The filter, cursor, order and limit of an issue page.
fn issue_page(q: &IssueQuery) -> Statement {
    let mut sql = Sql::new(format!(
        "SELECT {} AS item, i.id AS id, {} AS d, {CREATED} AS c \
         FROM issues i JOIN repos r ON r.id = i.repo_id \
         WHERE i.state = 'open' AND r.active = 1",
        issue_json(),
        difficulty_key()
    ));
    let f = &q.filter;
    match f.available {
        Availability::Available => sql.push(" AND i.available = 1"),
        Availability::Unavailable => sql.push(" AND i.available = 0"),
        Availability::Any => {}
    }
    if let Some(d) = f.difficulty_max {
        let p = sql.bind(i64::from(d));
        sql.push(&format!(" AND i.difficulty <= {p}"));
    }
    if let Some(language) = &f.language {
        let p = sql.bind(language);
        sql.push(&format!(" AND r.primary_language = {p} COLLATE NOCASE"));
    }
    if let Some(label) = &f.label {
        let p = sql.bind(label);
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(i.labels) THEN i.labels ELSE '[]' END) l \
             WHERE l.value = {p} COLLATE NOCASE)"
        ));
    }
    if let Some(repo) = &f.repo {
        let owner = sql.bind(&repo.owner);
        let name = sql.bind(&repo.name);
        sql.push(&format!(" AND r.owner = {owner} AND r.name = {name}"));
    }
    if let Some(cursor) = &q.cursor {
        push_issue_keyset(&mut sql, cursor);
    }
    let order = match q.sort {
        IssueSort::Fresh => format!(" ORDER BY {CREATED} DESC, i.id DESC"),
        IssueSort::Easy => format!(
            " ORDER BY {} ASC, {CREATED} DESC, i.id DESC",
            difficulty_key()
        ),
    };
    sql.push(&order);
    let limit = sql.bind(i64::from(q.limit) + 1);
    sql.push(&format!(" LIMIT {limit}"));
    sql.finish()
}

/// Rows strictly after the cursor in the page's order.
fn push_issue_keyset(sql: &mut Sql, cursor: &IssueCursor) {
    let created = sql.bind(&cursor.created);
    let id = sql.bind(cursor.id);
    let after_created =
        format!("({CREATED} < {created} OR ({CREATED} = {created} AND i.id < {id}))");
    match cursor.sort {
        IssueSort::Fresh => sql.push(&format!(" AND {after_created}")),
        IssueSort::Easy => {
            let d = sql.bind(i64::from(cursor.difficulty));
            let key = difficulty_key();
            sql.push(&format!(
                " AND ({key} > {d} OR ({key} = {d} AND {after_created}))"
            ));
        }
    }
}

/// `{"items": [...], "next_cursor": ..., "limit": n}` from `limit + 1` rows.
fn render_issue_page(q: &IssueQuery, rows: &[Value]) -> Result<String, ApiError> {
    let limit = q.limit as usize;
    let next = if rows.len() > limit {
        let last = &rows[limit - 1];
        let d = integer(last, "d")?;
        Some(IssueCursor {
            sort: q.sort,
            difficulty: u8::try_from(d).unwrap_or(UNRATED),
            created: text(last, "c")?.to_string(),
            id: integer(last, "id")?,
        })
    } else {
        None
    };
    page(rows.iter().take(limit), next.map(|c| c.encode()), q.limit)
}

fn page<'a>(
    rows: impl Iterator<Item = &'a Value>,
    next: Option<String>,
    limit: u32,
) -> Result<String, ApiError> {
    let mut body = String::from("{\"items\":[");
    for (n, row) in rows.enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(text(row, "item")?);
    }
    body.push_str("],\"next_cursor\":");
    body.push_str(&json!(next).to_string());
    body.push_str(&format!(",\"limit\":{limit}}}"));
    Ok(body)
}

const STARS: &str = "COALESCE(r.stars, -1)";

/// Listed repos GitHub answered for, most stars first.
fn repo_page(q: &RepoListQuery) -> Statement {
    let mut sql = Sql::new(format!(
        "SELECT {} AS item, r.id AS id, {STARS} AS s FROM repos r \
         WHERE r.active = 1 AND r.upstream_status = 'ok'",
        repo_json()
    ));
    if let Some(language) = &q.language {
        let p = sql.bind(language);
        sql.push(&format!(" AND r.primary_language = {p} COLLATE NOCASE"));
    }
    if let Some(c) = &q.cursor {
        let stars = sql.bind(c.stars);
        let id = sql.bind(c.id);
        sql.push(&format!(
            " AND ({STARS} < {stars} OR ({STARS} = {stars} AND r.id > {id}))"
        ));
    }
    let limit = sql.bind(i64::from(q.limit) + 1);
    sql.push(&format!(" ORDER BY {STARS} DESC, r.id ASC LIMIT {limit}"));
    sql.finish()
}

fn render_repo_page(q: &RepoListQuery, rows: &[Value]) -> Result<String, ApiError> {
    let limit = q.limit as usize;
    let next = if rows.len() > limit {
        let last = &rows[limit - 1];
        Some(
            RepoCursor {
                stars: integer(last, "s")?,
                id: integer(last, "id")?,
            }
            .encode(),
        )
    } else {
        None
    };
    page(rows.iter().take(limit), next, q.limit)
}

fn repo_by_slug(slug: &RepoSlug) -> Statement {
    Statement::new(
        format!(
            "SELECT {} AS item FROM repos r WHERE r.owner = ?1 AND r.name = ?2 AND r.active = 1",
            repo_json()
        ),
        vec![slug.owner.clone().into(), slug.name.clone().into()],
    )
}

/// Available open issues of listed repos: what the facets count.
const AVAILABLE: &str = "FROM issues i JOIN repos r ON r.id = i.repo_id \
     WHERE i.state = 'open' AND r.active = 1 AND i.available = 1";

/// The values a front end can filter by, with how many available issues
/// each would show (case-insensitive, as the filters match).
fn facet_statements() -> Vec<Statement> {
    let labels = "json_each(CASE WHEN json_valid(i.labels) THEN i.labels ELSE '[]' END)";
    vec![
        Statement::new(format!("SELECT COUNT(*) AS n {AVAILABLE}"), vec![]),
        Statement::new(
            format!(
                "SELECT MIN(r.primary_language) AS name, COUNT(*) AS n {AVAILABLE} \
                 AND r.primary_language IS NOT NULL \
                 GROUP BY r.primary_language COLLATE NOCASE ORDER BY n DESC, name LIMIT 100"
            ),
            vec![],
        ),
        Statement::new(
            format!(
                "SELECT MIN(l.value) AS name, COUNT(*) AS n FROM issues i JOIN repos r ON r.id = i.repo_id \
                 JOIN {labels} l WHERE i.state = 'open' AND r.active = 1 AND i.available = 1 \
                 AND l.type = 'text' GROUP BY l.value COLLATE NOCASE ORDER BY n DESC, name LIMIT 100"
            ),
            vec![],
        ),
        Statement::new(
            format!(
                "SELECT i.difficulty AS difficulty, COUNT(*) AS n {AVAILABLE} \
                 AND i.difficulty IS NOT NULL GROUP BY i.difficulty ORDER BY i.difficulty"
            ),
            vec![],
        ),
    ]
}

fn render_facets(rows: &[Vec<Value>]) -> Result<String, ApiError> {
    let total = rows_at(rows, 0)?
        .first()
        .map(|r| integer(r, "n"))
        .transpose()?
        .unwrap_or(0);
    let named = |i: usize| -> Result<Vec<Value>, ApiError> {
        rows_at(rows, i)?
            .iter()
            .map(|r| Ok(json!({"name": text(r, "name")?, "issues": integer(r, "n")?})))
            .collect()
    };
    let difficulties: Vec<Value> = rows_at(rows, 3)?
        .iter()
        .map(|r| Ok(json!({"difficulty": integer(r, "difficulty")?, "issues": integer(r, "n")?})))
        .collect::<Result<_, ApiError>>()?;
    Ok(json!({
        "available_issues": total,
        "languages": named(1)?,
        "labels": named(2)?,
        "difficulties": difficulties,
    })
    .to_string())
}
