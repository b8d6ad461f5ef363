//! The list phase: fetch `data.json` (the README on failure), and when its
//! text changed since the last good list, parse it and bring D1's listed
//! repos in line. An unchanged text is neither parsed nor written.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{fetch_text, Ctx, Flow, CLOSING_RESERVE};
use crate::failure::classify_json_body;
use crate::hash::{self, ContentHash};
use crate::list::{self, ParsedList};
use crate::logrec::{fields, Level};
use crate::platform::{Metered, Platform, PlatformError};
use crate::sql::{decode_rows, Statement};
use crate::store;

/// What fetching the list came to.
enum Fetched {
    /// The same text as the last good list (its length, for the log).
    Unchanged {
        bytes: usize,
        origin: &'static str,
    },
    Parsed {
        list: ParsedList,
        text_hash: ContentHash,
        origin: &'static str,
        /// Why data.json was not used, when the README was.
        errors: Vec<String>,
    },
    Unusable {
        errors: Vec<String>,
    },
}

/// Fetch data.json (README on failure); hash the text before parsing it.
async fn fetch_list<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    last_good: Option<&str>,
) -> Result<Fetched, PlatformError> {
    let mut errors: Vec<String> = Vec::new();
    // A data.json cut off in transit is fetched again, not taken for a broken list.
    let cut_off = |body: &str| classify_json_body("data.json", body);
    match fetch_text(p, ctx, &ctx.cfg.list_data_url.clone(), 3, cut_off).await? {
        Ok(text) => {
            let text_hash = hash::text_hash(&text);
            if last_good == Some(text_hash.as_str()) {
                return Ok(Fetched::Unchanged {
                    bytes: text.len(),
                    origin: "data.json",
                });
            }
            match list::parse_data_json(&text) {
                Ok(list) => {
                    return Ok(Fetched::Parsed {
                        list,
                        text_hash,
                        origin: "data.json",
                        errors,
                    })
                }
                Err(e) => errors.push(format!("data.json unusable: {e}")),
            }
        }
        Err(f) => errors.push(format!("data.json fetch failed: {f}")),
    }
    if !p.budget.can_afford(3 + CLOSING_RESERVE) {
        return Ok(Fetched::Unusable { errors });
    }
    match fetch_text(p, ctx, &ctx.cfg.list_readme_url.clone(), 2, |_| None).await? {
        Ok(text) => {
            let text_hash = hash::text_hash(&text);
            if last_good == Some(text_hash.as_str()) {
                return Ok(Fetched::Unchanged {
                    bytes: text.len(),
                    origin: "README.md",
                });
            }
            match list::parse_readme(&text) {
                Ok(list) if !list.repos.is_empty() => {
                    return Ok(Fetched::Parsed {
                        list,
                        text_hash,
                        origin: "README.md",
                        errors,
                    })
                }
                Ok(_) => errors.push("README fallback lists no GitHub repos".into()),
                Err(e) => errors.push(format!("README fallback unusable: {e}")),
            }
        }
        Err(f) => errors.push(format!("README fetch failed: {f}")),
    }
    Ok(Fetched::Unusable { errors })
}

pub(super) async fn list_phase<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    source: Option<&store::SourceRow>,
) -> Result<Flow, PlatformError> {
    // fetch data.json (+ README) + read + write
    if !p.budget.can_afford(4 + CLOSING_RESERVE) {
        return Ok(Flow::Yield {
            delay_secs: 0,
            reason: "budget spent before the list".into(),
        });
    }
    let source_id = ctx.cursor.source.clone();
    let last_good = source.and_then(|s| s.last_good_hash.as_deref());
    let fetched = fetch_list(p, ctx, last_good).await?;
    let now = p.now_ms();
    let Some(parsed) = usable(p, ctx, fetched, &source_id, now).await? else {
        ctx.cursor.enter_repos();
        return Ok(Flow::Next);
    };
    log_list_notes(ctx, &parsed.0, now);
    sync_list(p, ctx, &source_id, parsed, now).await?;
    // Parsing and syncing a changed list is a whole invocation's work: the
    // repos start in a fresh one (CPU limit).
    Ok(Flow::Yield {
        delay_secs: 0,
        reason: "list synced; repos continue in a fresh invocation".into(),
    })
}

/// A parsed list, its text's hash and where it came from.
type Usable = (ParsedList, ContentHash, &'static str);

/// The fetched list, when there is one to sync: an unchanged list is logged
/// and skipped; an unusable one is recorded (the last good set is kept).
async fn usable<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    fetched: Fetched,
    source_id: &str,
    now: i64,
) -> Result<Option<Usable>, PlatformError> {
    match fetched {
        Fetched::Unchanged { bytes, origin } => {
            // Same text as the last good list: nothing to parse or write.
            ctx.log(
                now,
                Level::Info,
                "list_unchanged",
                fields([("bytes", json!(bytes)), ("origin", json!(origin))]),
            );
            Ok(None)
        }
        Fetched::Unusable { errors } => {
            // Keep the last good repo set; the run still refreshes it, but ends failed.
            let reason = format!(
                "list unavailable, kept the last good repo set: {}",
                errors.join("; ")
            );
            ctx.log(
                now,
                Level::Error,
                "list_failed",
                fields([("reason", json!(reason))]),
            );
            let record = [
                store::source_error(source_id, &reason, now),
                store::note_run_error(&ctx.cursor.run_id, &reason),
            ];
            super::db(p, ctx, &record).await?;
            Ok(None)
        }
        Fetched::Parsed {
            list,
            text_hash,
            origin,
            errors,
        } => {
            for e in &errors {
                ctx.log(
                    now,
                    Level::Warn,
                    "list_fallback",
                    fields([("reason", json!(e)), ("used", json!(origin))]),
                );
            }
            Ok(Some((list, text_hash, origin)))
        }
    }
}

/// The entries the parser skipped and its warnings, one log line each.
fn log_list_notes(ctx: &mut Ctx<'_>, list: &ParsedList, now: i64) {
    for s in &list.skipped {
        ctx.log(
            now,
            Level::Warn,
            "list_entry_skipped",
            fields([
                ("entry", json!(s.entry_index)),
                ("name", json!(s.name)),
                ("reason", json!(s.reason.to_string())),
            ]),
        );
    }
    for w in &list.warnings {
        ctx.log(
            now,
            Level::Warn,
            "list_warning",
            fields([("warning", json!(w))]),
        );
    }
    let skipped = list.skipped.len() as i64;
    ctx.bump(|c| c.repos_skipped += skipped);
}

/// Diff the list against the source's stored repos and write the changes,
/// the source's good hash and the cursor (now at the repos) in one batch.
async fn sync_list<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    source_id: &str,
    (list, text_hash, origin): Usable,
    now: i64,
) -> Result<(), PlatformError> {
    let rows = super::db(p, ctx, &[store::repos_of_source(source_id)]).await?;
    let known: Vec<store::ListedRow> = rows
        .first()
        .map(|r| decode_rows(r))
        .transpose()
        .map_err(|e| PlatformError::Db(e.to_string()))?
        .unwrap_or_default();
    // Only data.json can prove it arrived whole; the README may be cut
    // short anywhere and still parse, so it never delists a repo.
    let authority = if origin == "data.json" {
        ListAuthority::Complete
    } else {
        ListAuthority::Partial
    };
    let mut stmts = plan_list_sync_from(source_id, &list, &known, now, authority);
    let (new, changed, gone) = (stmts.inserted, stmts.changed, stmts.deactivated);
    if stmts.kept_unlisted > 0 {
        ctx.log(
            now,
            Level::Warn,
            "list_removals_deferred",
            fields([
                ("origin", json!(origin)),
                ("repos", json!(stmts.kept_unlisted)),
                (
                    "reason",
                    json!("the README fallback cannot show it is complete; repos it omits stay active until data.json is read again"),
                ),
            ]),
        );
    }
    stmts
        .statements
        .push(store::source_good(source_id, text_hash.as_str(), now));
    ctx.cursor.enter_repos();
    stmts.statements.push(ctx.progress());
    ctx.pending.append(&mut stmts.statements);
    ctx.log(
        now,
        Level::Info,
        "list_synced",
        fields([
            ("origin", json!(origin)),
            ("repos", json!(list.repos.len())),
            ("new", json!(new)),
            ("changed", json!(changed)),
            ("deactivated", json!(gone)),
            ("skipped", json!(list.skipped.len())),
        ]),
    );
    Ok(())
}

/// The writes that bring D1's listed repos in line with the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSync {
    pub statements: Vec<Statement>,
    pub inserted: usize,
    pub changed: usize,
    pub deactivated: usize,
    /// Active repos the list omits but that stay active (a partial list).
    pub kept_unlisted: usize,
}

/// Whether a parsed list may delist repos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAuthority {
    /// Known to be whole (data.json: a document cut off in transit does not
    /// parse): repos it omits are deactivated.
    Complete,
    /// May be cut short and still parse (the README fallback): repos are
    /// added and updated, none is deactivated.
    Partial,
}

/// [`plan_list_sync_from`] for a list known to be whole.
pub fn plan_list_sync(
    source: &str,
    list: &ParsedList,
    known: &[store::ListedRow],
    now_ms: i64,
) -> ListSync {
    plan_list_sync_from(source, list, known, now_ms, ListAuthority::Complete)
}

pub fn plan_list_sync_from(
    source: &str,
    list: &ParsedList,
    known: &[store::ListedRow],
    now_ms: i64,
    authority: ListAuthority,
) -> ListSync {
    let by_slug: BTreeMap<(&str, &str), &store::ListedRow> = known
        .iter()
        .map(|r| ((r.owner.as_str(), r.name.as_str()), r))
        .collect();
    let mut writes = Vec::new();
    let (mut inserted, mut changed) = (0, 0);
    let mut listed: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in &list.repos {
        listed.insert((r.slug.owner.as_str(), r.slug.name.as_str()));
        let h = hash::list_entry_hash(&r.labels, &r.technologies, r.description.as_deref());
        match by_slug.get(&(r.slug.owner.as_str(), r.slug.name.as_str())) {
            Some(row) if row.list_hash.as_deref() == Some(h.as_str()) && row.active == 1 => {
                continue
            }
            Some(_) => changed += 1,
            None => inserted += 1,
        }
        writes.push(store::ListedWrite {
            owner: r.slug.owner.clone(),
            name: r.slug.name.clone(),
            position: i64::from(r.position),
            labels_json: serde_json::to_string(&r.labels).unwrap_or_else(|_| "[]".into()),
            technologies_json: serde_json::to_string(&r.technologies)
                .unwrap_or_else(|_| "[]".into()),
            description: r.description.clone(),
            list_hash: h,
        });
    }
    let unlisted: Vec<i64> = known
        .iter()
        .filter(|r| r.active == 1 && !listed.contains(&(r.owner.as_str(), r.name.as_str())))
        .map(|r| r.id)
        .collect();
    let mut statements = store::upsert_listed(source, &writes, now_ms);
    let (deactivated, kept_unlisted) = match authority {
        ListAuthority::Complete => {
            statements.extend(store::deactivate_repos(&unlisted, now_ms));
            (unlisted.len(), 0)
        }
        ListAuthority::Partial => (0, unlisted.len()),
    };
    ListSync {
        statements,
        inserted,
        changed,
        deactivated,
        kept_unlisted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list;

    fn listed(id: i64, owner: &str, name: &str) -> store::ListedRow {
        store::ListedRow {
            id,
            owner: owner.into(),
            name: name.into(),
            data_source: "awesome-for-beginners".into(),
            list_hash: None,
            active: 1,
        }
    }

    fn deactivations(sync: &ListSync) -> usize {
        sync.statements
            .iter()
            .filter(|s| s.sql.contains("SET active = 0"))
            .count()
    }

    #[test]
    fn only_a_complete_list_delists_the_repos_it_omits() {
        let list = list::parse_data_json(
            r#"{"repositories": [{"name": "a", "link": "https://github.com/o/a", "label": "good first issue"}]}"#,
        )
        .unwrap();
        let known = [
            listed(1, "o", "a"),
            listed(2, "o", "b"),
            listed(3, "o", "c"),
        ];

        let whole = plan_list_sync(DEFAULT_SOURCE, &list, &known, 0);
        assert_eq!((whole.deactivated, whole.kept_unlisted), (2, 0));
        assert_eq!(deactivations(&whole), 1);

        let partial = plan_list_sync_from(DEFAULT_SOURCE, &list, &known, 0, ListAuthority::Partial);
        assert_eq!((partial.deactivated, partial.kept_unlisted), (0, 2));
        assert_eq!(deactivations(&partial), 0, "a partial list delists nothing");
        // It still writes what it lists.
        assert_eq!(
            partial.inserted + partial.changed,
            whole.inserted + whole.changed
        );
    }

    const DEFAULT_SOURCE: &str = crate::list::DEFAULT_SOURCE_ID;
}
