//! Relay pagination with opaque, key-based cursors. A cursor encodes the sort
//! key of its item, so paging stays stable when items before it change
//! state (an issue closing does not shift the next page).

use base64::Engine as _;

/// A sort key: two integers and a string, compared in that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey(pub i64, pub i64, pub String);

impl SortKey {
    pub(crate) fn ints(a: i64, b: i64) -> Self {
        SortKey(a, b, String::new())
    }

    pub(crate) fn cursor(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("cursor:v2:{}:{}:{}", self.0, self.1, self.2))
    }

    pub(crate) fn from_cursor(cursor: &str) -> Option<SortKey> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(cursor)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let rest = text.strip_prefix("cursor:v2:")?;
        let mut parts = rest.splitn(3, ':');
        let a = parts.next()?.parse().ok()?;
        let b = parts.next()?.parse().ok()?;
        let s = parts.next()?.to_string();
        Some(SortKey(a, b, s))
    }
}

/// `first`/`last`/`after`/`before` as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageArgs {
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub after: Option<String>,
    pub before: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageInfo {
    pub has_next: bool,
    pub has_previous: bool,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Page<T> {
    pub total: usize,
    pub items: Vec<(String, T)>,
    pub info: PageInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidCursor(pub String);

/// Pages through `items`, which must already be sorted by key in the
/// requested direction (`descending` says which way).
pub(crate) fn paginate<T>(
    mut items: Vec<(SortKey, T)>,
    descending: bool,
    args: &PageArgs,
) -> Result<Page<T>, InvalidCursor> {
    let total = items.len();
    let beyond = |k: &SortKey, c: &SortKey| if descending { k < c } else { k > c };
    let mut lo = 0;
    let mut hi = total;
    if let Some(after) = &args.after {
        let c = SortKey::from_cursor(after).ok_or_else(|| InvalidCursor(after.clone()))?;
        lo = items.partition_point(|(k, _)| !beyond(k, &c));
    }
    if let Some(before) = &args.before {
        let c = SortKey::from_cursor(before).ok_or_else(|| InvalidCursor(before.clone()))?;
        hi = items.partition_point(|(k, _)| beyond(&c, k)).max(lo);
    }
    if let Some(first) = args.first {
        hi = hi.min(lo + first.max(0) as usize);
    }
    if let Some(last) = args.last {
        lo = lo.max(hi.saturating_sub(last.max(0) as usize));
    }
    let has_next = hi < total;
    let has_previous = lo > 0;
    let slice: Vec<(SortKey, T)> = items.drain(lo..hi).collect();
    let items: Vec<(String, T)> = slice.into_iter().map(|(k, t)| (k.cursor(), t)).collect();
    let info = PageInfo {
        has_next,
        has_previous,
        start: items.first().map(|(c, _)| c.clone()),
        end: items.last().map(|(c, _)| c.clone()),
    };
    Ok(Page { total, items, info })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: i64) -> Vec<(SortKey, i64)> {
        (1..=n).map(|i| (SortKey::ints(i, i), i)).collect()
    }

    #[test]
    fn first_then_after_walks_every_item_once() {
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = paginate(
                numbers(25),
                false,
                &PageArgs {
                    first: Some(10),
                    after: after.clone(),
                    ..PageArgs::default()
                },
            )
            .unwrap();
            seen.extend(page.items.iter().map(|(_, v)| *v));
            if !page.info.has_next {
                break;
            }
            after = page.info.end;
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    }

    #[test]
    fn a_cursor_survives_removal_of_earlier_items() {
        let page = paginate(
            numbers(10),
            false,
            &PageArgs {
                first: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        let mut fewer = numbers(10);
        fewer.remove(1);
        let next = paginate(
            fewer,
            false,
            &PageArgs {
                first: Some(3),
                after: page.info.end,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            next.items.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
    }

    #[test]
    fn last_before_pages_backwards() {
        let all: Vec<(SortKey, i64)> = numbers(10).into_iter().rev().collect();
        let page = paginate(
            all,
            true,
            &PageArgs {
                last: Some(2),
                before: Some(SortKey::ints(5, 5).cursor()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            page.items.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![7, 6]
        );
        assert!(page.info.has_previous && page.info.has_next);
    }

    #[test]
    fn garbage_cursor_is_rejected() {
        assert!(paginate(
            numbers(3),
            false,
            &PageArgs {
                after: Some("nope".into()),
                ..Default::default()
            }
        )
        .is_err());
    }
}
