//! Content hashes: hex digests over a canonical serialisation. SHA-256
//! where a hash decides an AI call (content hashes); XXH3-128 for the issue
//! state hash, which only decides whether a row is rewritten and is
//! computed for every issue of every refresh.
//!
//! The canonical form is the hashed fields in a fixed order, with label
//! lists sorted: length-prefixed bytes for the issue hashes (no JSON tree on
//! the per-issue path), a JSON array for the others. So the same upstream
//! content always hashes the same and any edit to a covered field changes it. The issue content hash
//! covers the title and the body's last edit, which the TypeScript original
//! missed.

use serde::Serialize;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_128;

/// A hash as lowercase hex: 64 characters (SHA-256) or, for the issue
/// state hash, 32 (XXH3-128).
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

/// The issue fields the scraper stores, split the way the repo hash is:
/// [`issue_state_hash`] covers every stored field and decides whether the
/// row is rewritten; [`issue_content_hash`] covers only what the analysis
/// reads and decides whether the issue is queued, so a new comment, a new
/// assignee or a label change never costs an AI call.
///
/// The scraper fetches no bodies: a body edit shows as a new `lastEditedAt`
/// (GitHub sets it on every edit of the issue's body), a title edit as a new
/// title. The processor fetches the body and hashes it with
/// [`analysed_text_hash`] to skip AI when the text is what it analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueHashInput<'a> {
    pub title: &'a str,
    pub state: &'a str,
    pub labels: &'a [String],
    pub assignee_count: i64,
    pub comment_count: i64,
    pub linked_pr_count: i64,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub last_edited_at: Option<&'a str>,
    /// The availability verdict, recomputed on every refresh: a change
    /// (a repo archived, gone inactive) rewrites the row.
    pub availability: &'a str,
}

pub fn issue_state_hash(input: &IssueHashInput<'_>) -> ContentHash {
    let mut labels: Vec<&str> = input.labels.iter().map(String::as_str).collect();
    labels.sort_unstable();
    labels.dedup();
    let mut h = FieldHasher::new("issue-state/v3");
    h.text(input.title)
        .text(input.state)
        .int(labels.len() as i64);
    for l in labels {
        h.text(l);
    }
    h.int(input.assignee_count)
        .int(input.comment_count)
        .int(input.linked_pr_count)
        .text(input.created_at)
        .text(input.updated_at)
        .opt(input.last_edited_at)
        .text(input.availability);
    h.finish_fast()
}

pub fn issue_content_hash(input: &IssueHashInput<'_>) -> ContentHash {
    let mut h = FieldHasher::new("issue/v2");
    h.text(input.title)
        .text(input.last_edited_at.unwrap_or(input.created_at));
    h.finish()
}

/// What the processor analysed: the title and the body it fetched.
pub fn analysed_text_hash(title: &str, body: &str) -> ContentHash {
    let mut h = FieldHasher::new("analysed/v1");
    h.text(title).text(body);
    h.finish()
}

/// Length-prefixed fields laid out in one buffer: canonical without
/// building a JSON tree first (hashing runs for every issue of every step,
/// inside the Workers CPU limit), then digested once.
struct FieldHasher(Vec<u8>);

impl FieldHasher {
    fn new(domain: &str) -> Self {
        let mut h = FieldHasher(Vec::with_capacity(256));
        h.text(domain);
        h
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => {
                self.0.push(1);
                self.text(s)
            }
            None => {
                self.0.push(0);
                self
            }
        }
    }

    fn int(&mut self, i: i64) -> &mut Self {
        self.0.extend_from_slice(&i.to_le_bytes());
        self
    }

    /// SHA-256, 64 hex characters: for hashes that decide an AI call.
    fn finish(&self) -> ContentHash {
        ContentHash(hex::encode(Sha256::digest(&self.0)))
    }

    /// XXH3-128, 32 hex characters: for hashes that only decide whether a
    /// row is rewritten, where a collision would at worst keep one stale
    /// row until its next change. About ten times cheaper than SHA-256 in
    /// wasm, and half the bytes in every upsert.
    fn finish_fast(&self) -> ContentHash {
        ContentHash(hex::encode(xxh3_128(&self.0).to_be_bytes()))
    }
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
///
/// Fed in slices: V8 runs a wasm function's optimised code only from its
/// next call on, and sha2 compresses all of an update's blocks in one call,
/// so a whole document in one update would be hashed by the baseline code.
pub fn text_hash(text: &str) -> ContentHash {
    const SLICE: usize = 4096;
    let mut h = Sha256::new();
    for slice in text.as_bytes().chunks(SLICE) {
        h.update(slice);
    }
    ContentHash(hex::encode(h.finalize()))
}
