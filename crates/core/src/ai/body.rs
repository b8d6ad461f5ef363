//! Issue bodies made fit for a prompt: template comments, images and blank
//! runs removed, then cut to a character budget.

/// Appended where [`clean_body`] cut a body short.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// The body without what a reader cannot see or the model cannot use:
///
/// * HTML comments `<!-- … -->` (issue templates are full of them); an
///   unterminated comment runs to the end of the body, as it does on GitHub;
/// * Markdown images `![alt](url)` and `![alt][ref]`, and the empty link a
///   linked image leaves behind (`[![badge](img)](link)`);
/// * HTML `<img …>` tags (an unterminated one up to the end of its line);
/// * leading and trailing blank space, trailing spaces on each line, and
///   runs of blank lines (at most one is kept).
///
/// The result has at most `max_chars` characters. When the body was longer,
/// it is cut on a character boundary and ends with [`TRUNCATION_MARK`] (the
/// mark counts towards `max_chars`; a budget too small to hold it gets a
/// bare cut).
pub fn clean_body(body: &str, max_chars: usize) -> String {
    let text = body.replace("\r\n", "\n").replace('\r', "\n");
    let text = strip_html_comments(&text);
    let text = strip_img_tags(&text);
    let text = strip_markdown_images(&text);
    let text = collapse_blank_lines(&text);
    truncate_marked(&text, max_chars)
}

fn strip_html_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        match after.find("-->") {
            Some(end) => rest = &after[end + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Whether `<img` (any case) starts at byte `at`, followed by a tag boundary.
fn img_tag_at(bytes: &[u8], at: usize) -> bool {
    bytes.get(at) == Some(&b'<')
        && bytes
            .get(at + 1..at + 4)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"img"))
        && bytes
            .get(at + 4)
            .is_none_or(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
}

fn strip_img_tags(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find('<') {
        let start = at + found;
        if !img_tag_at(bytes, start) {
            at = start + 1;
            continue;
        }
        out.push_str(&text[copied..start]);
        let tail = &text[start..];
        let end = match (tail.find('>'), tail.find('\n')) {
            (Some(gt), Some(nl)) if gt < nl => start + gt + 1,
            (Some(gt), None) => start + gt + 1,
            (_, Some(nl)) => start + nl,
            (None, None) => text.len(),
        };
        copied = end;
        at = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The index of the bracket closing the one at `open_at`, within the same
/// paragraph. All brackets are ASCII, so every index is a char boundary.
fn closing(bytes: &[u8], open_at: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut prev_newline = false;
    for (i, &b) in bytes.iter().enumerate().skip(open_at) {
        if b == b'\n' {
            if prev_newline {
                return None;
            }
            prev_newline = true;
            continue;
        }
        prev_newline = false;
        if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The end (exclusive) of an image starting with `![` at `at`, if it is one.
fn image_end(bytes: &[u8], at: usize) -> Option<usize> {
    let alt_end = closing(bytes, at + 1, b'[', b']')?;
    match bytes.get(alt_end + 1) {
        Some(b'(') => closing(bytes, alt_end + 1, b'(', b')').map(|e| e + 1),
        Some(b'[') => closing(bytes, alt_end + 1, b'[', b']').map(|e| e + 1),
        _ => None,
    }
}

/// Removes every span `pattern … end` for which `end_of` finds an end.
fn strip_spans(
    text: &str,
    pattern: &str,
    end_of: impl Fn(&[u8], usize) -> Option<usize>,
) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find(pattern) {
        let start = at + found;
        match end_of(bytes, start) {
            Some(end) => {
                out.push_str(&text[copied..start]);
                copied = end;
                at = end;
            }
            None => at = start + pattern.len(),
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn strip_markdown_images(text: &str) -> String {
    let without_images = strip_spans(text, "![", image_end);
    // `[![badge](img)](link)` leaves `[](link)` behind.
    strip_spans(&without_images, "[](", |bytes, at| {
        closing(bytes, at + 2, b'(', b')').map(|e| e + 1)
    })
}

fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_blank = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            pending_blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if pending_blank {
                out.push('\n');
            }
        }
        pending_blank = false;
        out.push_str(if out.is_empty() {
            line.trim_start()
        } else {
            line
        });
    }
    out
}

fn truncate_marked(text: &str, max_chars: usize) -> String {
    let Some((cut_at, _)) = text.char_indices().nth(max_chars) else {
        return text.to_string();
    };
    let mark_chars = TRUNCATION_MARK.chars().count();
    if max_chars <= mark_chars {
        return text[..cut_at].to_string();
    }
    let keep = max_chars - mark_chars;
    let cut_at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!("{}{TRUNCATION_MARK}", text[..cut_at].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unterminated_comment_hides_the_rest_of_the_body() {
        assert_eq!(clean_body("Fix it.\n<!-- template text", 100), "Fix it.");
    }

    #[test]
    fn img_tags_go_in_any_case_but_similar_tags_stay() {
        let body = r#"See <IMG src="a.png" alt="x"> and <image-viewer> and <img"#;
        assert_eq!(clean_body(body, 100), "See  and <image-viewer> and");
    }

    #[test]
    fn linked_badges_vanish_entirely() {
        let body = "[![CI](https://x/badge.svg)](https://x/actions) Build is red";
        assert_eq!(clean_body(body, 100), "Build is red");
    }

    #[test]
    fn unbalanced_image_syntax_is_left_alone() {
        assert_eq!(
            clean_body("a ![alt text and more", 100),
            "a ![alt text and more"
        );
        assert_eq!(clean_body("a ![alt] b", 100), "a ![alt] b");
    }

    #[test]
    fn blank_runs_keep_one_blank_line() {
        assert_eq!(clean_body("\n\na  \n\n\n \n\nb\n\n", 100), "a\n\nb");
        assert_eq!(clean_body("a\n\nb\nc", 100), "a\n\nb\nc");
    }

    #[test]
    fn tiny_budgets_cut_without_a_mark() {
        assert_eq!(clean_body("abcdefghijklmnop", 3), "abc");
        assert_eq!(clean_body("abc", 3), "abc");
    }
}
