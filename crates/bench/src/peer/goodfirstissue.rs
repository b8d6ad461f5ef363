//! goodfirstissue.dev (DeepSourceCorp/good-first-issue, HEAD b401201), as
//! its code behaves. Paths and lines below are at that commit.
//!
//! Its daily cron (`.github/workflows/cron.yml`) runs `gfi/populate.py`:
//! - The repository list is `data/repositories.toml` in its own checkout
//!   (`populate.py:237-247`): no request. The replay reads the simulator's
//!   list instead, to use the same dataset, and does not count that read as
//!   one of the tool's GitHub requests ([`super::PeerReport::github_requests`]).
//!   Links are matched with `GH_URL_PATTERN` (`populate.py:27`, `115-120`):
//!   `github.com/<[\w.-]+>/<[\w.-]+>` anywhere, the `.` unescaped.
//! - Per repo, `get_repository_info` (`populate.py:131-221`):
//!   `GET /repos/{o}/{r}` (`client.repository`, line 146); nothing more for
//!   an archived repo (148-149), one pushed more than 90 days ago (34,
//!   152-155), a missing one (213-215) or any other error; else one
//!   `repository.issues(labels=<L>, state="open", number=10, sort="created",
//!   direction="desc")` call per label of `data/labels.json` (157-167,
//!   29-32). A 403 pauses and retries the whole repo, 3 attempts
//!   (143, 203-211).
//! - Every call first passes `GitHubRateLimiter.acquire` (61-91), which
//!   sends `GET /rate_limit` (`_update_rate_limit`, 93-100) when its count
//!   of remaining requests is unknown or a multiple of 100, and counts one
//!   down per call; a 403 refreshes it too (102-112).
//!
//! In github3.py 4.0.1 (its `uv.lock:297-298`; sigmavirus24/github3.py,
//! lines at 9eeac0dd): `repository()` is one GET (`github.py:2102-2103`)
//! whose redirects `requests` follows; the repository's API URL is the
//! answer's `url` (`repos/repo.py:63`), so a renamed repo's issue calls go
//! to its new name (`repos/repo.py:2061`); an iterator of `number=10` asks
//! `per_page=10` and stops once 10 items are read, so each label is one
//! request (`structs.py:74-137`).
//!
//! Its 5 threads (`populate.py:23`, `260-261`) share the limiter behind a
//! lock; the replay sends the same calls one at a time, so a refresh can
//! read a remaining count a few in-flight requests apart from the real
//! run's. Its pauses (1 request per second, waits for a reset) are not
//! replayed: they cost time, not requests.

use serde_json::Value;

use super::{list_entries, PeerError, Session};

/// `data/labels.json`: one issues call each.
pub const GFI_LABELS: [&str; 9] = [
    "good first issue",
    "good-first-issue",
    "beginner",
    "beginner-friendly",
    "easy",
    "first-timers-only",
    "starter",
    "help wanted",
    "low-hanging-fruit",
];

/// `MAX_INACTIVITY_DAYS`.
const MAX_INACTIVITY_DAYS: i64 = 90;
/// `ISSUE_LIMIT`: github3 sends it as `per_page`.
const ISSUE_LIMIT: u32 = 10;
/// Attempts per repo (`max_retries`).
const ATTEMPTS: u32 = 3;

pub(super) fn replay(s: &mut Session<'_>, now: i64) -> Result<(), PeerError> {
    let text = s.list()?;
    s.not_github();
    let repos: Vec<(String, String)> = list_entries(&text)?
        .iter()
        .filter_map(|e| {
            e.get("link")
                .and_then(Value::as_str)
                .and_then(gfi_link_slug)
        })
        .collect();
    s.report.repos = repos.len();
    let mut limiter = RateLimiter::default();
    for (owner, name) in &repos {
        repository_info(s, &mut limiter, owner, name, now)?;
    }
    Ok(())
}

/// `GH_URL_PATTERN.search`: `github`, any character, `com/`, then
/// `[\w.-]+/[\w.-]+`.
pub fn gfi_link_slug(link: &str) -> Option<(String, String)> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '-';
    let chars: Vec<char> = link.chars().collect();
    let prefix: Vec<char> = "github?com/".chars().collect();
    for start in 0..chars.len() {
        let at_prefix =
            chars.len() - start >= prefix.len()
                && prefix.iter().zip(&chars[start..]).all(|(p, c)| {
                    if *p == '?' {
                        *c != '\n'
                    } else {
                        p == c
                    }
                });
        if !at_prefix {
            continue;
        }
        let rest = &chars[start + prefix.len()..];
        let owner: String = rest.iter().take_while(|c| word(**c)).collect();
        let after = owner.chars().count();
        if owner.is_empty() || rest.get(after) != Some(&'/') {
            continue;
        }
        let name: String = rest[after + 1..].iter().take_while(|c| word(**c)).collect();
        if !name.is_empty() {
            return Some((owner, name));
        }
    }
    None
}

/// `GitHubRateLimiter`'s request-relevant state.
#[derive(Default)]
struct RateLimiter {
    remaining: Option<u64>,
}

impl RateLimiter {
    fn acquire(&mut self, s: &mut Session<'_>) -> Result<(), PeerError> {
        if self.remaining.is_none_or(|r| r % 100 == 0) {
            self.refresh(s)?;
        }
        if self.remaining.is_some_and(|r| r < 100) {
            // It sleeps until the reset, then forgets the count.
            self.remaining = None;
        }
        if let Some(r) = self.remaining.as_mut().filter(|r| **r > 0) {
            *r -= 1;
        }
        Ok(())
    }

    /// `_update_rate_limit`: a failure leaves the count as it was.
    fn refresh(&mut self, s: &mut Session<'_>) -> Result<(), PeerError> {
        let reply = s.get("rest:rate_limit", "/rate_limit")?;
        let remaining = reply.is_success().then(|| reply.json()).flatten();
        if let Some(r) = remaining.and_then(|v| v["resources"]["core"]["remaining"].as_u64()) {
            self.remaining = Some(r);
        }
        Ok(())
    }

    /// `report_rate_limit_hit`.
    fn hit(&mut self, s: &mut Session<'_>) -> Result<(), PeerError> {
        self.refresh(s)?;
        self.remaining = Some(0);
        Ok(())
    }
}

enum Outcome {
    Done,
    Forbidden,
}

fn repository_info(
    s: &mut Session<'_>,
    limiter: &mut RateLimiter,
    owner: &str,
    name: &str,
    now: i64,
) -> Result<(), PeerError> {
    for _ in 0..ATTEMPTS {
        match attempt(s, limiter, owner, name, now)? {
            Outcome::Done => return Ok(()),
            Outcome::Forbidden => {
                s.note("forbidden");
                limiter.hit(s)?;
            }
        }
    }
    Ok(())
}

/// One pass of `get_repository_info`'s retry loop.
fn attempt(
    s: &mut Session<'_>,
    limiter: &mut RateLimiter,
    owner: &str,
    name: &str,
    now: i64,
) -> Result<Outcome, PeerError> {
    limiter.acquire(s)?;
    let reply = s.get("rest:repo", &format!("/repos/{owner}/{name}"))?;
    if reply.status == 403 {
        return Ok(Outcome::Forbidden);
    }
    let Some(repo) = reply.is_success().then(|| reply.json()).flatten() else {
        s.note("skipped_error");
        return Ok(Outcome::Done);
    };
    if repo["archived"].as_bool() == Some(true) {
        s.note("skipped_archived");
        return Ok(Outcome::Done);
    }
    let pushed = repo["pushed_at"].as_str().and_then(super::parse_iso8601);
    if pushed.is_none_or(|p| (now - p).div_euclid(86_400) > MAX_INACTIVITY_DAYS) {
        s.note("skipped_inactive");
        return Ok(Outcome::Done);
    }
    let api = repo["url"]
        .as_str()
        .map_or_else(|| format!("/repos/{owner}/{name}"), str::to_string);
    for label in GFI_LABELS {
        limiter.acquire(s)?;
        let query = format!(
            "state=open&labels={}&sort=created&direction=desc&per_page={ISSUE_LIMIT}",
            form_encode(label)
        );
        let reply = s.get("rest:issues", &format!("{api}/issues?{query}"))?;
        match reply.status {
            403 => return Ok(Outcome::Forbidden),
            200..=299 => {}
            _ => {
                s.note("skipped_error");
                return Ok(Outcome::Done);
            }
        }
    }
    s.note("repos_read");
    Ok(Outcome::Done)
}

/// `requests`' query encoding (`urlencode`, `quote_plus`): spaces as `+`.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_read_with_its_url_pattern() {
        let pair = |o: &str, n: &str| Some((o.to_string(), n.to_string()));
        assert_eq!(
            gfi_link_slug("https://github.com/vercel/next.js/"),
            pair("vercel", "next.js")
        );
        assert_eq!(gfi_link_slug("github.com/a/b#readme"), pair("a", "b"));
        assert_eq!(gfi_link_slug("https://github.com/octocat"), None);
        assert_eq!(
            gfi_link_slug("https://github.com.example.org/evil/repo"),
            None
        );
        assert_eq!(gfi_link_slug("https://gitlab.com/a/b"), None);
    }

    #[test]
    fn labels_are_form_encoded() {
        assert_eq!(form_encode("good first issue"), "good+first+issue");
        assert_eq!(form_encode("help wanted"), "help+wanted");
    }
}
