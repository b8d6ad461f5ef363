//! How HTTP answers map to errors and exit codes. A stub server is enough
//! here: the contract under test is status mapping, not the API's behaviour
//! (tests/e2e/ops.test.mjs drives the real worker).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

use contribot_ops::client::{json_reply, parse_base_url, text_reply, AdminClient, ApiError};
use contribot_ops::OpsError;
use serde_json::json;

/// Serves one canned HTTP answer, then returns the request head it got.
fn serve_once(status: u16, content_type: &str, body: &'static str) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let content_type = content_type.to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let head = read_request(&stream);
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    });
    (url, handle)
}

fn read_request(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

fn client(url: &str, token: &str) -> AdminClient {
    AdminClient::new(parse_base_url(url).unwrap(), token).unwrap()
}

#[test]
fn unauthorized_points_at_the_admin_token_and_exits_1() {
    let (url, server) = serve_once(
        401,
        "application/json",
        r#"{"ok":false,"error":"missing or wrong bearer token"}"#,
    );
    let err = client(&url, "wrong")
        .get_json("/admin/status", &[])
        .unwrap_err();
    assert_eq!(err, ApiError::Unauthorized);
    assert_eq!(
        err.to_string(),
        "unauthorized: check ADMIN_TOKEN (the token the scraper was deployed with)"
    );
    assert_eq!(OpsError::from(err).exit_code(), 1);
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /admin/status HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer wrong\r\n"),
        "{head}"
    );
}

#[test]
fn disabled_api_says_no_secret_is_set_on_the_worker() {
    let (url, server) = serve_once(
        503,
        "application/json",
        r#"{"ok":false,"error":"admin API disabled: no ADMIN_TOKEN secret is configured"}"#,
    );
    let err = client(&url, "t")
        .post_json("/admin/run", &json!({}), &[409])
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(err, ApiError::Disabled);
    let text = err.to_string();
    assert!(
        text.contains("admin API is disabled") && text.contains("no ADMIN_TOKEN secret is set"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn unreachable_host_names_the_url_and_exits_3() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = client(&url, "t")
        .get_json("/admin/status", &[])
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ApiError::Unreachable { .. }), "{err:?}");
    assert!(text.contains(&format!("{url}/admin/status")), "{text}");
    assert!(text.contains("--url / CONTRIBOT_URL"), "{text}");
    assert_eq!(OpsError::from(err).exit_code(), 3);
}

#[test]
fn non_json_answer_shows_status_and_first_bytes() {
    let (url, server) = serve_once(
        200,
        "text/html",
        "<html><body>Welcome to nginx!</body></html>",
    );
    let err = client(&url, "t")
        .get_json("/admin/status", &[])
        .unwrap_err();
    server.join().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, ApiError::NotJson { status: 200, .. }),
        "{err:?}"
    );
    assert!(
        text.contains("HTTP 200") && text.contains("<html><body>Welcome to nginx!"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn accepted_conflict_returns_its_body_and_posts_json() {
    let (url, server) = serve_once(
        409,
        "application/json",
        r#"{"ok":false,"run_id":"r1","status":"already_running","error":"busy"}"#,
    );
    let (status, body) = client(&url, "t")
        .post_json("/admin/run", &json!({"x": 1}), &[409])
        .unwrap();
    assert_eq!((status, body["run_id"].as_str()), (409, Some("r1")));
    let head = server.join().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert!(head.ends_with(r#"{"x":1}"#), "{head}");
}

#[test]
fn api_errors_carry_the_apis_message_and_a_hint_where_it_helps() {
    let url = "http://h/admin/enqueue";
    let err = json_reply(
        url,
        400,
        br#"{"ok":false,"error":"items must be an array"}"#,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "HTTP 400 from http://h/admin/enqueue: items must be an array"
    );
    let err = json_reply(
        url,
        404,
        br#"{"ok":false,"error":"no such admin route"}"#,
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("older than this ops binary"),
        "{err}"
    );
    let err = json_reply(url, 409, br#"{"ok":false,"error":"busy"}"#, &[]).unwrap_err();
    assert!(matches!(err, ApiError::Api { status: 409, .. }));
    let err = json_reply(url, 503, br#"{"ok":false,"error":"no QUEUE binding"}"#, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "HTTP 503 from http://h/admin/enqueue: no QUEUE binding",
        "other 503s are the API's own"
    );
    let err = json_reply(url, 503, b"<h1>Service Unavailable</h1>", &[]).unwrap_err();
    assert!(
        matches!(err, ApiError::NotJson { status: 503, .. }),
        "a proxy's 503 is not the API's: {err:?}"
    );
    let long = "x".repeat(1_000);
    let err = json_reply(url, 502, long.as_bytes(), &[]).unwrap_err();
    assert!(
        err.to_string().len() < 400 && err.to_string().contains('…'),
        "{err}"
    );
    let err = json_reply(url, 200, b"", &[]).unwrap_err();
    assert!(err.to_string().contains("(empty body)"), "{err}");
}

#[test]
fn ndjson_answers_pass_through_and_errors_map_like_json() {
    let ok = text_reply("u", 200, b"{\"ts\":\"t\"}\n{\"ts\":\"u\"}\n").unwrap();
    assert_eq!(ok.lines().count(), 2);
    assert_eq!(text_reply("u", 200, b"").unwrap(), "");
    assert_eq!(
        text_reply("u", 401, b"{}").unwrap_err(),
        ApiError::Unauthorized
    );
    assert!(matches!(
        text_reply("u", 200, b"<!doctype html>").unwrap_err(),
        ApiError::NotJson { .. }
    ));
}

#[test]
fn base_urls_must_be_http_and_may_have_a_path_prefix() {
    let err = parse_base_url("localhost:8787").unwrap_err();
    assert!(err.contains("did you mean http://localhost:8787?"), "{err}");
    assert!(parse_base_url("ftp://x").is_err());
    let c = client("https://example.test/prefix/", "t");
    assert_eq!(
        c.endpoint(
            "/admin/logs",
            &[("date", "2026-03-01".into()), ("run", "a b".into())]
        )
        .as_str(),
        "https://example.test/prefix/admin/logs?date=2026-03-01&run=a+b"
    );
}
