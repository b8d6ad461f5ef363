//! Scale: ten thousand extra repositories start and serve a quarter of
//! a million issues; the binary announces its address.

mod sim_client;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use contribot_sim::{start, SimConfig};
use serde_json::json;
use sim_client::SimClient;

#[tokio::test]
async fn ten_thousand_extra_repos_start_and_hold_250k_issues() {
    // Start-up time is a benchmark figure, not a timed assertion.
    contribot_sim::warm_schema();
    let sim = start(SimConfig {
        scale: 10_000,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = SimClient {
        sim,
        http: reqwest::Client::new(),
        token: "scale".into(),
    };

    let mut total = 0u64;
    for chunk in 0..50 {
        let aliases: String = (chunk * 200..(chunk + 1) * 200)
            .map(|k| {
                format!(r#"r{k}: repository(owner: "sim-org-{k}", name: "repo-{k}") {{ issues {{ totalCount }} }} "#)
            })
            .collect();
        let body = c
            .graphql(&format!("{{ {aliases} rateLimit {{ cost }} }}"), json!({}))
            .await
            .json();
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["rateLimit"]["cost"], 2);
        for (k, v) in body["data"].as_object().unwrap() {
            if k.starts_with('r') && k != "rateLimit" {
                total += v["issues"]["totalCount"].as_u64().unwrap();
            }
        }
    }
    let truth = c.truth().await;
    let pulls: u64 = truth["repos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["listed_slug"].as_str().unwrap().starts_with("sim-org-"))
        .map(|r| r["issues_and_pulls"].as_u64().unwrap())
        .sum();
    assert_eq!(pulls, 250_000);
    assert!(total > 200_000 && total <= 250_000, "{total} issues");
    let data: serde_json::Value = c
        .rest_with("/raw/MunGell/awesome-for-beginners/main/data.json", &[])
        .await
        .json();
    assert_eq!(data["repositories"].as_array().unwrap().len(), 10_229);
}

#[test]
fn the_binary_prints_its_address_first() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upstream-sim"))
        .args(["--port", "0", "--seed", "7", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let url = line
        .trim_end()
        .strip_prefix("upstream-sim listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.parse::<u16>().unwrap() > 0);
}
