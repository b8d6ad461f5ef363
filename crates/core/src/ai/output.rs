//! The checks a model's answer must pass before contribot stores it.
//!
//! Both parsers take the Workers AI `result` object (`{"response": …,
//! "usage": …}`), as the binding returns it or as the REST envelope carries
//! it. They are strict: an answer outside the bounds is rejected, never
//! repaired, and the caller falls back to the heuristic.

use serde_json::{Map, Value};

use super::{
    IssueAnalysis, INTRO_MAX_CHARS, INTRO_MIN_CHARS, MAX_DIFFICULTY, MAX_FIRST_STEPS, MAX_SKILLS,
    MAX_SKILL_CHARS, MAX_STEP_CHARS, MIN_DIFFICULTY, MIN_FIRST_STEPS, SUMMARY_MAX_CHARS,
    SUMMARY_MAX_SENTENCES, SUMMARY_MIN_CHARS, SUMMARY_MIN_SENTENCES,
};

/// Why a model's answer was refused: which field, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOutput {
    #[error("the AI result has no `response`")]
    MissingResponse,
    #[error("`response` is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("`{field}` should be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("`{0}` is missing")]
    MissingField(&'static str),
    #[error("`{0}` is not a field of an issue analysis")]
    UnexpectedField(String),
    #[error("`{field}` {problem}")]
    OutOfBounds { field: String, problem: String },
}

impl InvalidOutput {
    /// The field the answer got wrong (`response` for the answer as a whole).
    pub fn field(&self) -> &str {
        match self {
            InvalidOutput::MissingResponse | InvalidOutput::MalformedJson(_) => "response",
            InvalidOutput::WrongType { field, .. } | InvalidOutput::OutOfBounds { field, .. } => {
                field
            }
            InvalidOutput::MissingField(field) => field,
            InvalidOutput::UnexpectedField(field) => field,
        }
    }
}

const ANALYSIS_FIELDS: [&str; 4] = ["intro", "difficulty", "first_steps", "skills"];

/// A short description of a JSON value, for error messages.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let shown = value.to_string();
    let shown: String = if shown.chars().count() > 40 {
        shown.chars().take(39).chain(['…']).collect()
    } else {
        shown
    };
    format!("{kind} ({shown})")
}

fn wrong_type(field: impl Into<String>, expected: &'static str, found: &Value) -> InvalidOutput {
    InvalidOutput::WrongType {
        field: field.into(),
        expected,
        found: describe(found),
    }
}

fn out_of_bounds(field: impl Into<String>, problem: String) -> InvalidOutput {
    InvalidOutput::OutOfBounds {
        field: field.into(),
        problem,
    }
}

fn response_of(result: &Value) -> Result<&Value, InvalidOutput> {
    match result.get("response") {
        None | Some(Value::Null) => Err(InvalidOutput::MissingResponse),
        Some(response) => Ok(response),
    }
}

/// The JSON inside a model's text answer, allowing one Markdown code fence
/// (```` ```json ```` or bare ```` ``` ````) around it and nothing else.
fn json_in_text(text: &str) -> Result<Value, InvalidOutput> {
    let mut text = text.trim();
    if let Some(fenced) = text.strip_prefix("```") {
        let (info, rest) = fenced.split_once('\n').unwrap_or(("", fenced));
        let info = info.trim();
        if !info.is_empty() && !info.eq_ignore_ascii_case("json") {
            return Err(InvalidOutput::MalformedJson(format!(
                "a code fence of type `{}`, not JSON",
                info.chars().take(20).collect::<String>()
            )));
        }
        text = rest.trim_end();
        text = text.strip_suffix("```").unwrap_or(text).trim();
    }
    serde_json::from_str(text).map_err(|e| InvalidOutput::MalformedJson(e.to_string()))
}

/// A string field, trimmed, with its length (in characters) in `min..=max`.
fn bounded_text(
    field: &str,
    value: &Value,
    min: usize,
    max: usize,
) -> Result<String, InvalidOutput> {
    let Value::String(text) = value else {
        return Err(wrong_type(field, "a string", value));
    };
    let text = text.trim();
    let chars = text.chars().count();
    if chars < min || chars > max {
        let problem = if min <= 1 && chars == 0 {
            "is empty".to_string()
        } else {
            format!("has {chars} characters; expected {min} to {max}")
        };
        return Err(out_of_bounds(field, problem));
    }
    Ok(text.to_string())
}

fn bounded_list(
    field: &'static str,
    value: &Value,
    items: (usize, usize),
    item_chars: (usize, usize),
) -> Result<Vec<String>, InvalidOutput> {
    let Value::Array(list) = value else {
        return Err(wrong_type(field, "an array of strings", value));
    };
    let (min, max) = items;
    if list.len() < min || list.len() > max {
        return Err(out_of_bounds(
            field,
            format!("has {} items; expected {min} to {max}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| bounded_text(&format!("{field}[{i}]"), item, item_chars.0, item_chars.1))
        .collect()
}

fn difficulty(value: &Value) -> Result<u8, InvalidOutput> {
    const EXPECTED: &str = "an integer from 1 to 5";
    let Value::Number(n) = value else {
        return Err(wrong_type("difficulty", EXPECTED, value));
    };
    let Some(d) = n.as_i64() else {
        return Err(wrong_type("difficulty", EXPECTED, value));
    };
    match u8::try_from(d) {
        Ok(d) if (MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(&d) => Ok(d),
        _ => Err(out_of_bounds(
            "difficulty",
            format!("is {d}; expected {MIN_DIFFICULTY} to {MAX_DIFFICULTY}"),
        )),
    }
}

fn required<'v>(
    map: &'v Map<String, Value>,
    field: &'static str,
) -> Result<&'v Value, InvalidOutput> {
    map.get(field).ok_or(InvalidOutput::MissingField(field))
}

/// The issue analysis in a Workers AI `result`.
///
/// `response` may be the object itself (JSON mode) or a string holding it,
/// optionally inside one ```` ```json ```` fence. The object must have
/// exactly the four fields of [`IssueAnalysis`]:
///
/// * `intro`: a string of 20..=600 characters (after trimming);
/// * `difficulty`: an integer 1..=5 (not `2.5`, not `"3"`);
/// * `first_steps`: 1..=6 non-empty strings of at most 300 characters;
/// * `skills`: 0..=8 strings of 1..=40 characters.
///
/// Strings are returned trimmed.
pub fn parse_issue_analysis(result: &Value) -> Result<IssueAnalysis, InvalidOutput> {
    let parsed;
    let answer = match response_of(result)? {
        Value::String(text) => {
            parsed = json_in_text(text)?;
            &parsed
        }
        other => other,
    };
    let Value::Object(map) = answer else {
        return Err(wrong_type("response", "a JSON object", answer));
    };
    if let Some(extra) = map.keys().find(|k| !ANALYSIS_FIELDS.contains(&k.as_str())) {
        return Err(InvalidOutput::UnexpectedField(extra.clone()));
    }
    Ok(IssueAnalysis {
        intro: bounded_text(
            "intro",
            required(map, "intro")?,
            INTRO_MIN_CHARS,
            INTRO_MAX_CHARS,
        )?,
        difficulty: difficulty(required(map, "difficulty")?)?,
        first_steps: bounded_list(
            "first_steps",
            required(map, "first_steps")?,
            (MIN_FIRST_STEPS, MAX_FIRST_STEPS),
            (1, MAX_STEP_CHARS),
        )?,
        skills: bounded_list(
            "skills",
            required(map, "skills")?,
            (0, MAX_SKILLS),
            (1, MAX_SKILL_CHARS),
        )?,
    })
}

/// The repo summary in a Workers AI `result`: `response` must be plain text
/// of 2..=4 sentences and 40..=800 characters once trimmed. Text that opens
/// like JSON or a code block is refused: the model was asked for prose.
pub fn parse_repo_summary(result: &Value) -> Result<String, InvalidOutput> {
    let response = response_of(result)?;
    let Value::String(text) = response else {
        return Err(wrong_type("response", "a string", response));
    };
    let text = text.trim();
    if text.starts_with(['{', '[', '`']) {
        return Err(InvalidOutput::WrongType {
            field: "response".into(),
            expected: "plain sentences",
            found: "text that starts like JSON or a code block".into(),
        });
    }
    let chars = text.chars().count();
    if !(SUMMARY_MIN_CHARS..=SUMMARY_MAX_CHARS).contains(&chars) {
        return Err(out_of_bounds(
            "response",
            format!("has {chars} characters; expected {SUMMARY_MIN_CHARS} to {SUMMARY_MAX_CHARS}"),
        ));
    }
    let sentences = count_sentences(text);
    if !(SUMMARY_MIN_SENTENCES..=SUMMARY_MAX_SENTENCES).contains(&sentences) {
        return Err(out_of_bounds(
            "response",
            format!(
                "has {sentences} sentences; expected {SUMMARY_MIN_SENTENCES} to {SUMMARY_MAX_SENTENCES}"
            ),
        ));
    }
    Ok(text.to_string())
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

/// Characters that may follow a sentence's final punctuation.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '*' | '_' | '`'
    )
}

/// Abbreviations whose period does not end a sentence.
fn ends_with_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("")
        .trim_start_matches(['(', '"', '\''])
        .to_ascii_lowercase();
    matches!(word.as_str(), "e.g" | "i.e" | "cf" | "vs" | "approx")
}

/// The sentences of `text`, trimmed, each with its final punctuation.
///
/// A sentence ends at `.`, `!`, `?` or `…` (possibly repeated, possibly followed
/// by closing quotes or brackets) followed by whitespace or the end of the
/// text, except after `e.g.`, `i.e.`, `cf.`, `vs.` and `approx.`. A period
/// inside a word (`socket.io`, `v1.2`) ends nothing. A final fragment without
/// punctuation counts as a sentence; fragments without a letter or digit do
/// not count at all.
pub(super) fn sentences(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if !is_terminator(c) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |&(e, _)| e);
        let boundary = chars.get(j).is_none_or(|&(_, next)| next.is_whitespace());
        if boundary && !(c == '.' && ends_with_abbreviation(&text[start..at])) {
            let sentence = text[start..end].trim();
            if sentence.chars().any(char::is_alphanumeric) {
                out.push(sentence);
            }
            start = end;
        }
        i = j;
    }
    let rest = text[start..].trim();
    if rest.chars().any(char::is_alphanumeric) {
        out.push(rest);
    }
    out
}

/// How many sentences `text` holds, by the rule [`parse_repo_summary`] uses.
pub fn count_sentences(text: &str) -> usize {
    sentences(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_final_punctuation_only() {
        assert_eq!(
            sentences("socket.io is fast. It has v1.2! Does it?"),
            vec!["socket.io is fast.", "It has v1.2!", "Does it?"]
        );
        assert_eq!(count_sentences("Tools, e.g. linters, help. Really"), 2);
        assert_eq!(count_sentences("He said \"stop.\" Then left."), 2);
        assert_eq!(count_sentences("... !!! ?"), 0);
        assert_eq!(count_sentences(""), 0);
    }

    #[test]
    fn fences_of_other_languages_are_not_json() {
        let err = json_in_text("```python\n{}\n```").unwrap_err();
        assert!(matches!(err, InvalidOutput::MalformedJson(_)), "{err}");
        assert_eq!(json_in_text("```\n{\"a\": 1}\n```").unwrap()["a"], 1);
    }
}
