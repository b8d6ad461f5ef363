//! Workers AI: the prompts contribot sends, the checks its answers must
//! pass, the heuristic that stands in when the model is unavailable, and the
//! classification of failed calls.
//!
//! Nothing here talks to Workers AI. The processor builds an input with
//! [`issue_analysis_input`] or [`repo_summary_input`], hands it to the `AI`
//! binding (or to [`rest_request`]), and passes the `result` object back to
//! [`parse_issue_analysis`] or [`parse_repo_summary`]. An answer that fails
//! those checks, or a call that fails, falls back to
//! [`heuristic_issue_analysis`] / [`heuristic_repo_summary`], whose output is
//! stored with [`HEURISTIC_MODEL`] as its provenance.
//!
//! Issue titles, labels and bodies are written by strangers. They reach the
//! model only inside delimited data blocks, with any copy of the delimiters
//! inside them neutralised, and the system message tells the model that the
//! blocks are data to analyse, never instructions.

use serde::{Deserialize, Serialize};

mod backlog;
mod body;
mod call;
mod heuristic;
mod ledger;
mod neurons;
mod output;
mod prompt;

pub use backlog::{budget_queries, budget_status, completion_day, requeue_upgrades, LedgerDay};
pub use body::{clean_body, TRUNCATION_MARK};
pub use call::{
    classify_binding_error, parse_rest_response, quota_reset_epoch_secs, rest_request, AiFailure,
};
pub use heuristic::{heuristic_issue_analysis, heuristic_repo_summary};
pub use ledger::{
    estimate_call, estimate_prompt_tokens, parse_daily_cap, utc_day, utc_day_after, CallEstimate,
    DailyAllowance, Refusal, AT_CAP_POLICY, DEFAULT_DAILY_NEURON_CAP, DEFAULT_NEURONS_PER_CALL,
    HISTORY_DAYS, RESERVATION_TTL_MS, RESERVE_CALLS,
};
pub use neurons::{
    estimate_neurons, neuron_rate, usage_tokens, NeuronRate, FREE_NEURONS_PER_DAY, NEURON_RATES,
};
pub use output::{count_sentences, parse_issue_analysis, parse_repo_summary, InvalidOutput};
pub use prompt::{
    issue_analysis_input, issue_analysis_schema, repo_summary_input, ISSUE_ANALYSIS_MAX_TOKENS,
    REPO_SUMMARY_MAX_TOKENS, TEMPERATURE,
};

/// Version of the prompts below; bump it whenever their wording changes so
/// stored analyses can be told apart (and regenerated). v2: shorter system
/// messages and a 768-token output budget, same schema and bounds.
pub const PROMPT_VERSION: &str = "v2";
/// Provenance recorded for output produced by the heuristic, not a model.
pub const HEURISTIC_MODEL: &str = "heuristic-v1";
/// The text-generation model contribot calls by default (`AI_MODEL`
/// overrides it): Llama 3.1 8B in its fast fp8 serving, 4,119 / 34,868
/// neurons per million input / output tokens against 25,608 / 75,147 for
/// the full-precision 8B, and the 8B family Cloudflare lists for JSON mode
/// (README "AI cost" has the comparison).
pub const DEFAULT_MODEL: &str = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";
/// Issue bodies are cut to this many characters before they reach a prompt.
pub const MAX_BODY_CHARS: usize = 4000;

/// Bounds an [`IssueAnalysis`] must respect, shared by the JSON schema sent
/// to the model, the parser and the heuristic.
pub const INTRO_MIN_CHARS: usize = 20;
pub const INTRO_MAX_CHARS: usize = 600;
pub const MIN_DIFFICULTY: u8 = 1;
pub const MAX_DIFFICULTY: u8 = 5;
pub const MIN_FIRST_STEPS: usize = 1;
pub const MAX_FIRST_STEPS: usize = 6;
pub const MAX_STEP_CHARS: usize = 300;
pub const MAX_SKILLS: usize = 8;
pub const MAX_SKILL_CHARS: usize = 40;

/// Bounds a repo summary must respect.
pub const SUMMARY_MIN_CHARS: usize = 40;
pub const SUMMARY_MAX_CHARS: usize = 800;
pub const SUMMARY_MIN_SENTENCES: usize = 2;
pub const SUMMARY_MAX_SENTENCES: usize = 4;

/// What contribot knows about a repository when it asks about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoContext {
    pub owner: String,
    pub name: String,
    pub description: Option<String>,
    pub primary_language: Option<String>,
    /// Languages by size, largest first.
    pub languages: Vec<String>,
    pub topics: Vec<String>,
    /// The beginner labels the awesome-for-beginners list names for it.
    pub listed_labels: Vec<String>,
}

impl RepoContext {
    /// `owner/name`.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// One issue to analyse, borrowed from wherever the processor holds it.
#[derive(Debug, Clone, Copy)]
pub struct IssueInput<'a> {
    pub repo: &'a RepoContext,
    pub number: i64,
    pub title: &'a str,
    pub labels: &'a [String],
    /// The raw Markdown body, as GitHub returns it.
    pub body: &'a str,
    pub comment_count: i64,
    pub assignee_count: i64,
}

/// What a newcomer is told about an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueAnalysis {
    /// What the issue asks for, in a few plain sentences.
    pub intro: String,
    /// 1 (a typo) to 5 (deep work needing project expertise).
    pub difficulty: u8,
    /// Concrete steps, in order.
    pub first_steps: Vec<String>,
    /// Skills the work needs.
    pub skills: Vec<String>,
}

/// Collapses every run of whitespace (newlines included) to one space and
/// trims the ends.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to at most `max` characters, ending in `…` when cut. Prefers
/// to cut at a space when one is near the limit.
fn cap_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = text.chars().take(max - 1).collect();
    let keep = match keep.rfind(' ') {
        Some(at) if keep[at..].chars().count() <= 30 && at > 0 => &keep[..at],
        _ => keep.as_str(),
    };
    format!("{}…", keep.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_chars_never_exceeds_its_limit_and_marks_the_cut() {
        assert_eq!(cap_chars("short", 10), "short");
        let cut = cap_chars("one two three four five six", 12);
        assert!(cut.chars().count() <= 12, "{cut}");
        assert!(cut.ends_with('…'));
        let cut = cap_chars("ééééééééééééééé", 5);
        assert_eq!(cut, "éééé…");
        assert_eq!(cap_chars("abc", 0), "");
    }

    #[test]
    fn one_line_collapses_newlines_and_runs_of_spaces() {
        assert_eq!(one_line("  a\n\n b\tc  "), "a b c");
    }
}
