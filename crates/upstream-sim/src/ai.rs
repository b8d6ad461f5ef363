//! The Workers AI stand-in: the REST endpoint
//! `/client/v4/accounts/{account}/ai/run/{model}` in Cloudflare's envelope,
//! and `/_sim/ai-binding/{model}` for the Miniflare `AI` binding shim. Both
//! validate the text-generation input contract and answer deterministically
//! from the seed and the input, synthesising JSON that satisfies a given
//! JSON schema.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value as Json};

use crate::faults::FaultKind;
use crate::gateway::{bearer_token, AiCall, AiFault, AiFaultApplied};
use crate::rng::{hash_str, key, Rng};
use crate::sim::Sim;

const MAX_BODY: usize = 4 << 20;

/// Why an AI call failed, in Cloudflare's terms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AiFailure {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl AiFailure {
    fn bad_input(detail: impl std::fmt::Display) -> Self {
        AiFailure {
            status: 400,
            code: 5006,
            message: format!("AiError: Bad input: {detail}"),
        }
    }

    fn quota() -> Self {
        AiFailure {
            status: 429,
            code: 4006,
            message: "you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage.".into(),
        }
    }

    fn outcome(&self) -> &'static str {
        match self.code {
            5006 => "invalid_input",
            5007 => "unknown_model",
            10000 => "unauthorized",
            4006 => "quota_exhausted",
            _ => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema(Json),
}

/// A validated text-generation input.
#[derive(Debug, Clone)]
struct AiRequest {
    /// All message contents (or the prompt), for usage accounting.
    input_chars: usize,
    /// The text answers are drawn from: user messages, else the prompt.
    source: String,
    max_tokens: Option<u64>,
    format: ResponseFormat,
    canonical: String,
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn mismatch(path: &str, v: &Json, want: &str) -> AiFailure {
    AiFailure::bad_input(format!(
        "Type mismatch of '{path}', '{}' not in '{want}'",
        json_type(v)
    ))
}

fn parse_request(body: &[u8]) -> Result<AiRequest, AiFailure> {
    let value: Json = serde_json::from_slice(body)
        .map_err(|e| AiFailure::bad_input(format!("request body is not valid JSON ({e})")))?;
    let Json::Object(obj) = &value else {
        return Err(mismatch("/", &value, "object"));
    };
    let has_messages = obj.contains_key("messages");
    let has_prompt = obj.contains_key("prompt");
    if has_messages == has_prompt {
        return Err(AiFailure::bad_input(format!(
            "Error: oneOf at '/' not met, {} matches (send exactly one of 'prompt' or 'messages')",
            usize::from(has_messages) + usize::from(has_prompt)
        )));
    }
    let (input_chars, source) = if let Some(p) = obj.get("prompt") {
        let Json::String(p) = p else {
            return Err(mismatch("/prompt", p, "string"));
        };
        if p.is_empty() {
            return Err(AiFailure::bad_input(
                "String at '/prompt' is shorter than 1 characters",
            ));
        }
        (p.chars().count(), p.clone())
    } else {
        let m = &obj["messages"];
        let Json::Array(list) = m else {
            return Err(mismatch("/messages", m, "array"));
        };
        if list.is_empty() {
            return Err(AiFailure::bad_input(
                "Array at '/messages' has fewer than 1 items",
            ));
        }
        let mut chars = 0;
        let mut user_text = String::new();
        let mut any_text = String::new();
        for (i, msg) in list.iter().enumerate() {
            let path = format!("/messages/{i}");
            let Json::Object(msg) = msg else {
                return Err(mismatch(&path, msg, "object"));
            };
            for required in ["role", "content"] {
                if !msg.contains_key(required) {
                    return Err(AiFailure::bad_input(format!(
                        "Required properties missing at '{path}': '{required}'"
                    )));
                }
            }
            let role = &msg["role"];
            if !matches!(
                role.as_str(),
                Some("system" | "user" | "assistant" | "tool")
            ) {
                return Err(AiFailure::bad_input(format!(
                    "Value of '{path}/role' is not one of system, user, assistant, tool"
                )));
            }
            let Json::String(content) = &msg["content"] else {
                return Err(mismatch(
                    &format!("{path}/content"),
                    &msg["content"],
                    "string",
                ));
            };
            chars += content.chars().count();
            if role == "user" {
                user_text.push_str(content);
                user_text.push('\n');
            }
            any_text.push_str(content);
            any_text.push('\n');
        }
        (
            chars,
            if user_text.is_empty() {
                any_text
            } else {
                user_text
            },
        )
    };
    let max_tokens = match obj.get("max_tokens") {
        None | Some(Json::Null) => None,
        Some(v) => match v.as_u64().or_else(|| v.as_i64().map(|_| 0)) {
            Some(n) if json_type(v) == "integer" => {
                if !(1..=4096).contains(&n) {
                    return Err(AiFailure::bad_input(
                        "Value of '/max_tokens' must be between 1 and 4096",
                    ));
                }
                Some(n)
            }
            _ => return Err(mismatch("/max_tokens", v, "integer")),
        },
    };
    match obj.get("temperature") {
        None | Some(Json::Null) => {}
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=5.0).contains(&t) => {}
            Some(_) => {
                return Err(AiFailure::bad_input(
                    "Value of '/temperature' must be between 0 and 5",
                ))
            }
            None => return Err(mismatch("/temperature", v, "number")),
        },
    }
    if let Some(s) = obj.get("stream") {
        match s {
            Json::Bool(false) | Json::Null => {}
            Json::Bool(true) => {
                return Err(AiFailure::bad_input(
                    "'/stream' true is not simulated; send stream: false",
                ))
            }
            other => return Err(mismatch("/stream", other, "boolean")),
        }
    }
    let format = match obj.get("response_format") {
        None | Some(Json::Null) => ResponseFormat::Text,
        Some(Json::Object(rf)) => match rf.get("type").and_then(Json::as_str) {
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => match rf.get("json_schema") {
                Some(Json::Object(s)) => {
                    // Accept OpenAI's `{name, schema}` wrapper as well as a bare schema.
                    let schema = match s.get("schema") {
                        Some(inner @ Json::Object(_))
                            if !s.contains_key("type") && !s.contains_key("properties") =>
                        {
                            inner.clone()
                        }
                        _ => Json::Object(s.clone()),
                    };
                    ResponseFormat::JsonSchema(schema)
                }
                Some(other) => {
                    return Err(mismatch("/response_format/json_schema", other, "object"))
                }
                None => {
                    return Err(AiFailure::bad_input(
                        "Required properties missing at '/response_format': 'json_schema'",
                    ))
                }
            },
            _ => {
                return Err(AiFailure::bad_input(
                    "Value of '/response_format/type' is not one of json_object, json_schema",
                ))
            }
        },
        Some(other) => return Err(mismatch("/response_format", other, "object")),
    };
    Ok(AiRequest {
        input_chars,
        source,
        max_tokens,
        format,
        canonical: value.to_string(),
    })
}

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "are",
    "was",
    "you",
    "your",
    "have",
    "has",
    "not",
    "but",
    "can",
    "will",
    "into",
    "about",
    "what",
    "when",
    "which",
    "their",
    "there",
    "they",
    "them",
    "then",
    "than",
    "should",
    "would",
    "could",
    "been",
    "being",
    "its",
    "our",
    "json",
    "return",
    "only",
    "please",
    "following",
    "issue",
    "title",
    "body",
    "https",
    "http",
];

/// Content words of the input, in order, with duplicates removed.
fn words_of(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_') {
        let w = w.trim_matches(|c: char| c == '-' || c == '_');
        if w.chars().count() < 3 || w.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let lower = w.to_lowercase();
        if STOPWORDS.contains(&lower.as_str()) || out.iter().any(|o| o.to_lowercase() == lower) {
            continue;
        }
        out.push(w.to_string());
    }
    if out.is_empty() {
        out = ["project", "contributor", "change", "tests", "documentation"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    out
}

/// Draws words and sentences from the input deterministically.
struct Composer {
    rng: Rng,
    words: Vec<String>,
}

impl Composer {
    fn word(&mut self) -> String {
        self.rng.pick(&self.words).clone()
    }

    fn sentence(&mut self) -> String {
        let (a, b) = (self.word(), self.word());
        match self.rng.below(6) {
            0 => format!("This task centres on {a} and {b}."),
            1 => format!("A newcomer should start by reading the code around {a}."),
            2 => format!("Expect to touch {a} and add a small test for {b}."),
            3 => format!("It looks approachable for someone comfortable with {a}."),
            4 => format!("The change mostly concerns {a}, with a little {b}."),
            _ => format!("Begin by reproducing the behaviour involving {a}."),
        }
    }

    fn text(&mut self, min: usize, max: usize) -> String {
        let mut s = self.sentence();
        while s.chars().count() < min {
            s.push(' ');
            s.push_str(&self.sentence());
        }
        if s.chars().count() > max {
            s = s
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_string();
            while s.chars().count() < min {
                s.push('.');
            }
        }
        s
    }

    fn synth(&mut self, schema: &Json, depth: usize) -> Json {
        if depth > 12 {
            return Json::Null;
        }
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(Json::Array(options)) = schema.get("enum") {
            if !options.is_empty() {
                return self.rng.pick(options).clone();
            }
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(Json::Array(alts)) = schema.get(combinator) {
                if let Some(first) = alts.iter().find(|a| a.get("type") != Some(&json!("null"))) {
                    return self.synth(first, depth + 1);
                }
            }
        }
        let ty = match schema.get("type") {
            Some(Json::String(t)) => t.clone(),
            Some(Json::Array(ts)) => ts
                .iter()
                .filter_map(Json::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null")
                .to_string(),
            _ if schema.get("properties").is_some() => "object".into(),
            _ if schema.get("items").is_some() => "array".into(),
            _ => "string".into(),
        };
        let num = |k: &str| schema.get(k).and_then(Json::as_f64);
        match ty.as_str() {
            "object" => {
                let mut out = Map::new();
                if let Some(Json::Object(props)) = schema.get("properties") {
                    for (name, sub) in props {
                        out.insert(name.clone(), self.synth(sub, depth + 1));
                    }
                }
                Json::Object(out)
            }
            "array" => {
                let min = schema.get("minItems").and_then(Json::as_u64).unwrap_or(1) as usize;
                let max = schema
                    .get("maxItems")
                    .and_then(Json::as_u64)
                    .map_or(min.max(3), |m| m as usize)
                    .max(min);
                let n = self.rng.range(min as u64, max as u64) as usize;
                let items = schema
                    .get("items")
                    .cloned()
                    .unwrap_or(json!({"type": "string"}));
                let mut out: Vec<Json> = Vec::with_capacity(n);
                let mut tries = 0;
                while out.len() < n && tries < n * 6 + 10 {
                    tries += 1;
                    let v = self.synth(&items, depth + 1);
                    if !out.contains(&v) || tries > n * 4 {
                        out.push(v);
                    }
                }
                Json::Array(out)
            }
            "integer" => {
                let lo = num("minimum")
                    .or_else(|| num("exclusiveMinimum").map(|v| v.floor() + 1.0))
                    .map(|v| v.ceil() as i64);
                let hi = num("maximum")
                    .or_else(|| num("exclusiveMaximum").map(|v| v.ceil() - 1.0))
                    .map(|v| v.floor() as i64);
                let (lo, hi) = match (lo, hi) {
                    (Some(l), Some(h)) => (l, h.max(l)),
                    (Some(l), None) => (l, l + 9),
                    (None, Some(h)) => (h - 9, h),
                    (None, None) => (1, 10),
                };
                json!(lo + self.rng.below((hi - lo + 1) as u64) as i64)
            }
            "number" => {
                let lo = num("minimum").unwrap_or(0.0);
                let hi = num("maximum").unwrap_or(lo + 1.0).max(lo);
                let v = lo + crate::rng::unit(self.rng.next_u64()) * (hi - lo);
                json!((v * 100.0).round() / 100.0)
            }
            "boolean" => json!(self.rng.chance(0.5)),
            "null" => Json::Null,
            _ => {
                let min = schema.get("minLength").and_then(Json::as_u64).unwrap_or(0) as usize;
                let max = schema
                    .get("maxLength")
                    .and_then(Json::as_u64)
                    .map_or(usize::MAX, |m| m as usize)
                    .max(min);
                match schema.get("format").and_then(Json::as_str) {
                    Some("date-time") => "2024-05-01T12:00:00Z".into(),
                    Some("date") => "2024-05-01".into(),
                    Some("uri" | "url") => {
                        format!("https://example.org/{}", self.word().to_lowercase()).into()
                    }
                    _ if max < 24 => {
                        let mut w = self.word();
                        while w.chars().count() < min {
                            w.push_str(&self.word());
                        }
                        w.chars().take(max).collect::<String>().into()
                    }
                    _ => self.text(min.max(1), max.min(400).max(min)).into(),
                }
            }
        }
    }
}

/// The contribution brief produced for `json_object` without a schema.
fn default_brief(c: &mut Composer) -> Json {
    let steps: Vec<String> = (0..3)
        .map(|i| match i {
            0 => format!("Read the code that handles {}.", c.word()),
            1 => format!("Reproduce the problem with {} locally.", c.word()),
            _ => format!(
                "Open a pull request that updates {} and its tests.",
                c.word()
            ),
        })
        .collect();
    let n_skills = c.rng.range(2, 4) as usize;
    let mut pool: Vec<String> = c.words.iter().map(|w| w.to_lowercase()).collect();
    pool.dedup();
    c.rng.shuffle(&mut pool);
    let skills: Vec<String> = pool.into_iter().take(n_skills).collect();
    json!({
        "intro": c.text(40, 240),
        "difficulty": c.rng.range(1, 5),
        "first_steps": steps,
        "skills": skills,
    })
}

fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Runs the model: a `result` object, and whether a fault was applied.
fn run_model(
    seed: u64,
    model: &str,
    req: &AiRequest,
    fault: Option<FaultKind>,
) -> Result<(Json, bool), AiFailure> {
    if fault == Some(FaultKind::AiQuotaExhausted) {
        return Err(AiFailure::quota());
    }
    let mut c = Composer {
        rng: Rng::new(key(&[seed, hash_str(model), hash_str(&req.canonical)])),
        words: words_of(&req.source),
    };
    let mut applied = false;
    let response: Json = match &req.format {
        ResponseFormat::Text => {
            let n = c.rng.range(2, 4);
            let mut text = (0..n).map(|_| c.sentence()).collect::<Vec<_>>().join(" ");
            let cap = req.max_tokens.unwrap_or(256) as usize * 4;
            if text.chars().count() > cap {
                text = text.chars().take(cap).collect();
            }
            if fault == Some(FaultKind::AiMalformedJson) {
                applied = true;
                let brief = default_brief(&mut c).to_string();
                Json::String(brief[..brief.len() * 2 / 3].to_string())
            } else {
                Json::String(text)
            }
        }
        ResponseFormat::JsonObject | ResponseFormat::JsonSchema(_) => {
            let schema = match &req.format {
                ResponseFormat::JsonSchema(s) => Some(s),
                _ => None,
            };
            let mut obj = match schema {
                Some(s) => c.synth(s, 0),
                None => default_brief(&mut c),
            };
            match fault {
                Some(FaultKind::AiMalformedJson) => {
                    applied = true;
                    let text = obj.to_string();
                    let mut cut = text.len() * 2 / 3;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    obj = Json::String(text[..cut].to_string());
                }
                Some(FaultKind::AiMissingFields) => {
                    applied = drop_required(&mut obj, schema);
                }
                Some(FaultKind::AiOutOfRange) => {
                    applied = push_out_of_range(&mut obj, schema);
                }
                _ => {}
            }
            obj
        }
    };
    let completion_chars = match &response {
        Json::String(s) => s.chars().count(),
        other => other.to_string().chars().count(),
    };
    let (p, q) = (tokens(req.input_chars), tokens(completion_chars));
    Ok((
        json!({
            "response": response,
            "usage": {"prompt_tokens": p, "completion_tokens": q, "total_tokens": p + q},
        }),
        applied,
    ))
}

/// Removes required properties (half of them, at least one).
fn drop_required(obj: &mut Json, schema: Option<&Json>) -> bool {
    let required: Vec<String> = match schema {
        Some(s) => s
            .get("required")
            .and_then(Json::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        None => vec!["difficulty".into(), "first_steps".into()],
    };
    let Json::Object(map) = obj else { return false };
    let n = required.len().div_ceil(2);
    let mut removed = false;
    for name in required.iter().take(n.max(1)) {
        removed |= map.remove(name).is_some();
    }
    removed
}

/// Pushes bounded integers past their maximum (a 1–5 difficulty becomes 9).
fn push_out_of_range(obj: &mut Json, schema: Option<&Json>) -> bool {
    let Json::Object(map) = obj else { return false };
    let mut changed = false;
    match schema
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
    {
        Some(props) => {
            for (name, sub) in props {
                if sub.get("type").and_then(Json::as_str) == Some("integer") {
                    let max = sub.get("maximum").and_then(Json::as_i64).unwrap_or(5);
                    map.insert(name.clone(), json!(max + 4));
                    changed = true;
                }
            }
        }
        None => {
            map.insert("difficulty".into(), json!(9));
            changed = true;
        }
    }
    changed
}

fn check_model(model: &str) -> Result<(), AiFailure> {
    if (model.starts_with("@cf/") || model.starts_with("@hf/")) && model.len() > 4 {
        Ok(())
    } else {
        Err(AiFailure {
            status: 400,
            code: 5007,
            message: format!("No such model {model} or task"),
        })
    }
}

fn json_response(status: u16, body: &Json) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn read(req: Request) -> (Option<FaultKind>, Vec<u8>) {
    let fault = req.extensions().get::<AiFault>().map(|f| f.0);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (fault, bytes)
}

/// A model's answer: the `result`, whether a fault shaped it, and the
/// (day, neurons) it was billed.
struct Answer {
    result: Json,
    applied: bool,
    billed: (String, f64),
}

/// Validates, enforces the daily neuron allocation, runs the model and
/// bills the call's tokens at the model's rates.
fn call(
    sim: &Sim,
    model: &str,
    fault: Option<FaultKind>,
    body: &[u8],
) -> Result<Answer, AiFailure> {
    check_model(model)?;
    let req = parse_request(body)?;
    if fault != Some(FaultKind::AiQuotaExhausted) && !sim.neurons().allows_a_call() {
        return Err(AiFailure::quota());
    }
    let (result, applied) = run_model(sim.config.seed, model, &req, fault)?;
    let usage = &result["usage"];
    let cost = crate::neurons::neurons(
        model,
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["completion_tokens"].as_u64().unwrap_or(0),
    );
    let day = sim.neurons().charge(cost);
    Ok(Answer {
        result,
        applied,
        billed: (day, cost),
    })
}

fn tag(
    resp: &mut Response<Body>,
    model: &str,
    outcome: &str,
    applied: bool,
    neurons: Option<(String, f64)>,
) {
    resp.extensions_mut().insert(AiCall {
        model: model.to_string(),
        outcome: outcome.to_string(),
        neurons,
    });
    if applied {
        resp.extensions_mut().insert(AiFaultApplied);
    }
}

fn outcome_of(fault: Option<FaultKind>, applied: bool) -> String {
    match fault {
        Some(k) if applied => format!("fault:{}", k.name()),
        _ => "ok".into(),
    }
}

/// Whether a failure is the injected quota fault (not the enforced quota).
fn injected_quota(f: &AiFailure, fault: Option<FaultKind>) -> bool {
    f.code == 4006 && fault == Some(FaultKind::AiQuotaExhausted)
}

/// `POST /client/v4/accounts/{account}/ai/run/{model}`.
pub(crate) async fn run_rest(
    State(sim): State<Arc<Sim>>,
    Path((_account, model)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response<Body> {
    let (fault, body) = read(req).await;
    if bearer_token(&headers).is_none() {
        let f = AiFailure {
            status: 401,
            code: 10000,
            message: "Authentication error".into(),
        };
        let mut resp = json_response(401, &envelope_error(&f));
        tag(&mut resp, &model, f.outcome(), false, None);
        return resp;
    }
    match call(&sim, &model, fault, &body) {
        Ok(a) => {
            let mut resp = json_response(
                200,
                &json!({"result": a.result, "success": true, "errors": [], "messages": []}),
            );
            let outcome = outcome_of(fault, a.applied);
            tag(&mut resp, &model, &outcome, a.applied, Some(a.billed));
            resp
        }
        Err(f) => {
            let mut resp = json_response(f.status, &envelope_error(&f));
            tag(
                &mut resp,
                &model,
                f.outcome(),
                injected_quota(&f, fault),
                None,
            );
            resp
        }
    }
}

fn envelope_error(f: &AiFailure) -> Json {
    json!({"result": null, "success": false, "errors": [{"code": f.code, "message": f.message}], "messages": []})
}

/// `POST /_sim/ai-binding/{model}`: the bare `result`, or `{"error": …}`.
pub(crate) async fn run_binding(
    State(sim): State<Arc<Sim>>,
    Path(model): Path<String>,
    req: Request,
) -> Response<Body> {
    let (fault, body) = read(req).await;
    match call(&sim, &model, fault, &body) {
        Ok(a) => {
            let mut resp = json_response(200, &a.result);
            let outcome = outcome_of(fault, a.applied);
            tag(&mut resp, &model, &outcome, a.applied, Some(a.billed));
            resp
        }
        Err(f) => {
            let mut resp = json_response(
                f.status,
                &json!({"error": {"code": f.code, "message": f.message}}),
            );
            tag(
                &mut resp,
                &model,
                f.outcome(),
                injected_quota(&f, fault),
                None,
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: Json) -> Result<AiRequest, AiFailure> {
        parse_request(body.to_string().as_bytes())
    }

    #[test]
    fn prompt_and_messages_are_mutually_exclusive() {
        let both = req(json!({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}));
        assert_eq!(both.unwrap_err().code, 5006);
        assert!(req(json!({})).is_err());
        assert!(req(json!({"prompt": "hello"})).is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let e = req(json!({"prompt": "x", "max_tokens": "10"})).unwrap_err();
        assert!(e.message.contains("/max_tokens"), "{}", e.message);
        let e = req(json!({"messages": [{"role": "robot", "content": "x"}]})).unwrap_err();
        assert!(e.message.contains("/messages/0/role"), "{}", e.message);
        let e = req(json!({"prompt": "x", "temperature": 9})).unwrap_err();
        assert!(e.message.contains("/temperature"), "{}", e.message);
    }

    #[test]
    fn schema_synthesis_respects_bounds() {
        let schema = json!({
            "type": "object",
            "required": ["summary", "difficulty", "skills", "level"],
            "properties": {
                "summary": {"type": "string", "minLength": 20, "maxLength": 60},
                "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
                "skills": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
                "level": {"enum": ["easy", "medium"]}
            }
        });
        let r = req(json!({
            "messages": [{"role": "user", "content": "Fix the tokenizer crash in parser module"}],
            "response_format": {"type": "json_schema", "json_schema": schema}
        }))
        .unwrap();
        let (result, _) = run_model(1, "@cf/meta/llama-3.1-8b-instruct", &r, None).unwrap();
        let out = &result["response"];
        let summary = out["summary"].as_str().unwrap();
        assert!((20..=60).contains(&summary.chars().count()), "{summary}");
        let d = out["difficulty"].as_i64().unwrap();
        assert!((1..=5).contains(&d));
        let skills = out["skills"].as_array().unwrap();
        assert!((2..=4).contains(&skills.len()));
        assert!(["easy", "medium"].contains(&out["level"].as_str().unwrap()));
    }

    #[test]
    fn different_inputs_give_different_outputs() {
        let run = |text: &str| {
            let r = req(json!({"prompt": text})).unwrap();
            run_model(1, "@cf/m", &r, None).unwrap().0["response"].clone()
        };
        assert_eq!(run("alpha beta gamma"), run("alpha beta gamma"));
        assert_ne!(run("alpha beta gamma"), run("delta epsilon zeta"));
    }
}
