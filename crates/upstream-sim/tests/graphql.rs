//! GitHub GraphQL behaviour: validation, the simulated subset, pagination,
//! cost, partial errors, label semantics and renames.

mod sim_client;

use contribot_sim::{RateLimitConfig, SimConfig};
use serde_json::{json, Value};
use sim_client::SimClient;

fn split(slug: &str) -> (String, String) {
    let (o, n) = slug.split_once('/').unwrap();
    (o.to_string(), n.to_string())
}

const OPEN_BEGINNER_PAGE: &str = r#"
query Page($owner: String!, $name: String!, $label: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    issues(first: 100, after: $after, labels: [$label], states: [OPEN]) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { number }
    }
  }
  rateLimit { cost remaining used limit resetAt nodeCount }
}"#;

#[tokio::test]
async fn a_repo_with_over_a_hundred_beginner_issues_pages_twice_by_cursor() {
    let c = SimClient::start().await;
    let truth = c.truth().await;
    let slug = truth["special"]["paginated"][0]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.repo_truth(&slug).await;
    let expected: Vec<u64> = t["open_beginner_issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(expected.len() > 100 && expected.len() <= 150);
    let (owner, name) = split(&slug);
    let label = t["beginner_label"].as_str().unwrap();

    let first = c
        .graphql(
            OPEN_BEGINNER_PAGE,
            json!({"owner": owner, "name": name, "label": label}),
        )
        .await;
    assert_eq!(first.status, 200);
    let body = first.json();
    let issues = &body["data"]["repository"]["issues"];
    assert_eq!(issues["totalCount"], expected.len());
    assert_eq!(issues["nodes"].as_array().unwrap().len(), 100);
    assert_eq!(issues["pageInfo"]["hasNextPage"], true);
    assert_eq!(body["data"]["rateLimit"]["cost"], 1);
    assert_eq!(body["data"]["rateLimit"]["remaining"], 4999);
    assert_eq!(
        first.header("x-ratelimit-resource").as_deref(),
        Some("graphql")
    );

    let cursor = issues["pageInfo"]["endCursor"].clone();
    let second = c
        .graphql(
            OPEN_BEGINNER_PAGE,
            json!({"owner": owner, "name": name, "label": label, "after": cursor}),
        )
        .await
        .json();
    let issues2 = &second["data"]["repository"]["issues"];
    assert_eq!(issues2["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["data"]["rateLimit"]["remaining"], 4998);

    let mut seen: Vec<u64> = issues["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(issues2["nodes"].as_array().unwrap())
        .map(|n| n["number"].as_u64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn nested_connections_cost_their_parent_page_size_in_requests() {
    let c = SimClient::start().await;
    // 1 request for issues + 100 for labels + 100 for assignees = 201 → 2 points.
    let q = r#"{
      repository(owner: "ppy", name: "osu") {
        issues(first: 100) { nodes { labels(first: 10) { nodes { name } } assignees(first: 10) { totalCount } } }
      }
      rateLimit { cost nodeCount }
    }"#;
    let r = c.graphql(q, json!({})).await;
    let body = r.json();
    assert_eq!(body["data"]["rateLimit"]["cost"], 2, "{body}");
    assert_eq!(body["data"]["rateLimit"]["nodeCount"], 100 + 1000 + 1000);
    assert_eq!(r.header_u64("x-ratelimit-used"), 2);
    assert_eq!(r.header_u64("x-ratelimit-remaining"), 4998);
    assert_eq!(c.sim.counters().graphql_points_total, 2);
}

#[tokio::test]
async fn a_missing_alias_is_null_with_not_found_while_others_resolve() {
    let c = SimClient::start().await;
    let missing = c.truth().await["special"]["missing"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (mo, mn) = split(&missing);
    let q = format!(
        r#"{{ gone: repository(owner: "{mo}", name: "{mn}") {{ nameWithOwner }}
             here: repository(owner: "ppy", name: "osu") {{ nameWithOwner }} }}"#
    );
    let body = c.graphql(&q, json!({})).await.json();
    assert_eq!(body["data"]["gone"], Value::Null);
    assert_eq!(body["data"]["here"]["nameWithOwner"], "ppy/osu");
    let err = &body["errors"][0];
    assert_eq!(err["type"], "NOT_FOUND");
    assert_eq!(err["path"], json!(["gone"]));
    assert_eq!(
        err["message"],
        format!("Could not resolve to a Repository with the name '{mo}/{mn}'.")
    );
    assert_eq!(err["locations"][0]["line"], 1);
}

#[tokio::test]
async fn an_unknown_field_fails_validation_without_data() {
    let c = SimClient::start().await;
    let r = c
        .graphql(
            r#"{ repository(owner: "ppy", name: "osu") { stars } }"#,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "undefinedField");
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'stars' doesn't exist on type 'Repository'"
    );
    assert!(
        body["errors"][0]["locations"][0]["column"]
            .as_u64()
            .unwrap()
            > 1
    );
}

#[tokio::test]
async fn a_mistyped_variable_is_a_variable_mismatch() {
    let c = SimClient::start().await;
    let q = r#"query($n: String) { repository(owner: "ppy", name: "osu") { issues(first: $n) { totalCount } } }"#;
    let body = c.graphql(q, json!({"n": "5"})).await.json();
    assert_eq!(body["errors"][0]["extensions"]["code"], "variableMismatch");
}

#[tokio::test]
async fn an_aliased_query_with_fragments_and_variables_executes() {
    let c = SimClient::start().await;
    let q = r#"
      query Two($a: String!, $first: Int = 2, $withTopics: Boolean!) {
        one: repository(owner: "ppy", name: $a) { ...Card }
        two: repository(owner: "ppy", name: $a) {
          __typename
          ... on Repository { nameWithOwner }
          repositoryTopics(first: 5) @include(if: $withTopics) { totalCount }
          stargazerCount @skip(if: true)
          issues(first: $first, orderBy: {field: CREATED_AT, direction: DESC}) {
            edges { cursor node { number title url state author { login } } }
          }
        }
      }
      fragment Card on Repository {
        nameWithOwner description isArchived
        owner { login ... on Organization { login } ... on User { login } }
        labels(first: 3) { totalCount nodes { name color } }
      }"#;
    let r = c.graphql(q, json!({"a": "osu", "withTopics": false})).await;
    let body = r.json();
    assert!(body.get("errors").is_none(), "{body}");
    let data = &body["data"];
    assert_eq!(data["one"]["nameWithOwner"], "ppy/osu");
    assert_eq!(data["one"]["owner"]["login"], "ppy");
    assert_eq!(data["two"]["__typename"], "Repository");
    assert!(data["two"].get("repositoryTopics").is_none());
    assert!(data["two"].get("stargazerCount").is_none());
    let edges = data["two"]["issues"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert!(edges[0]["node"]["number"].as_u64() > edges[1]["node"]["number"].as_u64());
    assert!(edges[0]["node"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://github.com/ppy/osu/issues/"));
    // Response keys keep query order.
    let keys: Vec<&str> = ["\"one\"", "\"two\""].to_vec();
    let pos: Vec<usize> = keys.iter().map(|k| r.text.find(k).unwrap()).collect();
    assert!(pos[0] < pos[1]);
}

#[tokio::test]
async fn a_real_but_unsimulated_field_is_an_explicit_error() {
    let c = SimClient::start().await;
    let body = c
        .graphql(
            r#"{ repository(owner: "ppy", name: "osu") { forkingAllowed } }"#,
            json!({}),
        )
        .await
        .json();
    assert!(body.get("data").is_none());
    assert_eq!(body["errors"][0]["extensions"]["code"], "notSimulated");
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'forkingAllowed' on type 'Repository' is not simulated"
    );
}

#[tokio::test]
async fn pagination_limits_follow_github() {
    let c = SimClient::start().await;
    let too_many = c
        .graphql(
            r#"{ repository(owner: "ppy", name: "osu") { issues(first: 101) { nodes { number } } } }"#,
            json!({}),
        )
        .await
        .json();
    assert_eq!(
        too_many["errors"][0]["message"],
        "Requesting 101 records on the `issues` connection exceeds the `first` limit of 100 records."
    );
    let unbounded = c
        .graphql(
            r#"{ repository(owner: "ppy", name: "osu") { issues { nodes { number } } } }"#,
            json!({}),
        )
        .await
        .json();
    assert_eq!(
        unbounded["errors"][0]["message"],
        "You must provide a `first` or `last` value to properly paginate the `issues` connection."
    );
    let count_only = c
        .graphql(
            r#"{ repository(owner: "ppy", name: "osu") { issues(states: OPEN) { totalCount } } }"#,
            json!({}),
        )
        .await
        .json();
    assert!(count_only["data"]["repository"]["issues"]["totalCount"].is_u64());
}

#[tokio::test]
async fn label_filters_match_any_label_case_insensitively_but_not_hyphenated() {
    let c = SimClient::start().await;
    let count = |labels: Value| {
        let c = &c;
        async move {
            let q = r#"query($l: [String!]) { repository(owner: "ppy", name: "osu") { issues(labels: $l) { totalCount } } }"#;
            c.graphql(q, json!({"l": labels})).await.json()["data"]["repository"]["issues"]
                ["totalCount"]
                .as_u64()
                .unwrap()
        }
    };
    let gfi = count(json!(["good first issue"])).await;
    let bug = count(json!(["bug"])).await;
    let either = count(json!(["good first issue", "bug"])).await;
    assert!(gfi > 0 && bug > 0);
    assert!(either >= gfi.max(bug) && either <= gfi + bug);
    assert_eq!(count(json!(["GOOD First Issue"])).await, gfi);
    assert_eq!(count(json!(["good-first-issue"])).await, 0);
}

#[tokio::test]
async fn pull_requests_are_not_graphql_issues() {
    let c = SimClient::start().await;
    let slug = c.truth().await["special"]["paginated"][0]
        .as_str()
        .unwrap()
        .to_string();
    let t = c.repo_truth(&slug).await;
    let (o, n) = split(&slug);
    let rest = c
        .rest(&format!("/repos/{slug}/issues?state=all&per_page=100"))
        .await
        .json();
    let pr = rest
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.get("pull_request").is_some())
        .expect("paginated repos have pull requests")["number"]
        .as_u64()
        .unwrap();
    let q = format!(
        r#"{{ repository(owner: "{o}", name: "{n}") {{ issues {{ totalCount }} issue(number: {pr}) {{ title }} }} }}"#
    );
    let body = c.graphql(&q, json!({})).await.json();
    let total = body["data"]["repository"]["issues"]["totalCount"]
        .as_u64()
        .unwrap();
    assert!(total < t["issues_and_pulls"].as_u64().unwrap());
    assert_eq!(body["data"]["repository"]["issue"], Value::Null);
    assert_eq!(
        body["errors"][0]["message"],
        format!("Could not resolve to an Issue with the number of {pr}.")
    );
}

#[tokio::test]
async fn the_renamed_repo_resolves_under_its_old_name_unless_renames_are_not_followed() {
    let c = SimClient::start().await;
    let renamed = c.truth().await["special"]["renamed"][0].clone();
    let (o, n) = split(renamed["from"].as_str().unwrap());
    let q = r#"query($o: String!, $n: String!, $f: Boolean!) {
        repository(owner: $o, name: $n, followRenames: $f) { nameWithOwner } }"#;
    let followed = c
        .graphql(q, json!({"o": o, "n": n, "f": true}))
        .await
        .json();
    assert_eq!(
        followed["data"]["repository"]["nameWithOwner"],
        renamed["to"]
    );
    let strict = c
        .graphql(q, json!({"o": o, "n": n, "f": false}))
        .await
        .json();
    assert_eq!(strict["errors"][0]["type"], "NOT_FOUND");
}

#[tokio::test]
async fn graphql_requires_a_token_and_a_user_agent() {
    let c = SimClient::start().await;
    let anon = c
        .http
        .post(c.url("/graphql"))
        .header("user-agent", "t")
        .json(&json!({"query": "{ rateLimit { cost } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let body: Value = anon.json().await.unwrap();
    assert_eq!(
        body["message"],
        "This endpoint requires you to be authenticated."
    );
    let no_ua = c
        .http
        .post(c.url("/graphql"))
        .header("authorization", "bearer t")
        .json(&json!({"query": "{ rateLimit { cost } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_ua.status(), 403);
    assert!(no_ua.text().await.unwrap().contains("User-Agent"));
}

#[tokio::test]
async fn a_spent_budget_answers_rate_limited() {
    let c = SimClient::with(SimConfig {
        rate_limits: RateLimitConfig {
            graphql: 2,
            ..RateLimitConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let q = "{ rateLimit { remaining } }";
    assert_eq!(
        c.graphql(q, json!({})).await.json()["data"]["rateLimit"]["remaining"],
        1
    );
    assert_eq!(
        c.graphql(q, json!({})).await.json()["data"]["rateLimit"]["remaining"],
        0
    );
    let spent = c.graphql(q, json!({})).await;
    assert_eq!(spent.status, 200);
    assert_eq!(spent.json()["errors"][0]["type"], "RATE_LIMITED");
    assert_eq!(spent.header_u64("x-ratelimit-remaining"), 0);
    // Other tokens have their own budget.
    let other = c.graphql_as("someone-else", q, json!({})).await.json();
    assert_eq!(other["data"]["rateLimit"]["remaining"], 1);
}
