//! The public read API on SQLite with `migrations/` applied: filters, keyset
//! pages, 400s, 404s, ETag/304, CORS, and the D1 query count of repeated
//! reads, through `api::serve` over a cache with a clock the test moves.
//! The contract (docs/openapi.yaml) is checked against the routes and
//! parameters the core serves.

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, HashMap};

use contribot_core::api::params::{ISSUE_PARAMS, MAX_LIMIT, REPO_DETAIL_PARAMS, REPO_LIST_PARAMS};
use contribot_core::api::serve::{answer_key, version_key};
use contribot_core::api::{
    serve, ApiAnswer, ApiBackend, ApiConfig, ApiRequest, Body, CachedAnswer, ROUTES,
};
use contribot_core::sql::{SqlValue, Statement};
use rusqlite::Connection;
use serde_json::Value;
use support::{block_on, migrated, run, try_run};

const NOW: i64 = 1_750_000_000_000;
const SOURCE: &str = "awesome-for-beginners";

// ------------------------------------------------------------------ the edge

enum Entry {
    Text(String),
    Answer {
        status: u16,
        etag: String,
        body: String,
    },
}

/// SQLite as D1 and a map as the Workers Cache, with expiry on a clock
/// the test advances; counts every D1 statement and batch.
struct Edge {
    conn: Connection,
    now_secs: u64,
    cache: HashMap<String, (Entry, u64)>,
    statements: usize,
    batches: usize,
    db_down: bool,
}

impl Edge {
    fn new(conn: Connection) -> Self {
        Edge {
            conn,
            now_secs: 0,
            cache: HashMap::new(),
            statements: 0,
            batches: 0,
            db_down: false,
        }
    }

    fn live(&self, key: &str) -> Option<&Entry> {
        self.cache
            .get(key)
            .filter(|(_, expires)| *expires > self.now_secs)
            .map(|(e, _)| e)
    }
}

impl ApiBackend for Edge {
    type Body = String;

    async fn cached_text(&mut self, key: &str) -> Option<String> {
        match self.live(key) {
            Some(Entry::Text(t)) => Some(t.clone()),
            _ => None,
        }
    }

    async fn store_text(&mut self, key: &str, text: &str, ttl_secs: u32) {
        let expires = self.now_secs + u64::from(ttl_secs);
        self.cache
            .insert(key.to_string(), (Entry::Text(text.to_string()), expires));
    }

    async fn cached_answer(&mut self, key: &str) -> Option<CachedAnswer<String>> {
        match self.live(key) {
            Some(Entry::Answer { status, etag, body }) => Some(CachedAnswer {
                status: *status,
                etag: etag.clone(),
                body: body.clone(),
            }),
            _ => None,
        }
    }

    async fn store_answer(
        &mut self,
        key: &str,
        status: u16,
        etag: &str,
        body: &str,
        ttl_secs: u32,
    ) {
        let entry = Entry::Answer {
            status,
            etag: etag.to_string(),
            body: body.to_string(),
        };
        let expires = self.now_secs + u64::from(ttl_secs);
        self.cache.insert(key.to_string(), (entry, expires));
    }

    async fn query(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String> {
        self.batches += 1;
        self.statements += statements.len();
        if self.db_down {
            return Err("D1_ERROR: network connection lost".into());
        }
        try_run(&self.conn, statements).map(|r| r.rows)
    }
}

fn decode(component: &str) -> String {
    let bytes = component.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn split(url: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    (path.to_string(), pairs)
}

struct Got {
    answer: ApiAnswer<String>,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn status(&self) -> u16 {
        self.answer.status
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.answer.header(name)
    }
}

fn request(edge: &mut Edge, method: &str, url: &str, if_none_match: Option<&str>) -> Got {
    let (path, query) = split(url);
    let req = ApiRequest {
        method,
        path: &path,
        query: &query,
        if_none_match,
        request_headers: None,
    };
    let answer = block_on(serve(edge, &req, &ApiConfig::default()));
    let body = match &answer.body {
        Body::Text(t) | Body::Cached(t) => t.clone(),
        Body::Empty | Body::Static(_) => String::new(),
    };
    Got { answer, body }
}

fn get(edge: &mut Edge, url: &str) -> Got {
    request(edge, "GET", url, None)
}

// ------------------------------------------------------------------ seed data

struct Repo {
    owner: &'static str,
    name: &'static str,
    language: &'static str,
    stars: i64,
}

const REPOS: &[Repo] = &[
    Repo {
        owner: "rustaceans",
        name: "ferris",
        language: "Rust",
        stars: 900,
    },
    Repo {
        owner: "snakes",
        name: "pyproj",
        language: "Python",
        stars: 300,
    },
    Repo {
        owner: "gophers",
        name: "gotool",
        language: "Go",
        stars: 300,
    },
    Repo {
        owner: "webfolk",
        name: "site",
        language: "JavaScript",
        stars: 50,
    },
];

fn seed_repos(conn: &Connection) -> Vec<i64> {
    REPOS
        .iter()
        .map(|r| {
            run(
                conn,
                &[Statement::new(
                    "INSERT INTO repos (owner, name, data_source, primary_language, stars, upstream_status, \
                     languages, summary, description, pushed_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'ok', ?6, ?7, ?8, '2025-06-01T00:00:00Z', ?9, ?9)",
                    vec![
                        r.owner.into(),
                        r.name.into(),
                        SOURCE.into(),
                        r.language.into(),
                        r.stars.into(),
                        format!("[\"{}\",\"Shell\"]", r.language).into(),
                        format!("{} is a friendly project.", r.name).into(),
                        "A project for beginners".into(),
                        NOW.into(),
                    ],
                )],
            );
            id_of(conn, r.owner, r.name)
        })
        .collect()
}

fn id_of(conn: &Connection, owner: &str, name: &str) -> i64 {
    let rows = run(
        conn,
        &[Statement::new(
            "SELECT id FROM repos WHERE owner = ?1 AND name = ?2",
            vec![owner.into(), name.into()],
        )],
    );
    rows[0][0]["id"].as_i64().unwrap()
}

#[derive(Clone)]
struct Issue {
    repo_id: i64,
    number: i64,
    created: &'static str,
    difficulty: Option<i64>,
    labels: &'static str,
    availability: &'static str,
    state: &'static str,
}

fn issue(repo_id: i64, number: i64, created: &'static str, difficulty: Option<i64>) -> Issue {
    Issue {
        repo_id,
        number,
        created,
        difficulty,
        labels: "[\"good first issue\"]",
        availability: "ok",
        state: "open",
    }
}

fn insert_issue(conn: &Connection, i: &Issue, updated_at: i64) {
    let available = i.availability == "ok";
    run(
        conn,
        &[Statement::new(
            "INSERT INTO issues (repo_id, number, title, url, state, labels, content_hash, gh_created_at, \
             gh_updated_at, intro, difficulty, first_steps, skills, analysis_model, available, availability, \
             processing_status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'h', ?7, ?7, ?8, ?9, ?10, '[\"reading\"]', 'heuristic-v1', ?11, ?12, \
             'completed', ?13, ?13)",
            vec![
                i.repo_id.into(),
                i.number.into(),
                format!("Issue {}", i.number).into(),
                format!("https://github.com/o/r/issues/{}", i.number).into(),
                i.state.into(),
                i.labels.into(),
                i.created.into(),
                i.difficulty.map(|_| format!("Intro to issue {}.", i.number)).into(),
                i.difficulty.into(),
                "[\"Read the README\",\"Run the tests\"]".into(),
                SqlValue::Integer(i64::from(available)),
                i.availability.into(),
                updated_at.into(),
            ],
        )],
    );
}

/// Four repos, a spread of issues with tied creation times and
/// difficulties, some unavailable, one closed, one unanalysed.
fn seeded() -> (Edge, Vec<Issue>) {
    let conn = migrated();
    let ids = seed_repos(&conn);
    let (rust, py, go, js) = (ids[0], ids[1], ids[2], ids[3]);
    let mut issues = vec![
        issue(rust, 1, "2025-05-01T00:00:00Z", Some(1)),
        issue(rust, 2, "2025-05-02T00:00:00Z", Some(3)),
        issue(rust, 3, "2025-05-02T00:00:00Z", Some(1)),
        issue(py, 4, "2025-05-03T00:00:00Z", Some(2)),
        issue(py, 5, "2025-05-03T00:00:00Z", Some(2)),
        issue(py, 6, "2025-04-01T00:00:00Z", None),
        issue(go, 7, "2025-05-04T00:00:00Z", Some(5)),
        issue(js, 8, "2025-05-05T00:00:00Z", Some(4)),
    ];
    issues.push(Issue {
        labels: "[\"Help Wanted\",\"good first issue\"]",
        ..issue(js, 9, "2025-05-06T00:00:00Z", Some(2))
    });
    issues.push(Issue {
        availability: "assigned",
        ..issue(rust, 10, "2025-05-07T00:00:00Z", Some(1))
    });
    issues.push(Issue {
        availability: "linked_pr",
        ..issue(go, 11, "2025-05-07T00:00:00Z", Some(2))
    });
    issues.push(Issue {
        state: "closed",
        ..issue(go, 12, "2025-05-08T00:00:00Z", Some(1))
    });
    for (n, i) in issues.iter().enumerate() {
        insert_issue(&conn, i, NOW + n as i64);
    }
    (Edge::new(conn), issues)
}

fn numbers(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_i64().unwrap())
        .collect()
}

/// Every page of a listing, following next_cursor; the numbers in order.
fn all_pages(edge: &mut Edge, url: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let page_url = match &next {
            Some(c) => format!("{url}&cursor={c}"),
            None => url.to_string(),
        };
        let got = get(edge, &page_url);
        assert_eq!(got.status(), 200, "{page_url}: {}", got.body);
        let page = got.json();
        out.extend(numbers(&page));
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 100 pages of {url}");
}

// ------------------------------------------------------------------ filters

#[test]
fn issues_default_to_open_available_ones_newest_first() {
    let (mut edge, _) = seeded();
    let page = get(&mut edge, "/api/issues").json();
    assert_eq!(numbers(&page), vec![9, 8, 7, 5, 4, 3, 2, 1, 6]);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["limit"], 20);
    let first = &page["items"][0];
    assert_eq!(first["repo"], "webfolk/site");
    assert_eq!(
        first["labels"],
        serde_json::json!(["Help Wanted", "good first issue"])
    );
    assert_eq!(
        first["first_steps"],
        serde_json::json!(["Read the README", "Run the tests"])
    );
    assert_eq!(first["skills"], serde_json::json!(["reading"]));
    assert_eq!(first["available"], true);
    assert_eq!(first["availability"], "ok");
    assert_eq!(first["language"], "JavaScript");
    assert_eq!(first["difficulty"], 2);
    assert_eq!(first["intro"], "Intro to issue 9.");
    assert_eq!(first["analysis_model"], "heuristic-v1");
}

#[test]
fn each_filter_narrows_the_list() {
    let (mut edge, _) = seeded();
    let cases: &[(&str, &[i64])] = &[
        ("/api/issues?language=rust", &[3, 2, 1]),
        ("/api/issues?language=PYTHON", &[5, 4, 6]),
        ("/api/issues?difficulty_max=1", &[3, 1]),
        ("/api/issues?difficulty_max=2&language=Python", &[5, 4]),
        ("/api/issues?label=help%20wanted", &[9]),
        ("/api/issues?repo=gophers/gotool", &[7]),
        ("/api/issues?repo=Gophers/GoTool&available=any", &[11, 7]),
        ("/api/issues?available=false", &[11, 10]),
        ("/api/issues?available=any&language=Rust", &[10, 3, 2, 1]),
        ("/api/issues?language=Haskell", &[]),
    ];
    for (url, want) in cases {
        let got = get(&mut edge, url);
        assert_eq!(got.status(), 200, "{url}: {}", got.body);
        assert_eq!(numbers(&got.json()), *want, "{url}");
    }
}

#[test]
fn easy_sorts_by_difficulty_then_newest_with_unanalysed_last() {
    let (mut edge, _) = seeded();
    let page = get(&mut edge, "/api/issues?sort=easy").json();
    assert_eq!(numbers(&page), vec![3, 1, 9, 5, 4, 2, 8, 7, 6]);
}

// ------------------------------------------------------------------ pages

#[test]
fn pages_cover_every_issue_once_in_order_for_both_sorts_and_any_limit() {
    let (mut edge, _) = seeded();
    for sort in ["fresh", "easy"] {
        let whole = numbers(
            &get(
                &mut edge,
                &format!("/api/issues?sort={sort}&available=any&limit=100"),
            )
            .json(),
        );
        assert_eq!(whole.len(), 11);
        for limit in 1..=4 {
            let paged = all_pages(
                &mut edge,
                &format!("/api/issues?sort={sort}&available=any&limit={limit}"),
            );
            assert_eq!(paged, whole, "sort={sort} limit={limit}");
        }
    }
}

#[test]
fn a_page_boundary_holds_when_rows_arrive_between_pages() {
    let (mut edge, issues) = seeded();
    let first = get(&mut edge, "/api/issues?limit=3").json();
    assert_eq!(numbers(&first), vec![9, 8, 7]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    // A newer issue lands before the next page is read: it belongs before
    // the cursor, so the next page neither repeats nor skips one.
    insert_issue(
        &edge.conn,
        &issue(issues[0].repo_id, 99, "2025-06-01T00:00:00Z", Some(1)),
        NOW + 100,
    );
    edge.now_secs += 3600;
    let second = get(&mut edge, &format!("/api/issues?limit=3&cursor={cursor}")).json();
    assert_eq!(numbers(&second), vec![5, 4, 3]);
}

#[test]
fn repos_list_by_stars_then_id_and_page() {
    let (mut edge, _) = seeded();
    let page = get(&mut edge, "/api/repos?limit=2").json();
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["rustaceans/ferris", "snakes/pyproj"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = get(&mut edge, &format!("/api/repos?limit=2&cursor={cursor}")).json();
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["gophers/gotool", "webfolk/site"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let ferris = &page["items"][0];
    assert_eq!(ferris["open_issues"], 4);
    assert_eq!(ferris["available_issues"], 3);
    assert_eq!(ferris["languages"], serde_json::json!(["Rust", "Shell"]));
    assert_eq!(ferris["archived"], false);
    assert_eq!(ferris["url"], "https://github.com/rustaceans/ferris");
    let go = get(&mut edge, "/api/repos?language=go").json();
    assert_eq!(go["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_repo_page_holds_the_repo_and_its_issues() {
    let (mut edge, _) = seeded();
    let got = get(&mut edge, "/api/repos/Rustaceans/Ferris?sort=easy&limit=2");
    assert_eq!(got.status(), 200);
    let body = got.json();
    assert_eq!(body["repo"]["full_name"], "rustaceans/ferris");
    assert_eq!(body["repo"]["summary"], "ferris is a friendly project.");
    assert_eq!(numbers(&body["issues"]), vec![3, 1]);
    let cursor = body["issues"]["next_cursor"].as_str().unwrap();
    let rest = get(
        &mut edge,
        &format!("/api/repos/rustaceans/ferris?sort=easy&limit=2&cursor={cursor}"),
    )
    .json();
    assert_eq!(numbers(&rest["issues"]), vec![2]);
}

#[test]
fn an_unlisted_repo_is_a_404_that_names_it() {
    let (mut edge, _) = seeded();
    let got = get(&mut edge, "/api/repos/nobody/nothing");
    assert_eq!(got.status(), 404);
    assert_eq!(got.json()["error"], "no listed repo nobody/nothing");
}

#[test]
fn facets_count_exactly_what_the_filters_return() {
    let (mut edge, _) = seeded();
    let facets = get(&mut edge, "/api/facets").json();
    assert_eq!(facets["available_issues"], 9);
    for (kind, param) in [("languages", "language"), ("labels", "label")] {
        let list = facets[kind].as_array().unwrap();
        assert!(!list.is_empty(), "{kind}");
        for f in list {
            let name = f["name"].as_str().unwrap();
            let url = format!("/api/issues?{param}={}&limit=100", name.replace(' ', "%20"));
            let shown = numbers(&get(&mut edge, &url).json()).len() as i64;
            assert_eq!(f["issues"].as_i64().unwrap(), shown, "{kind} {name}");
        }
    }
    let by_difficulty: BTreeMap<i64, i64> = facets["difficulties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["difficulty"].as_i64().unwrap(),
                d["issues"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_difficulty,
        BTreeMap::from([(1, 2), (2, 3), (3, 1), (4, 1), (5, 1)])
    );
}

#[test]
fn stored_json_that_is_not_an_array_reads_as_empty() {
    let (mut edge, _) = seeded();
    run(
        &edge.conn,
        &[Statement::new(
            "UPDATE issues SET first_steps = 'not json', skills = '{\"a\":1}', labels = '\"x\"' WHERE number = 9",
            vec![],
        )],
    );
    let page = get(&mut edge, "/api/issues?limit=1").json();
    let item = &page["items"][0];
    assert_eq!(item["number"], 9);
    assert_eq!(item["first_steps"], serde_json::json!([]));
    assert_eq!(item["skills"], serde_json::json!([]));
    assert_eq!(item["labels"], serde_json::json!([]));
}

// ------------------------------------------------------------------ errors

#[test]
fn bad_parameters_are_400s_naming_them_and_never_reach_d1() {
    let (mut edge, _) = seeded();
    let cases = [
        ("/api/issues?limit=0", "limit"),
        ("/api/issues?limit=101", "limit"),
        ("/api/issues?difficulty_max=9", "difficulty_max"),
        ("/api/issues?available=maybe", "available"),
        ("/api/issues?sort=random", "sort"),
        ("/api/issues?cursor=deadbeef", "cursor"),
        ("/api/issues?repo=nope", "repo"),
        ("/api/issues?colour=red", "colour"),
        ("/api/repos?cursor=%00", "cursor"),
        ("/api/repos?label=x", "label"),
        ("/api/repos/o/r?limit=x", "limit"),
        ("/api/repos/o%21/r", "owner"),
        ("/api/facets?x=1", "x"),
        ("/api/openapi.yaml?x=1", "x"),
    ];
    for (url, parameter) in cases {
        let got = get(&mut edge, url);
        assert_eq!(got.status(), 400, "{url}: {}", got.body);
        let body = got.json();
        assert_eq!(body["parameter"], parameter, "{url}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{parameter}: ")),
            "{url}"
        );
        assert_eq!(got.header("access-control-allow-origin"), Some("*"));
        assert_eq!(got.header("cache-control"), Some("no-store"));
    }
    assert_eq!(edge.statements, 0);
}

#[test]
fn unknown_routes_are_404_and_writes_405_with_allow() {
    let (mut edge, _) = seeded();
    let got = get(&mut edge, "/api/issue");
    assert_eq!(got.status(), 404);
    assert!(got.json()["error"].as_str().unwrap().contains("/api/issue"));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let got = request(&mut edge, method, "/api/issues", None);
        assert_eq!(got.status(), 405, "{method}");
        assert_eq!(got.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(edge.statements, 0);
}

#[test]
fn a_d1_failure_is_a_503_and_is_not_cached() {
    let (mut edge, _) = seeded();
    edge.db_down = true;
    let got = get(&mut edge, "/api/issues");
    assert_eq!(got.status(), 503);
    assert_eq!(got.header("retry-after"), Some("30"));
    assert!(edge.cache.is_empty());
    edge.db_down = false;
    assert_eq!(get(&mut edge, "/api/issues").status(), 200);
}

// ------------------------------------------------------------------ caching

#[test]
fn repeated_reads_cost_no_d1_queries_until_the_data_changes() {
    let (mut edge, issues) = seeded();
    let first = get(&mut edge, "/api/issues?language=Rust");
    assert_eq!(first.status(), 200);
    assert_eq!(first.answer.d1_queries, 2, "the version probe and the page");
    assert_eq!(first.header("x-contribot-d1-queries"), Some("2"));
    assert_eq!(first.header("x-contribot-cache"), Some("miss"));
    let etag = first.header("etag").unwrap().to_string();

    // The same read, spelled differently, many times: no D1 at all.
    for url in [
        "/api/issues?language=Rust",
        "/api/issues?language=rust&available=true",
        "/api/issues?sort=fresh&limit=20&language=RUST",
    ] {
        let again = get(&mut edge, url);
        assert_eq!(again.answer.d1_queries, 0, "{url}");
        assert_eq!(again.header("x-contribot-cache"), Some("hit"));
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.body, first.body);
    }
    assert_eq!((edge.statements, edge.batches), (2, 2));

    // The version outlives its TTL with the data unchanged: one probe, and
    // the page comes from the cache.
    edge.now_secs += u64::from(ApiConfig::default().version_ttl_secs);
    let probed = get(&mut edge, "/api/issues?language=Rust");
    assert_eq!(probed.answer.d1_queries, 1);
    assert_eq!(probed.header("x-contribot-cache"), Some("hit"));
    assert_eq!((edge.statements, edge.batches), (3, 3));

    // A run writes: within the TTL the cached page still answers...
    insert_issue(
        &edge.conn,
        &issue(issues[0].repo_id, 50, "2025-07-01T00:00:00Z", Some(2)),
        NOW + 1000,
    );
    assert_eq!(
        get(&mut edge, "/api/issues?language=Rust")
            .answer
            .d1_queries,
        0
    );
    // ...and once the version expires, the new data is read once.
    edge.now_secs += u64::from(ApiConfig::default().version_ttl_secs);
    let fresh = get(&mut edge, "/api/issues?language=Rust");
    assert_eq!(fresh.answer.d1_queries, 2);
    assert_eq!(numbers(&fresh.json()), vec![50, 3, 2, 1]);
    assert_ne!(fresh.header("etag"), Some(etag.as_str()));
    assert_eq!(
        get(&mut edge, "/api/issues?language=Rust")
            .answer
            .d1_queries,
        0
    );
}

#[test]
fn if_none_match_gets_a_304_from_the_cache_without_d1() {
    let (mut edge, _) = seeded();
    let first = get(&mut edge, "/api/repos");
    let etag = first.header("etag").unwrap().to_string();
    let before = edge.statements;
    let not_modified = request(&mut edge, "GET", "/api/repos", Some(&etag));
    assert_eq!(not_modified.status(), 304);
    assert!(matches!(not_modified.answer.body, Body::Empty));
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(
        not_modified.header("access-control-allow-origin"),
        Some("*")
    );
    assert!(not_modified
        .header("cache-control")
        .unwrap()
        .starts_with("public, max-age="));
    assert_eq!(edge.statements, before);
    let other = request(&mut edge, "GET", "/api/repos", Some("\"something-else\""));
    assert_eq!(other.status(), 200);
    assert_eq!(other.body, first.body);
}

#[test]
fn a_miss_that_matches_if_none_match_is_a_304_too() {
    let (mut edge, _) = seeded();
    let etag = get(&mut edge, "/api/facets")
        .header("etag")
        .unwrap()
        .to_string();
    edge.cache.clear();
    let got = request(&mut edge, "GET", "/api/facets", Some(&etag));
    assert_eq!(got.status(), 304);
}

#[test]
fn answers_are_keyed_by_data_version_and_canonical_read() {
    let (mut edge, _) = seeded();
    get(&mut edge, "/api/issues?limit=5&sort=easy");
    let version = match edge.cache.get(&version_key()) {
        Some((Entry::Text(v), _)) => v.clone(),
        _ => panic!("no version cached"),
    };
    assert_eq!(version, format!("{}-{}", NOW + 11, NOW));
    let key = answer_key(&version, "/api/issues?available=true&limit=5&sort=easy");
    assert!(
        matches!(
            edge.cache.get(&key),
            Some((Entry::Answer { status: 200, .. }, _))
        ),
        "{key}"
    );
    assert_eq!(edge.cache.len(), 2);
}

#[test]
fn head_answers_like_get_without_a_body() {
    let (mut edge, _) = seeded();
    let got = request(&mut edge, "HEAD", "/api/issues", None);
    assert_eq!(got.status(), 200);
    assert!(matches!(got.answer.body, Body::Empty));
    assert!(got.header("etag").is_some());
}

#[test]
fn the_preflight_lets_any_origin_read_with_its_headers() {
    let (mut edge, _) = seeded();
    let req = ApiRequest {
        method: "OPTIONS",
        path: "/api/issues",
        query: &[],
        if_none_match: None,
        request_headers: Some("if-none-match, x-requested-with"),
    };
    let answer = block_on(serve(&mut edge, &req, &ApiConfig::default()));
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        answer.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(
        answer.header("access-control-allow-headers"),
        Some("if-none-match, x-requested-with")
    );
    assert_eq!(answer.header("access-control-max-age"), Some("86400"));
    let answer = block_on(serve(
        &mut edge,
        &ApiRequest {
            request_headers: Some("bad\r\nheader"),
            ..req
        },
        &ApiConfig::default(),
    ));
    assert_eq!(
        answer.header("access-control-allow-headers"),
        Some("If-None-Match, Content-Type")
    );
    assert_eq!(edge.statements, 0);
}

#[test]
fn the_largest_page_fits_d1_limits() {
    let (mut edge, _) = seeded();
    let got = get(&mut edge, &format!("/api/issues?limit={MAX_LIMIT}&language=Rust&label=x&difficulty_max=5&repo=a/b&sort=easy"));
    assert_eq!(got.status(), 200, "{}", got.body);
}

// ------------------------------------------------------------------ the contract

/// `paths:` of docs/openapi.yaml: each path with its operations' methods
/// and parameter names (a line scan of the file's fixed layout).
fn documented() -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    let mut out: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            in_paths = false;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            current = Some(format!("/{p}"));
            out.entry(format!("/{p}")).or_default();
        } else if let Some(current) = &current {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if indent == 4 {
                if let Some(m) = trimmed.strip_suffix(':') {
                    if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&m) {
                        out.get_mut(current).unwrap().0.push(m.to_uppercase());
                    }
                }
            }
            if let Some(r) = trimmed.strip_prefix("- $ref: '#/components/parameters/") {
                out.get_mut(current)
                    .unwrap()
                    .1
                    .push(r.trim_end_matches('\'').to_string());
            }
        }
    }
    out
}

/// Parameter component names → the query parameter they define.
fn parameter_names() -> HashMap<String, (String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .split("\n  parameters:\n")
        .nth(1)
        .expect("components.parameters");
    let mut out = HashMap::new();
    let mut component: Option<String> = None;
    let mut name: Option<String> = None;
    for line in section.lines() {
        if !line.starts_with("    ") && !line.is_empty() {
            break;
        }
        if let Some(c) = line.strip_prefix("    ").and_then(|c| c.strip_suffix(':')) {
            if !c.starts_with(' ') {
                component = Some(c.to_string());
            }
        }
        if let Some(n) = line.trim_start().strip_prefix("name: ") {
            name = Some(n.to_string());
        }
        if let Some(i) = line.trim_start().strip_prefix("in: ") {
            out.insert(
                component.clone().unwrap(),
                (name.clone().unwrap(), i.to_string()),
            );
        }
    }
    out
}

#[test]
fn the_openapi_document_lists_exactly_the_served_routes_and_parameters() {
    let doc = documented();
    let served: BTreeMap<String, Vec<String>> =
        ROUTES
            .iter()
            .fold(BTreeMap::new(), |mut m, (method, path)| {
                m.entry(path.to_string())
                    .or_default()
                    .push(method.to_string());
                m
            });
    let doc_methods: BTreeMap<String, Vec<String>> = doc
        .iter()
        .map(|(p, (m, _))| (p.clone(), m.clone()))
        .collect();
    assert_eq!(doc_methods, served);

    let components = parameter_names();
    let query_params = |path: &str| -> Vec<String> {
        let mut names: Vec<String> = doc[path]
            .1
            .iter()
            .filter_map(|c| components.get(c))
            .filter(|(_, location)| location == "query")
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    };
    let sorted = |names: &[&str]| {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(query_params("/api/issues"), sorted(ISSUE_PARAMS));
    assert_eq!(query_params("/api/repos"), sorted(REPO_LIST_PARAMS));
    assert_eq!(
        query_params("/api/repos/{owner}/{name}"),
        sorted(REPO_DETAIL_PARAMS)
    );
    assert_eq!(query_params("/api/facets"), Vec::<String>::new());
    assert_eq!(query_params("/api/openapi.yaml"), Vec::<String>::new());
}
