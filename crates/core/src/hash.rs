//! Content hashes: SHA-256 hex over a canonical serialisation.
//!
//! The canonical form is a JSON array of the hashed fields in a fixed order,
//! with label lists sorted, so the same upstream content always hashes the
//! same and any edit to a covered field changes it. The issue hash covers
//! title and body, which the TypeScript original missed.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A SHA-256 content hash, as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ContentHash(pub String);

impl ContentHash {
    pub fn of_canonical(value: &serde_json::Value) -> Self {
        // serde_json writes arrays in order and strings escaped one way only,
        // so this text is canonical for the arrays built below.
        let text = value.to_string();
        ContentHash(hex::encode(Sha256::digest(text.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The issue fields that decide whether an issue needs (re)processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueHashInput<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub state: &'a str,
    pub labels: &'a [String],
    pub assignee_count: i64,
    pub comment_count: i64,
    pub updated_at: &'a str,
}

pub fn issue_hash(input: &IssueHashInput<'_>) -> ContentHash {
    let mut labels: Vec<&str> = input.labels.iter().map(String::as_str).collect();
    labels.sort_unstable();
    labels.dedup();
    ContentHash::of_canonical(&serde_json::json!([
        "issue/v1",
        input.title,
        input.body,
        input.state,
        labels,
        input.assignee_count,
        input.comment_count,
        input.updated_at,
    ]))
}

/// The repo fields contribot stores from GitHub.
///
/// Two hashes come from them: [`repo_state_hash`] covers every stored field
/// and decides whether the row is rewritten; [`repo_content_hash`] covers
/// only what the summary depends on and decides whether the repo is queued,
/// so a star count ticking up never costs an AI call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHashInput<'a> {
    pub name_with_owner: &'a str,
    pub description: Option<&'a str>,
    pub primary_language: Option<&'a str>,
    pub stars: i64,
    pub is_archived: bool,
    pub pushed_at: Option<&'a str>,
    pub resolved_label: Option<&'a str>,
}

pub fn repo_state_hash(input: &RepoHashInput<'_>) -> ContentHash {
    ContentHash::of_canonical(&serde_json::json!([
        "repo-state/v1",
        input.name_with_owner,
        input.description,
        input.primary_language,
        input.stars,
        input.is_archived,
        input.pushed_at,
        input.resolved_label,
    ]))
}

pub fn repo_content_hash(input: &RepoHashInput<'_>) -> ContentHash {
    ContentHash::of_canonical(&serde_json::json!([
        "repo/v1",
        input.name_with_owner,
        input.description,
        input.primary_language,
        input.is_archived,
    ]))
}

/// The list-level fields of a listed repo (not its position: reordering the
/// list must not rewrite every row).
pub fn list_entry_hash(
    labels: &[String],
    technologies: &[String],
    description: Option<&str>,
) -> ContentHash {
    ContentHash::of_canonical(&serde_json::json!([
        "list/v1",
        labels,
        technologies,
        description
    ]))
}

/// Hash of arbitrary text, e.g. a whole list document.
pub fn text_hash(text: &str) -> ContentHash {
    ContentHash(hex::encode(Sha256::digest(text.as_bytes())))
}
