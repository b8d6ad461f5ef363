//! The AI backlog: active repos and open issues whose stored analysis is a
//! heuristic *fallback* (AI failed, was capped, or the allocation was
//! spent — not the offline backend chosen on purpose), in the order they are
//! worth most to a beginner, and how many of them a day's remaining
//! allowance covers.
//!
//! Value order:
//! - repos with the most available issues first (their summary is shown
//!   next to every one of those issues);
//! - then issues: open first, then unassigned, then the fewest comments,
//!   then the newest; ties go to the repo with more available issues.
//!
//! The scraper calls [`requeue_upgrades`] once per run. It sends back to the
//! outbox as many fallbacks, in that order, as the day's remaining allowance
//! covers at the ledger's mean cost per call, less the items already waiting
//! for the processor. Their outbox priority becomes `-rank`, so they are sent
//! after fresh changes (priority 0–100) and in value order among themselves.

use serde::Deserialize;
use serde_json::{json, Value};

use super::ledger::{
    utc_day, utc_day_after, AT_CAP_POLICY, DEFAULT_DAILY_NEURON_CAP, DEFAULT_NEURONS_PER_CALL,
    HISTORY_DAYS, RESERVATION_TTL_MS,
};
use super::neurons::FREE_NEURONS_PER_DAY;
use super::HEURISTIC_MODEL;
use crate::sql::{SqlValue, Statement};

/// Where `t` is a fallback worth upgrading (the offline backend's own
/// output is not: it was chosen).
fn fallback(t: &str) -> String {
    format!(
        "{t}.analysis_model = '{HEURISTIC_MODEL}' AND {t}.processing_status = 'completed' \
         AND {t}.fallback_reason IS NOT NULL \
         AND {t}.fallback_reason NOT LIKE 'offline heuristic backend%'"
    )
}

/// Items already waiting for the processor: they spend allowance first.
const PENDING: &str = "(SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL \
       AND processing_status IN ('pending', 'processing')) \
     + (SELECT COUNT(*) FROM issues pi JOIN repos pr ON pr.id = pi.repo_id WHERE pr.active = 1 \
       AND pi.state = 'open' AND pi.processing_status IN ('pending', 'processing'))";

/// Available open issues per repo.
const AVAILABLE: &str = "(SELECT repo_id, COUNT(*) AS n FROM issues \
     WHERE available = 1 AND state = 'open' GROUP BY repo_id)";

/// The number of upgrades the day's allowance covers, as a CTE `allowance(n)`.
/// Parameters: ?1 limit, ?3 default cap, ?4 today, ?5 live reservations
/// after, ?6 history since, ?7 default neurons per call.
fn allowance_cte() -> String {
    format!(
        "allowance AS (SELECT CASE WHEN exhausted IS NOT NULL THEN 0 ELSE \
           CAST(MAX(0, MIN(?1, (cap - spent - held) / per_call - pending)) AS INTEGER) END AS n \
         FROM (SELECT \
           COALESCE((SELECT cap FROM ai_ledger ORDER BY day DESC LIMIT 1), ?3) AS cap, \
           COALESCE((SELECT neurons FROM ai_ledger WHERE day = ?4), 0.0) AS spent, \
           (SELECT exhausted_at FROM ai_ledger WHERE day = ?4) AS exhausted, \
           COALESCE((SELECT SUM(neurons) FROM ai_reservations WHERE day = ?4 AND created_at > ?5), 0.0) AS held, \
           MAX(0.01, COALESCE((SELECT SUM(neurons) / SUM(calls) FROM ai_ledger \
             WHERE day >= ?6 AND calls > 0), ?7)) AS per_call, \
           {PENDING} AS pending))"
    )
}

fn allowance_params(limit: u32, now_ms: i64) -> Vec<SqlValue> {
    vec![
        limit.into(),
        now_ms.into(),
        SqlValue::Real(DEFAULT_DAILY_NEURON_CAP),
        utc_day(now_ms).into(),
        (now_ms - RESERVATION_TTL_MS).into(),
        utc_day_after(now_ms, -(HISTORY_DAYS - 1)).into(),
        SqlValue::Real(DEFAULT_NEURONS_PER_CALL),
    ]
}

/// At most `limit` heuristic fallbacks, as many as the UTC day's remaining
/// allowance covers, go back to `pending` and out of the queued state in
/// value order, so the outbox hands them to AI again. Two statements for
/// one batch: repos, then issues (whose allowance counts the repos just
/// re-queued as pending). `limit` bounds the queue operations of one run.
pub fn requeue_upgrades(limit: u32, now_ms: i64) -> Vec<Statement> {
    let set = "analysis_hash = NULL, queued_hash = NULL, processing_status = 'pending', \
               priority = -ranked.rank, updated_at = ?2";
    let repos = format!(
        "WITH {allowance}, ranked AS (SELECT t.id AS id, \
           ROW_NUMBER() OVER (ORDER BY COALESCE(a.n, 0) DESC, t.id) AS rank \
           FROM repos t LEFT JOIN {AVAILABLE} a ON a.repo_id = t.id \
           WHERE t.active = 1 AND t.content_hash IS NOT NULL AND {cond}) \
         UPDATE repos SET {set} FROM ranked \
         WHERE repos.id = ranked.id AND ranked.rank <= (SELECT n FROM allowance)",
        allowance = allowance_cte(),
        cond = fallback("t"),
    );
    let issues = format!(
        "WITH {allowance}, ranked AS (SELECT t.id AS id, \
           ROW_NUMBER() OVER (ORDER BY (t.state = 'open') DESC, (t.assignee_count = 0) DESC, \
             t.comment_count ASC, t.gh_created_at DESC, COALESCE(a.n, 0) DESC, t.id) AS rank \
           FROM issues t JOIN repos r ON r.id = t.repo_id LEFT JOIN {AVAILABLE} a ON a.repo_id = t.repo_id \
           WHERE r.active = 1 AND t.state = 'open' AND {cond}) \
         UPDATE issues SET {set} FROM ranked \
         WHERE issues.id = ranked.id AND ranked.rank <= (SELECT n FROM allowance)",
        allowance = allowance_cte(),
        cond = fallback("t"),
    );
    vec![
        Statement::new(repos, allowance_params(limit, now_ms)),
        Statement::new(issues, allowance_params(limit, now_ms)),
    ]
}

/// The budget part of `/admin/status`: the ledger's last
/// [`HISTORY_DAYS`] days, today's live reservations, the backlog counts.
pub fn budget_queries(now_ms: i64) -> Vec<Statement> {
    let today = utc_day(now_ms);
    vec![
        Statement::new(
            "SELECT day, neurons, calls, prompt_tokens, completion_tokens, refused, cap, model, exhausted_at \
             FROM ai_ledger WHERE day >= ?1 ORDER BY day DESC",
            vec![utc_day_after(now_ms, -(HISTORY_DAYS - 1)).into()],
        ),
        Statement::new(
            "SELECT COALESCE(SUM(neurons), 0.0) AS held, \
               (SELECT cap FROM ai_ledger ORDER BY day DESC LIMIT 1) AS last_cap \
             FROM ai_reservations WHERE day = ?1 AND created_at > ?2",
            vec![today.into(), (now_ms - RESERVATION_TTL_MS).into()],
        ),
        Statement::new(
            format!(
                "SELECT \
                   (SELECT COUNT(*) FROM repos t WHERE t.active = 1 AND {repo}) AS repo_fallbacks, \
                   (SELECT COUNT(*) FROM issues t JOIN repos r ON r.id = t.repo_id \
                      WHERE r.active = 1 AND t.state = 'open' AND {issue}) AS issue_fallbacks, \
                   {PENDING} AS pending",
                repo = fallback("t"),
                issue = fallback("t"),
            ),
            vec![],
        ),
    ]
}

/// One day of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LedgerDay {
    pub day: String,
    pub neurons: f64,
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub refused: i64,
    pub cap: f64,
    pub model: Option<String>,
    pub exhausted_at: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HeldRow {
    held: f64,
    last_cap: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct BacklogRow {
    repo_fallbacks: i64,
    issue_fallbacks: i64,
    pending: i64,
}

/// The day the backlog should be done: today when today's remaining
/// allowance covers it, else one more day per `cap` of neurons still
/// needed. `None` when AI is off (a cap of 0). It assumes every later day's
/// cap goes to the backlog (new changes come first, so it is a lower bound).
pub fn completion_day(now_ms: i64, needed: f64, left_today: f64, cap: f64) -> Option<String> {
    if needed <= left_today {
        return Some(utc_day(now_ms));
    }
    if cap <= 0.0 {
        return None;
    }
    let days = ((needed - left_today) / cap).ceil() as i64;
    Some(utc_day_after(now_ms, days))
}

/// The `ai` object of `/admin/status`, from the rows of [`budget_queries`]:
/// today's neurons against the cap, what the backlog holds, and when it
/// should be done.
pub fn budget_status(rows: &[Vec<Value>], now_ms: i64) -> Value {
    let decode = |i: usize| rows.get(i).cloned().unwrap_or_default();
    let days: Vec<LedgerDay> = decode(0)
        .iter()
        .filter_map(|r| LedgerDay::deserialize(r).ok())
        .collect();
    let held = decode(1)
        .first()
        .and_then(|r| HeldRow::deserialize(r).ok())
        .unwrap_or_default();
    let backlog = decode(2)
        .first()
        .and_then(|r| BacklogRow::deserialize(r).ok())
        .unwrap_or_default();
    let today_key = utc_day(now_ms);
    let today = days.iter().find(|d| d.day == today_key);
    let cap = today
        .map(|d| d.cap)
        .or(held.last_cap)
        .unwrap_or(DEFAULT_DAILY_NEURON_CAP);
    let spent = today.map_or(0.0, |d| d.neurons);
    let calls: i64 = days.iter().map(|d| d.calls).sum();
    let per_call = if calls > 0 {
        days.iter().map(|d| d.neurons).sum::<f64>() / calls as f64
    } else {
        DEFAULT_NEURONS_PER_CALL
    };
    let exhausted = today.is_some_and(|d| d.exhausted_at.is_some());
    let left = if exhausted {
        0.0
    } else {
        (cap - spent - held.held).max(0.0)
    };
    let items = backlog.repo_fallbacks + backlog.issue_fallbacks + backlog.pending;
    let needed = items as f64 * per_call;
    json!({
        "day": today_key,
        "neurons": round1(spent),
        "cap": cap,
        "free_allocation": FREE_NEURONS_PER_DAY,
        "held": round1(held.held),
        "remaining": round1(left),
        "calls": today.map_or(0, |d| d.calls),
        "refused_at_cap": today.map_or(0, |d| d.refused),
        "model": today.and_then(|d| d.model.clone()),
        "platform_exhausted": exhausted,
        "at_cap": AT_CAP_POLICY,
        "backlog": {
            "repos": backlog.repo_fallbacks,
            "issues": backlog.issue_fallbacks,
            "pending": backlog.pending,
            "items": items,
            "neurons_per_call": round1(per_call),
            "neurons": round1(needed),
            "estimated_completion": completion_day(now_ms, needed, left, cap),
        },
        "days": days.iter().map(|d| json!({
            "day": d.day,
            "neurons": round1(d.neurons),
            "calls": d.calls,
            "refused_at_cap": d.refused,
            "cap": d.cap,
            "model": d.model,
        })).collect::<Vec<_>>(),
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-01-02T12:00:00Z
    const NOON: i64 = 1_735_819_200_000;

    #[test]
    fn the_backlog_is_done_today_when_todays_allowance_covers_it() {
        assert_eq!(
            completion_day(NOON, 500.0, 600.0, 9_000.0).as_deref(),
            Some("2025-01-02")
        );
        assert_eq!(
            completion_day(NOON, 9_600.0, 600.0, 9_000.0).as_deref(),
            Some("2025-01-03")
        );
        assert_eq!(
            completion_day(NOON, 9_601.0, 600.0, 9_000.0).as_deref(),
            Some("2025-01-04")
        );
        assert_eq!(completion_day(NOON, 1.0, 0.0, 0.0), None, "AI off");
    }

    #[test]
    fn the_status_reads_todays_row_and_prices_the_backlog_at_the_mean_call() {
        let rows = vec![
            vec![
                json!({"day": "2025-01-02", "neurons": 4000.0, "calls": 500, "refused": 3, "cap": 9000.0, "model": "m"}),
                json!({"day": "2025-01-01", "neurons": 8000.0, "calls": 1000, "refused": 0, "cap": 9000.0, "model": "m"}),
            ],
            vec![json!({"held": 100.0, "last_cap": 9000.0})],
            vec![json!({"repo_fallbacks": 10, "issue_fallbacks": 990, "pending": 0})],
        ];
        let s = budget_status(&rows, NOON);
        assert_eq!(s["neurons"], 4000.0);
        assert_eq!(s["remaining"], 4900.0);
        assert_eq!(s["refused_at_cap"], 3);
        assert_eq!(s["backlog"]["items"], 1000);
        assert_eq!(s["backlog"]["neurons_per_call"], 8.0);
        // 8,000 needed, 4,900 left today: one more day.
        assert_eq!(s["backlog"]["estimated_completion"], "2025-01-03");
        assert_eq!(s["at_cap"], AT_CAP_POLICY);
    }

    #[test]
    fn an_empty_ledger_reports_the_default_cap_and_nothing_spent() {
        let s = budget_status(
            &[vec![], vec![json!({"held": 0.0, "last_cap": null})], vec![]],
            NOON,
        );
        assert_eq!(s["cap"], DEFAULT_DAILY_NEURON_CAP);
        assert_eq!(s["neurons"], 0.0);
        assert_eq!(s["backlog"]["items"], 0);
        assert_eq!(s["backlog"]["estimated_completion"], "2025-01-02");
    }
}
