//! `raw.githubusercontent.com` under `/raw`: the list's `data.json` and
//! `README.md` on `MunGell/awesome-for-beginners@main`, served from the
//! current (possibly mutated or broken) list.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::list::{LIST_BRANCH, LIST_OWNER, LIST_REPO};
use crate::rest::{etag_of, not_modified};
use crate::sim::Sim;

fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) async fn serve(
    State(sim): State<Arc<Sim>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let parts: Vec<&str> = path.split('/').collect();
    let body = match parts.as_slice() {
        [owner, repo, branch, file]
            if owner.eq_ignore_ascii_case(LIST_OWNER)
                && repo.eq_ignore_ascii_case(LIST_REPO)
                && *branch == LIST_BRANCH =>
        {
            let data = sim.data();
            match *file {
                "data.json" => data.list.data_json(),
                "README.md" => data.list.readme(),
                _ => return text(StatusCode::NOT_FOUND, "404: Not Found"),
            }
        }
        _ => return text(StatusCode::NOT_FOUND, "404: Not Found"),
    };
    let etag = etag_of(body.as_bytes());
    let mut resp = if not_modified(&headers, &etag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        text(StatusCode::OK, body)
    };
    let h = resp.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex etag"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    resp
}
