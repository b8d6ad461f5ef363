//! contribot-core's `Platform` over workers-rs bindings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use contribot_core::github::{HttpRequest, HttpResponse};
use contribot_core::messages::QueueMessage;
use contribot_core::platform::{Platform, QueueName};
use contribot_core::sql::{SqlValue, Statement};
use futures::future::{select, Either};
use futures::pin_mut;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    BatchMessageBuilder, D1Database, Delay, Env, Fetch, Headers, Method, Queue, Request,
    RequestInit,
};

/// How long one upstream fetch may take before it counts as a network error.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Set once an invocation of this isolate has been cut off by the
/// `FAULT_CUT_AFTER_SUBREQUESTS` fault, so the fault fires only once.
static CUT_DONE: AtomicBool = AtomicBool::new(false);

/// The bindings one invocation uses.
pub struct WorkerPlatform {
    db: D1Database,
    processing: Option<Queue>,
    scrape: Option<Queue>,
    calls: u32,
    /// Fault injection for the end-to-end suite: the first invocation to
    /// reach this many subrequests is cut off there, as the platform's
    /// subrequest limit would cut it (every later call fails).
    cut_after: Option<u32>,
    cut: bool,
}

impl WorkerPlatform {
    pub fn from_env(env: &Env) -> worker::Result<Self> {
        Ok(WorkerPlatform {
            db: env.d1("DB")?,
            processing: env.queue("PROCESSING_QUEUE").ok(),
            scrape: env.queue("SCRAPE_QUEUE").ok(),
            calls: 0,
            cut_after: crate::config::var(env, "FAULT_CUT_AFTER_SUBREQUESTS")
                .and_then(|v| v.parse().ok()),
            cut: false,
        })
    }

    fn count_call(&mut self) -> Result<(), String> {
        self.calls += 1;
        if self.cut {
            return Err("Too many subrequests. (injected cut-off)".into());
        }
        if let Some(limit) = self.cut_after {
            if self.calls > limit && !CUT_DONE.swap(true, Ordering::SeqCst) {
                self.cut = true;
                return Err("Too many subrequests. (injected cut-off)".into());
            }
        }
        Ok(())
    }

    pub fn db(&self) -> &D1Database {
        &self.db
    }
}

fn bind_value(v: &SqlValue) -> JsValue {
    match v {
        SqlValue::Null => JsValue::NULL,
        SqlValue::Integer(i) => JsValue::from_f64(*i as f64),
        SqlValue::Real(f) => JsValue::from_f64(*f),
        SqlValue::Text(s) => JsValue::from_str(s),
    }
}

/// Run statements as one D1 batch; rows per statement as JSON objects.
pub async fn run_batch(
    db: &D1Database,
    statements: &[Statement],
) -> Result<Vec<Vec<Value>>, String> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let mut prepared = Vec::with_capacity(statements.len());
    for s in statements {
        let params: Vec<JsValue> = s.params.iter().map(bind_value).collect();
        prepared.push(
            db.prepare(s.sql.clone())
                .bind(&params)
                .map_err(|e| e.to_string())?,
        );
    }
    let results = db.batch(prepared).await.map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        if let Some(err) = r.error() {
            return Err(err);
        }
        out.push(r.results::<Value>().map_err(|e| e.to_string())?);
    }
    Ok(out)
}

async fn fetch_once(request: &HttpRequest) -> Result<HttpResponse, String> {
    let headers = Headers::new();
    for (k, v) in &request.headers {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(if request.method == "POST" {
        Method::Post
    } else {
        Method::Get
    });
    init.with_headers(headers);
    if let Some(body) = &request.body {
        init.with_body(Some(JsValue::from_str(body)));
    }
    let req = Request::new_with_init(&request.url, &init).map_err(|e| e.to_string())?;
    let resp = Fetch::Request(req)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status_code();
    let headers: Vec<(String, String)> = resp.headers().entries().collect();
    let body = body_text(resp)
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The whole body, copied into wasm once as UTF-8 bytes: `arrayBuffer()`
/// skips the runtime's decode to a JS string and wasm-bindgen's encode of
/// it back (workers-rs's `text()` also folds the stream chunk by chunk,
/// each chunk a crossing).
async fn body_text(resp: worker::Response) -> Result<String, String> {
    let js: worker::web_sys::Response = resp.into();
    let promise = js.array_buffer().map_err(|e| format!("{e:?}"))?;
    let buffer = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// One fetch with a timeout.
pub async fn fetch(request: &HttpRequest) -> Result<HttpResponse, String> {
    let call = fetch_once(request);
    let timer = Delay::from(FETCH_TIMEOUT);
    pin_mut!(call);
    pin_mut!(timer);
    match select(call, timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(format!(
            "timed out after {}s: {}",
            FETCH_TIMEOUT.as_secs(),
            request.url
        )),
    }
}

impl Platform for WorkerPlatform {
    async fn db_batch(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String> {
        self.count_call()?;
        run_batch(&self.db, statements).await
    }

    async fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
        self.count_call()?;
        fetch(request).await
    }

    async fn send_batch(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        delay_secs: u64,
    ) -> Result<(), String> {
        let q = match queue {
            QueueName::Processing => self.processing.as_ref(),
            QueueName::Scrape => self.scrape.as_ref(),
        }
        .ok_or_else(|| format!("queue {queue:?} is not bound"))?
        .clone();
        self.count_call()?;
        // Typed messages serialise to plain JS objects; a serde_json::Value
        // would become a JS Map, which the queue's JSON encoding drops.
        let mut builder =
            BatchMessageBuilder::<QueueMessage>::new().messages(messages.iter().cloned());
        if delay_secs > 0 {
            builder = builder.delay_seconds(delay_secs.min(43_200) as u32);
        }
        q.send_batch(builder.build())
            .await
            .map_err(|e| e.to_string())
    }

    async fn send_batches(
        &mut self,
        queue: QueueName,
        batches: &[Vec<QueueMessage>],
        delay_secs: u64,
    ) -> Vec<Result<(), String>> {
        // Concurrent sends; each still counts as one call for the fault hook.
        let mut allowed = Vec::with_capacity(batches.len());
        for _ in batches {
            allowed.push(self.count_call());
        }
        let q = match queue {
            QueueName::Processing => self.processing.clone(),
            QueueName::Scrape => self.scrape.clone(),
        };
        let Some(q) = q else {
            return batches
                .iter()
                .map(|_| Err(format!("queue {queue:?} is not bound")))
                .collect();
        };
        let sends = batches.iter().zip(allowed).map(|(b, allowed)| {
            let q = q.clone();
            async move {
                allowed?;
                let mut builder =
                    BatchMessageBuilder::<QueueMessage>::new().messages(b.iter().cloned());
                if delay_secs > 0 {
                    builder = builder.delay_seconds(delay_secs.min(43_200) as u32);
                }
                q.send_batch(builder.build())
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        futures::future::join_all(sends).await
    }

    async fn sleep(&mut self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }

    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}
