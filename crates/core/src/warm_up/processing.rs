//! The processor's side of the warm-up world: one batch of the world's
//! first repo and its first issue, both new. The state read finds them
//! pending and never analysed, the day's neuron reservation is granted, the
//! Enrich query answers with languages, topics and a body, and Workers AI
//! answers what each prompt asks for (an issue analysis shaped by the
//! prompt's own JSON schema, a repo summary in plain sentences).

use serde_json::{json, Value};

use super::{aliases, rate_limited, repo_name, HASH, LABEL, OWNER};
use crate::ai::{CallEstimate, DailyAllowance};
use crate::logrec::iso8601;
use crate::messages::{QueueMessage, MESSAGE_VERSION};
use crate::sql::Statement;
use crate::store;

/// The repo and issue the batch carries: `warm/up-000` and its issue #1.
const REPO_ID: i64 = 1;
const ISSUE: i64 = 1;

/// The batch the processor's warm-up delivers.
pub fn messages() -> Vec<QueueMessage> {
    vec![
        QueueMessage::Repo {
            v: MESSAGE_VERSION,
            owner: OWNER.into(),
            name: repo_name(0),
            content_hash: HASH.into(),
            priority: 1,
        },
        QueueMessage::Issue {
            v: MESSAGE_VERSION,
            owner: OWNER.into(),
            name: repo_name(0),
            number: ISSUE,
            content_hash: HASH.into(),
            priority: 1,
        },
    ]
}

/// Neurons reserved so far, to read back as the reservation.
#[derive(Debug, Clone, Default)]
pub(super) struct Ledger {
    held: f64,
}

impl Ledger {
    /// D1's rows for a processor statement; None when it is not one.
    pub(super) fn rows(&mut self, sql: &str, params: &[Value]) -> Option<Vec<Value>> {
        let reserve = reserve();
        if sql == store::repos_by_slug(&[]).sql {
            Some(super::packed(vec![repo_row()]))
        } else if sql == store::issues_by_key(&[]).sql {
            Some(super::packed(vec![issue_row()]))
        } else if sql == reserve[0].sql {
            // `?3` is the neurons asked for; the day has room for them.
            self.held += params.get(2).and_then(Value::as_f64).unwrap_or(0.0);
            Some(vec![])
        } else if sql == reserve[1].sql {
            Some(vec![json!({
                "held": self.held, "spent": 0.0, "held_all": self.held, "exhausted_at": null,
            })])
        } else {
            None
        }
    }
}

fn reserve() -> Vec<Statement> {
    let estimate = CallEstimate {
        prompt_tokens: 0,
        max_output_tokens: 0,
        neurons: 0.0,
    };
    DailyAllowance::new(0, 0.0, "").reserve("", &estimate, 0)
}

/// The repo as the processor reads it (store's `PROC_REPO_COLUMNS` order).
fn repo_row() -> Value {
    json!([
        REPO_ID,
        OWNER,
        repo_name(0),
        "A small library for reading configuration files.",
        "Rust",
        null,
        null,
        json!([LABEL]).to_string(),
        HASH,
        null,
        null,
        "pending",
        0,
    ])
}

/// The issue as the processor reads it (store's `PROC_ISSUE_COLUMNS` order).
fn issue_row() -> Value {
    json!([
        1,
        REPO_ID,
        OWNER,
        repo_name(0),
        ISSUE,
        "OPEN",
        HASH,
        null,
        null,
        "pending",
        0,
        null,
        null,
        null,
    ])
}

/// GitHub's answer to an Enrich query (`ro{i}`/`rn{i}` repos, `io{i}`/
/// `in{i}`/`inum{i}` issues), or None when `vars` asks for neither.
pub(super) fn enrich(vars: &Value, now_ms: i64) -> Option<Value> {
    if vars.get("ro0").is_none() && vars.get("io0").is_none() {
        return None;
    }
    let day_ago = iso8601(now_ms - 86_400_000);
    let mut data = rate_limited(now_ms);
    for (i, owner, name) in aliases(vars, "ro", "rn") {
        data.insert(format!("r{i}"), enriched_repo(owner, name));
    }
    for (i, owner, name) in aliases(vars, "io", "in") {
        let number = vars[format!("inum{i}")].as_i64().unwrap_or(ISSUE);
        data.insert(
            format!("i{i}"),
            json!({"issue": enriched_issue(owner, name, number, &day_ago)}),
        );
    }
    Some(json!({ "data": data }))
}

fn enriched_repo(owner: &str, name: &str) -> Value {
    json!({
        "nameWithOwner": format!("{owner}/{name}"), "isArchived": false,
        "description": "A small library for reading configuration files.",
        "primaryLanguage": {"name": "Rust"},
        "languages": {"totalSize": 100, "edges": [{"size": 100, "node": {"name": "Rust"}}]},
        "repositoryTopics": {"nodes": [{"topic": {"name": "parser"}}]},
    })
}

fn enriched_issue(owner: &str, name: &str, number: i64, day_ago: &str) -> Value {
    json!({
        "number": number, "title": "Add a test for empty input",
        "body": "The parser panics on empty input.\n\nRun it with no file to see the panic.",
        "url": format!("https://github.com/{owner}/{name}/issues/{number}"), "state": "OPEN",
        "updatedAt": day_ago, "labels": {"nodes": [{"name": LABEL}]},
        "assignees": {"totalCount": 0}, "comments": {"totalCount": 1},
    })
}

/// Workers AI's answer to `input`: what its `response_format` schema asks
/// for, else a plain-text summary; with the usage Workers AI reports.
pub fn ai(input: &Value) -> Value {
    let response = match input.pointer("/response_format/json_schema") {
        Some(schema) => satisfying(schema),
        None => Value::from(
            "A small Rust library for reading configuration files. It has tests, examples \
             and a short guide for new contributors.",
        ),
    };
    json!({
        "response": response,
        "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
    })
}

/// A value within a JSON schema's types and bounds.
fn satisfying(schema: &Value) -> Value {
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    match schema["type"].as_str() {
        Some("object") => {
            let fields = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), satisfying(v)))
                    .collect(),
            )
        }
        Some("array") => {
            let n = bound("minItems").unwrap_or(1).max(1);
            Value::from(vec![satisfying(&schema["items"]); n as usize])
        }
        Some("integer") | Some("number") => Value::from(bound("minimum").unwrap_or(1)),
        _ => {
            let text = "Read the parser module and add a test for the empty input case. ".repeat(8);
            let max = bound("maxLength").unwrap_or(80) as usize;
            let len = (bound("minLength").unwrap_or(1).max(80) as usize).min(max);
            let mut s = text[..len.min(text.len())].to_string();
            if s.ends_with(' ') {
                s.pop();
                s.push('.');
            }
            Value::from(s)
        }
    }
}
