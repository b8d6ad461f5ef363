//! The list's `README.md`, the fallback when `data.json` cannot be used.
//!
//! Entries are markdown list items that start with a link, under a heading
//! naming a technology:
//!
//! ```text
//! ## Rust
//!
//! - [Name](https://github.com/o/r) _(label: good first issue)_ <br> description
//! ```
//!
//! Older versions of the list are read too:
//!
//! - the link may point at a label page,
//!   `https://github.com/o/r/labels/good%20first%20issue`, or at an issue
//!   search, `https://github.com/o/r/issues?q=label%3A%22good+first+issue%22`;
//!   the label is then also taken from the URL (percent-decoded; `+` is a
//!   space only in the query);
//! - the label part may be missing, or spelt `(label: a, b)` without
//!   emphasis;
//! - the description may follow ` - ` instead of `<br>`.
//!
//! Only list items whose first thing is a link to an absolute `http(s)` URL
//! count as entries, so table-of-contents anchors, badges, images and links
//! in paragraphs are ignored. Items before the first `##` heading, inside
//! fenced code, or under the table-of-contents, contributing, sponsors and
//! license sections are ignored as well. The README template writes a
//! missing label as `n/a`; that is read as no label.

use super::{resolve_link, split_labels, Entry, ListBuilder, ListError, ParsedList};

/// Section headings (lowercase prefixes) whose list items are not entries.
const NON_ENTRY_SECTIONS: &[&str] = &[
    "table of contents",
    "contents",
    "contribut",
    "sponsor",
    "thanks",
    "license",
];

/// Parses the list's `README.md`.
///
/// Errors with [`ListError::Empty`] when no entry yields a GitHub
/// repository; otherwise bad entries are reported in
/// [`ParsedList::skipped`] and the rest are kept.
pub fn parse_readme(markdown: &str) -> Result<ParsedList, ListError> {
    let mut builder = ListBuilder::default();
    // `None` until the first `##` heading, and under non-entry sections.
    let mut technology: Option<&str> = None;
    let mut in_fence = false;
    let mut entry_index = 0usize;

    for line in markdown.lines() {
        let line = line.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some((level, text)) = heading(line) {
            let lower = text.to_lowercase();
            let ignored = NON_ENTRY_SECTIONS.iter().any(|s| lower.starts_with(s));
            technology = (level >= 2 && !ignored).then_some(text);
            continue;
        }
        let Some(section) = technology else {
            continue;
        };
        let Some(item) = list_item(line) else {
            continue;
        };
        let Some(link) = leading_link(item) else {
            continue;
        };
        if !is_absolute_http(link.url) {
            continue;
        }

        let index = entry_index;
        entry_index += 1;
        let url = match resolve_link(link.url) {
            Ok(url) => url,
            Err(reason) => {
                builder.skip(index, Some(link.text), reason);
                continue;
            }
        };
        let tail = split_tail(link.rest);
        let mut entry = Entry {
            name: Some(link.text),
            technologies: vec![section],
            description: tail.description,
            ..Entry::default()
        };
        if let Some(field) = tail.labels {
            entry.labels.extend(
                split_labels(field)
                    .map(|l| l.trim_matches(|c| matches!(c, '`' | '"' | '\'')).trim())
                    .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("n/a"))
                    .map(str::to_owned),
            );
        }
        entry.labels.extend(labels_from_url(&url.rest, url.query));
        builder.add(url.slug, entry);
    }
    builder.finish()
}

/// An ATX heading: its level and its text without the closing `#`s.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = line.get(level..)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim();
    // A closing run of `#`s only counts after a space: `## C#` is "C#".
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some((level, text))
}

/// The content of a bullet list item (`- `, `* `, `+ `).
fn list_item(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix('-')
        .or_else(|| line.strip_prefix('*'))
        .or_else(|| line.strip_prefix('+'))?;
    rest.starts_with([' ', '\t']).then(|| rest.trim_start())
}

/// A markdown link at the start of a list item, and what follows it.
struct LeadingLink<'a> {
    text: &'a str,
    url: &'a str,
    rest: &'a str,
}

/// `[text](url "title") rest` → its parts. Brackets and parentheses nest,
/// and a backslash escapes the next character.
fn leading_link(item: &str) -> Option<LeadingLink<'_>> {
    let after_open = item.strip_prefix('[')?;
    let text_end = matching_close(after_open, '[', ']')?;
    let text = after_open.get(..text_end)?;
    let after_text = after_open.get(text_end + 1..)?.strip_prefix('(')?;
    let target_end = matching_close(after_text, '(', ')')?;
    let target = after_text.get(..target_end)?.trim();
    let rest = after_text.get(target_end + 1..)?;
    let url = match target.strip_prefix('<') {
        Some(inner) => inner.split('>').next().unwrap_or(inner),
        None => target.split_whitespace().next().unwrap_or(target),
    };
    Some(LeadingLink {
        text: text.trim(),
        url,
        rest,
    })
}

/// Byte offset of the `close` that balances an already-consumed `open`.
fn matching_close(s: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (offset, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                return Some(offset);
            }
            depth -= 1;
        }
    }
    None
}

fn is_absolute_http(url: &str) -> bool {
    let head = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    head.starts_with("https://") || head.starts_with("http://")
}

/// What follows an entry's link.
struct Tail<'a> {
    /// The text of a `(label: ...)` part, if present.
    labels: Option<&'a str>,
    description: Option<&'a str>,
}

/// Splits ` _(label: a, b)_ <br> description` into labels and description.
fn split_tail(rest: &str) -> Tail<'_> {
    match label_part(rest) {
        Some((labels, after)) => Tail {
            labels: Some(labels),
            description: clean_description(after),
        },
        None => Tail {
            labels: None,
            description: clean_description(rest),
        },
    }
}

/// `_(label: a, b)_ <br> d` → `("a, b", "_ <br> d")`. The label part only
/// counts right after the link (emphasis markers and spaces may come
/// between), so a "(label: ...)" inside a description stays part of it. An
/// unclosed part runs to the end of the line.
fn label_part(rest: &str) -> Option<(&str, &str)> {
    let lead = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '_' || c == '*');
    let word = lead.strip_prefix('(')?.trim_start();
    if !word.get(..5)?.eq_ignore_ascii_case("label") {
        return None;
    }
    let after_word = word.get(5..)?;
    let field = after_word
        .strip_prefix(['s', 'S'])
        .unwrap_or(after_word)
        .trim_start()
        .strip_prefix(':')?;
    Some(match matching_close(field, '(', ')') {
        Some(end) => (field.get(..end)?, field.get(end + 1..)?),
        None => (field, ""),
    })
}

/// Drops closing emphasis and the `<br>` or ` - ` separator before a
/// description.
fn clean_description(text: &str) -> Option<&str> {
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '_' || c == '*');
    let lower_head = text.get(..6).unwrap_or(text).to_ascii_lowercase();
    let text = if lower_head.starts_with("<br />") {
        text.get(6..).unwrap_or_default()
    } else if lower_head.starts_with("<br/>") {
        text.get(5..).unwrap_or_default()
    } else if lower_head.starts_with("<br>") {
        text.get(4..).unwrap_or_default()
    } else {
        text.strip_prefix(['-', '–', '—', ':']).unwrap_or(text)
    };
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// Labels named by the link itself: `.../labels/<label>` or
/// `.../issues?q=...label:"<label>"...`.
fn labels_from_url(rest: &[&str], query: Option<&str>) -> Vec<String> {
    match rest {
        [first, label @ ..] if first.eq_ignore_ascii_case("labels") && !label.is_empty() => {
            let label = percent_decode(&label.join("/"), false);
            let label = label.trim();
            if label.is_empty() {
                Vec::new()
            } else {
                vec![label.to_owned()]
            }
        }
        [first, ..] if first.eq_ignore_ascii_case("issues") => {
            query.map(labels_from_issue_query).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The `label:` qualifiers of an issue search's `q` parameter.
fn labels_from_issue_query(query: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for pair in query.split('&') {
        let Some(("q", value)) = pair.split_once('=') else {
            continue;
        };
        let search = percent_decode(value, true);
        let mut rest = search.as_str();
        while let Some(at) = find_ascii_ci(rest, "label:") {
            let excluded = rest.get(..at).is_some_and(|before| before.ends_with('-'));
            let after = rest.get(at + 6..).unwrap_or_default();
            let (value, next) = match after.strip_prefix('"') {
                Some(quoted) => match quoted.split_once('"') {
                    Some((value, next)) => (value, next),
                    None => (quoted, ""),
                },
                None => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (
                        after.get(..end).unwrap_or_default(),
                        after.get(end..).unwrap_or_default(),
                    )
                }
            };
            if !excluded {
                labels.extend(split_labels(value).map(str::to_owned));
            }
            rest = next;
        }
    }
    labels
}

/// Byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.char_indices().map(|(i, _)| i).find(|&i| {
        haystack
            .get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// Decodes `%XY` escapes (and `+` as a space when `plus_is_space`). Invalid
/// escapes stay as they are; invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push((hi << 4) | lo);
                i += 3;
            }
            None => {
                out.push(if plus_is_space && b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_search_links_name_their_labels() {
        assert_eq!(
            labels_from_issue_query("q=is%3Aopen+label%3A%22good+first+issue%22+-label:wontfix"),
            ["good first issue"]
        );
        assert_eq!(
            labels_from_issue_query("q=label:easy,starter"),
            ["easy", "starter"]
        );
    }

    #[test]
    fn percent_decoding_never_fails() {
        assert_eq!(percent_decode("a%20b+c%zz%", false), "a b+c%zz%");
        assert_eq!(percent_decode("%ff%fe", false), "\u{fffd}\u{fffd}");
    }
}
