//! The peers' request plans on a small in-memory GitHub: which requests each
//! replay sends, counted exactly, for a full refresh, reruns and changes.

use std::collections::BTreeMap;

use contribot_bench::peer::{
    self, PeerError, PeerReport, Replay, Reply, Request, Transport, TsState,
};
use serde_json::{json, Value};

const HOST: &str = "https://fake.test";
/// The fake's "now": 2024-05-01T12:00:00Z.
const NOW: i64 = 1_714_564_800;
const DAY: i64 = 86_400;

struct Issue {
    number: u64,
    labels: Vec<&'static str>,
    open: bool,
    pull_request: bool,
    comments: u64,
    title: String,
}

struct Repo {
    id: u64,
    owner: String,
    name: String,
    former_name: Option<String>,
    deleted: bool,
    archived: bool,
    pushed_at: i64,
    issues: Vec<Issue>,
}

impl Repo {
    fn new(id: u64, owner: &str, name: &str) -> Repo {
        Repo {
            id,
            owner: owner.to_string(),
            name: name.to_string(),
            former_name: None,
            deleted: false,
            archived: false,
            pushed_at: NOW - DAY,
            issues: Vec::new(),
        }
    }

    /// `count` open issues carrying `label`, numbered on from the last.
    fn with_issues(mut self, count: u64, label: &'static str) -> Repo {
        let first = self.issues.len() as u64 + 1;
        for number in first..first + count {
            self.issues.push(Issue {
                number,
                labels: vec![label],
                open: true,
                pull_request: false,
                comments: 0,
                title: format!("Issue {number}"),
            });
        }
        self
    }

    fn issue(&mut self, number: u64) -> &mut Issue {
        self.issues
            .iter_mut()
            .find(|i| i.number == number)
            .expect("issue exists")
    }
}

/// A GitHub with a handful of repos, a list, GraphQL counts, REST pages,
/// rename redirects and a rate-limit count.
struct FakeGitHub {
    list: Vec<Value>,
    repos: Vec<Repo>,
    core_used: u64,
    /// REST calls answered before a secondary-limit 403 (`None`: never).
    rest_per_minute: Option<u64>,
}

impl FakeGitHub {
    fn repo(&mut self, owner: &str, name: &str) -> &mut Repo {
        self.repos
            .iter_mut()
            .find(|r| r.owner == owner && r.name == name)
            .expect("repo exists")
    }

    fn find(&self, owner: &str, name: &str) -> Option<(&Repo, bool)> {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        self.repos
            .iter()
            .filter(|r| !r.deleted && same(&r.owner, owner))
            .find_map(|r| {
                if same(&r.name, name) {
                    Some((r, false))
                } else if r.former_name.as_deref().is_some_and(|f| same(f, name)) {
                    Some((r, true))
                } else {
                    None
                }
            })
    }

    fn graphql(&self, body: &str) -> Reply {
        let query: Value = serde_json::from_str(body).expect("GraphQL body is JSON");
        let text = query["query"].as_str().expect("a query");
        let between = |start: &str, end: &str| -> String {
            let from = text.find(start).expect("field present") + start.len();
            text[from..][..text[from..].find(end).expect("closed")].to_string()
        };
        let (owner, name) = (between("owner: \"", "\""), between("name: \"", "\""));
        let label = between("labels: [\"", "\"]");
        let answer = match self.find(&owner, &name) {
            Some((repo, _)) => {
                let count = repo
                    .issues
                    .iter()
                    .filter(|i| i.open && !i.pull_request && has_label(i, &label))
                    .count();
                json!({"data": {"repository": {"issues": {"totalCount": count}}}})
            }
            None => json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND"}]}),
        };
        ok(answer)
    }

    fn rest(&mut self, path: &str, query: &str) -> Reply {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["raw", ..] => ok(json!({ "repositories": self.list })),
            ["rate_limit"] => {
                ok(json!({"resources": {"core": {"remaining": 5000 - self.core_used}}}))
            }
            ["repos", ..] | ["repositories", ..]
                if self.rest_per_minute.is_some_and(|n| self.core_used >= n) =>
            {
                Reply {
                    status: 403,
                    body: json!({"message": "You have exceeded a secondary rate limit."})
                        .to_string(),
                    ..Reply::default()
                }
            }
            ["repos", owner, name, rest @ ..] => {
                self.core_used += 1;
                match self.find(owner, name) {
                    Some((repo, true)) => {
                        let mut location = format!("{HOST}/repositories/{}", repo.id);
                        for segment in rest {
                            location.push('/');
                            location.push_str(segment);
                        }
                        if !query.is_empty() {
                            location.push('?');
                            location.push_str(query);
                        }
                        Reply {
                            status: 301,
                            location: Some(location),
                            ..Reply::default()
                        }
                    }
                    Some((repo, false)) => serve(repo, rest, query),
                    None => not_found(),
                }
            }
            ["repositories", id, rest @ ..] => {
                self.core_used += 1;
                match self
                    .repos
                    .iter()
                    .find(|r| r.id.to_string() == *id && !r.deleted)
                {
                    Some(repo) => serve(repo, rest, query),
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }
}

impl Transport for FakeGitHub {
    fn send(&mut self, request: &Request<'_>) -> Result<Reply, PeerError> {
        let target = request.target.strip_prefix(HOST).unwrap_or(request.target);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Ok(match (request.method, path) {
            (peer::Method::Post, "/graphql") => self.graphql(request.body.unwrap_or_default()),
            (peer::Method::Get, _) => self.rest(path, query),
            _ => not_found(),
        })
    }
}

fn has_label(issue: &Issue, label: &str) -> bool {
    issue
        .labels
        .iter()
        .any(|l| l.eq_ignore_ascii_case(label.trim()))
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: body.to_string(),
        ..Reply::default()
    }
}

fn not_found() -> Reply {
    Reply {
        status: 404,
        body: json!({"message": "Not Found"}).to_string(),
        ..Reply::default()
    }
}

/// Percent-decoding with `+` as a space.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

fn serve(repo: &Repo, rest: &[&str], query: &str) -> Reply {
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let api = format!("{HOST}/repos/{}/{}", repo.owner, repo.name);
    match rest {
        [] => ok(json!({
            "url": api,
            "archived": repo.archived,
            "pushed_at": iso8601(repo.pushed_at),
        })),
        ["languages"] => ok(json!({"Rust": 1000})),
        ["issues"] => {
            let wanted: Vec<&str> = params
                .get("labels")
                .map_or(Vec::new(), |l| l.split(',').collect());
            let matching: Vec<&Issue> = repo
                .issues
                .iter()
                .filter(|i| i.open && wanted.iter().all(|l| has_label(i, l)))
                .collect();
            let number = |key: &str, default: usize| {
                params
                    .get(key)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            let (per_page, page) = (number("per_page", 30), number("page", 1));
            let items: Vec<Value> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|i| issue_json(i))
                .collect();
            ok(Value::Array(items))
        }
        // Issues are numbered from 1 in order.
        ["issues", n] => match n
            .parse::<usize>()
            .ok()
            .and_then(|n| repo.issues.get(n.wrapping_sub(1)))
        {
            Some(issue) => ok(issue_json(issue)),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn issue_json(issue: &Issue) -> Value {
    let mut value = json!({
        "number": issue.number,
        "title": issue.title,
        "state": if issue.open { "open" } else { "closed" },
        "comments": issue.comments,
        "assignees": [],
        "body": "Some text.",
    });
    if issue.pull_request {
        value["pull_request"] = json!({"url": "…"});
    }
    value
}

fn iso8601(epoch: i64) -> String {
    // Days since 1970 back to a civil date (Howard Hinnant's algorithm).
    let z = epoch.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let secs = epoch.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn entry(link: &str, label: Option<&str>) -> Value {
    match label {
        Some(label) => json!({"name": link, "link": link, "label": label}),
        None => json!({"name": link, "link": link}),
    }
}

/// Seven list entries:
/// - `acme/widgets` ("good first issue"): 150 labelled issues, a labelled
///   pull request (#151) and 5 issues with another label;
/// - `acme/old`, renamed to `acme/new` ("help wanted"): 3 labelled issues;
/// - `gone/repo`: deleted;
/// - `acme/quiet` ("beginner"): no issues, last pushed 200 days ago;
/// - `acme/attic` ("easy"): archived, 2 labelled issues;
/// - a GitLab project;
/// - `acme/nolabel`, listed without a label, 1 issue.
fn small_world() -> FakeGitHub {
    let mut widgets = Repo::new(1, "acme", "widgets").with_issues(151, "good first issue");
    widgets.issue(151).pull_request = true;
    let widgets = widgets.with_issues(5, "bug");
    let mut renamed = Repo::new(2, "acme", "new").with_issues(3, "help wanted");
    renamed.former_name = Some("old".into());
    let mut gone = Repo::new(3, "gone", "repo");
    gone.deleted = true;
    let mut quiet = Repo::new(4, "acme", "quiet");
    quiet.pushed_at = NOW - 200 * DAY;
    let mut attic = Repo::new(5, "acme", "attic").with_issues(2, "easy");
    attic.archived = true;
    let nolabel = Repo::new(6, "acme", "nolabel").with_issues(1, "good first issue");
    FakeGitHub {
        list: vec![
            entry("https://github.com/acme/widgets", Some("good first issue")),
            entry("https://github.com/acme/old", Some("help wanted")),
            entry("https://github.com/gone/repo", Some("good first issue")),
            entry("https://github.com/acme/quiet", Some("beginner")),
            entry("https://github.com/acme/attic", Some("easy")),
            entry(
                "https://gitlab.com/acme/elsewhere",
                Some("good first issue"),
            ),
            entry("https://github.com/acme/nolabel", None),
        ],
        repos: vec![widgets, renamed, gone, quiet, attic, nolabel],
        core_used: 0,
        rest_per_minute: None,
    }
}

fn ts(world: &mut FakeGitHub, state: &mut TsState) -> PeerReport {
    peer::replay(world, Replay::TsOriginal { state }).expect("replay runs")
}

fn kinds(report: &PeerReport) -> Vec<(&str, u64)> {
    report
        .by_kind
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect()
}

#[test]
fn ts_full_refresh_reads_languages_pages_and_every_issue_of_each_queued_repo() {
    let mut world = small_world();
    let report = ts(&mut world, &mut TsState::default());

    // 6 GitHub entries, 6 count queries; 4 repos queued (the deleted one
    // fails its query, the unlabelled one cannot be stored). Pages: widgets
    // 100 + 51 + empty, the renamed repo 3 + empty, quiet empty, attic
    // 2 + empty. Single GETs: 150 + 3 + 2 issues (the pull request is
    // dropped). The renamed repo's languages, 2 pages and 3 issues are 301s.
    assert_eq!(
        kinds(&report),
        [
            ("graphql", 6),
            ("list", 1),
            ("redirect", 6),
            ("rest:issue", 155),
            ("rest:issues", 8),
            ("rest:languages", 4),
        ]
    );
    assert_eq!(report.requests, 180);
    assert_eq!(report.github_requests, 180);
    assert_eq!(report.repos, 6);
    assert_eq!(report.events["repos_queued"], 4);
    assert_eq!(report.events["issues_queued"], 155);
}

#[test]
fn ts_unchanged_rerun_costs_the_list_and_one_count_query_per_listed_repo() {
    let mut world = small_world();
    let mut state = TsState::default();
    ts(&mut world, &mut state);

    let rerun = ts(&mut world, &mut state);

    assert_eq!(kinds(&rerun), [("graphql", 6), ("list", 1)]);
    assert_eq!(rerun.requests, 7);
}

#[test]
fn ts_closed_issue_requeues_its_repo_and_costs_one_get_for_the_vanished_issue() {
    let mut world = small_world();
    let mut state = TsState::default();
    ts(&mut world, &mut state);
    world.repo("acme", "widgets").issue(7).open = false;
    world.repo("acme", "widgets").issue(8).title = "Edited".into();

    let changed = ts(&mut world, &mut state);
    let after = ts(&mut world, &mut state);

    // widgets: languages, pages 100 + 50 + empty, #7's GET; #8's title
    // edit is not in the issue hash.
    assert_eq!(
        kinds(&changed),
        [
            ("graphql", 6),
            ("list", 1),
            ("rest:issue", 1),
            ("rest:issues", 3),
            ("rest:languages", 1),
        ]
    );
    assert_eq!(changed.requests, 12);
    assert_eq!(changed.events["vanished_checks"], 1);
    assert_eq!(after.requests, 7, "#7 is stored closed");
}

#[test]
fn ts_title_edit_alone_costs_nothing_beyond_the_count_queries() {
    let mut world = small_world();
    let mut state = TsState::default();
    ts(&mut world, &mut state);
    world.repo("acme", "widgets").issue(3).title = "Edited".into();

    let changed = ts(&mut world, &mut state);

    assert_eq!(changed.requests, 7);
}

#[test]
fn ts_new_comment_is_fetched_only_when_its_repo_is_requeued_for_its_count() {
    let mut world = small_world();
    let mut state = TsState::default();
    ts(&mut world, &mut state);
    world.repo("acme", "new").issue(2).comments = 1;

    let commented = ts(&mut world, &mut state);
    world.repo("acme", "new").issue(3).open = false;
    let closed = ts(&mut world, &mut state);

    assert_eq!(commented.requests, 7, "the open count did not change");
    // The renamed repo, each request a 301 and its target: languages,
    // pages 2 + empty, #2 (comment count changed), #3 (vanished).
    assert_eq!(
        kinds(&closed),
        [
            ("graphql", 6),
            ("list", 1),
            ("redirect", 5),
            ("rest:issue", 2),
            ("rest:issues", 2),
            ("rest:languages", 1),
        ]
    );
    assert_eq!(closed.requests, 17);
}

#[test]
fn ts_issue_pages_stop_at_the_hundredth_page() {
    let mut world = FakeGitHub {
        list: vec![entry("https://github.com/big/repo", Some("easy"))],
        repos: vec![Repo::new(1, "big", "repo").with_issues(10_050, "easy")],
        core_used: 0,
        rest_per_minute: None,
    };

    let report = ts(&mut world, &mut TsState::default());

    assert_eq!(
        kinds(&report),
        [
            ("graphql", 1),
            ("list", 1),
            ("rest:issue", 10_000),
            ("rest:issues", 100),
            ("rest:languages", 1),
        ]
    );
}

#[test]
fn ts_state_file_round_trips_so_a_later_process_reruns_unchanged() {
    let dir = std::env::temp_dir().join(format!("peer-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("state.json");
    let mut world = small_world();
    let mut state = TsState::load(Some(&path)).expect("no file yet is a first run");
    ts(&mut world, &mut state);
    state.save(&path).expect("saved");

    let mut reloaded = TsState::load(Some(&path)).expect("loads");
    let rerun = ts(&mut world, &mut reloaded);

    assert_eq!(rerun.requests, 7);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[test]
fn a_secondary_limit_refusal_stops_the_replay_instead_of_skewing_its_counts() {
    let mut world = small_world();
    world.rest_per_minute = Some(20);

    let ts = peer::replay(
        &mut world,
        Replay::TsOriginal {
            state: &mut TsState::default(),
        },
    );
    world.core_used = 0;
    let gfi = peer::replay(&mut world, Replay::GoodFirstIssue { now: NOW });

    assert!(
        matches!(ts, Err(PeerError::SecondaryLimited { .. })),
        "{ts:?}"
    );
    assert!(
        matches!(gfi, Err(PeerError::SecondaryLimited { .. })),
        "{gfi:?}"
    );
}

#[test]
fn goodfirstissue_reads_each_active_repo_and_its_nine_labels() {
    let mut world = small_world();

    let report = peer::replay(&mut world, Replay::GoodFirstIssue { now: NOW }).expect("runs");

    // 6 repo GETs (+1 hop for the renamed one, whose issue calls go to its
    // new URL); nothing more for the deleted, archived and inactive repos;
    // 9 labels for widgets, the renamed repo and nolabel; one rate-limit
    // read before the first call. The list read is not its request.
    assert_eq!(
        kinds(&report),
        [
            ("list", 1),
            ("redirect", 1),
            ("rest:issues", 27),
            ("rest:rate_limit", 1),
            ("rest:repo", 6),
        ]
    );
    assert_eq!(report.requests, 36);
    assert_eq!(report.github_requests, 35);
    assert_eq!(report.events["skipped_archived"], 1);
    assert_eq!(report.events["skipped_inactive"], 1);
    assert_eq!(report.events["skipped_error"], 1);
}

#[test]
fn goodfirstissue_rereads_the_rate_limit_every_hundred_calls() {
    let repos: Vec<Repo> = (0..25)
        .map(|i| Repo::new(i + 1, "many", &format!("r{i}")))
        .collect();
    let list = repos
        .iter()
        .map(|r| entry(&format!("https://github.com/many/{}", r.name), Some("easy")))
        .collect();
    let mut world = FakeGitHub {
        list,
        repos,
        core_used: 0,
        rest_per_minute: None,
    };

    let report = peer::replay(&mut world, Replay::GoodFirstIssue { now: NOW }).expect("runs");

    // 250 calls: reads before the 1st, 101st and 201st.
    assert_eq!(report.by_kind["rest:rate_limit"], 3);
    assert_eq!(report.github_requests, 253);
}
