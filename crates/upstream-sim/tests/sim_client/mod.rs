//! A small HTTP client for driving a running simulator from tests, the way
//! the workers would: with a User-Agent, a token and JSON bodies.
#![allow(dead_code)]

use contribot_sim::{start, SimConfig, SimHandle};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub struct SimClient {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .parse()
            .unwrap()
    }
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl SimClient {
    pub async fn start() -> SimClient {
        Self::with(SimConfig::default()).await
    }

    pub async fn with(config: SimConfig) -> SimClient {
        let sim = start(config).await.expect("simulator starts");
        SimClient {
            sim,
            http: reqwest::Client::new(),
            token: "test-token".into(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request completes");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            text,
        }
    }

    /// GraphQL with the default token and a User-Agent.
    pub async fn graphql(&self, query: &str, variables: Value) -> Reply {
        self.graphql_as(&self.token, query, variables).await
    }

    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Reply {
        self.send(
            self.http
                .post(self.url("/graphql"))
                .header("user-agent", "contribot-tests")
                .header("authorization", format!("bearer {token}"))
                .json(&json!({"query": query, "variables": variables})),
        )
        .await
    }

    /// An authenticated REST GET.
    pub async fn rest(&self, path: &str) -> Reply {
        self.rest_with(path, &[("authorization", &format!("token {}", self.token))])
            .await
    }

    pub async fn rest_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let target = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self
            .http
            .get(target)
            .header("user-agent", "contribot-tests");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.http.post(self.url(path)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn truth(&self) -> Value {
        self.get("/_sim/truth").await.json()
    }

    /// The truth entry for a listed slug.
    pub async fn repo_truth(&self, slug: &str) -> Value {
        self.truth().await["repos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["listed_slug"] == slug)
            .cloned()
            .unwrap_or_else(|| panic!("{slug} not in truth"))
    }
}
