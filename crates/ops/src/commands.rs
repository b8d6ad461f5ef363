//! The commands: each asks the API through [`AdminClient`], prints, and
//! says how it ended. The only module that prints, sleeps or reads a clock.

use std::io::{self, Read, Write};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cli::{Cli, Command, EnqueueArgs, LogsArgs, ReprocessArgs, RunArgs, StatusArgs};
use crate::client::{parse_base_url, AdminClient, ApiError};
use crate::dates;
use crate::enqueue::{parse_url_list, request_bodies, EnqueueItem, EnqueueTotals};
use crate::logs::{format_record, parse_ndjson, FollowState, LogLine, LogQuery, Truncation};
use crate::progress::{find_run, progress_line, run_state, RunProgress, RunState};
use crate::reprocess::{render_reprocess, ReprocessTarget};
use crate::status::{render_status, StatusReport};

/// The shortest pause between two polls, whatever `--interval` says.
const MIN_POLL: Duration = Duration::from_millis(100);

/// How a command failed; [`OpsError::exit_code`] maps it to the process's.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Bad arguments or input files (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A later request of a chunked command failed after earlier ones took effect.
    #[error("{done}; then {source}")]
    Partial { done: String, source: ApiError },
    /// The API answered 2xx with something this CLI cannot read.
    #[error("unexpected answer from {route}: {detail}")]
    Shape { route: &'static str, detail: String },
    #[error("run {run_id} failed: {reason}")]
    RunFailed { run_id: String, reason: String },
    /// `--timeout` passed; `what` says what was still going on.
    #[error("gave up after {waited}: {what}; it goes on in the worker (check with `ops status`)")]
    Timeout { what: String, waited: String },
    /// Some enqueued items were rejected by the API (listed above).
    #[error("{0}")]
    Rejected(String),
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

impl OpsError {
    /// 0 ok, 1 API or run failure, 2 usage, 3 connection problems.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Usage(_) => 2,
            OpsError::Api(e) | OpsError::Partial { source: e, .. } => e.exit_code(),
            _ => 1,
        }
    }

    /// Output went to a pipe that closed (`ops logs | head`): not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, OpsError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Where output goes: results to stdout; notes to stdout for a person, to
/// stderr under `--json` so stdout stays one JSON document per line.
struct Output {
    json: bool,
}

impl Output {
    fn text(&self, text: &str) -> Result<(), OpsError> {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(OpsError::Output)
    }

    fn line(&self, line: &str) -> Result<(), OpsError> {
        self.text(&format!("{line}\n"))
    }

    fn json(&self, value: &Value) -> Result<(), OpsError> {
        self.line(&value.to_string())
    }

    fn note(&self, note: &str) -> Result<(), OpsError> {
        if self.json {
            eprintln!("{note}");
            Ok(())
        } else {
            self.line(note)
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Run the command `cli` names.
pub fn execute(cli: &Cli) -> Result<(), OpsError> {
    let base = parse_base_url(&cli.url).map_err(OpsError::Usage)?;
    let token = cli
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            OpsError::Usage(
                "no admin token: pass --token or set ADMIN_TOKEN (the scraper's ADMIN_TOKEN secret)".into(),
            )
        })?;
    let client = AdminClient::new(base, token)?;
    let out = Output { json: cli.json };
    match &cli.command {
        Command::Status(args) => status(&client, args, &out),
        Command::Run(args) => run(&client, args, &out),
        Command::Cancel => cancel(&client, &out),
        Command::Enqueue(args) => enqueue(&client, args, &out),
        Command::Reprocess(args) => reprocess(&client, args, &out),
        Command::Logs(args) => logs(&client, args, &out),
    }
}

fn parse_report(value: &Value) -> Result<StatusReport, OpsError> {
    serde_json::from_value(value.clone()).map_err(|e| OpsError::Shape {
        route: "/admin/status",
        detail: e.to_string(),
    })
}

fn status(client: &AdminClient, args: &StatusArgs, out: &Output) -> Result<(), OpsError> {
    let value = client.get_json("/admin/status", &args.query())?;
    if out.json {
        return out.json(&value);
    }
    out.text(&render_status(&parse_report(&value)?, now_ms()))
}

fn run(client: &AdminClient, args: &RunArgs, out: &Output) -> Result<(), OpsError> {
    let (status, reply) = client.post_json("/admin/run", &json!({}), &[409])?;
    if out.json {
        out.json(&reply)?;
    }
    let run_id = reply
        .get("run_id")
        .and_then(Value::as_str)
        .ok_or_else(|| OpsError::Shape {
            route: "/admin/run",
            detail: format!("no run_id in {reply}"),
        })?
        .to_string();
    if status == 409 {
        out.note(&format!(
            "a run is already in progress: following run {run_id}"
        ))?;
    } else {
        out.note(&format!("started run {run_id}"))?;
    }
    follow_run(client, &run_id, args, out)
}

fn cancel(client: &AdminClient, out: &Output) -> Result<(), OpsError> {
    let (status, reply) = client.post_json("/admin/run/cancel", &json!({}), &[409])?;
    if out.json {
        return out.json(&reply);
    }
    match reply.get("run_id").and_then(Value::as_str) {
        Some(run_id) if status == 200 => out.note(&format!("cancelled run {run_id}")),
        _ => out.note("no run is in progress: nothing to cancel"),
    }
}

/// Poll `/admin/status` until the run ends (and, with `--wait-processing`,
/// the backlog drains), printing a line whenever something changed.
fn follow_run(
    client: &AdminClient,
    run_id: &str,
    args: &RunArgs,
    out: &Output,
) -> Result<(), OpsError> {
    let started = Instant::now();
    let mut prev: Option<RunProgress> = None;
    let mut said_draining = false;
    loop {
        let value = client.get_json("/admin/status", &[])?;
        let report = parse_report(&value)?;
        let run = find_run(&report, run_id).ok_or_else(|| OpsError::Shape {
            route: "/admin/status",
            detail: format!("run {run_id} is not among the runs it lists"),
        })?;
        let progress = RunProgress::of(run, &report.backlog);
        let elapsed = started.elapsed();
        if prev.as_ref() != Some(&progress) {
            if out.json {
                let raw_run = value["runs"]
                    .as_array()
                    .and_then(|runs| runs.iter().find(|r| r["id"] == run_id))
                    .cloned()
                    .unwrap_or(Value::Null);
                out.json(&json!({"run": raw_run, "backlog": value["backlog"]}))?;
            } else if let Some(line) =
                progress_line(prev.as_ref(), &progress, elapsed.as_millis() as i64)
            {
                out.line(&line)?;
            }
        }
        prev = Some(progress);
        match run_state(run, &report.backlog, args.wait_processing) {
            RunState::Running => {}
            RunState::Draining => {
                if !said_draining {
                    out.note(&format!(
                        "run {run_id} completed; waiting for the processing backlog to drain"
                    ))?;
                    said_draining = true;
                }
            }
            RunState::Done => return out.note(&run.summary(now_ms())),
            RunState::Failed(reason) => {
                out.note(&run.summary(now_ms()))?;
                return Err(OpsError::RunFailed {
                    run_id: run_id.to_string(),
                    reason,
                });
            }
        }
        if elapsed >= args.timeout {
            let what = if said_draining {
                format!("run {run_id} completed but the processing backlog is not empty yet")
            } else {
                format!("run {run_id} is still running")
            };
            return Err(OpsError::Timeout {
                what,
                waited: dates::duration(elapsed.as_millis() as i64),
            });
        }
        sleep(args.interval.max(MIN_POLL).min(args.timeout - elapsed));
    }
}

fn read_list(path: &std::path::Path) -> Result<String, OpsError> {
    let mut text = String::new();
    let result = if path.as_os_str() == "-" {
        io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    result.map_err(|e| OpsError::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

fn enqueue(client: &AdminClient, args: &EnqueueArgs, out: &Output) -> Result<(), OpsError> {
    let mut items: Vec<EnqueueItem> = args
        .urls
        .iter()
        .map(|u| EnqueueItem::new(u, args.label.as_deref()))
        .collect();
    if let Some(path) = &args.file {
        let text = read_list(path)?;
        let parsed = parse_url_list(&text)
            .map_err(|e| OpsError::Usage(format!("{}: {e}", path.display())))?;
        items.extend(parsed);
    }
    if items.is_empty() {
        return Err(OpsError::Usage("nothing to enqueue: no URLs given".into()));
    }
    let bodies = request_bodies(&items);
    let count = bodies.len();
    let mut totals = EnqueueTotals::default();
    for (index, body) in bodies.iter().enumerate() {
        // 502: rows were saved but a send failed; the body says what was done.
        let reply = match client.post_json("/admin/enqueue", body, &[502]) {
            Ok((_, reply)) => reply,
            Err(source) if index > 0 => {
                let done = format!(
                    "requests 1-{index} of {count} enqueued {}, skipped {}, rejected {}",
                    totals.enqueued,
                    totals.skipped,
                    totals.errors.len()
                );
                return Err(OpsError::Partial { done, source });
            }
            Err(e) => return Err(e.into()),
        };
        if out.json && count == 1 {
            out.json(&reply)?;
        }
        totals.absorb(index, count, &reply);
    }
    if out.json && count > 1 {
        out.json(&serde_json::to_value(&totals).unwrap_or_default())?;
    }
    if !out.json {
        out.text(&totals.render())?;
    }
    let rejected = totals.errors.len().max(totals.invalid as usize);
    if !totals.ok {
        Err(OpsError::Rejected(format!(
            "the API reported a partial failure ({} saved but not queued; the next run queues them)",
            totals.unsent
        )))
    } else if rejected > 0 {
        Err(OpsError::Rejected(format!(
            "{rejected} of {} items were rejected",
            items.len()
        )))
    } else {
        Ok(())
    }
}

fn reprocess(client: &AdminClient, args: &ReprocessArgs, out: &Output) -> Result<(), OpsError> {
    let target = ReprocessTarget::from_args(args);
    let (body, what) = (target.body(), target.describe());
    // 502: items were reset but a send failed; the body says what was done.
    let (_, reply) = client.post_json("/admin/reprocess", &body, &[502])?;
    if out.json {
        out.json(&reply)?;
    } else {
        out.text(&render_reprocess(&what, &reply))?;
    }
    if reply.get("ok").and_then(Value::as_bool) == Some(false) {
        return Err(OpsError::Rejected(format!(
            "the API reported a partial failure reprocessing {what}"
        )));
    }
    Ok(())
}

/// How many pages one `--follow` poll reads before waiting for the next.
const MAX_PAGES_PER_POLL: usize = 50;

fn logs(client: &AdminClient, args: &LogsArgs, out: &Output) -> Result<(), OpsError> {
    let query = |cursor: Option<String>| LogQuery {
        // Without --date, --follow moves on to the new day at midnight UTC.
        date: args
            .date
            .clone()
            .unwrap_or_else(|| dates::date_of_ms(now_ms())),
        service: args.service.clone(),
        level: args.level.clone(),
        run: args.run.clone(),
        limit: args.limit,
        cursor,
    };
    let print = |lines: &[&LogLine]| -> Result<(), OpsError> {
        for line in lines {
            let text = match line {
                LogLine::Record(v) | LogLine::Truncated(v) if out.json => v.to_string(),
                LogLine::Record(v) => format_record(v, args.service.as_deref()),
                LogLine::Truncated(_) => continue,
                LogLine::Raw(s) => s.clone(),
            };
            out.line(&text)?;
        }
        Ok(())
    };

    if !args.follow {
        let q = query(args.cursor.clone());
        let reply = client.get_text("/admin/logs", &q.pairs())?;
        let lines = parse_ndjson(&reply.text);
        print(&lines.iter().collect::<Vec<_>>())?;
        if let Some(t) = Truncation::of(&lines, &reply) {
            eprintln!("ops: {}", t.note());
        } else if lines.is_empty() {
            eprintln!("ops: no log lines for {} matching these filters", q.date);
        }
        return Ok(());
    }

    let mut follow = FollowState::default();
    let mut polled_once = false;
    let mut stuck_note: Option<String> = None;
    loop {
        follow.begin_poll();
        let mut cursor: Option<String> = None;
        for page in 1.. {
            let reply = match client.get_text("/admin/logs", &query(cursor.clone()).pairs()) {
                Ok(reply) => reply,
                // A follower rides out a dropped connection; the first poll does not.
                Err(e @ ApiError::Unreachable { .. }) if polled_once => {
                    eprintln!("ops: {e} (retrying)");
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            polled_once = true;
            let lines = parse_ndjson(&reply.text);
            print(&follow.fresh(&lines))?;
            let truncation = Truncation::of(&lines, &reply);
            match truncation.as_ref().and_then(|t| t.next_cursor.clone()) {
                Some(next) if page < MAX_PAGES_PER_POLL && Some(&next) != cursor.as_ref() => {
                    cursor = Some(next);
                }
                _ => {
                    // A bound that cannot be read past: say so once.
                    let note = truncation.map(|t| t.note());
                    if note.is_some() && note != stuck_note {
                        eprintln!("ops: {}", note.as_deref().unwrap_or_default());
                    }
                    stuck_note = note;
                    break;
                }
            }
        }
        sleep(args.interval.max(MIN_POLL));
    }
}
