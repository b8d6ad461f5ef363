//! GitHub's REST API over the simulated world: repositories, languages,
//! labels, topics and issues (pull requests included, as GitHub does), with
//! strong ETags, conditional requests, `Link` pagination, rename redirects
//! and the `core` rate limit.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::Extension;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::clock::{iso8601, parse_iso8601};
use crate::gateway::{bearer_token, has_user_agent, missing_user_agent, PeerAddr};
use crate::ratelimit::{Client, Resource};
use crate::sim::Sim;
use crate::world::{node_id, Lookup, Repo, World, FLAG_LOCKED, FLAG_NOT_PLANNED, LANGUAGES};

const DOCS_REPO: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";

/// A computed REST answer before caching headers and rate limiting.
struct Answer {
    status: StatusCode,
    body: Json,
    link: Option<String>,
    location: Option<String>,
}

impl Answer {
    fn ok(body: Json) -> Answer {
        Answer {
            status: StatusCode::OK,
            body,
            link: None,
            location: None,
        }
    }

    fn not_found(doc: &str) -> Answer {
        Answer {
            status: StatusCode::NOT_FOUND,
            body: json!({"message": "Not Found", "documentation_url": doc, "status": "404"}),
            link: None,
            location: None,
        }
    }

    fn invalid(message: &str) -> Answer {
        Answer {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({"message": "Validation Failed", "errors": [{"message": message, "code": "invalid"}], "documentation_url": "https://docs.github.com/rest/issues/issues#list-repository-issues", "status": "422"}),
            link: None,
            location: None,
        }
    }
}

/// What a request addressed.
enum Target {
    BySlug { owner: String, name: String },
    ById(u64),
}

pub(crate) async fn repo(
    State(sim): State<Arc<Sim>>,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
) -> Response<Body> {
    entry(
        &sim,
        &headers,
        peer,
        Target::BySlug { owner, name },
        "",
        query,
    )
}

pub(crate) async fn repo_sub(
    State(sim): State<Arc<Sim>>,
    Path((owner, name, rest)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
) -> Response<Body> {
    entry(
        &sim,
        &headers,
        peer,
        Target::BySlug { owner, name },
        &rest,
        query,
    )
}

pub(crate) async fn repo_by_id(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
) -> Response<Body> {
    let id = id.parse().unwrap_or(0);
    entry(&sim, &headers, peer, Target::ById(id), "", query)
}

pub(crate) async fn repo_by_id_sub(
    State(sim): State<Arc<Sim>>,
    Path((id, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
) -> Response<Body> {
    let id = id.parse().unwrap_or(0);
    entry(&sim, &headers, peer, Target::ById(id), &rest, query)
}

pub(crate) fn client_of(headers: &HeaderMap, peer: PeerAddr) -> Client {
    match bearer_token(headers) {
        Some(t) => Client::Token(t),
        None => Client::Anonymous(peer.0.ip().to_string()),
    }
}

/// `GET /rate_limit`: reports without charging.
pub(crate) async fn rate_limit(
    State(sim): State<Arc<Sim>>,
    Extension(peer): Extension<PeerAddr>,
    headers: HeaderMap,
) -> Response<Body> {
    if !has_user_agent(&headers) {
        return missing_user_agent();
    }
    let client = client_of(&headers, peer);
    let (core, graphql) = {
        let mut limits = sim.limits();
        (
            limits.peek(Resource::Core, &client),
            limits.peek(Resource::Graphql, &client),
        )
    };
    let view = |w: crate::ratelimit::Window, authed: bool| {
        let limit = if authed { w.limit } else { 0 };
        json!({"limit": limit, "used": w.used, "remaining": limit.saturating_sub(w.used), "reset": w.reset})
    };
    let authed = matches!(client, Client::Token(_));
    let core_view = view(core, true);
    let body = json!({
        "resources": {
            "core": core_view,
            "graphql": view(graphql, authed),
        },
        "rate": core_view,
    });
    let mut resp = json_response(StatusCode::OK, &body);
    core.write_headers(Resource::Core, resp.headers_mut());
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    let etag = etag_of(text.as_bytes());
    resp.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex etag"),
    );
    resp
}

fn json_response(status: StatusCode, body: &Json) -> Response<Body> {
    let text = serde_json::to_string_pretty(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut().insert(
        "x-github-media-type",
        HeaderValue::from_static("github.v3; format=json"),
    );
    resp
}

/// A strong ETag: the SHA-256 of the body, quoted.
pub(crate) fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as GitHub).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let bare = etag.trim_start_matches("W/");
    v.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == bare)
}

fn entry(
    sim: &Sim,
    headers: &HeaderMap,
    peer: PeerAddr,
    target: Target,
    rest: &str,
    query: Option<String>,
) -> Response<Body> {
    if !has_user_agent(headers) {
        return missing_user_agent();
    }
    let client = client_of(headers, peer);
    let before = sim.limits().peek(Resource::Core, &client);
    if before.remaining() == 0 {
        let mut resp = json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "message": client.exceeded_message(),
                "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
            }),
        );
        before.write_headers(Resource::Core, resp.headers_mut());
        return resp;
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let answer = {
        let data = sim.data();
        answer(
            &data.world,
            &sim.base_url,
            target,
            rest,
            &pairs,
            query.as_deref(),
        )
    };

    let body_text = serde_json::to_string_pretty(&answer.body).unwrap_or_default();
    let etag = etag_of(body_text.as_bytes());
    let is_304 = answer.status == StatusCode::OK && not_modified(headers, &etag);
    let authed = matches!(client, Client::Token(_));
    let window = if is_304 && authed {
        sim.limits().peek(Resource::Core, &client)
    } else {
        sim.limits().charge(Resource::Core, &client, 1)
    };
    let mut resp = if is_304 {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_response(answer.status, &answer.body)
    };
    let h = resp.headers_mut();
    window.write_headers(Resource::Core, h);
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex etag"),
    );
    if answer.status == StatusCode::OK {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60, s-maxage=60"),
        );
        h.insert(
            header::VARY,
            HeaderValue::from_static("Accept, Authorization, Cookie, X-GitHub-OTP"),
        );
    }
    if let Some(link) = answer.link {
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.insert(header::LINK, v);
        }
    }
    if let Some(loc) = answer.location {
        if let Ok(v) = HeaderValue::from_str(&loc) {
            h.insert(header::LOCATION, v);
        }
    }
    resp
}

fn answer(
    world: &World,
    base: &str,
    target: Target,
    rest: &str,
    pairs: &[(String, String)],
    raw_query: Option<&str>,
) -> Answer {
    let idx = match target {
        Target::BySlug { owner, name } => match world.lookup(&owner, &name) {
            Lookup::Current(i) => i,
            Lookup::Former(i) => {
                let mut location = format!("{base}/repositories/{}", world.repos[i].id);
                if !rest.is_empty() {
                    location.push('/');
                    location.push_str(rest);
                }
                if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
                    location.push('?');
                    location.push_str(q);
                }
                return Answer {
                    status: StatusCode::MOVED_PERMANENTLY,
                    body: json!({"message": "Moved Permanently", "url": location, "documentation_url": DOCS_REPO}),
                    link: None,
                    location: Some(location),
                };
            }
            Lookup::Missing => return Answer::not_found(DOCS_REPO),
        },
        Target::ById(id) => match world.by_database_id(id) {
            Some(i) => i,
            None => return Answer::not_found(DOCS_REPO),
        },
    };
    let repo = &world.repos[idx];
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let api = format!("{base}/repos/{}", repo.name_with_owner());
    match segments.as_slice() {
        [] => Answer::ok(repo_json(repo, base)),
        ["languages"] => {
            let mut map = serde_json::Map::new();
            for (l, size) in &repo.languages {
                map.insert(LANGUAGES[*l as usize].0.to_string(), json!(size));
            }
            Answer::ok(Json::Object(map))
        }
        ["topics"] => Answer::ok(json!({ "names": repo.topics })),
        ["labels"] => {
            let all: Vec<Json> = repo
                .labels
                .iter()
                .map(|l| label_json(repo, l, &api))
                .collect();
            paged(
                all,
                pairs,
                &format!("{base}/repositories/{}/labels", repo.id),
            )
        }
        ["issues"] => list_issues(world, repo, base, pairs),
        ["issues", n] => match n.parse::<u32>().ok().filter(|n| repo.issue(*n).is_some()) {
            Some(n) => Answer::ok(issue_json(world, repo, n, base)),
            None => Answer::not_found("https://docs.github.com/rest/issues/issues#get-an-issue"),
        },
        _ => Answer::not_found("https://docs.github.com/rest"),
    }
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `per_page` (default 30, at most 100) and `page` (from 1).
fn page_params(pairs: &[(String, String)]) -> (usize, usize) {
    let per_page = param(pairs, "per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(30, |p| p.clamp(1, 100));
    let page = param(pairs, "page")
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(1, |p| p.max(1));
    (per_page, page)
}

/// Slices `all` and builds GitHub's `Link` header against `link_base`.
fn paged(all: Vec<Json>, pairs: &[(String, String)], link_base: &str) -> Answer {
    let (per_page, page) = page_params(pairs);
    let total = all.len();
    let last = total.div_ceil(per_page).max(1);
    let items: Vec<Json> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let url = |p: usize| {
        let mut q: Vec<(String, String)> =
            pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
        q.push(("page".into(), p.to_string()));
        format!(
            "{link_base}?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
    }
    Answer {
        status: StatusCode::OK,
        body: Json::Array(items),
        link: (!links.is_empty()).then(|| links.join(", ")),
        location: None,
    }
}

fn list_issues(world: &World, repo: &Repo, base: &str, pairs: &[(String, String)]) -> Answer {
    let state = param(pairs, "state").unwrap_or("open");
    if !matches!(state, "open" | "closed" | "all") {
        return Answer::invalid("state must be one of open, closed, all");
    }
    let sort = param(pairs, "sort").unwrap_or("created");
    if !matches!(sort, "created" | "updated" | "comments") {
        return Answer::invalid("sort must be one of created, updated, comments");
    }
    let ascending = param(pairs, "direction") == Some("asc");
    let since = param(pairs, "since").and_then(parse_iso8601);
    // `labels=a,b`: issues carrying ALL of them.
    let label_masks: Option<Vec<u32>> = param(pairs, "labels").map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| repo.label_mask(&[name.to_string()]))
            .collect()
    });
    let assignee = param(pairs, "assignee").map(str::to_lowercase);
    let creator = param(pairs, "creator").map(str::to_lowercase);

    let mut numbers: Vec<(i64, u32)> = Vec::new();
    for (i, m) in repo.issues.iter().enumerate() {
        let n = i as u32 + 1;
        let open = m.is_open();
        if (state == "open" && !open) || (state == "closed" && open) {
            continue;
        }
        if let Some(masks) = &label_masks {
            if masks.iter().any(|mask| m.labels & mask == 0) {
                continue;
            }
        }
        if since.is_some_and(|s| i64::from(m.updated) < s) {
            continue;
        }
        if let Some(a) = &assignee {
            let logins = world.issue_assignees(repo.idx, n);
            let ok = match a.as_str() {
                "none" => logins.is_empty(),
                "*" => !logins.is_empty(),
                login => logins.iter().any(|l| l.to_lowercase() == login),
            };
            if !ok {
                continue;
            }
        }
        if let Some(c) = &creator {
            if world.issue_author(repo.idx, n).to_lowercase() != *c {
                continue;
            }
        }
        let key = match sort {
            "updated" => i64::from(m.updated),
            "comments" => i64::from(m.comments),
            _ => i64::from(m.created),
        };
        numbers.push((key, n));
    }
    numbers.sort();
    if !ascending {
        numbers.reverse();
    }
    let (per_page, page) = page_params(pairs);
    // Render only the requested page.
    let total = numbers.len();
    let window: Vec<u32> = numbers
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(_, n)| *n)
        .collect();
    let mut answer = paged(
        vec![Json::Null; total],
        pairs,
        &format!("{base}/repositories/{}/issues", repo.id),
    );
    answer.body = Json::Array(
        window
            .into_iter()
            .map(|n| issue_json(world, repo, n, base))
            .collect(),
    );
    answer
}

fn user_json(login: &str) -> Json {
    let id = 1_000 + crate::rng::hash_str(login) % 90_000_000;
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("U_kgDO", id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "html_url": format!("https://github.com/{login}"),
        "type": "User",
        "site_admin": false
    })
}

fn label_json(repo: &Repo, l: &crate::world::Label, api: &str) -> Json {
    let _ = repo;
    json!({
        "id": l.id,
        "node_id": node_id("LA_kwDO", l.id),
        "url": format!("{api}/labels/{}", l.name.replace(' ', "%20")),
        "name": l.name,
        "color": l.color,
        "default": l.is_default,
        "description": l.description,
    })
}

fn repo_json(r: &Repo, base: &str) -> Json {
    let nwo = r.name_with_owner();
    let open_issues = r.issues.iter().filter(|m| m.is_open()).count();
    json!({
        "id": r.id,
        "node_id": r.node_id(),
        "name": r.name,
        "full_name": nwo,
        "private": false,
        "owner": {
            "login": r.owner,
            "id": r.owner_id(),
            "node_id": node_id(if r.owner_is_org { "O_kgDO" } else { "U_kgDO" }, r.owner_id()),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", r.owner_id()),
            "html_url": format!("https://github.com/{}", r.owner),
            "type": if r.owner_is_org { "Organization" } else { "User" },
            "site_admin": false
        },
        "html_url": r.html_url(),
        "description": r.description,
        "fork": false,
        "url": format!("{base}/repos/{nwo}"),
        "issues_url": format!("{base}/repos/{nwo}/issues{{/number}}"),
        "labels_url": format!("{base}/repos/{nwo}/labels{{/name}}"),
        "languages_url": format!("{base}/repos/{nwo}/languages"),
        "created_at": iso8601(r.created_at),
        "updated_at": iso8601(r.updated_at),
        "pushed_at": iso8601(r.pushed_at),
        "homepage": r.homepage,
        "size": r.languages.iter().map(|(_, s)| u64::from(*s)).sum::<u64>() / 1024,
        "stargazers_count": r.stars,
        "watchers_count": r.stars,
        "language": r.primary_language().map(|l| LANGUAGES[l as usize].0),
        "has_issues": true,
        "forks_count": r.forks,
        "archived": r.archived,
        "disabled": false,
        "open_issues_count": open_issues,
        "topics": r.topics,
        "visibility": "public",
        "forks": r.forks,
        "open_issues": open_issues,
        "watchers": r.stars,
        "default_branch": "main"
    })
}

fn issue_json(world: &World, r: &Repo, n: u32, base: &str) -> Json {
    let m = r.issue(n).expect("caller checked the number");
    let nwo = r.name_with_owner();
    let api = format!("{base}/repos/{nwo}");
    let labels: Vec<Json> = r
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| m.labels & (1 << i) != 0)
        .map(|(_, l)| label_json(r, l, &api))
        .collect();
    let assignees: Vec<Json> = world
        .issue_assignees(r.idx, n)
        .iter()
        .map(|l| user_json(l))
        .collect();
    let body = world.issue_body(r.idx, n);
    let (html_kind, node_prefix) = if m.is_pr() {
        ("pull", "PR_kwDO")
    } else {
        ("issues", "I_kwDO")
    };
    let mut issue = json!({
        "url": format!("{api}/issues/{n}"),
        "repository_url": api,
        "labels_url": format!("{api}/issues/{n}/labels{{/name}}"),
        "comments_url": format!("{api}/issues/{n}/comments"),
        "html_url": format!("https://github.com/{nwo}/{html_kind}/{n}"),
        "id": r.issue_id(n),
        "node_id": node_id(node_prefix, r.issue_id(n)),
        "number": n,
        "title": world.issue_title(r.idx, n),
        "user": user_json(&world.issue_author(r.idx, n)),
        "labels": labels,
        "state": if m.is_open() { "open" } else { "closed" },
        "locked": m.flags & FLAG_LOCKED != 0,
        "assignee": assignees.first().cloned().unwrap_or(Json::Null),
        "assignees": assignees,
        "milestone": null,
        "comments": m.comments,
        "created_at": iso8601(i64::from(m.created)),
        "updated_at": iso8601(i64::from(m.updated)),
        "closed_at": if m.is_open() { Json::Null } else { iso8601(i64::from(m.closed)).into() },
        "author_association": "NONE",
        "body": if body.is_empty() { Json::Null } else { body.into() },
        "state_reason": if m.is_open() { Json::Null } else if m.flags & FLAG_NOT_PLANNED != 0 { "not_planned".into() } else { "completed".into() },
    });
    if m.is_pr() {
        issue["draft"] = false.into();
        issue["pull_request"] = json!({
            "url": format!("{api}/pulls/{n}"),
            "html_url": format!("https://github.com/{nwo}/pull/{n}"),
            "diff_url": format!("https://github.com/{nwo}/pull/{n}.diff"),
            "patch_url": format!("https://github.com/{nwo}/pull/{n}.patch"),
            "merged_at": if m.flags & crate::pulls::FLAG_MERGED != 0 { iso8601(i64::from(m.closed)).into() } else { Json::Null }
        });
    }
    issue
}
