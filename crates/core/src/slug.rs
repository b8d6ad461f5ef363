//! GitHub repository identity: the `owner/name` slug and the URL parser that
//! produces it.
//!
//! Every repository contribot tracks is keyed by a [`RepoSlug`]: owner and
//! name, lowercased, restricted to GitHub's character set
//! (`[A-Za-z0-9_.-]`). The list parsers turn whatever link a list entry
//! carries into a slug with [`parse_github_url`], which is lenient about the
//! shape of the URL (scheme, `www.`, `.git`, trailing path, query, fragment)
//! and strict about its host and its owner and name. The admin bulk-enqueue
//! API uses the much stricter [`is_strict_repo_url`] instead.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest owner or name accepted. GitHub's own limits are 39 characters for
/// an owner and 100 for a repository name; one bound for both keeps the check
/// simple while still refusing absurd input.
pub const MAX_SLUG_PART_LEN: usize = 100;

/// Longest piece of untrusted input copied into an error message.
const MAX_ERROR_ECHO: usize = 200;

/// First path segments that are GitHub pages, not owners
/// (`https://github.com/orgs/rust-lang/...`, `https://github.com/topics/rust`).
/// GitHub reserves these names, so no account can own them.
const RESERVED_OWNERS: &[&str] = &[
    "about",
    "apps",
    "codespaces",
    "collections",
    "enterprise",
    "explore",
    "features",
    "issues",
    "login",
    "marketplace",
    "notifications",
    "organizations",
    "orgs",
    "pricing",
    "pulls",
    "search",
    "settings",
    "sponsors",
    "topics",
    "trending",
];

/// A GitHub repository, as `owner/name`.
///
/// Both parts are lowercase and made only of `[a-z0-9_.-]`; neither is `.`
/// or `..`, nor longer than [`MAX_SLUG_PART_LEN`]. GitHub treats owners and
/// names case-insensitively, so lowercasing makes two spellings of one
/// repository compare equal. Build one with [`RepoSlug::new`],
/// [`parse_github_url`] or `"owner/name".parse()`; the fields are public for
/// reading and pattern matching.
///
/// Serialises as the single string `"owner/name"`; deserialising validates
/// and normalises it the same way [`FromStr`] does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RepoSlug {
    /// The account or organisation, lowercase.
    pub owner: String,
    /// The repository name, lowercase, without a `.git` suffix.
    pub name: String,
}

/// Why a URL or an `owner/name` pair is not a usable GitHub repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// The URL points somewhere other than github.com. `host` is lowercase,
    /// so a caller can log "skipped: non-GitHub host gitlab.com".
    #[error("non-GitHub host {host}")]
    NotGithub {
        /// The URL's host, lowercase, without port.
        host: String,
    },
    /// The text is not a GitHub repository URL. `url` is the input, clipped
    /// to 200 characters.
    #[error("malformed GitHub URL {url:?}: {reason}")]
    Malformed {
        /// The offending input (clipped).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The owner part is empty, too long, `.`/`..` or outside `[A-Za-z0-9_.-]`.
    #[error("invalid repository owner {owner:?}: {reason}")]
    InvalidOwner {
        /// The offending owner (clipped).
        owner: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name part is empty, too long, `.`/`..` or outside `[A-Za-z0-9_.-]`.
    #[error("invalid repository name {name:?}: {reason}")]
    InvalidName {
        /// The offending name (clipped).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A full name was expected (`owner/name`) and the text has no `/`.
    #[error("expected \"owner/name\", got {value:?}")]
    NotAFullName {
        /// The offending input (clipped).
        value: String,
    },
}

impl RepoSlug {
    /// Validates `owner` and `name` and lowercases them.
    ///
    /// No other normalisation happens here: a `.git` suffix or surrounding
    /// whitespace is an error, not something to strip. Use
    /// [`parse_github_url`] for lenient input.
    pub fn new(owner: &str, name: &str) -> Result<Self, SlugError> {
        check_part(owner).map_err(|reason| SlugError::InvalidOwner {
            owner: clip(owner),
            reason: reason.to_owned(),
        })?;
        check_part(name).map_err(|reason| SlugError::InvalidName {
            name: clip(name),
            reason: reason.to_owned(),
        })?;
        Ok(Self {
            owner: owner.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        })
    }

    /// `owner/name`, the form GitHub's API calls `nameWithOwner`.
    pub fn full_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RepoSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Parses `owner/name` (any case) into a slug.
impl FromStr for RepoSlug {
    type Err = SlugError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((owner, name)) => Self::new(owner, name),
            None => Err(SlugError::NotAFullName { value: clip(s) }),
        }
    }
}

impl TryFrom<String> for RepoSlug {
    type Error = SlugError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RepoSlug> for String {
    fn from(slug: RepoSlug) -> Self {
        slug.to_string()
    }
}

/// Extracts the repository a GitHub URL points at.
///
/// Accepts `http://` and `https://` (any case), `github.com` or
/// `www.github.com` (any case, optional port), a trailing `/`, a `.git`
/// suffix, extra path after the repository (`/labels/...`, `/issues`,
/// `/tree/main`), a query string and a fragment. Owner and name come back
/// lowercase.
///
/// Errors: [`SlugError::NotGithub`] when the host is anything else;
/// [`SlugError::Malformed`] for everything else that is wrong (no scheme,
/// credentials in the URL, fewer than two path segments, a GitHub page such
/// as `/orgs/...` or `/topics/...` instead of an owner, characters outside
/// `[A-Za-z0-9_.-]`, and so on).
pub fn parse_github_url(url: &str) -> Result<RepoSlug, SlugError> {
    split_github_url(url).map(|parts| parts.slug)
}

/// A GitHub repository URL taken apart; what [`parse_github_url`] sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GithubUrl<'a> {
    /// The repository.
    pub slug: RepoSlug,
    /// Non-empty path segments after the repository name, still
    /// percent-encoded (`["labels", "good%20first%20issue"]`).
    pub rest: Vec<&'a str>,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
}

/// The lenient parser behind [`parse_github_url`], which also hands back the
/// path and query after the repository so the README parser can read labels
/// out of older `.../labels/<label>` links.
pub(crate) fn split_github_url(url: &str) -> Result<GithubUrl<'_>, SlugError> {
    let malformed = |reason: &str| SlugError::Malformed {
        url: clip(url),
        reason: reason.to_owned(),
    };
    let trimmed = url.trim();
    let after_scheme = strip_prefix_ignore_ascii_case(trimmed, "https://")
        .or_else(|| strip_prefix_ignore_ascii_case(trimmed, "http://"))
        .ok_or_else(|| {
            if trimmed.contains("://") {
                malformed("unsupported scheme (only http and https)")
            } else {
                malformed("not an absolute http(s) URL")
            }
        })?;

    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, after_authority) = after_scheme.split_at(authority_end);
    if authority.contains('@') {
        return Err(malformed("credentials in URL"));
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err(malformed("invalid port")),
        None => authority,
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host.is_empty() {
        return Err(malformed("missing host"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed("invalid host"));
    }
    if host != "github.com" && host != "www.github.com" {
        return Err(SlugError::NotGithub { host: clip(host) });
    }

    let (path_and_query, _fragment) = after_authority
        .split_once('#')
        .unwrap_or((after_authority, ""));
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let owner = segments
        .next()
        .ok_or_else(|| malformed("no repository owner in path"))?;
    let name = segments
        .next()
        .ok_or_else(|| malformed("no repository name in path (an account page?)"))?;
    if RESERVED_OWNERS
        .iter()
        .any(|reserved| owner.eq_ignore_ascii_case(reserved))
    {
        return Err(malformed(&format!(
            "/{} is a GitHub page, not a repository owner",
            clip(owner)
        )));
    }
    let name = strip_git_suffix(name);
    let slug = RepoSlug::new(owner, name).map_err(|e| malformed(&e.to_string()))?;
    Ok(GithubUrl {
        slug,
        rest: segments.collect(),
        query,
    })
}

/// True exactly when `url` matches `^https://github\.com/[\w.-]+/[\w.-]+/?$`,
/// with `\w` meaning ASCII `[A-Za-z0-9_]` (as in JavaScript).
///
/// This is the admin bulk-enqueue API's gate: no `www.`, no `http`, no extra
/// path, query, fragment or whitespace, and case-sensitive scheme and host.
/// It deliberately does not reject `.` or `..` as owner or name, which the
/// pattern allows; [`parse_github_url`] does.
pub fn is_strict_repo_url(url: &str) -> bool {
    let Some(path) = url.strip_prefix("https://github.com/") else {
        return false;
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some((owner, name)) = path.split_once('/') else {
        return false;
    };
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    segment_ok(owner) && segment_ok(name)
}

/// Checks one slug part against GitHub's character set and our length bound.
fn check_part(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("empty");
    }
    if part == "." || part == ".." {
        return Err("\".\" and \"..\" are not allowed");
    }
    if part.len() > MAX_SLUG_PART_LEN {
        return Err("longer than 100 characters");
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("contains characters outside [A-Za-z0-9_.-]");
    }
    Ok(())
}

/// Removes one trailing `.git` (any case).
fn strip_git_suffix(name: &str) -> &str {
    let cut = name.len().saturating_sub(4);
    match (name.get(..cut), name.get(cut..)) {
        (Some(stem), Some(suffix)) if suffix.eq_ignore_ascii_case(".git") => stem,
        _ => name,
    }
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Copies at most [`MAX_ERROR_ECHO`] characters of untrusted input, so an
/// error about a 5 MB string stays a one-line log record.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_ECHO) {
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_git_suffix_and_trailing_path() {
        let slug = parse_github_url("https://www.github.com/Foo/Bar.git/").unwrap();
        assert_eq!(slug.full_name(), "foo/bar");
        let parts =
            split_github_url("https://github.com/o/r/labels/good%20first%20issue?x=1#y").unwrap();
        assert_eq!(parts.rest, ["labels", "good%20first%20issue"]);
        assert_eq!(parts.query, Some("x=1"));
    }

    #[test]
    fn serde_round_trips_as_full_name() {
        let slug = RepoSlug::new("Rust-Lang", "Rust").unwrap();
        let json = serde_json::to_string(&slug).unwrap();
        assert_eq!(json, "\"rust-lang/rust\"");
        assert_eq!(serde_json::from_str::<RepoSlug>(&json).unwrap(), slug);
        assert!(serde_json::from_str::<RepoSlug>("\"a/b/c\"").is_err());
    }
}
