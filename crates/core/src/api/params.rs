//! Query parameters, validated. Every route names the parameters it takes;
//! an unknown, repeated, empty, over-long or malformed one is a 400 whose
//! message starts with its name and says what would be accepted.
//!
//! Each parsed query also has a canonical form (defaults filled in, fixed
//! order), which is what the response cache is keyed by: `?limit=20` and no
//! query at all are the same read.

use super::cursor::{IssueCursor, RepoCursor};
use super::ApiError;
use crate::slug::RepoSlug;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest page.
pub const MAX_LIMIT: u32 = 100;
/// The longest `language` or `label` accepted (GitHub labels are ≤ 50).
pub const MAX_TEXT_LEN: usize = 100;

pub const ISSUE_PARAMS: &[&str] = &[
    "language",
    "difficulty_max",
    "available",
    "label",
    "repo",
    "sort",
    "cursor",
    "limit",
];
pub const REPO_LIST_PARAMS: &[&str] = &["language", "cursor", "limit"];
/// `/api/repos/{owner}/{name}` pages the repo's issues: the issue
/// parameters, less the two the path already fixes.
pub const REPO_DETAIL_PARAMS: &[&str] = &[
    "difficulty_max",
    "available",
    "label",
    "sort",
    "cursor",
    "limit",
];
pub const FACET_PARAMS: &[&str] = &[];

/// The order of `/api/issues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSort {
    /// Newest first (GitHub's creation time), then by id.
    Fresh,
    /// Lowest difficulty first (unanalysed last), then newest.
    Easy,
}

impl IssueSort {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSort::Fresh => "fresh",
            IssueSort::Easy => "easy",
        }
    }
}

/// The `available` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Only issues a beginner can take (the default).
    Available,
    /// Only issues that are assigned, have an open PR or sit in an
    /// archived or inactive repo.
    Unavailable,
    /// Both.
    Any,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "true",
            Availability::Unavailable => "false",
            Availability::Any => "any",
        }
    }
}

/// What narrows a list of issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFilter {
    /// The repo's primary language, case-insensitive.
    pub language: Option<String>,
    /// 1..=5; unanalysed issues (no difficulty yet) never match.
    pub difficulty_max: Option<u8>,
    pub available: Availability,
    /// One of the issue's labels, case-insensitive.
    pub label: Option<String>,
    pub repo: Option<RepoSlug>,
}

/// `GET /api/issues` (and the issue page of a repo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueQuery {
    pub filter: IssueFilter,
    pub sort: IssueSort,
    pub cursor: Option<IssueCursor>,
    pub limit: u32,
}

/// `GET /api/repos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoListQuery {
    pub language: Option<String>,
    pub cursor: Option<RepoCursor>,
    pub limit: u32,
}

/// The query pairs of one request, checked against the names a route takes.
pub struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    /// Refuses unknown and repeated names up front; `route` names the route
    /// in the message so a typo (`lang=`) is easy to spot.
    pub fn new(
        query: &'a [(String, String)],
        allowed: &[&str],
        route: &str,
    ) -> Result<Self, ApiError> {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(query.len());
        for (name, value) in query {
            if !allowed.contains(&name.as_str()) {
                let takes = if allowed.is_empty() {
                    "no parameters".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::bad(
                    &clip(name),
                    format!("unknown parameter; {route} takes {takes}"),
                ));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::bad(name, "given more than once"));
            }
            pairs.push((name.as_str(), value.as_str()));
        }
        Ok(Params { pairs })
    }

    /// The raw value, refused when empty or holding control characters.
    fn raw(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        let Some(&(_, value)) = self.pairs.iter().find(|(n, _)| *n == name) else {
            return Ok(None);
        };
        if value.is_empty() {
            return Err(ApiError::bad(
                name,
                "must not be empty (leave it out instead)",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad(name, "must not contain control characters"));
        }
        Ok(Some(value))
    }

    /// Free text up to [`MAX_TEXT_LEN`] characters, trimmed.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(value) = self.raw(name)? else {
            return Ok(None);
        };
        if value.chars().count() > MAX_TEXT_LEN {
            return Err(ApiError::bad(
                name,
                format!("must be at most {MAX_TEXT_LEN} characters"),
            ));
        }
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(ApiError::bad(name, "must not be blank"));
        }
        Ok(Some(trimmed.to_string()))
    }

    /// A decimal integer in `min..=max` (digits only: no sign, no spaces).
    pub fn integer(&self, name: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        let Some(value) = self.raw(name)? else {
            return Ok(None);
        };
        let refuse = || {
            ApiError::bad(
                name,
                format!(
                    "must be an integer from {min} to {max}, got {:?}",
                    clip(value)
                ),
            )
        };
        if value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        match value.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(refuse()),
        }
    }

    /// One of `choices`, exactly.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(value) = self.raw(name)? else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|c| **c == value)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad(
                    name,
                    format!(
                        "must be one of {}, got {:?}",
                        choices.join(", "),
                        clip(value)
                    ),
                )
            })
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        Ok(self
            .integer("limit", 1, MAX_LIMIT)?
            .unwrap_or(DEFAULT_LIMIT))
    }

    pub fn repo(&self) -> Result<Option<RepoSlug>, ApiError> {
        let Some(value) = self.raw("repo")? else {
            return Ok(None);
        };
        value
            .parse::<RepoSlug>()
            .map(Some)
            .map_err(|e| ApiError::bad("repo", format!("must be \"owner/name\": {e}")))
    }
}

/// The issue filters and paging shared by `/api/issues` and a repo's page.
fn issue_query(p: &Params<'_>, repo: Option<RepoSlug>) -> Result<IssueQuery, ApiError> {
    let language = p.text("language")?;
    let difficulty_max = p.integer("difficulty_max", 1, 5)?.map(|d| d as u8);
    let available = match p.choice("available", &["true", "false", "any"])? {
        None | Some("true") => Availability::Available,
        Some("false") => Availability::Unavailable,
        Some(_) => Availability::Any,
    };
    let label = p.text("label")?;
    let sort = match p.choice("sort", &["fresh", "easy"])? {
        Some("easy") => IssueSort::Easy,
        _ => IssueSort::Fresh,
    };
    let cursor = match p.raw("cursor")? {
        Some(text) => Some(IssueCursor::decode(text, sort)?),
        None => None,
    };
    Ok(IssueQuery {
        filter: IssueFilter {
            language,
            difficulty_max,
            available,
            label,
            repo,
        },
        sort,
        cursor,
        limit: p.limit()?,
    })
}

/// `GET /api/issues`.
pub fn parse_issue_query(query: &[(String, String)]) -> Result<IssueQuery, ApiError> {
    let p = Params::new(query, ISSUE_PARAMS, "/api/issues")?;
    let repo = p.repo()?;
    issue_query(&p, repo)
}

/// `GET /api/repos/{owner}/{name}`: the path's repo, and its issues' page.
pub fn parse_repo_detail(
    owner: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<(RepoSlug, IssueQuery), ApiError> {
    let slug = RepoSlug::new(owner, name).map_err(|e| {
        let part = match e {
            crate::slug::SlugError::InvalidName { .. } => "name",
            _ => "owner",
        };
        ApiError::bad(part, e.to_string())
    })?;
    let p = Params::new(query, REPO_DETAIL_PARAMS, "/api/repos/{owner}/{name}")?;
    let issues = issue_query(&p, Some(slug.clone()))?;
    Ok((slug, issues))
}

/// `GET /api/repos`.
pub fn parse_repo_list(query: &[(String, String)]) -> Result<RepoListQuery, ApiError> {
    let p = Params::new(query, REPO_LIST_PARAMS, "/api/repos")?;
    let cursor = match p.raw("cursor")? {
        Some(text) => Some(RepoCursor::decode(text)?),
        None => None,
    };
    Ok(RepoListQuery {
        language: p.text("language")?,
        cursor,
        limit: p.limit()?,
    })
}

/// `GET /api/facets`.
pub fn parse_facets(query: &[(String, String)]) -> Result<(), ApiError> {
    Params::new(query, FACET_PARAMS, "/api/facets").map(|_| ())
}

impl IssueQuery {
    /// Defaults filled in, fixed order, values percent-encoded. The repo is
    /// included even when the path fixed it.
    pub fn canonical(&self) -> String {
        let f = &self.filter;
        let mut out = format!("available={}", f.available.as_str());
        if let Some(cursor) = &self.cursor {
            push(&mut out, "cursor", &cursor.encode());
        }
        if let Some(d) = f.difficulty_max {
            push(&mut out, "difficulty_max", &d.to_string());
        }
        if let Some(label) = &f.label {
            push(&mut out, "label", &label.to_lowercase());
        }
        if let Some(language) = &f.language {
            push(&mut out, "language", &language.to_lowercase());
        }
        push(&mut out, "limit", &self.limit.to_string());
        if let Some(repo) = &f.repo {
            push(&mut out, "repo", &repo.full_name());
        }
        push(&mut out, "sort", self.sort.as_str());
        out
    }
}

impl RepoListQuery {
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        if let Some(cursor) = &self.cursor {
            push(&mut out, "cursor", &cursor.encode());
        }
        if let Some(language) = &self.language {
            push(&mut out, "language", &language.to_lowercase());
        }
        push(&mut out, "limit", &self.limit.to_string());
        out
    }
}

fn push(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(name);
    out.push('=');
    out.push_str(&percent_encode(value));
}

/// Percent-encode everything but unreserved characters (RFC 3986).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// At most 60 characters of a value, for messages.
fn clip(value: &str) -> String {
    if value.chars().count() <= 60 {
        value.to_string()
    } else {
        let head: String = value.chars().take(60).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> (String, String) {
        match parse_issue_query(&q(pairs)) {
            Err(ApiError::BadParameter { parameter, message }) => (parameter, message),
            other => panic!("expected a 400 for {pairs:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_parameters_mean_available_fresh_twenty() {
        let query = parse_issue_query(&[]).unwrap();
        assert_eq!(query.filter.available, Availability::Available);
        assert_eq!(query.sort, IssueSort::Fresh);
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.cursor, None);
        assert_eq!(query.canonical(), "available=true&limit=20&sort=fresh");
    }

    #[test]
    fn every_filter_parses_into_the_query() {
        let query = parse_issue_query(&q(&[
            ("language", " Rust "),
            ("difficulty_max", "2"),
            ("available", "any"),
            ("label", "good first issue"),
            ("repo", "Rust-Lang/Rust"),
            ("sort", "easy"),
            ("limit", "100"),
        ]))
        .unwrap();
        assert_eq!(query.filter.language.as_deref(), Some("Rust"));
        assert_eq!(query.filter.difficulty_max, Some(2));
        assert_eq!(query.filter.available, Availability::Any);
        assert_eq!(query.filter.label.as_deref(), Some("good first issue"));
        assert_eq!(
            query.filter.repo.as_ref().unwrap().full_name(),
            "rust-lang/rust"
        );
        assert_eq!(query.sort, IssueSort::Easy);
        assert_eq!(query.limit, 100);
    }

    #[test]
    fn the_canonical_form_ignores_order_case_and_defaults() {
        let a = parse_issue_query(&q(&[
            ("sort", "fresh"),
            ("language", "Rust"),
            ("limit", "20"),
        ]))
        .unwrap();
        let b = parse_issue_query(&q(&[("language", "rust"), ("available", "true")])).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(
            a.canonical(),
            "available=true&language=rust&limit=20&sort=fresh"
        );
        let c = parse_issue_query(&q(&[("label", "good first issue")])).unwrap();
        assert_eq!(
            c.canonical(),
            "available=true&label=good%20first%20issue&limit=20&sort=fresh"
        );
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused_by_name() {
        for bad in ["0", "101", "-1", "1.5", "abc", "+5", " 5", "99999999999"] {
            let (parameter, message) = refused(&[("limit", bad)]);
            assert_eq!(parameter, "limit", "{bad}");
            assert!(message.contains("from 1 to 100"), "{message}");
        }
    }

    #[test]
    fn each_bad_parameter_is_named_in_its_400() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("difficulty_max", "6")], "difficulty_max"),
            (&[("difficulty_max", "0")], "difficulty_max"),
            (&[("available", "yes")], "available"),
            (&[("sort", "newest")], "sort"),
            (&[("repo", "no-slash")], "repo"),
            (&[("repo", "a/b c")], "repo"),
            (&[("cursor", "zz")], "cursor"),
            (&[("language", "")], "language"),
            (&[("label", "   ")], "label"),
            (&[("label", "a\u{0}b")], "label"),
            (&[("lang", "rust")], "lang"),
            (&[("limit", "5"), ("limit", "6")], "limit"),
        ];
        for (pairs, name) in cases {
            assert_eq!(refused(pairs).0, *name, "{pairs:?}");
        }
        let long = "x".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(refused(&[("language", &long)]).0, "language");
    }

    #[test]
    fn an_unknown_parameter_lists_what_the_route_takes() {
        let (_, message) = refused(&[("page", "2")]);
        assert_eq!(
            message,
            "unknown parameter; /api/issues takes language, difficulty_max, available, label, repo, sort, cursor, limit"
        );
        let err = parse_facets(&q(&[("x", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x: unknown parameter; /api/facets takes no parameters"
        );
    }

    #[test]
    fn a_repo_page_refuses_the_parameters_its_path_fixes() {
        let err = parse_repo_detail("o", "r", &q(&[("repo", "x/y")])).unwrap_err();
        assert!(matches!(err, ApiError::BadParameter { ref parameter, .. } if parameter == "repo"));
        let err = parse_repo_detail("o", "r", &q(&[("language", "Rust")])).unwrap_err();
        assert!(
            matches!(err, ApiError::BadParameter { ref parameter, .. } if parameter == "language")
        );
        let (slug, issues) = parse_repo_detail("O", "R", &[]).unwrap();
        assert_eq!(slug.full_name(), "o/r");
        assert_eq!(issues.filter.repo, Some(slug));
    }

    #[test]
    fn a_bad_path_segment_names_owner_or_name() {
        let name = |owner: &str, repo: &str| match parse_repo_detail(owner, repo, &[]) {
            Err(ApiError::BadParameter { parameter, .. }) => parameter,
            other => panic!("{other:?}"),
        };
        assert_eq!(name("a%2Fb", "r"), "owner");
        assert_eq!(name("o", "r%20x"), "name");
        assert_eq!(name("", "r"), "owner");
    }

    #[test]
    fn repo_listing_takes_language_cursor_and_limit() {
        let query = parse_repo_list(&q(&[("language", "Go"), ("limit", "5")])).unwrap();
        assert_eq!(query.canonical(), "language=go&limit=5");
        let err = parse_repo_list(&q(&[("sort", "easy")])).unwrap_err();
        assert!(err.to_string().starts_with("sort: unknown parameter"));
    }
}
