//! Lazily generated issue text. Titles, markdown bodies and user logins are
//! pure functions of (seed, repository id, issue number, edit version), so
//! nothing large is ever stored.

use crate::rng::{key, Rng};

const COMPONENTS: &[&str] = &[
    "config loader",
    "CLI parser",
    "settings page",
    "login form",
    "README",
    "search index",
    "cache layer",
    "HTTP client",
    "plugin API",
    "theme switcher",
    "markdown renderer",
    "build script",
    "test runner",
    "date picker",
    "logger",
    "i18n strings",
    "dashboard",
    "export dialog",
    "sidebar",
    "error page",
];
const FEATURES: &[&str] = &[
    "dark mode",
    "JSON output",
    "retry on timeout",
    "verbose logging",
    "keyboard shortcuts",
    "pagination",
    "offline mode",
    "custom timeouts",
    "CSV export",
    "a --dry-run flag",
    "right-to-left layouts",
    "colour-blind friendly palettes",
];
const CONDITIONS: &[&str] = &[
    "the input is empty",
    "the config file is missing",
    "the path contains spaces",
    "the network is offline",
    "a unicode file name is used",
    "the window is resized",
    "two tabs are open",
    "the locale is set to Turkish",
    "the cache directory is read-only",
];
const SYMPTOMS: &[&str] = &[
    "panics with an unhelpful message",
    "silently does nothing",
    "shows a blank screen",
    "prints the wrong line number",
    "leaks a file handle",
    "freezes for several seconds",
];
const DOCS: &[&str] = &[
    "installation",
    "contributing",
    "API reference",
    "getting started",
    "FAQ",
    "configuration",
];
const DEPS: &[&str] = &[
    "eslint", "serde", "pytest", "webpack", "tokio", "react", "numpy", "jest",
];
const FILES: &[&str] = &[
    "src/config.rs",
    "lib/cli.js",
    "app/models/user.rb",
    "pkg/server/handler.go",
    "src/components/Sidebar.tsx",
    "docs/getting-started.md",
    "tests/test_parser.py",
];
const ADJECTIVES: &[&str] = &[
    "quiet", "brave", "lucky", "swift", "gentle", "clever", "sunny", "rusty", "cosmic", "tidy",
    "curious", "mellow", "bold", "fuzzy", "nimble", "witty",
];
const ANIMALS: &[&str] = &[
    "otter", "lynx", "heron", "badger", "falcon", "panda", "koala", "marten", "gecko", "puffin",
    "walrus", "ibis", "tapir", "quokka", "newt", "yak",
];

/// How many distinct synthetic users exist.
pub(crate) const LOGIN_POOL: u64 = 4096;

/// A GitHub-style login for user number `idx` of the pool.
pub(crate) fn login(seed: u64, idx: u64) -> String {
    let mut rng = Rng::new(key(&[seed, 0x10_61_17, idx % LOGIN_POOL]));
    let a = rng.pick(ADJECTIVES);
    let b = rng.pick(ANIMALS);
    if idx.is_multiple_of(3) {
        format!("{a}-{b}")
    } else {
        format!("{a}-{b}{}", idx % 1000)
    }
}

/// The synthetic title of issue `number` in repository `repo_id`.
pub(crate) fn title(seed: u64, repo_id: u64, number: u32) -> String {
    let mut rng = Rng::new(key(&[seed, repo_id, u64::from(number), 0x7171]));
    let c = rng.pick(COMPONENTS);
    match rng.below(10) {
        0 => format!("Fix typo in {} documentation", rng.pick(DOCS)),
        1 => format!("Add {} to the {c}", rng.pick(FEATURES)),
        2 => format!(
            "{}: {} when {}",
            capitalise(c),
            rng.pick(SYMPTOMS),
            rng.pick(CONDITIONS)
        ),
        3 => format!("Improve the error message when {}", rng.pick(CONDITIONS)),
        4 => format!(
            "Document {} in the {} guide",
            rng.pick(FEATURES),
            rng.pick(DOCS)
        ),
        5 => format!("Add tests for the {c}"),
        6 => format!("Refactor the {c} to remove duplicated code"),
        7 => format!("Update {} to the latest version", rng.pick(DEPS)),
        8 => format!("Support {} in the {c}", rng.pick(FEATURES)),
        _ => format!("Broken link in the {} page", rng.pick(DOCS)),
    }
}

/// The synthetic markdown body of an issue at a given edit version.
pub(crate) fn body(seed: u64, repo_id: u64, number: u32, edit: u16) -> String {
    let mut rng = Rng::new(key(&[
        seed,
        repo_id,
        u64::from(number),
        u64::from(edit),
        0xB0D7,
    ]));
    let c = rng.pick(COMPONENTS);
    let mut out = String::new();
    if rng.chance(0.25) {
        out.push_str("<!-- Please search existing issues before filing a new one. -->\n\n");
    }
    out.push_str(&format!(
        "When {}, the {c} {}. {}\n\n",
        rng.pick(CONDITIONS),
        rng.pick(SYMPTOMS),
        if rng.chance(0.5) {
            "This looks like a nice first task for someone new to the codebase."
        } else {
            "A fix should be small and self-contained."
        }
    ));
    if rng.chance(0.6) {
        out.push_str("### Steps to reproduce\n\n");
        for i in 1..=rng.range(2, 4) {
            out.push_str(&format!(
                "{i}. {}\n",
                match rng.below(4) {
                    0 => format!("Open the {}", rng.pick(COMPONENTS)),
                    1 => format!("Make sure {}", rng.pick(CONDITIONS)),
                    2 => "Run the command below".to_string(),
                    _ => format!("Enable {}", rng.pick(FEATURES)),
                }
            ));
        }
        out.push('\n');
    }
    if rng.chance(0.55) {
        let (lang, code) = match rng.below(4) {
            0 => ("sh", "npm run build -- --verbose\n"),
            1 => ("python", "import app\napp.run(debug=True)\n"),
            2 => (
                "rust",
                "fn main() {\n    println!(\"{}\", app::version());\n}\n",
            ),
            _ => ("json", "{\n  \"timeout\": 30,\n  \"retries\": 3\n}\n"),
        };
        out.push_str(&format!("```{lang}\n{code}```\n\n"));
    }
    out.push_str(&format!(
        "The relevant code lives in `{}`; see the [{} guide](https://example.org/docs/{}) for details.\n",
        rng.pick(FILES),
        rng.pick(DOCS),
        number % 17
    ));
    if rng.chance(0.5) {
        out.push_str("\n### Acceptance criteria\n\n");
        out.push_str(&format!("- [ ] The {c} handles the case above\n"));
        out.push_str("- [ ] A regression test covers it\n");
        if rng.chance(0.5) {
            out.push_str("- [ ] The changelog mentions the fix\n");
        }
    }
    if rng.chance(0.2) {
        out.push_str(&format!(
            "\n![screenshot](https://user-images.githubusercontent.com/{}/{:016x}.png)\n",
            1000 + repo_id % 9000,
            rng.next_u64()
        ));
    }
    out
}

/// An approximation of GitHub's `bodyText`: the rendered text without markup.
pub(crate) fn body_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    // Drop HTML comments first.
    while let Some(start) = rest.find("<!--") {
        text.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    text.push_str(rest);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("```") || l.is_empty() {
            continue;
        }
        let l = l.trim_start_matches('#').trim_start();
        let l = l
            .strip_prefix("- [ ] ")
            .or_else(|| l.strip_prefix("- [x] "))
            .or_else(|| l.strip_prefix("- "))
            .unwrap_or(l);
        let l = strip_links(l).replace('`', "");
        if l.trim().is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(l.trim());
    }
    out
}

/// `![alt](url)` → nothing, `[text](url)` → `text`.
fn strip_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.char_indices().peekable();
    let bytes = line;
    while let Some((i, ch)) = chars.next() {
        let is_image = ch == '!' && bytes[i + 1..].starts_with('[');
        if ch == '[' || is_image {
            let open = if is_image { i + 1 } else { i };
            if let Some(close) = bytes[open..].find("](") {
                let close = open + close;
                if let Some(end) = bytes[close..].find(')') {
                    let end = close + end;
                    if !is_image {
                        out.push_str(&bytes[open + 1..close]);
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= end) {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(ch);
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_depend_on_the_edit_version() {
        assert_eq!(body(1, 2, 3, 0), body(1, 2, 3, 0));
        assert_ne!(body(1, 2, 3, 0), body(1, 2, 3, 1));
    }

    #[test]
    fn body_text_drops_markup() {
        let md = "<!-- hidden -->\n\nSee [the guide](https://x.org) now.\n\n```sh\nls\n```\n![s](https://i.png)\n- [ ] Do it";
        assert_eq!(body_text(md), "See the guide now.\nls\nDo it");
    }
}
