//! Queue messages and the scrape cursor.
//!
//! Every message is JSON, tagged by `type` and versioned by `v`, so a
//! consumer can reject what it does not understand with a reason instead of
//! guessing. Items are named by natural keys (`owner/name`, issue number),
//! never by D1 row ids, so a message stays meaningful across re-inserts.

use serde::{Deserialize, Serialize};

/// The message schema version this build writes and accepts.
pub const MESSAGE_VERSION: u32 = 1;

/// Everything that travels on contribot's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueueMessage {
    /// A repo whose metadata changed: fetch languages, summarise.
    Repo {
        v: u32,
        owner: String,
        name: String,
        content_hash: String,
        priority: i64,
    },
    /// An issue that is new or changed: fetch its body, analyse it.
    Issue {
        v: u32,
        owner: String,
        name: String,
        number: i64,
        content_hash: String,
        priority: i64,
    },
    /// Resume a scrape in a fresh invocation (fresh subrequest quota).
    ContinueScraping { v: u32, cursor: ScrapeCursor },
}

/// Why a queue body was rejected. Recorded with the message, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message body is not valid JSON: {0}")]
    NotJson(String),
    #[error("message has no string `type` field")]
    MissingType,
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("unsupported message version {found} (this build handles {MESSAGE_VERSION})")]
    UnsupportedVersion { found: u64 },
    #[error("invalid `{kind}` message: {reason}")]
    InvalidFields { kind: String, reason: String },
}

impl MessageError {
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl QueueMessage {
    pub fn repo(owner: &str, name: &str, content_hash: &str, priority: i64) -> Self {
        QueueMessage::Repo {
            v: MESSAGE_VERSION,
            owner: owner.to_string(),
            name: name.to_string(),
            content_hash: content_hash.to_string(),
            priority,
        }
    }

    pub fn issue(owner: &str, name: &str, number: i64, content_hash: &str, priority: i64) -> Self {
        QueueMessage::Issue {
            v: MESSAGE_VERSION,
            owner: owner.to_string(),
            name: name.to_string(),
            number,
            content_hash: content_hash.to_string(),
            priority,
        }
    }

    pub fn continuation(cursor: ScrapeCursor) -> Self {
        QueueMessage::ContinueScraping {
            v: MESSAGE_VERSION,
            cursor,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            QueueMessage::Repo { .. } => "repo",
            QueueMessage::Issue { .. } => "issue",
            QueueMessage::ContinueScraping { .. } => "continue_scraping",
        }
    }

    pub fn priority(&self) -> i64 {
        match self {
            QueueMessage::Repo { priority, .. } | QueueMessage::Issue { priority, .. } => *priority,
            QueueMessage::ContinueScraping { .. } => i64::MAX,
        }
    }

    /// A stable key for the item a message is about, e.g. `o/r#12`.
    pub fn item_key(&self) -> String {
        match self {
            QueueMessage::Repo { owner, name, .. } => format!("{owner}/{name}"),
            QueueMessage::Issue {
                owner,
                name,
                number,
                ..
            } => format!("{owner}/{name}#{number}"),
            QueueMessage::ContinueScraping { cursor, .. } => format!("run:{}", cursor.run_id),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        // Serialising these plain enums cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Validate a queue body: type, version and fields, with a reason that an
    /// operator can read when it is wrong.
    pub fn parse(body: &serde_json::Value) -> Result<Self, MessageError> {
        let obj = body.as_object().ok_or(MessageError::MissingType)?;
        let kind = obj
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or(MessageError::MissingType)?;
        if !matches!(kind, "repo" | "issue" | "continue_scraping") {
            return Err(MessageError::UnknownType(truncate(kind, 64)));
        }
        match obj.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(MESSAGE_VERSION) => {}
            Some(found) => return Err(MessageError::UnsupportedVersion { found }),
            None => {
                return Err(MessageError::InvalidFields {
                    kind: kind.to_string(),
                    reason: "missing numeric `v`".into(),
                })
            }
        }
        let msg: QueueMessage =
            serde_json::from_value(body.clone()).map_err(|e| MessageError::InvalidFields {
                kind: kind.to_string(),
                reason: e.to_string(),
            })?;
        msg.validate()?;
        Ok(msg)
    }

    /// Parse a raw text body (as sent by `wrangler queues send` or tests).
    pub fn parse_str(body: &str) -> Result<Self, MessageError> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
        Self::parse(&value)
    }

    fn validate(&self) -> Result<(), MessageError> {
        let bad = |reason: &str| MessageError::InvalidFields {
            kind: self.kind().to_string(),
            reason: reason.to_string(),
        };
        match self {
            QueueMessage::Repo {
                owner,
                name,
                content_hash,
                ..
            } => {
                check_slug(owner, name).map_err(|r| bad(&r))?;
                check_hash(content_hash).map_err(|r| bad(&r))
            }
            QueueMessage::Issue {
                owner,
                name,
                number,
                content_hash,
                ..
            } => {
                check_slug(owner, name).map_err(|r| bad(&r))?;
                if *number <= 0 {
                    return Err(bad("`number` must be positive"));
                }
                check_hash(content_hash).map_err(|r| bad(&r))
            }
            QueueMessage::ContinueScraping { cursor, .. } => {
                if cursor.run_id.is_empty() || cursor.run_id.len() > 64 {
                    return Err(bad("cursor.run_id must be 1..=64 characters"));
                }
                Ok(())
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn check_slug(owner: &str, name: &str) -> Result<(), String> {
    crate::slug::RepoSlug::new(owner, name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_hash(hash: &str) -> Result<(), String> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("`content_hash` must be 64 hex characters (SHA-256)".into())
    }
}

/// Where a scrape run stands. Carried by continuation messages and mirrored
/// in `scrape_runs.cursor`; whichever is further ahead wins on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeCursor {
    pub run_id: String,
    /// The data source being scraped, e.g. `awesome-for-beginners`.
    pub source: String,
    pub phase: ScrapePhase,
    /// How many repos of this run are done (the position in `(owner, name)` order).
    pub position: u32,
    /// The last repo fully scraped; the next step starts after it.
    pub owner: Option<String>,
    pub name: Option<String>,
    /// Which continuation of the run this is (0 for the first). A message
    /// whose `seq` is behind the run's stored cursor is a duplicate.
    #[serde(default)]
    pub seq: u32,
    /// Repos whose answer failed, retried after the main pass (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<RetryRepo>,
    /// Consecutive transient failures of whole queries the run is waiting
    /// out (reset by a success); past a bound the run ends failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A repo to try again after the main pass, with its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRepo {
    pub owner: String,
    pub name: String,
    pub attempts: u32,
    pub reason: String,
}

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapePhase {
    /// Fetch and sync the list.
    List,
    /// Scrape repos in `(owner, name)` order after the cursor.
    Repos,
    /// Try the repos whose answers failed again (a bounded number of times).
    Retry,
    /// Hand every committed-but-unqueued item to the processing queue.
    Drain,
    /// Nothing left; the run is finished.
    Done,
}

impl ScrapeCursor {
    pub fn start(run_id: &str, source: &str) -> Self {
        ScrapeCursor {
            run_id: run_id.to_string(),
            source: source.to_string(),
            phase: ScrapePhase::List,
            position: 0,
            owner: None,
            name: None,
            seq: 0,
            retry: Vec::new(),
            failures: 0,
        }
    }

    /// Move to the repos phase, from its start.
    pub fn enter_repos(&mut self) {
        self.phase = ScrapePhase::Repos;
        self.position = 0;
        self.owner = None;
        self.name = None;
    }

    pub fn after(&self) -> Option<(String, String)> {
        match (&self.owner, &self.name) {
            (Some(o), Some(n)) => Some((o.clone(), n.clone())),
            _ => None,
        }
    }
}
