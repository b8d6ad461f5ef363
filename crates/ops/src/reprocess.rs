//! `ops reprocess`: the request for one target and the answer, readable.

use serde_json::{json, Value};

use crate::cli::ReprocessArgs;

/// What to send back to the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprocessTarget {
    /// Every failed repo and issue.
    Failed,
    /// One repo, `owner/name`.
    Repo(String),
    /// One issue, `owner/name#n`.
    Issue(String),
}

impl ReprocessTarget {
    /// The target the flags name (clap guarantees exactly one).
    pub fn from_args(args: &ReprocessArgs) -> Self {
        match (&args.repo, &args.issue) {
            (Some(repo), _) => ReprocessTarget::Repo(repo.clone()),
            (_, Some(issue)) => ReprocessTarget::Issue(issue.clone()),
            _ => ReprocessTarget::Failed,
        }
    }

    /// The `POST /admin/reprocess` body.
    pub fn body(&self) -> Value {
        match self {
            ReprocessTarget::Failed => json!({ "status": "failed" }),
            ReprocessTarget::Repo(repo) => json!({ "repo": repo }),
            ReprocessTarget::Issue(issue) => json!({ "issue": issue }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ReprocessTarget::Failed => "failed items".into(),
            ReprocessTarget::Repo(s) | ReprocessTarget::Issue(s) => s.clone(),
        }
    }
}

/// `requeued N of M matched (target); …` and the API's errors, if any.
pub fn render_reprocess(what: &str, reply: &Value) -> String {
    let num = |k: &str| reply.get(k).filter(|v| !v.is_null()).map(Value::to_string);
    let mut out = format!("requeued {}", num("requeued").unwrap_or_else(|| "?".into()));
    if let Some(matched) = num("matched") {
        out.push_str(&format!(" of {matched} matched"));
    }
    out.push_str(&format!(" ({what})"));
    if let Some(unsent) = num("unsent").filter(|u| u != "0") {
        out.push_str(&format!(
            ", {unsent} reset but not yet queued (the next run queues them)"
        ));
    }
    if let Some(batches) = reply
        .get("batches")
        .and_then(Value::as_array)
        .filter(|b| !b.is_empty())
    {
        let list: Vec<String> = batches.iter().map(Value::to_string).collect();
        out.push_str(&format!("; queue batches: {}", list.join(", ")));
    }
    out.push('\n');
    for e in reply
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "  {}\n",
            e.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        ));
    }
    out
}
