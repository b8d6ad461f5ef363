//! The daily neuron ledger: what Workers AI has cost each UTC day, what a
//! call will cost before it starts, and whether the day's cap still admits
//! it.
//!
//! Workers AI's free allocation is 10,000 neurons a day, reset at 00:00 UTC;
//! calls past it fail. contribot spends at most a configurable cap of it
//! ([`DEFAULT_DAILY_NEURON_CAP`], 9,000) and never *starts* a call whose
//! worst case would take the day past the cap:
//!
//! - before a call, [`estimate_call`] prices it from the prompt's tokens
//!   (counted conservatively, [`estimate_prompt_tokens`]) and the request's
//!   `max_tokens`, at the model's published rates;
//! - concurrent processor invocations share the cap through D1: an
//!   invocation *reserves* neurons for its calls in one atomic statement
//!   ([`DailyAllowance::reserve`]), which grants at most what the day has left
//!   after the ledger and every live reservation, and spends only within its
//!   grant;
//! - every call records its neurons from the token usage it reports
//!   ([`DailyAllowance::record`]); the invocation's commit adds them to the
//!   day's row and drops its reservation ([`DailyAllowance::settle`]).
//!
//! **At the cap an item gets a labelled heuristic result now and an AI
//! upgrade later** ([`AT_CAP_POLICY`]): the result is stored with
//! `heuristic-v1` and the reason, and the scraper hands such fallbacks back
//! to AI in value order, as many as a later day's remaining allowance
//! covers ([`super::requeue_upgrades`]). Waiting instead would hold the item's
//! queue message for up to a day (Queues retries, 10,000 operations a day on
//! Free) and show the newcomer nothing meanwhile.

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use super::neurons::estimate_neurons;
use crate::sql::{SqlValue, Statement};

/// The share of the 10,000-neuron free allocation contribot spends per UTC
/// day by default; the rest absorbs estimation error and anything else on
/// the account.
pub const DEFAULT_DAILY_NEURON_CAP: f64 = 9_000.0;
/// What happens to an item when the cap is reached, as `/admin/status`
/// names it.
pub const AT_CAP_POLICY: &str = "heuristic_now_upgrade_later";
/// A reservation not settled within this long belongs to an invocation that
/// died; it stops counting against the cap. Longer than a queue consumer
/// may run (15 minutes of wall time).
pub const RESERVATION_TTL_MS: i64 = 20 * 60 * 1000;
/// An invocation reserves this many worst-case calls at a time: one batch
/// (10 messages) with one D1 statement, in the common case.
pub const RESERVE_CALLS: f64 = 10.0;
/// Neurons per call assumed before the ledger has any history. An issue
/// analysis on [`super::DEFAULT_MODEL`] costs about 6.3 on the simulator's
/// snapshot (BENCHMARKS.md section 8); 8 errs towards fewer upgrades.
pub const DEFAULT_NEURONS_PER_CALL: f64 = 8.0;
/// The mean cost per call that sizes upgrades is taken over this many days.
pub const HISTORY_DAYS: i64 = 7;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The UTC day of a Unix-ms instant, `YYYY-MM-DD`: the ledger's key.
pub fn utc_day(now_ms: i64) -> String {
    DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// The UTC day `days` after the day of `now_ms`.
pub fn utc_day_after(now_ms: i64, days: i64) -> String {
    utc_day(now_ms.saturating_add(days.saturating_mul(DAY_MS)))
}

/// The daily cap from config (`AI_DAILY_NEURON_CAP`): a non-negative number
/// of neurons; unset or blank is the default. 0 turns AI calls off. A cap
/// above the free allocation only makes sense on Workers Paid.
pub fn parse_daily_cap(value: Option<&str>) -> Result<f64, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_DAILY_NEURON_CAP);
    };
    match text.replace('_', "").parse::<f64>() {
        Ok(cap) if cap.is_finite() && cap >= 0.0 => Ok(cap),
        _ => Err(format!(
            "AI_DAILY_NEURON_CAP `{text}` is not a non-negative number of neurons"
        )),
    }
}

/// Prompt tokens of an input, counted so they are never below what a real
/// tokenizer reports: one token per 3 bytes of UTF-8 (Llama 3's tokenizer
/// averages about 4 characters a token on English and about one token per
/// character, 3 bytes, on CJK text), plus the chat template's few tokens per
/// message. The JSON schema of `response_format` is counted too, in case
/// the platform puts it in the prompt.
pub fn estimate_prompt_tokens(input: &Value) -> u64 {
    const PER_MESSAGE: u64 = 8;
    const PER_REQUEST: u64 = 16;
    let mut bytes = 0usize;
    let mut messages = 0u64;
    if let Some(list) = input.get("messages").and_then(Value::as_array) {
        for m in list {
            messages += 1;
            bytes += m.get("content").and_then(Value::as_str).map_or(0, str::len);
        }
    }
    if let Some(prompt) = input.get("prompt").and_then(Value::as_str) {
        messages += 1;
        bytes += prompt.len();
    }
    if let Some(schema) = input
        .get("response_format")
        .and_then(|f| f.get("json_schema"))
    {
        bytes += schema.to_string().len();
    }
    (bytes as u64).div_ceil(3) + PER_MESSAGE * messages + PER_REQUEST
}

/// What a call will cost at most, before it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallEstimate {
    pub prompt_tokens: u64,
    /// The request's `max_tokens`: the most the model may answer with.
    pub max_output_tokens: u64,
    /// Both, at the model's published rates.
    pub neurons: f64,
}

/// The worst case of sending `input` to `model`. A request without
/// `max_tokens` is priced at the platform's default of 256.
pub fn estimate_call(model: &str, input: &Value) -> CallEstimate {
    let prompt_tokens = estimate_prompt_tokens(input);
    let max_output_tokens = input
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(256);
    CallEstimate {
        prompt_tokens,
        max_output_tokens,
        neurons: estimate_neurons(model, prompt_tokens, max_output_tokens),
    }
}

/// Why a call may not start now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The day's cap is reached (or held by other invocations).
    #[error(
        "AI daily neuron cap reached on {day}: {used:.0} of {cap:.0} neurons spent or held, \
         this call needs up to {needed:.1}; heuristic result now, AI upgrade when a day's allowance allows"
    )]
    CapReached {
        day: String,
        used: f64,
        cap: f64,
        needed: f64,
    },
    /// Workers AI itself answered that the account's allocation is spent.
    #[error(
        "Workers AI daily allocation exhausted (reported on {day}); heuristic result now, AI upgrade after 00:00 UTC"
    )]
    PlatformExhausted { day: String },
}

/// What the reservation read-back returns.
#[derive(Debug, Clone, Deserialize)]
struct ReservationRow {
    held: f64,
    spent: f64,
    held_all: f64,
    exhausted_at: Option<i64>,
}

/// One invocation's share of the day: what it holds, what it spent, and
/// what it will write to the ledger when it commits.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyAllowance {
    pub day: String,
    pub cap: f64,
    pub model: String,
    /// Neurons this invocation holds in `ai_reservations`.
    pub held: f64,
    /// Neurons its calls cost (reported usage; the estimate when none).
    pub spent: f64,
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Calls not started because of the cap (items given the heuristic).
    pub refused: u32,
    /// The day's ledger and live reservations at the last reservation.
    pub day_used: f64,
    /// A reservation was granted less than it asked: the day is at the cap.
    pub at_cap: bool,
    /// When Workers AI said the allocation is spent (this day).
    pub exhausted_at: Option<i64>,
    reserved: bool,
}

impl DailyAllowance {
    /// A fresh share of the UTC day of `now_ms`.
    pub fn new(now_ms: i64, cap: f64, model: &str) -> Self {
        DailyAllowance {
            day: utc_day(now_ms),
            cap,
            model: model.to_string(),
            held: 0.0,
            spent: 0.0,
            calls: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            refused: 0,
            day_used: 0.0,
            at_cap: cap <= 0.0,
            exhausted_at: None,
            reserved: false,
        }
    }

    /// What the invocation holds and has not spent.
    pub fn left(&self) -> f64 {
        (self.held - self.spent).max(0.0)
    }

    /// Whether a D1 reservation should come before a call of `estimate`: it
    /// does not fit what is held, and the day may still have room.
    pub fn needs_reservation(&self, estimate: &CallEstimate) -> bool {
        self.left() < estimate.neurons && !self.at_cap && self.exhausted_at.is_none()
    }

    /// One D1 batch: hold up to [`RESERVE_CALLS`] × `estimate` more, granted
    /// atomically from what the day has left after its ledger row and every
    /// live reservation (none once Workers AI said the allocation is spent),
    /// then read back what this invocation holds.
    pub fn reserve(
        &self,
        invocation: &str,
        estimate: &CallEstimate,
        now_ms: i64,
    ) -> Vec<Statement> {
        let want = estimate.neurons * RESERVE_CALLS;
        let live_after = now_ms - RESERVATION_TTL_MS;
        vec![
            Statement::new(
                "INSERT INTO ai_reservations (invocation, day, neurons, created_at) \
                 SELECT ?1, ?2, grant, ?4 FROM ( \
                   SELECT CASE WHEN l.exhausted_at IS NOT NULL THEN 0.0 ELSE \
                     MIN(?3, MAX(0.0, ?5 - COALESCE(l.neurons, 0.0) - COALESCE((SELECT SUM(r.neurons) \
                       FROM ai_reservations r WHERE r.day = ?2 AND r.created_at > ?6), 0.0))) END AS grant \
                   FROM (SELECT 1) LEFT JOIN ai_ledger l ON l.day = ?2 \
                 ) WHERE true \
                 ON CONFLICT (invocation) DO UPDATE SET neurons = neurons + excluded.neurons, \
                   created_at = excluded.created_at",
                vec![
                    invocation.into(),
                    self.day.as_str().into(),
                    SqlValue::Real(want),
                    now_ms.into(),
                    SqlValue::Real(self.cap),
                    live_after.into(),
                ],
            ),
            Statement::new(
                "SELECT r.neurons AS held, COALESCE(l.neurons, 0.0) AS spent, \
                   COALESCE((SELECT SUM(o.neurons) FROM ai_reservations o \
                     WHERE o.day = r.day AND o.created_at > ?2), 0.0) AS held_all, \
                   l.exhausted_at AS exhausted_at \
                 FROM ai_reservations r LEFT JOIN ai_ledger l ON l.day = r.day WHERE r.invocation = ?1",
                vec![invocation.into(), live_after.into()],
            ),
        ]
    }

    /// Takes in the read-back of [`Self::reserve`] (its second statement's
    /// rows). A grant short of what was asked means the day is at the cap.
    pub fn absorb_reservation(&mut self, rows: &[Value], estimate: &CallEstimate) {
        let want = estimate.neurons * RESERVE_CALLS;
        let Some(row) = rows
            .first()
            .and_then(|r| ReservationRow::deserialize(r).ok())
        else {
            // No row back: treat the day as full rather than call blind.
            self.at_cap = true;
            return;
        };
        let granted = (row.held - self.held).max(0.0);
        self.held = row.held.max(self.held);
        self.day_used = row.spent + row.held_all;
        self.reserved = true;
        if row.exhausted_at.is_some() {
            self.exhausted_at = row.exhausted_at;
        }
        if granted + 1e-6 < want {
            self.at_cap = true;
        }
    }

    /// Whether a call of `estimate` may start now. A refusal is counted.
    pub fn admit(&mut self, estimate: &CallEstimate) -> Result<(), Refusal> {
        if self.exhausted_at.is_some() {
            self.refused += 1;
            return Err(Refusal::PlatformExhausted {
                day: self.day.clone(),
            });
        }
        if self.left() + 1e-9 >= estimate.neurons {
            return Ok(());
        }
        self.refused += 1;
        Err(Refusal::CapReached {
            day: self.day.clone(),
            used: self.day_used.max(self.spent),
            cap: self.cap,
            needed: estimate.neurons,
        })
    }

    /// Records a finished call from its reported `(prompt, completion)`
    /// usage; without usage the estimate is recorded. Returns its neurons.
    pub fn record(&mut self, usage: Option<(u64, u64)>, estimate: &CallEstimate) -> f64 {
        let (neurons, prompt, completion) = match usage {
            Some((p, c)) => (estimate_neurons(&self.model, p, c), p, c),
            None => (
                estimate.neurons,
                estimate.prompt_tokens,
                estimate.max_output_tokens,
            ),
        };
        self.spent += neurons;
        self.calls += 1;
        self.prompt_tokens += prompt;
        self.completion_tokens += completion;
        neurons
    }

    /// Workers AI answered that the allocation is spent: no more calls
    /// today, from this invocation or (once settled) any other.
    pub fn platform_exhausted(&mut self, now_ms: i64) {
        self.exhausted_at.get_or_insert(now_ms);
    }

    /// Whether [`Self::settle`] has anything to write.
    pub fn is_touched(&self) -> bool {
        self.reserved || self.calls > 0 || self.refused > 0 || self.exhausted_at.is_some()
    }

    /// The commit's ledger statements: add this invocation's neurons, calls,
    /// tokens and refusals to the day's row (and the cap and model it ran
    /// with), then drop its reservation and any expired one. Empty when the
    /// invocation never touched AI.
    pub fn settle(&self, invocation: &str, now_ms: i64) -> Vec<Statement> {
        if !self.is_touched() {
            return Vec::new();
        }
        vec![
            Statement::new(
                "INSERT INTO ai_ledger (day, neurons, calls, prompt_tokens, completion_tokens, refused, \
                   cap, model, exhausted_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (day) DO UPDATE SET neurons = neurons + excluded.neurons, \
                   calls = calls + excluded.calls, prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                   completion_tokens = completion_tokens + excluded.completion_tokens, \
                   refused = refused + excluded.refused, cap = excluded.cap, model = excluded.model, \
                   exhausted_at = COALESCE(exhausted_at, excluded.exhausted_at), \
                   updated_at = excluded.updated_at",
                vec![
                    self.day.as_str().into(),
                    SqlValue::Real(self.spent),
                    self.calls.into(),
                    (self.prompt_tokens as i64).into(),
                    (self.completion_tokens as i64).into(),
                    self.refused.into(),
                    SqlValue::Real(self.cap),
                    self.model.as_str().into(),
                    self.exhausted_at.into(),
                    now_ms.into(),
                ],
            ),
            Statement::new(
                "DELETE FROM ai_reservations WHERE invocation = ?1 OR created_at <= ?2",
                vec![invocation.into(), (now_ms - RESERVATION_TTL_MS).into()],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MODEL: &str = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";
    // 2025-01-02T23:59:59.999Z and the next millisecond.
    const LAST_MS: i64 = 1_735_862_399_999;

    #[test]
    fn the_ledger_day_turns_at_utc_midnight() {
        assert_eq!(utc_day(LAST_MS), "2025-01-02");
        assert_eq!(utc_day(LAST_MS + 1), "2025-01-03");
        assert_eq!(utc_day_after(LAST_MS, 1), "2025-01-03");
    }

    #[test]
    fn the_cap_defaults_to_9000_and_refuses_nonsense() {
        assert_eq!(parse_daily_cap(None), Ok(9_000.0));
        assert_eq!(parse_daily_cap(Some("  ")), Ok(9_000.0));
        assert_eq!(parse_daily_cap(Some("5_000")), Ok(5_000.0));
        assert_eq!(parse_daily_cap(Some("0")), Ok(0.0));
        assert!(parse_daily_cap(Some("-1")).is_err());
        assert!(parse_daily_cap(Some("lots")).is_err());
    }

    #[test]
    fn prompt_tokens_are_never_fewer_than_four_characters_a_token() {
        let english = "Fix the typo in the README so the install command works. ".repeat(20);
        let input = json!({"messages": [{"role": "user", "content": english}], "max_tokens": 100});
        let est = estimate_call(MODEL, &input);
        assert!(est.prompt_tokens >= (english.chars().count() as u64).div_ceil(4));
        let cjk = "修正安装说明中的错别字".repeat(30);
        let tokens = estimate_prompt_tokens(&json!({"messages": [{"content": cjk}]}));
        assert!(
            tokens >= cjk.chars().count() as u64,
            "one token per CJK character at least"
        );
        assert_eq!(est.max_output_tokens, 100);
    }

    #[test]
    fn the_estimate_prices_prompt_and_max_output_at_the_models_rates() {
        let input = json!({"prompt": "x".repeat(300), "max_tokens": 1000});
        let est = estimate_call(MODEL, &input);
        // 300 bytes → 100 tokens, + 8 for the message, + 16 for the request.
        assert_eq!(est.prompt_tokens, 124);
        let expected = (124.0 * 4_119.0 + 1000.0 * 34_868.0) / 1e6;
        assert!((est.neurons - expected).abs() < 1e-9);
        let no_max = estimate_call(MODEL, &json!({"prompt": "hi"}));
        assert_eq!(no_max.max_output_tokens, 256);
    }

    fn estimate(neurons: f64) -> CallEstimate {
        CallEstimate {
            prompt_tokens: 10,
            max_output_tokens: 10,
            neurons,
        }
    }

    #[test]
    fn a_call_starts_only_within_what_is_held() {
        let mut a = DailyAllowance::new(LAST_MS, 9_000.0, MODEL);
        let est = estimate(30.0);
        assert!(a.needs_reservation(&est));
        assert!(matches!(a.admit(&est), Err(Refusal::CapReached { .. })));
        a.absorb_reservation(
            &[json!({"held": 300.0, "spent": 100.0, "held_all": 300.0, "exhausted_at": null})],
            &est,
        );
        assert!(!a.at_cap);
        assert_eq!(a.admit(&est), Ok(()));
        assert_eq!(
            a.record(Some((1_000, 100)), &est),
            (1_000.0 * 4_119.0 + 100.0 * 34_868.0) / 1e6
        );
        assert_eq!(
            (a.calls, a.prompt_tokens, a.completion_tokens),
            (1, 1_000, 100)
        );
        assert!(!a.needs_reservation(&est));
    }

    #[test]
    fn a_short_grant_marks_the_day_at_the_cap_and_refusals_say_why() {
        let mut a = DailyAllowance::new(LAST_MS, 9_000.0, MODEL);
        let est = estimate(30.0);
        a.absorb_reservation(
            &[json!({"held": 40.0, "spent": 8_960.0, "held_all": 40.0, "exhausted_at": null})],
            &est,
        );
        assert!(a.at_cap);
        assert_eq!(a.admit(&est), Ok(()));
        a.record(None, &est);
        assert_eq!(a.spent, 30.0, "no usage: the estimate is recorded");
        assert!(
            !a.needs_reservation(&est),
            "at the cap: no more reservations"
        );
        let refusal = a.admit(&est).unwrap_err();
        assert!(refusal.to_string().contains("9000 neurons"), "{refusal}");
        assert_eq!(a.refused, 1);
    }

    #[test]
    fn a_platform_quota_error_stops_every_later_call() {
        let mut a = DailyAllowance::new(LAST_MS, 9_000.0, MODEL);
        let est = estimate(1.0);
        a.absorb_reservation(
            &[json!({"held": 10.0, "spent": 0.0, "held_all": 10.0, "exhausted_at": null})],
            &est,
        );
        a.platform_exhausted(LAST_MS);
        assert!(matches!(
            a.admit(&est),
            Err(Refusal::PlatformExhausted { .. })
        ));
        assert!(!a.needs_reservation(&est));
    }

    #[test]
    fn a_zero_cap_turns_ai_off_without_a_reservation() {
        let mut a = DailyAllowance::new(LAST_MS, 0.0, MODEL);
        let est = estimate(1.0);
        assert!(!a.needs_reservation(&est));
        assert!(a.admit(&est).is_err());
    }

    #[test]
    fn an_untouched_allowance_writes_nothing() {
        let a = DailyAllowance::new(LAST_MS, 9_000.0, MODEL);
        assert!(a.settle("inv", LAST_MS).is_empty());
    }
}
