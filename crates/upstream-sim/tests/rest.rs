//! GitHub REST behaviour: Link pagination, ETags and 304s, rate-limit
//! headers and budgets, label AND semantics, pull requests, renames.

mod sim_client;

use std::collections::BTreeSet;

use contribot_sim::{RateLimitConfig, SimConfig};
use serde_json::{json, Value};
use sim_client::{no_redirects, SimClient};

fn link(reply: &sim_client::Reply, rel: &str) -> Option<String> {
    let header = reply.header("link")?;
    header.split(", ").find_map(|part| {
        let (url, r) = part.split_once("; ")?;
        (r == format!("rel=\"{rel}\"")).then(|| url.trim_matches(['<', '>']).to_string())
    })
}

fn numbers(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_repo_with_over_a_hundred_beginner_issues_pages_by_link_header() {
    let c = SimClient::start().await;
    let slug = c.truth().await["special"]["paginated"][1]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.repo_truth(&slug).await;
    let label = t["beginner_label"].as_str().unwrap();
    let first = c
        .rest(&format!(
            "/repos/{slug}/issues?labels={}&per_page=100",
            label.replace(' ', "%20")
        ))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json().as_array().unwrap().len(), 100);
    let next = link(&first, "next").expect("a next link");
    assert_eq!(link(&first, "last").as_deref(), Some(next.as_str()));
    assert!(next.contains("page=2"), "{next}");
    let second = c.rest(&next).await;
    assert!(link(&second, "next").is_none());
    assert!(link(&second, "prev").is_some() && link(&second, "first").is_some());
    let mut all = numbers(&first.json());
    all.extend(numbers(&second.json()));
    let expected: BTreeSet<u64> = t["open_beginner_issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn a_matching_etag_answers_304_at_no_cost() {
    let c = SimClient::start().await;
    let first = c.rest("/repos/ppy/osu/issues").await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an etag");
    assert!(etag.starts_with('"') && !etag.starts_with("W/"));
    assert_eq!(first.header_u64("x-ratelimit-used"), 1);
    let again = c
        .rest_with(
            "/repos/ppy/osu/issues",
            &[
                ("authorization", "token test-token"),
                ("if-none-match", &etag),
            ],
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(again.header_u64("x-ratelimit-used"), 1);
    assert_eq!(again.header_u64("x-ratelimit-remaining"), 4999);
    let stale = c
        .rest_with(
            "/repos/ppy/osu/issues",
            &[
                ("authorization", "token test-token"),
                ("if-none-match", "\"stale\""),
            ],
        )
        .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header_u64("x-ratelimit-used"), 2);
}

#[tokio::test]
async fn every_response_carries_rate_limit_headers_and_anonymous_clients_get_sixty() {
    let c = SimClient::start().await;
    let anon = c.rest_with("/repos/ppy/osu", &[]).await;
    assert_eq!(anon.header_u64("x-ratelimit-limit"), 60);
    assert_eq!(anon.header_u64("x-ratelimit-remaining"), 59);
    assert_eq!(anon.header_u64("x-ratelimit-used"), 1);
    assert!(anon.header_u64("x-ratelimit-reset") > 1_700_000_000);
    assert_eq!(anon.header("x-ratelimit-resource").as_deref(), Some("core"));
    let authed = c.rest("/repos/ppy/osu/languages").await;
    assert_eq!(authed.header_u64("x-ratelimit-limit"), 5000);
    let limits = c.rest("/rate_limit").await.json();
    assert_eq!(limits["resources"]["core"]["used"], 1);
    assert_eq!(limits["resources"]["graphql"]["limit"], 5000);
}

#[tokio::test]
async fn an_exhausted_budget_answers_403_with_remaining_zero() {
    let c = SimClient::with(SimConfig {
        rate_limits: RateLimitConfig {
            rest_anonymous: 2,
            ..RateLimitConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(c.rest_with("/repos/ppy/osu", &[]).await.status, 200);
    }
    let blocked = c.rest_with("/repos/ppy/osu", &[]).await;
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.header_u64("x-ratelimit-remaining"), 0);
    assert!(blocked.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded for 127.0.0.1."));
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
}

#[tokio::test]
async fn rest_labels_mean_all_of_them_while_graphql_means_any() {
    let c = SimClient::start().await;
    let get = |q: String| {
        let c = &c;
        async move {
            numbers(
                &c.rest(&format!("/repos/ppy/osu/issues?state=all&per_page=100&{q}"))
                    .await
                    .json(),
            )
        }
    };
    let gfi = get("labels=good%20first%20issue".into()).await;
    let bug = get("labels=bug".into()).await;
    let both = get("labels=good%20first%20issue,bug".into()).await;
    let expected_both: BTreeSet<u64> = gfi.intersection(&bug).copied().collect();
    assert_eq!(both, expected_both);

    let q = r#"{ repository(owner: "ppy", name: "osu") { issues(first: 100, labels: ["good first issue", "bug"]) { nodes { number } } } }"#;
    let any =
        numbers(&c.graphql(q, json!({})).await.json()["data"]["repository"]["issues"]["nodes"]);
    let prs = numbers(&Value::Array(
        c.rest("/repos/ppy/osu/issues?state=all&per_page=100")
            .await
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.get("pull_request").is_some())
            .cloned()
            .collect(),
    ));
    let union: BTreeSet<u64> = gfi
        .union(&bug)
        .filter(|n| !prs.contains(n))
        .copied()
        .collect();
    assert_eq!(any, union);
    assert!(any.len() > both.len());
}

#[tokio::test]
async fn rest_issue_lists_include_pull_requests() {
    let c = SimClient::start().await;
    let slug = c.truth().await["special"]["paginated"][0]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.repo_truth(&slug).await;
    let mut all = Vec::new();
    let mut next = Some(format!("/repos/{slug}/issues?state=all&per_page=100"));
    while let Some(url) = next {
        let page = c.rest(&url).await;
        all.extend(page.json().as_array().unwrap().clone());
        next = link(&page, "next");
    }
    assert_eq!(all.len() as u64, t["issues_and_pulls"].as_u64().unwrap());
    let pr = all
        .iter()
        .find(|i| i.get("pull_request").is_some())
        .unwrap();
    assert!(pr["html_url"].as_str().unwrap().contains("/pull/"));
    let n = pr["number"].as_u64().unwrap();
    let single = c.rest(&format!("/repos/{slug}/issues/{n}")).await.json();
    assert!(single["pull_request"]["url"].is_string());
}

#[tokio::test]
async fn the_renamed_repo_redirects_to_its_id_which_serves_it() {
    let c = SimClient::start().await;
    let renamed = c.truth().await["special"]["renamed"][0].clone();
    let old = renamed["from"].as_str().unwrap();
    let raw = no_redirects()
        .get(c.url(&format!("/repos/{old}")))
        .header("user-agent", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 301);
    let location = raw.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/repositories/", c.sim.base_url())));
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["message"], "Moved Permanently");
    let moved = c.rest(&location).await.json();
    assert_eq!(moved["full_name"], renamed["to"]);
    // A client that follows redirects just sees the repository.
    let followed = c.rest(&format!("/repos/{old}")).await.json();
    assert_eq!(followed["full_name"], renamed["to"]);
}

#[tokio::test]
async fn missing_repos_are_404_and_requests_without_user_agent_are_403() {
    let c = SimClient::start().await;
    let missing = c.truth().await["special"]["missing"][0]
        .as_str()
        .unwrap()
        .to_string();
    let gone = c.rest(&format!("/repos/{missing}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["message"], "Not Found");
    let no_ua = c.http.get(c.url("/repos/ppy/osu")).send().await.unwrap();
    assert_eq!(no_ua.status(), 403);
    assert!(no_ua
        .text()
        .await
        .unwrap()
        .starts_with("Request forbidden by administrative rules. Please make sure your request has a User-Agent header"));
}

#[tokio::test]
async fn repo_json_has_the_fields_clients_read() {
    let c = SimClient::start().await;
    let repo = c.rest("/repos/PPY/OSU").await.json();
    for field in [
        "id",
        "full_name",
        "description",
        "archived",
        "stargazers_count",
        "pushed_at",
        "language",
        "topics",
    ] {
        assert!(repo.get(field).is_some(), "missing {field}");
    }
    assert_eq!(repo["full_name"], "ppy/osu");
    let issue = c.rest("/repos/ppy/osu/issues/1").await.json();
    for field in [
        "id",
        "number",
        "title",
        "body",
        "state",
        "html_url",
        "labels",
        "assignees",
        "comments",
        "created_at",
        "updated_at",
    ] {
        assert!(issue.get(field).is_some(), "missing {field}");
    }
}
