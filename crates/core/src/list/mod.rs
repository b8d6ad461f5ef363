//! The awesome-for-beginners list: parsing its `data.json` (primary) and its
//! generated `README.md` (fallback) into the GitHub repositories it names.
//!
//! Both parsers feed the same merge step, so they agree on what a list
//! *means*:
//!
//! - every link is reduced to a [`RepoSlug`] (lowercase, no `www.`, `.git`,
//!   trailing slash or extra path); entries whose link is missing, malformed
//!   or on another host are reported in [`ParsedList::skipped`] and the rest
//!   of the list is kept;
//! - a repository listed several times becomes one [`ListedRepo`] whose
//!   labels and technologies are the unions (first spelling wins,
//!   case-insensitively), whose description is the first non-empty one and
//!   whose position is its first appearance;
//! - comma-joined labels (`"Good First Issue, Difficulty/1:Easy"`) are split;
//! - an entry without a label is kept with `labels: []` (and a warning): the
//!   caller marks such a repository `label_not_found` rather than losing it;
//! - untrusted sizes are bounded (see the `MAX_*` constants), with a warning
//!   for each cut.
//!
//! A list that cannot be read at all, or yields no GitHub repository, is an
//! [`ListError`]; the caller then keeps the last good set.

mod data_json;
mod readme;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::slug::{clip, split_github_url, GithubUrl, RepoSlug, SlugError};

pub use data_json::parse_data_json;
pub use readme::parse_readme;

/// The `source_id` under which repositories from this list are stored.
pub const DEFAULT_SOURCE_ID: &str = "awesome-for-beginners";

/// Longest description kept, in characters; longer ones are cut.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Longest label kept, in characters; longer ones are cut.
pub const MAX_LABEL_CHARS: usize = 100;
/// Most labels kept per repository; later ones are dropped.
pub const MAX_LABELS_PER_REPO: usize = 10;
/// Longest display name or technology kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most technologies kept per repository; later ones are dropped.
pub const MAX_TECHNOLOGIES_PER_REPO: usize = 20;
/// Most warnings reported one by one; the rest are counted in a final one.
pub const MAX_WARNINGS: usize = 200;

/// One GitHub repository named by the list, after merging duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedRepo {
    /// The repository.
    pub slug: RepoSlug,
    /// The list's name for it (the first non-empty one); the repository name
    /// when the list gives none.
    pub display_name: String,
    /// The list's labels, as the list spells them, in order of first
    /// appearance. Empty when the list gives none.
    pub labels: Vec<String>,
    /// Technologies (data.json `technologies`, README section headings).
    pub technologies: Vec<String>,
    /// The first non-empty description, cut to [`MAX_DESCRIPTION_CHARS`].
    pub description: Option<String>,
    /// 0-based index in [`ParsedList::repos`]: the order of first appearance.
    pub position: u32,
}

/// Why a list entry produced no repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkipReason {
    /// The link is on another host (GitLab, Jira, ...); contribot only reads
    /// GitHub.
    NonGithubHost {
        /// The link's host, lowercase.
        host: String,
    },
    /// The entry has no link, or an empty one.
    MissingLink,
    /// The link is not a string (data.json only). `found` is its JSON type.
    LinkNotAString {
        /// `"number"`, `"array"`, ...
        found: String,
    },
    /// The link is a GitHub URL (or not a URL at all) but names no
    /// repository.
    MalformedLink {
        /// The link, clipped to 200 characters.
        link: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `repositories` array holds something other than an object
    /// (data.json only). `found` is its JSON type.
    NotAnObject {
        /// `"string"`, `"null"`, ...
        found: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonGithubHost { host } => write!(f, "non-GitHub host {host}"),
            Self::MissingLink => f.write_str("no link"),
            Self::LinkNotAString { found } => write!(f, "link is a {found}, not a string"),
            Self::MalformedLink { link, reason } => write!(f, "bad link {link:?}: {reason}"),
            Self::NotAnObject { found } => write!(f, "entry is a {found}, not an object"),
        }
    }
}

/// A list entry that produced no repository, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// 0-based index of the entry: its index in data.json's `repositories`
    /// array, or its index among the README's linked list items.
    pub entry_index: usize,
    /// The entry's name, if it has one (clipped to [`MAX_NAME_CHARS`], control
    /// characters replaced by spaces).
    pub name: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// One line, e.g. `entry 57 (PureLB): skipped: non-GitHub host gitlab.com`.
impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}", self.entry_index)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(f, ": skipped: {}", self.reason)
    }
}

/// The outcome of parsing a list that could be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParsedList {
    /// The GitHub repositories, merged, in order of first appearance.
    pub repos: Vec<ListedRepo>,
    /// Entries that produced no repository.
    pub skipped: Vec<Skipped>,
    /// Things worth logging that did not stop the parse: cut strings,
    /// dropped labels, repositories without a label.
    pub warnings: Vec<String>,
}

/// Why a list could not be used at all. The caller keeps its last good set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// data.json is not JSON.
    #[error("data.json is not valid JSON: {0}")]
    InvalidJson(String),
    /// data.json is JSON but not the list's shape (no `repositories` array).
    #[error("data.json has the wrong shape: {0}")]
    WrongShape(String),
    /// The list was read but names no GitHub repository (for the README: no
    /// linked list item at all, or none on GitHub).
    #[error("the list names no GitHub repository")]
    Empty,
}

/// What one list entry says, before its link is resolved and it is merged.
#[derive(Debug, Default)]
struct Entry<'a> {
    name: Option<&'a str>,
    labels: Vec<String>,
    technologies: Vec<&'a str>,
    description: Option<&'a str>,
}

/// Accumulates entries from either parser and merges them.
#[derive(Debug, Default)]
struct ListBuilder {
    list: ParsedList,
    index: HashMap<RepoSlug, usize>,
    suppressed_warnings: usize,
}

impl ListBuilder {
    fn warn(&mut self, warning: String) {
        if self.list.warnings.len() < MAX_WARNINGS {
            self.list.warnings.push(warning);
        } else {
            self.suppressed_warnings += 1;
        }
    }

    fn skip(&mut self, entry_index: usize, name: Option<&str>, reason: SkipReason) {
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| one_line(cut_chars(n, MAX_NAME_CHARS).0));
        self.list.skipped.push(Skipped {
            entry_index,
            name,
            reason,
        });
    }

    /// Merges one entry into the repository `slug`.
    fn add(&mut self, slug: RepoSlug, entry: Entry<'_>) {
        let position = match self.index.get(&slug) {
            Some(&position) => position,
            None => {
                let position = self.list.repos.len();
                self.index.insert(slug.clone(), position);
                self.list.repos.push(ListedRepo {
                    display_name: String::new(),
                    slug,
                    labels: Vec::new(),
                    technologies: Vec::new(),
                    description: None,
                    position: u32::try_from(position).unwrap_or(u32::MAX),
                });
                position
            }
        };
        let mut warnings = Vec::new();
        let Some(repo) = self.list.repos.get_mut(position) else {
            return;
        };
        let slug = repo.slug.to_string();

        if repo.display_name.is_empty() {
            if let Some(name) = entry.name.map(str::trim).filter(|n| !n.is_empty()) {
                let (name, cut) = cut_chars(name, MAX_NAME_CHARS);
                if cut {
                    warnings.push(format!("{slug}: name cut to {MAX_NAME_CHARS} characters"));
                }
                repo.display_name = name.to_owned();
            }
        }

        let mut dropped_labels = 0usize;
        for label in &entry.labels {
            let (label, cut) = cut_chars(label, MAX_LABEL_CHARS);
            if cut {
                warnings.push(format!("{slug}: label cut to {MAX_LABEL_CHARS} characters"));
            }
            if !push_unique(&mut repo.labels, label, MAX_LABELS_PER_REPO) {
                dropped_labels += 1;
            }
        }
        if dropped_labels > 0 {
            warnings.push(format!(
                "{slug}: {dropped_labels} labels dropped beyond the first {MAX_LABELS_PER_REPO}"
            ));
        }

        let mut dropped_technologies = 0usize;
        for technology in entry.technologies.iter().map(|t| t.trim()) {
            if technology.is_empty() {
                continue;
            }
            let (technology, _) = cut_chars(technology, MAX_NAME_CHARS);
            if !push_unique(
                &mut repo.technologies,
                technology,
                MAX_TECHNOLOGIES_PER_REPO,
            ) {
                dropped_technologies += 1;
            }
        }
        if dropped_technologies > 0 {
            warnings.push(format!(
                "{slug}: {dropped_technologies} technologies dropped beyond the first \
                 {MAX_TECHNOLOGIES_PER_REPO}"
            ));
        }

        if repo.description.is_none() {
            if let Some(text) = entry.description.map(str::trim).filter(|d| !d.is_empty()) {
                let (text, cut) = cut_chars(text, MAX_DESCRIPTION_CHARS);
                if cut {
                    warnings.push(format!(
                        "{slug}: description cut to {MAX_DESCRIPTION_CHARS} characters"
                    ));
                }
                repo.description = Some(text.to_owned());
            }
        }

        for warning in warnings {
            self.warn(warning);
        }
    }

    fn finish(mut self) -> Result<ParsedList, ListError> {
        if self.list.repos.is_empty() {
            return Err(ListError::Empty);
        }
        let mut warnings = Vec::new();
        for repo in &mut self.list.repos {
            if repo.display_name.is_empty() {
                repo.display_name = repo.slug.name.clone();
            }
            if repo.labels.is_empty() {
                warnings.push(format!(
                    "{}: no label listed; kept without labels",
                    repo.slug
                ));
            }
        }
        for warning in warnings {
            self.warn(warning);
        }
        if self.suppressed_warnings > 0 {
            let more = self.suppressed_warnings;
            self.list
                .warnings
                .push(format!("{more} more warnings not shown"));
        }
        Ok(self.list)
    }
}

/// Resolves a list link to a GitHub URL, or says why the entry is skipped.
fn resolve_link(link: &str) -> Result<GithubUrl<'_>, SkipReason> {
    if link.trim().is_empty() {
        return Err(SkipReason::MissingLink);
    }
    split_github_url(link).map_err(|error| match error {
        SlugError::NotGithub { host } => SkipReason::NonGithubHost { host },
        SlugError::Malformed { reason, .. }
        | SlugError::InvalidOwner { reason, .. }
        | SlugError::InvalidName { reason, .. } => SkipReason::MalformedLink {
            link: clip(link),
            reason,
        },
        other @ SlugError::NotAFullName { .. } => SkipReason::MalformedLink {
            link: clip(link),
            reason: other.to_string(),
        },
    })
}

/// Splits a comma-joined label field into trimmed, non-empty labels.
fn split_labels(field: &str) -> impl Iterator<Item = &str> {
    field.split(',').map(str::trim).filter(|l| !l.is_empty())
}

/// Appends `item` unless an equal one (ignoring case) is present. Returns
/// false when it was dropped because `items` is full.
fn push_unique(items: &mut Vec<String>, item: &str, max: usize) -> bool {
    let lower = item.to_lowercase();
    if items.iter().any(|i| i.to_lowercase() == lower) {
        return true;
    }
    if items.len() >= max {
        return false;
    }
    items.push(item.to_owned());
    true
}

/// `s` with control characters (newlines included) replaced by spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The first `max` characters of `s`, and whether anything was cut.
fn cut_chars(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((end, _)) => (s.get(..end).unwrap_or(s), true),
        None => (s, false),
    }
}
