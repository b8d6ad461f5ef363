//! The `/admin/status` report: its shape (lenient: missing fields default,
//! unknown ones are ignored, numbers may come as floats or strings) and its
//! rendering as tables.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::dates;
use crate::table::Table;

/// A number from the API, whatever JSON type it came as; `None` when it is
/// null, absent or not a number.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Num(pub Option<f64>);

impl Num {
    /// The value, 0 when unknown.
    pub fn int(self) -> i64 {
        self.0.map(|f| f.round() as i64).unwrap_or(0)
    }

    pub fn is_known(self) -> bool {
        self.0.is_some()
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Num(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }))
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(v) if v.fract() == 0.0 => write!(f, "{}", v as i64),
            Some(v) => write!(f, "{v:.1}"),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StatusReport {
    pub repos: BTreeMap<String, Num>,
    pub issues: BTreeMap<String, Num>,
    pub runs: Vec<RunRow>,
    pub failed: Vec<FailedItem>,
    pub label_not_found: Vec<LabelNotFound>,
    pub backlog: Backlog,
    pub invocations: Vec<InvocationStats>,
    /// Absent from servers older than the neuron ledger.
    pub ai: Option<AiBudget>,
}

/// One scrape run, as `scrape_runs` stores it (timestamps in Unix ms).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunRow {
    pub id: String,
    pub trigger: Option<String>,
    pub started_at: Num,
    pub finished_at: Num,
    pub status: String,
    pub invocations: Num,
    pub continuations: Num,
    pub repos_seen: Num,
    pub repos_changed: Num,
    pub repos_skipped: Num,
    pub issues_upserted: Num,
    pub issues_closed: Num,
    pub messages_queued: Num,
    pub subrequests_used: Num,
    pub max_subrequests: Num,
    pub github_requests: Num,
    pub graphql_points: Num,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

impl RunRow {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// How long the run took, or has taken so far at `now_ms`.
    pub fn took_ms(&self, now_ms: i64) -> Option<i64> {
        let start = self.started_at.0?;
        let end = self.finished_at.0.unwrap_or(now_ms as f64);
        Some((end - start) as i64)
    }

    /// Why a run that did not complete ended as it did.
    pub fn reason(&self) -> String {
        [&self.error, &self.outcome]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .unwrap_or("no reason recorded")
            .to_string()
    }

    /// One line saying what the run did.
    pub fn summary(&self, now_ms: i64) -> String {
        let took = self
            .took_ms(now_ms)
            .map(|ms| format!(" in {}", dates::duration(ms)))
            .unwrap_or_default();
        format!(
            "run {} {}{took}: {} repos seen ({} changed, {} skipped), {} issues upserted, {} closed, \
             {} messages queued; {} invocations ({} continuations), {} subrequests (at most {} in one), \
             {} GitHub requests, {} GraphQL points",
            self.id,
            self.status,
            self.repos_seen,
            self.repos_changed,
            self.repos_skipped,
            self.issues_upserted,
            self.issues_closed,
            self.messages_queued,
            self.invocations,
            self.continuations,
            self.subrequests_used,
            self.max_subrequests,
            self.github_requests,
            self.graphql_points,
        )
    }
}

/// A repo, issue or queue message that failed, with its reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FailedItem {
    pub kind: String,
    pub item: String,
    pub attempts: Num,
    pub last_error: Option<String>,
    pub processed_at: Num,
}

/// A listed repo none of whose listed labels exists on GitHub.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LabelNotFound {
    pub repo: String,
    pub listed_labels: Vec<Value>,
}

/// Work waiting for the processor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Backlog {
    pub repos: Num,
    pub issues: Num,
    /// Committed to D1 but not yet sent to the processing queue.
    pub unqueued: Num,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.repos.int() + self.issues.int() + self.unqueued.int() == 0
    }
}

/// Workers AI's budget today: neurons against the cap, and the backlog of
/// items waiting for AI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AiBudget {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub neurons: Num,
    pub cap: Num,
    pub free_allocation: Num,
    /// Held by processor invocations still running.
    pub held: Num,
    pub remaining: Num,
    pub calls: Num,
    pub refused_at_cap: Num,
    pub model: Option<String>,
    pub platform_exhausted: bool,
    /// What happens at the cap (`heuristic_now_upgrade_later`).
    pub at_cap: String,
    pub backlog: AiBacklog,
    pub days: Vec<AiDay>,
}

/// Items waiting for AI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AiBacklog {
    /// Repos and issues whose stored result is a heuristic fallback.
    pub repos: Num,
    pub issues: Num,
    /// Not analysed yet.
    pub pending: Num,
    pub items: Num,
    pub neurons_per_call: Num,
    pub neurons: Num,
    /// `YYYY-MM-DD`, or null when AI is off.
    pub estimated_completion: Option<String>,
}

/// One day of the neuron ledger.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AiDay {
    pub day: String,
    pub neurons: Num,
    pub calls: Num,
    pub refused_at_cap: Num,
    pub cap: Num,
    pub model: Option<String>,
}

/// Subrequest use per service, from the invocation ledger.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InvocationStats {
    pub service: String,
    pub invocations: Num,
    pub max_subrequests: Num,
    pub mean_subrequests: Num,
}

/// The processing statuses in the order a reader expects them.
const STATUS_ORDER: [&str; 4] = ["pending", "processing", "completed", "failed"];

/// The report as readable sections of tables. `now_ms` dates running runs.
pub fn render_status(report: &StatusReport, now_ms: i64) -> String {
    let mut out = String::new();
    out.push_str(&render_counts(report));
    out.push('\n');
    out.push_str(&render_backlog(&report.backlog));
    out.push('\n');
    out.push_str(&render_ai(report.ai.as_ref()));
    out.push('\n');
    out.push_str(&render_runs(&report.runs, now_ms));
    out.push('\n');
    out.push_str(&render_failed(&report.failed));
    out.push('\n');
    out.push_str(&render_label_not_found(&report.label_not_found));
    out.push('\n');
    out.push_str(&render_invocations(&report.invocations));
    out
}

fn section(title: &str, table: &Table) -> String {
    if table.is_empty() {
        format!("{title}: none\n")
    } else {
        format!("{title}:\n{}", table.render())
    }
}

/// Repos and issues by processing status; statuses the API adds later get
/// their own columns after the known ones.
pub fn render_counts(report: &StatusReport) -> String {
    let mut columns: Vec<&str> = STATUS_ORDER.to_vec();
    for key in report.repos.keys().chain(report.issues.keys()) {
        if !columns.contains(&key.as_str()) {
            columns.push(key);
        }
    }
    let mut headers = vec![""];
    headers.extend(&columns);
    let numeric: Vec<usize> = (1..headers.len()).collect();
    let mut table = Table::new(&headers).right_align(&numeric);
    for (name, counts) in [("repos", &report.repos), ("issues", &report.issues)] {
        let mut row = vec![name.to_string()];
        row.extend(columns.iter().map(|c| {
            counts
                .get(*c)
                .copied()
                .unwrap_or_default()
                .int()
                .to_string()
        }));
        table.row(row);
    }
    format!(
        "Processing status (active repos, open issues):\n{}",
        table.render()
    )
}

pub fn render_backlog(backlog: &Backlog) -> String {
    format!(
        "Backlog: {} repos and {} issues waiting for the processor; {} committed but not yet queued\n",
        backlog.repos.int(),
        backlog.issues.int(),
        backlog.unqueued.int()
    )
}

/// Today's neurons against the cap, what happens at the cap, the AI backlog
/// and when it should be done, and the last days of the ledger.
pub fn render_ai(ai: Option<&AiBudget>) -> String {
    let Some(ai) = ai else {
        return "AI budget: not reported by this server\n".to_string();
    };
    let mut out = format!(
        "AI budget (UTC {}{}): {} of {} neurons (cap; free allocation {}), {} held, {} left; \
         {} calls, {} refused at the cap\n",
        ai.day,
        ai.model
            .as_deref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default(),
        ai.neurons,
        ai.cap,
        ai.free_allocation,
        ai.held,
        ai.remaining,
        ai.calls,
        ai.refused_at_cap,
    );
    if ai.platform_exhausted {
        out.push_str(
            "  Workers AI reported the daily allocation spent: no AI calls until 00:00 UTC\n",
        );
    }
    out.push_str(&format!("  At the cap: {}\n", at_cap_policy(&ai.at_cap)));
    let b = &ai.backlog;
    out.push_str(&format!(
        "AI backlog: {} items ({} repos and {} issues with heuristic fallbacks, {} not analysed yet), \
         ~{} neurons at {} a call; estimated completion: {}\n",
        b.items,
        b.repos,
        b.issues,
        b.pending,
        b.neurons,
        b.neurons_per_call,
        b.estimated_completion
            .as_deref()
            .unwrap_or("never (AI is off: the cap is 0)"),
    ));
    let mut table = Table::new(&["DAY (UTC)", "NEURONS", "CAP", "CALLS", "REFUSED", "MODEL"])
        .right_align(&[1, 2, 3, 4]);
    for d in &ai.days {
        table.row([
            d.day.clone(),
            d.neurons.to_string(),
            d.cap.to_string(),
            d.calls.to_string(),
            d.refused_at_cap.to_string(),
            d.model.clone().unwrap_or_default(),
        ]);
    }
    out + &section("AI neurons by day", &table)
}

fn at_cap_policy(policy: &str) -> String {
    match policy {
        "heuristic_now_upgrade_later" => {
            "items get a labelled heuristic result now and an AI upgrade later, best issues first"
                .to_string()
        }
        "" => "not reported".to_string(),
        other => other.to_string(),
    }
}

pub fn render_runs(runs: &[RunRow], now_ms: i64) -> String {
    let mut table = Table::new(&[
        "RUN",
        "TRIGGER",
        "STARTED (UTC)",
        "TOOK",
        "STATUS",
        "INV",
        "CONT",
        "REPOS seen/chg/skip",
        "ISSUES up/closed",
        "QUEUED",
        "SUBREQ total/max",
        "GITHUB req/pts",
    ])
    .right_align(&[5, 6, 9]);
    let mut notes = String::new();
    for run in runs {
        table.row([
            run.id.clone(),
            run.trigger.clone().unwrap_or_default(),
            run.started_at
                .0
                .map(|ms| dates::datetime_of_ms(ms as i64))
                .unwrap_or_default(),
            run.took_ms(now_ms).map(dates::duration).unwrap_or_default(),
            run.status.clone(),
            run.invocations.to_string(),
            run.continuations.to_string(),
            format!(
                "{}/{}/{}",
                run.repos_seen, run.repos_changed, run.repos_skipped
            ),
            format!("{}/{}", run.issues_upserted, run.issues_closed),
            run.messages_queued.to_string(),
            format!("{}/{}", run.subrequests_used, run.max_subrequests),
            format!("{}/{}", run.github_requests, run.graphql_points),
        ]);
        if !run.is_running() && run.status != "completed" {
            notes.push_str(&format!(
                "  run {} {}: {}\n",
                run.id,
                run.status,
                one_line(&run.reason())
            ));
        }
    }
    section("Runs (latest first)", &table) + &notes
}

pub fn render_failed(failed: &[FailedItem]) -> String {
    let mut table =
        Table::new(&["KIND", "ITEM", "ATTEMPTS", "WHEN (UTC)", "LAST ERROR"]).right_align(&[2]);
    for f in failed {
        table.row([
            f.kind.clone(),
            f.item.clone(),
            f.attempts.to_string(),
            f.processed_at
                .0
                .map(|ms| dates::datetime_of_ms(ms as i64))
                .unwrap_or_default(),
            one_line(f.last_error.as_deref().unwrap_or("(no reason recorded)")),
        ]);
    }
    section("Failed items", &table)
}

pub fn render_label_not_found(rows: &[LabelNotFound]) -> String {
    let mut table = Table::new(&["REPO", "LISTED LABELS"]);
    for r in rows {
        let labels: Vec<String> = r
            .listed_labels
            .iter()
            .map(|l| match l {
                Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            })
            .collect();
        table.row([r.repo.clone(), labels.join(", ")]);
    }
    section("Repos whose listed label is not on GitHub", &table)
}

pub fn render_invocations(rows: &[InvocationStats]) -> String {
    let mut table = Table::new(&["SERVICE", "INVOCATIONS", "MAX SUBREQ", "MEAN SUBREQ"])
        .right_align(&[1, 2, 3]);
    for r in rows {
        let mean = r
            .mean_subrequests
            .0
            .map(|m| format!("{m:.1}"))
            .unwrap_or_else(|| "-".into());
        table.row([
            r.service.clone(),
            r.invocations.to_string(),
            r.max_subrequests.to_string(),
            mean,
        ]);
    }
    section("Invocation budgets (subrequests per invocation)", &table)
}

/// Multi-line text (stack traces, upstream bodies) on one table line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
