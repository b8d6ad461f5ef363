//! Section 8's Workers AI figures: a simulated week of 2 scraper runs a day
//! under the processor's daily neuron cap, from the measured runs, and the
//! per-model comparison behind the default model.
//!
//! The measured runs (full, unchanged, changed) analyse everything they
//! queue: the bench lifts the cap and the simulator's quota to price every
//! call. The week replays them under the deployed configuration
//! (`AI_DAILY_NEURON_CAP`, `AI_MODEL` in wrangler-processor.toml,
//! `AI_UPGRADES_PER_RUN` in wrangler-scraper.toml) with the processor's and
//! the scraper's rules:
//! - runs at 00:00 and 12:00 UTC (the cron); day 1 is the full refresh and an
//!   unchanged rerun, every later day a 5%-changed run and an unchanged one;
//! - each run first hands back to AI as many heuristic fallbacks as the
//!   day's remaining allowance covers at the ledger's mean cost per call
//!   (at most `AI_UPGRADES_PER_RUN`), then the processor analyses the run's
//!   fresh items and those upgrades, in that order;
//! - a call starts only while the day has at least its worst case left
//!   (prompt tokens counted at 3 bytes a token plus the 768-token output
//!   budget); an item refused at the cap gets the heuristic now and joins
//!   the backlog.

use std::fmt::Write as _;
use std::path::Path;

use super::{f, thousands, yes, Scenario};

/// A candidate model: Cloudflare's published neurons per million input and
/// output tokens (Workers AI pricing, "LLM model pricing",
/// developers.cloudflare.com/workers-ai/platform/pricing/, as published in
/// July 2026) and whether Cloudflare's JSON-mode list names it
/// (developers.cloudflare.com/workers-ai/features/json-mode/).
struct Candidate {
    model: &'static str,
    input: f64,
    output: f64,
    json_mode: &'static str,
}

const CANDIDATES: [Candidate; 4] = [
    Candidate {
        model: "@cf/meta/llama-3.1-8b-instruct",
        input: 25_608.0,
        output: 75_147.0,
        json_mode: "listed",
    },
    Candidate {
        model: "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        input: 4_119.0,
        output: 34_868.0,
        json_mode: "listed (as `@cf/meta/llama-3.1-8b-instruct-fast`)",
    },
    Candidate {
        model: "@cf/meta/llama-3.2-3b-instruct",
        input: 4_625.0,
        output: 30_475.0,
        json_mode: "not listed",
    },
    Candidate {
        model: "@cf/ibm-granite/granite-4.0-h-micro",
        input: 1_542.0,
        output: 10_158.0,
        json_mode: "not listed",
    },
];

/// The processor's issue-analysis output budget (`ISSUE_ANALYSIS_MAX_TOKENS`).
const MAX_OUTPUT_TOKENS: f64 = 768.0;
/// The ledger's cost per call before it has history (`DEFAULT_NEURONS_PER_CALL`).
const DEFAULT_PER_CALL: f64 = 8.0;
/// The processor's default cap (`DEFAULT_DAILY_NEURON_CAP`).
const DEFAULT_CAP: f64 = 9_000.0;
const WEEK_DAYS: u32 = 7;
/// The targets of issue 12.
const SNAPSHOT_DAYS_TARGET: u32 = 3;
const STEADY_TARGET: f64 = 5_000.0;

/// Tokens a measured run's AI calls reported.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tokens {
    calls: f64,
    prompt: f64,
    completion: f64,
}

impl Tokens {
    fn of(s: &Scenario) -> Tokens {
        Tokens {
            calls: s.ai_calls,
            prompt: f(&s.doc, &["processing", "prompt_tokens"]),
            completion: f(&s.doc, &["processing", "completion_tokens"]),
        }
    }

    fn known(&self) -> bool {
        self.calls > 0.0 && self.prompt > 0.0
    }

    /// Neurons per call at `c`'s rates.
    fn per_call(&self, c: &Candidate) -> f64 {
        (self.prompt * c.input + self.completion * c.output) / 1e6 / self.calls.max(1.0)
    }

    /// The pre-call estimate of a typical call at `c`'s rates: its prompt
    /// counted at 3 bytes a token (4/3 of the reported tokens, plus the
    /// template's) and the whole output budget.
    fn worst_call(&self, c: &Candidate) -> f64 {
        let prompt = self.prompt / self.calls.max(1.0) * 4.0 / 3.0 + 32.0;
        (prompt * c.input + MAX_OUTPUT_TOKENS * c.output) / 1e6
    }
}

/// What the week is simulated from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WeekInputs {
    pub cap: f64,
    pub snapshot_items: f64,
    pub snapshot_per_call: f64,
    pub steady_items: f64,
    pub steady_per_call: f64,
    pub worst_call: f64,
    pub upgrades_per_run: f64,
}

/// One simulated day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct WeekDay {
    pub day: u32,
    pub fresh: f64,
    pub upgrades: f64,
    pub ai_calls: f64,
    pub heuristic: f64,
    pub neurons: f64,
    /// Heuristic fallbacks waiting for AI at the end of the day.
    pub backlog: f64,
    /// Snapshot items not yet analysed by AI at the end of the day.
    pub snapshot_left: f64,
}

/// How many of `n` calls of `cost` start with `spent` of `cap` used: each
/// only while the day has `worst` left.
fn admitted(n: f64, cost: f64, spent: f64, cap: f64, worst: f64) -> f64 {
    let room = cap - worst - spent;
    if n <= 0.0 || room < 0.0 {
        return 0.0;
    }
    if cost <= 0.0 {
        return n;
    }
    n.min((room / cost).floor() + 1.0)
}

/// A day of changes alone (no backlog): its neurons.
fn steady_day(w: &WeekInputs) -> f64 {
    admitted(w.steady_items, w.steady_per_call, 0.0, w.cap, w.worst_call) * w.steady_per_call
}

/// The week, day by day.
pub(super) fn simulate_week(w: &WeekInputs) -> Vec<WeekDay> {
    let (mut backlog, mut snapshot_left) = (0.0_f64, 0.0_f64);
    let (mut history_neurons, mut history_calls) = (0.0, 0.0);
    let mut days = Vec::new();
    for day in 1..=WEEK_DAYS {
        let mut d = WeekDay {
            day,
            ..WeekDay::default()
        };
        let runs = if day == 1 {
            [(w.snapshot_items, w.snapshot_per_call), (0.0, 0.0)]
        } else {
            [(w.steady_items, w.steady_per_call), (0.0, 0.0)]
        };
        for (fresh, fresh_cost) in runs {
            let mean = if history_calls > 0.0 {
                history_neurons / history_calls
            } else {
                DEFAULT_PER_CALL
            };
            let allowance = ((w.cap - d.neurons).max(0.0) / mean.max(0.01)).floor();
            let requeued = allowance.min(backlog).min(w.upgrades_per_run);
            let fresh_ai = admitted(fresh, fresh_cost, d.neurons, w.cap, w.worst_call);
            d.neurons += fresh_ai * fresh_cost;
            let upgraded = admitted(
                requeued,
                w.snapshot_per_call,
                d.neurons,
                w.cap,
                w.worst_call,
            );
            d.neurons += upgraded * w.snapshot_per_call;
            let fell_back = fresh - fresh_ai;
            if day == 1 && fresh > 0.0 {
                snapshot_left += fell_back;
            }
            snapshot_left = (snapshot_left - upgraded).max(0.0);
            backlog = (backlog - upgraded).max(0.0) + fell_back;
            d.fresh += fresh;
            d.upgrades += requeued;
            d.ai_calls += fresh_ai + upgraded;
            d.heuristic += fell_back + (requeued - upgraded);
            history_neurons += fresh_ai * fresh_cost + upgraded * w.snapshot_per_call;
            history_calls += fresh_ai + upgraded;
        }
        d.backlog = backlog;
        d.snapshot_left = snapshot_left;
        days.push(d);
    }
    days
}

/// The week under the deployed configuration, and the comparison.
pub(super) struct AiWeek {
    pub inputs: WeekInputs,
    pub days: Vec<WeekDay>,
    model: String,
    full: Tokens,
    changed: Tokens,
    measured_per_call: f64,
}

/// A `[vars]` value of a wrangler toml.
fn toml_var(root: &Path, file: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(file)).ok().and_then(|t| {
        t.lines()
            .find(|l| l.split('=').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once('=').map(|(_, v)| v))
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

impl AiWeek {
    pub(super) fn from_runs(full: &Scenario, changed: &Scenario, root: &Path) -> AiWeek {
        let model = toml_var(root, "wrangler-processor.toml", "AI_MODEL")
            .unwrap_or_else(|| CANDIDATES[1].model.to_string());
        let cap = toml_var(root, "wrangler-processor.toml", "AI_DAILY_NEURON_CAP")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CAP);
        let upgrades_per_run = toml_var(root, "wrangler-scraper.toml", "AI_UPGRADES_PER_RUN")
            .and_then(|v| v.parse().ok())
            .unwrap_or(20.0);
        let (full_t, changed_t) = (Tokens::of(full), Tokens::of(changed));
        let deployed = CANDIDATES.iter().find(|c| c.model == model);
        let per_call = |s: &Scenario| s.neurons / s.ai_calls.max(1.0);
        let worst_call = match deployed {
            Some(c) if full_t.known() => full_t.worst_call(c),
            _ => per_call(full) * 4.0,
        };
        let inputs = WeekInputs {
            cap,
            snapshot_items: full.ai_calls,
            snapshot_per_call: per_call(full),
            steady_items: changed.ai_calls,
            steady_per_call: per_call(changed),
            worst_call,
            upgrades_per_run,
        };
        AiWeek {
            inputs,
            days: simulate_week(&inputs),
            model,
            full: full_t,
            changed: changed_t,
            measured_per_call: per_call(full),
        }
    }

    /// The day (1 = the first run's) by whose end every snapshot item has
    /// had its AI analysis; `None` within the week.
    pub(super) fn days_to_snapshot(&self) -> Option<u32> {
        self.days
            .iter()
            .find(|d| d.snapshot_left < 0.5)
            .map(|d| d.day)
    }

    /// A day with no backlog left: its changes alone.
    pub(super) fn steady_neurons(&self) -> f64 {
        steady_day(&self.inputs)
    }

    pub(super) fn first_day_neurons(&self) -> f64 {
        self.days.first().map_or(0.0, |d| d.neurons)
    }

    pub(super) fn max_day_neurons(&self) -> f64 {
        self.days.iter().map(|d| d.neurons).fold(0.0, f64::max)
    }

    /// Whether the week meets issue 12's targets.
    pub(super) fn snapshot_ok(&self) -> bool {
        self.days_to_snapshot()
            .is_some_and(|d| d <= SNAPSHOT_DAYS_TARGET)
    }

    pub(super) fn steady_ok(&self) -> bool {
        self.steady_neurons() <= STEADY_TARGET && self.max_day_neurons() <= self.inputs.cap
    }

    /// The headline value of `AI: days to analyse the snapshot once (free allocation)`.
    pub(super) fn snapshot_days_text(&self) -> String {
        match self.days_to_snapshot() {
            Some(d) => format!(
                "{d} (simulated week, 2 runs a day, cap {})",
                thousands(self.inputs.cap)
            ),
            None => format!("more than {WEEK_DAYS}"),
        }
    }

    /// The headline value of `AI: neurons on a steady day`.
    pub(super) fn steady_text(&self) -> String {
        format!(
            "{} (busiest day {})",
            thousands(self.steady_neurons()),
            thousands(self.max_day_neurons())
        )
    }

    /// The week's table and the model comparison.
    pub(super) fn section(&self, w: &mut String) {
        let i = &self.inputs;
        let _ = writeln!(
            w,
            "\n### Workers AI over a simulated week\n\n\
             Model `{}`, cap {} of the 10,000 free neurons a UTC day (`AI_DAILY_NEURON_CAP`), \
             upgrades at most {} a run (`AI_UPGRADES_PER_RUN`). From the runs above: the snapshot \
             is {} items at {:.2} neurons a call, a 5%-changed run {} items at {:.2}; a call \
             starts only while the day has its worst case left ({:.1} neurons: the prompt at 3 \
             bytes a token and the 768-token output budget). Runs at 00:00 and 12:00 UTC; each \
             hands back as many heuristic fallbacks as the day's remaining allowance covers, \
             best issues first; items refused at the cap get the labelled heuristic result now.\n",
            self.model,
            thousands(i.cap),
            thousands(i.upgrades_per_run),
            thousands(i.snapshot_items),
            i.snapshot_per_call,
            thousands(i.steady_items),
            i.steady_per_call,
            i.worst_call,
        );
        let _ = writeln!(
            w,
            "| day | runs | fresh items | upgrades handed back | AI calls | heuristic now | neurons | of the cap | backlog after | snapshot items not yet by AI |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
        for d in &self.days {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {:.0}% | {} | {} |",
                d.day,
                if d.day == 1 {
                    "full + unchanged"
                } else {
                    "5% changed + unchanged"
                },
                thousands(d.fresh),
                thousands(d.upgrades),
                thousands(d.ai_calls),
                thousands(d.heuristic),
                thousands(d.neurons),
                100.0 * d.neurons / i.cap.max(1.0),
                thousands(d.backlog),
                thousands(d.snapshot_left),
            );
        }
        let _ =
            writeln!(
            w,
            "\nThe whole snapshot is analysed once by AI by the end of day {}; a steady day uses \
             {} neurons; the busiest day {} of the {} cap. Upgrade days send their upgrades as \
             queue messages too (3 operations each: day 2's {} fit in the 10,000).",
            self.days_to_snapshot()
                .map_or_else(|| format!("> {WEEK_DAYS}"), |d| d.to_string()),
            thousands(self.steady_neurons()),
            thousands(self.max_day_neurons()),
            thousands(i.cap),
            thousands(self.days.get(1).map_or(0.0, |d| 3.0 * (d.fresh + d.upgrades))),
        );
        self.comparison(w);
    }

    /// Neurons per call and the week's outcome for each candidate model, on
    /// this run's token counts.
    fn comparison(&self, w: &mut String) {
        if !self.full.known() {
            let _ = writeln!(
                w,
                "\n(The runs reported no token counts: no per-model comparison.)"
            );
            return;
        }
        let _ = writeln!(
            w,
            "\n### Choosing the model\n\n\
             The same prompts priced at each candidate's published rates: this run's {} calls \
             reported {} prompt and {} completion tokens ({:.0} and {:.0} a call; the \
             simulator counts 4 characters a token). Output length depends on the model; the \
             same answers are assumed. JSON mode: Cloudflare's list of models that support it.\n",
            thousands(self.full.calls),
            thousands(self.full.prompt),
            thousands(self.full.completion),
            self.full.prompt / self.full.calls.max(1.0),
            self.full.completion / self.full.calls.max(1.0),
        );
        let _ = writeln!(
            w,
            "| model | neurons per M tokens (in / out) | JSON mode | neurons a call | snapshot once | days to analyse it once | steady day |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|");
        for c in &CANDIDATES {
            let inputs = WeekInputs {
                snapshot_per_call: self.full.per_call(c),
                steady_per_call: if self.changed.known() {
                    self.changed.per_call(c)
                } else {
                    self.full.per_call(c)
                },
                worst_call: self.full.worst_call(c),
                ..self.inputs
            };
            let days = simulate_week(&inputs);
            let snapshot_days = days
                .iter()
                .find(|d| d.snapshot_left < 0.5)
                .map_or_else(|| format!("> {WEEK_DAYS}"), |d| d.day.to_string());
            let _ = writeln!(
                w,
                "| `{}`{} | {} / {} | {} | {:.2} | {} | {} | {} |",
                c.model,
                if c.model == self.model {
                    " (default)"
                } else {
                    ""
                },
                thousands(c.input),
                thousands(c.output),
                c.json_mode,
                inputs.snapshot_per_call,
                thousands(inputs.snapshot_per_call * self.full.calls),
                snapshot_days,
                thousands(steady_day(&inputs)),
            );
        }
        let _ = writeln!(
            w,
            "\nThe default is the cheapest candidate on Cloudflare's JSON-mode list: the 8B model \
             contribot used before, in its fast fp8 serving. granite-4.0-h-micro costs less but is \
             not on the list and is a 3B model; llama-3.2-3b-instruct costs about the same as the \
             fp8 8B and is not on the list either. The strict schema and validation stay; a model \
             change is one var (`AI_MODEL`). Measured cost a call on the deployed model: {:.2} \
             neurons.",
            self.measured_per_call,
        );
    }
}

/// Whether the two headline rows are met.
pub(super) fn headline_status(week: &AiWeek) -> (&'static str, &'static str) {
    (yes(week.snapshot_ok()), yes(week.steady_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> WeekInputs {
        WeekInputs {
            cap: 9_000.0,
            snapshot_items: 2_262.0,
            snapshot_per_call: 6.0,
            steady_items: 101.0,
            steady_per_call: 7.0,
            worst_call: 30.0,
            upgrades_per_run: 2_000.0,
        }
    }

    #[test]
    fn the_cap_splits_the_snapshot_over_two_days_and_no_day_passes_it() {
        let days = simulate_week(&inputs());
        // Day 1: (9,000 − 30) / 6 + 1 = 1,496 calls start; 766 fall back.
        assert_eq!(days[0].ai_calls, 1_496.0);
        assert_eq!(days[0].snapshot_left, 766.0);
        assert_eq!(days[0].backlog, 766.0);
        // Day 2: the 101 changes, then all 766 upgrades fit.
        assert_eq!(days[1].upgrades, 766.0);
        assert_eq!(days[1].snapshot_left, 0.0);
        assert_eq!(days[1].neurons, 101.0 * 7.0 + 766.0 * 6.0);
        // From day 3 only the changes: 707 neurons, a steady day.
        assert_eq!(days[6].neurons, 707.0);
        assert_eq!(steady_day(&inputs()), 707.0);
        assert!(days.iter().all(|d| d.neurons <= 9_000.0));
    }

    #[test]
    fn a_small_upgrade_bound_stretches_the_backlog_over_the_week() {
        let days = simulate_week(&WeekInputs {
            upgrades_per_run: 20.0,
            ..inputs()
        });
        assert_eq!(days[1].upgrades, 40.0, "20 a run, 2 runs");
        assert_eq!(days[6].snapshot_left, 766.0 - 6.0 * 40.0);
    }

    #[test]
    fn calls_start_only_while_the_worst_case_fits() {
        assert_eq!(admitted(10.0, 6.0, 8_950.0, 9_000.0, 30.0), 4.0);
        assert_eq!(admitted(10.0, 6.0, 8_971.0, 9_000.0, 30.0), 0.0);
        assert_eq!(admitted(10.0, 0.0, 0.0, 9_000.0, 30.0), 10.0);
    }
}
