//! What contribot says about an issue or a repository when no model can:
//! deterministic, built only from the fields it is given, and always within
//! the bounds the parsers enforce on model output. It never presents itself
//! as AI output; the caller records [`super::HEURISTIC_MODEL`] as provenance.

use super::output::sentences;
use super::{
    cap_chars, clean_body, one_line, IssueAnalysis, IssueInput, RepoContext, INTRO_MAX_CHARS,
    INTRO_MIN_CHARS, MAX_DIFFICULTY, MAX_FIRST_STEPS, MAX_SKILLS, MAX_SKILL_CHARS, MAX_STEP_CHARS,
    MIN_DIFFICULTY, SUMMARY_MAX_CHARS, SUMMARY_MAX_SENTENCES, SUMMARY_MIN_SENTENCES,
};

/// `text` lower-cased with every run of non-alphanumerics turned into one
/// space, padded with spaces: `" good first issue "`. Phrases are matched
/// as `" phrase "`, so `race` does not match `trace`.
fn normalized(text: &str) -> String {
    let mut out = String::from(" ");
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

fn has_any(normalized: &str, phrases: &[&str]) -> bool {
    phrases
        .iter()
        .any(|p| normalized.contains(&format!(" {p} ")))
}

/// Labels that mark an issue as meant for newcomers.
const BEGINNER_LABELS: &[&str] = &[
    "good first issue",
    "good first bug",
    "good first contribution",
    "first timers only",
    "first timer",
    "first timers",
    "beginner",
    "beginners",
    "beginner friendly",
    "easy",
    "starter",
    "newbie",
    "low hanging fruit",
    "trivial",
];
const HARD_LABELS: &[&str] = &["hard", "difficult", "complex", "advanced", "expert"];
const MEDIUM_LABELS: &[&str] = &["medium", "intermediate", "moderate"];
const DOCS_WORDS: &[&str] = &[
    "documentation",
    "docs",
    "doc",
    "typo",
    "typos",
    "spelling",
    "misspelling",
    "misspelled",
    "grammar",
    "readme",
    "broken link",
];
const BUG_WORDS: &[&str] = &["bug", "crash", "crashes", "regression"];

/// A kind of work an issue can mention: the skill it calls for, and whether
/// it makes an issue harder.
struct Topic {
    skill: &'static str,
    phrases: &'static [&'static str],
    raises_difficulty: bool,
}

const TOPICS: &[Topic] = &[
    Topic {
        skill: "Refactoring",
        phrases: &["refactor", "refactoring", "redesign", "rewrite"],
        raises_difficulty: true,
    },
    Topic {
        skill: "Performance profiling",
        phrases: &[
            "performance",
            "optimization",
            "optimisation",
            "optimize",
            "optimise",
        ],
        raises_difficulty: true,
    },
    Topic {
        skill: "Software design",
        phrases: &["architecture", "architectural"],
        raises_difficulty: true,
    },
    Topic {
        skill: "Concurrency",
        phrases: &[
            "race",
            "race condition",
            "data race",
            "deadlock",
            "concurrency",
            "thread safety",
        ],
        raises_difficulty: true,
    },
    Topic {
        skill: "Security",
        phrases: &["security", "vulnerability", "cve", "xss", "csrf"],
        raises_difficulty: true,
    },
    Topic {
        skill: "Memory management",
        phrases: &["memory leak", "memory safety"],
        raises_difficulty: true,
    },
    Topic {
        skill: "Testing",
        phrases: &[
            "test",
            "tests",
            "testing",
            "unit test",
            "test coverage",
            "flaky",
        ],
        raises_difficulty: false,
    },
    Topic {
        skill: "CSS",
        phrases: &["css", "scss", "stylesheet"],
        raises_difficulty: false,
    },
    Topic {
        skill: "UI design",
        phrases: &["ui", "ux", "frontend", "front end", "layout", "dark mode"],
        raises_difficulty: false,
    },
    Topic {
        skill: "Accessibility",
        phrases: &["accessibility", "a11y", "screen reader"],
        raises_difficulty: false,
    },
    Topic {
        skill: "Localization",
        phrases: &[
            "i18n",
            "l10n",
            "translation",
            "translations",
            "localization",
            "localisation",
        ],
        raises_difficulty: false,
    },
    Topic {
        skill: "CI/CD",
        phrases: &["ci", "github actions", "continuous integration"],
        raises_difficulty: false,
    },
    Topic {
        skill: "Docker",
        phrases: &["docker", "dockerfile"],
        raises_difficulty: false,
    },
    Topic {
        skill: "SQL",
        phrases: &["sql", "postgres", "postgresql", "mysql", "sqlite"],
        raises_difficulty: false,
    },
    Topic {
        skill: "APIs",
        phrases: &["api", "endpoint", "graphql"],
        raises_difficulty: false,
    },
    Topic {
        skill: "Regular expressions",
        phrases: &["regex", "regexp", "regular expression"],
        raises_difficulty: false,
    },
];

/// A body longer than this (cleaned, in characters) reads as a bigger task.
const LONG_BODY_CHARS: usize = 1500;
/// This many fenced code blocks reads as a bigger task.
const MANY_CODE_BLOCKS: usize = 3;

/// What the heuristic reads off an issue.
struct Signals {
    beginner: bool,
    hard_label: bool,
    medium_label: bool,
    docs: bool,
    bug: bool,
    topics: Vec<&'static Topic>,
    long_body: bool,
    code_blocks: usize,
}

impl Signals {
    fn read(input: &IssueInput<'_>, body: &str) -> Signals {
        let labels = normalized(&input.labels.join(" , "));
        let title = normalized(input.title);
        let text = format!("{title}{labels}{}", normalized(body));
        let fences = body
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("```") || l.starts_with("~~~")
            })
            .count();
        Signals {
            beginner: has_any(&labels, BEGINNER_LABELS),
            hard_label: has_any(&labels, HARD_LABELS),
            medium_label: has_any(&labels, MEDIUM_LABELS),
            docs: has_any(&labels, DOCS_WORDS) || has_any(&title, DOCS_WORDS),
            bug: has_any(&labels, BUG_WORDS) || has_any(&title, BUG_WORDS),
            topics: TOPICS
                .iter()
                .filter(|t| has_any(&text, t.phrases))
                .collect(),
            long_body: body.chars().count() > LONG_BODY_CHARS,
            code_blocks: fences / 2,
        }
    }

    fn hard_topics(&self) -> usize {
        self.topics.iter().filter(|t| t.raises_difficulty).count()
    }

    /// Start at 2; newcomer labels lower it, difficulty labels, hard topics
    /// (at most +2), long bodies and many code blocks raise it. A docs or
    /// typo issue with nothing hard about it is a 1.
    fn difficulty(&self) -> u8 {
        let hard = self.hard_topics();
        if self.docs && hard == 0 && !self.hard_label && !self.medium_label {
            return MIN_DIFFICULTY;
        }
        let mut score: i64 = 2;
        if self.beginner {
            score -= 1;
        }
        if self.hard_label {
            score += 2;
        } else if self.medium_label {
            score += 1;
        }
        score += hard.min(2) as i64;
        if self.long_body {
            score += 1;
        }
        if self.code_blocks >= MANY_CODE_BLOCKS {
            score += 1;
        }
        score.clamp(i64::from(MIN_DIFFICULTY), i64::from(MAX_DIFFICULTY)) as u8
    }
}

/// Ends `text` with sentence punctuation if it has none.
fn with_full_stop(text: &str) -> String {
    if text.ends_with(['.', '!', '?', '…']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// Strips list, quote and checkbox markers from the start of a line.
fn strip_line_markers(line: &str) -> &str {
    let mut line = line.trim_start_matches(['>', ' ', '\t']);
    for marker in ["- [ ] ", "- [x] ", "- [X] ", "* [ ] ", "- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(marker) {
            line = rest;
            break;
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Some(rest) = line[digits..]
            .strip_prefix(". ")
            .or_else(|| line[digits..].strip_prefix(") "))
        {
            line = rest;
        }
    }
    line
}

/// A paragraph worth quoting: four or more words, twenty or more characters.
fn meaningful(lines: &[&str]) -> Option<String> {
    let text = one_line(&lines.join(" ").replace("**", ""));
    let words = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    (words >= 4 && text.chars().count() >= 20).then_some(text)
}

/// The first paragraph of prose in a cleaned body, skipping code blocks,
/// headings, tables, HTML and template stubs too short to say anything.
fn first_paragraph(body: &str) -> Option<String> {
    let mut in_fence = false;
    let mut current: Vec<&str> = Vec::new();
    for line in body.lines().chain(std::iter::once("")) {
        let t = line.trim();
        let fence = t.starts_with("```") || t.starts_with("~~~");
        if fence {
            in_fence = !in_fence;
        }
        if fence || in_fence || t.is_empty() || t.starts_with(['#', '|', '<']) {
            if let Some(p) = meaningful(&current) {
                return Some(p);
            }
            current.clear();
            continue;
        }
        current.push(strip_line_markers(t));
    }
    None
}

const MAX_PATH_CHARS: usize = 80;
const MAX_PATHS: usize = 3;
const FILE_EXTENSIONS: &[&str] = &[
    "rs",
    "py",
    "pyi",
    "js",
    "mjs",
    "cjs",
    "jsx",
    "ts",
    "tsx",
    "go",
    "java",
    "kt",
    "kts",
    "rb",
    "php",
    "c",
    "h",
    "cc",
    "cpp",
    "hpp",
    "cs",
    "swift",
    "dart",
    "ex",
    "exs",
    "hs",
    "scala",
    "lua",
    "r",
    "pl",
    "erl",
    "clj",
    "sh",
    "bash",
    "ps1",
    "sql",
    "md",
    "mdx",
    "rst",
    "txt",
    "adoc",
    "json",
    "yaml",
    "yml",
    "toml",
    "xml",
    "ini",
    "cfg",
    "conf",
    "lock",
    "gradle",
    "html",
    "htm",
    "css",
    "scss",
    "sass",
    "less",
    "vue",
    "svelte",
    "ipynb",
    "csv",
    "svg",
    "dockerfile",
];

/// Whether an inline code span names a file or directory.
fn looks_like_path(span: &str) -> bool {
    let chars = span.chars().count();
    if !(3..=MAX_PATH_CHARS).contains(&chars)
        || !span.chars().any(char::is_alphabetic)
        || span.chars().any(|c| {
            c.is_whitespace() || c.is_control() || "()<>{}[]\"'=,;|*$#@!?:`\\&%^~+".contains(c)
        })
        || span.starts_with("//")
        || span.starts_with("www.")
    {
        return false;
    }
    let extension = span
        .rsplit_once('.')
        .map(|(stem, ext)| {
            !stem.is_empty() && FILE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        })
        .unwrap_or(false);
    extension || (span.contains('/') && span.trim_matches('/').len() > 1)
}

/// Files and directories the body names in backticks, in order, at most 3.
fn mentioned_paths(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for span in body.split('`').skip(1).step_by(2) {
        let span = span.trim();
        if looks_like_path(span) && !out.iter().any(|p| p == span) {
            out.push(span.to_string());
            if out.len() == MAX_PATHS {
                break;
            }
        }
    }
    out
}

/// How to get a project in `language` running, for a first step.
fn setup_step(language: Option<&str>, slug: &str) -> String {
    let lang = language.map(str::to_ascii_lowercase);
    match lang.as_deref() {
        Some("rust") => format!(
            "Install Rust with rustup, clone {slug}, and check that `cargo build` and `cargo test` pass before changing anything."
        ),
        Some("python" | "jupyter notebook") => format!(
            "Clone {slug}, create a Python virtual environment, install the dependencies the README lists, and run the tests before changing anything."
        ),
        Some("javascript" | "typescript" | "vue" | "svelte") => format!(
            "Install Node.js, clone {slug}, install its dependencies with the package manager its lockfile names, and run the tests or dev server."
        ),
        Some("go") => format!(
            "Install Go, clone {slug}, and check that `go build ./...` and `go test ./...` pass before changing anything."
        ),
        Some("java" | "kotlin") => format!(
            "Install a JDK, clone {slug}, and build it with the Gradle or Maven wrapper in the repository."
        ),
        Some("scala") => format!("Install a JDK and sbt, clone {slug}, and run `sbt test`."),
        Some("c#" | "f#") => format!(
            "Install the .NET SDK, clone {slug}, and check that `dotnet build` and `dotnet test` pass."
        ),
        Some("ruby") => format!(
            "Install Ruby and Bundler, clone {slug}, run `bundle install`, then run the test suite."
        ),
        Some("php") => format!(
            "Install PHP and Composer, clone {slug}, run `composer install`, then run the test suite."
        ),
        Some("c" | "c++" | "objective-c") => format!(
            "Clone {slug} and build it with the toolchain its README describes (for example CMake, Make or Meson)."
        ),
        Some("swift") => format!("Install Xcode or the Swift toolchain, clone {slug}, and build it."),
        Some("dart") => format!(
            "Install the Dart or Flutter SDK, clone {slug}, and fetch its packages with `dart pub get` or `flutter pub get`."
        ),
        Some("elixir") => format!("Install Elixir, clone {slug}, run `mix deps.get`, then `mix test`."),
        Some("haskell") => format!("Install GHC with Cabal or Stack, clone {slug}, and build it."),
        _ => format!(
            "Fork and clone {slug}, then follow its README or CONTRIBUTING guide to set it up locally."
        ),
    }
}

fn first_steps(input: &IssueInput<'_>, signals: &Signals, body: &str, slug: &str) -> Vec<String> {
    let n = input.number;
    let mut steps = Vec::new();
    steps.push(match input.comment_count {
        c if c <= 0 => format!("Read issue #{n} carefully and note what a finished change must do."),
        1 => format!("Read issue #{n} and its comment to understand what is expected."),
        c => format!(
            "Read issue #{n} and all {c} comments to understand what is expected and what has been tried."
        ),
    });
    steps.push(if input.assignee_count > 0 {
        "Someone is already assigned: comment to ask whether the issue is still being worked on before you start.".to_string()
    } else {
        "Comment on the issue to say you would like to work on it, and ask a maintainer to assign it to you.".to_string()
    });
    let language = input
        .repo
        .primary_language
        .as_deref()
        .or(input.repo.languages.first().map(String::as_str))
        .map(str::trim);
    steps.push(if signals.docs {
        format!(
            "Fork and clone {slug}; documentation changes rarely need a full build, but preview the rendered text before committing."
        )
    } else {
        setup_step(language, slug)
    });
    let paths = mentioned_paths(body);
    if !paths.is_empty() {
        let mut step = String::from("Start from what the issue mentions:");
        for (i, path) in paths.iter().enumerate() {
            let piece = format!("{} `{path}`", if i == 0 { "" } else { "," });
            if step.chars().count() + piece.chars().count() + 1 > MAX_STEP_CHARS {
                break;
            }
            step.push_str(&piece);
        }
        step.push('.');
        steps.push(step);
    }
    if signals.bug {
        steps.push(
            "Reproduce the problem locally first, and add a test that fails without your fix if the project has tests."
                .to_string(),
        );
    }
    steps.push(format!(
        "Make the change on a new branch and open a draft pull request that mentions #{n}, so maintainers can give early feedback."
    ));
    steps.truncate(MAX_FIRST_STEPS);
    steps
        .into_iter()
        .map(|s| cap_chars(&s, MAX_STEP_CHARS))
        .collect()
}

fn skills(input: &IssueInput<'_>, signals: &Signals) -> Vec<String> {
    let repo = input.repo;
    let mut wanted: Vec<String> = repo.languages.iter().take(3).cloned().collect();
    if wanted.is_empty() {
        wanted.extend(repo.primary_language.clone());
    }
    if signals.docs {
        wanted.push("Technical writing".into());
        wanted.push("Markdown".into());
    }
    wanted.extend(signals.topics.iter().map(|t| t.skill.to_string()));
    wanted.push("Git".into());
    let mut out: Vec<String> = Vec::new();
    for skill in wanted {
        let skill = cap_chars(&one_line(&skill), MAX_SKILL_CHARS);
        if !skill.is_empty() && !out.iter().any(|s| s.to_lowercase() == skill.to_lowercase()) {
            out.push(skill);
        }
    }
    out.truncate(MAX_SKILLS);
    out
}

/// An analysis built from the issue's own fields: difficulty from labels,
/// keywords, length and code blocks; the intro from the title and the first
/// paragraph of the body; steps from the repo's language, the paths the
/// body mentions and the issue's state; skills from the repo's languages
/// and keywords. Always passes [`super::parse_issue_analysis`].
pub fn heuristic_issue_analysis(input: &IssueInput<'_>) -> IssueAnalysis {
    let body = clean_body(input.body, usize::MAX);
    let signals = Signals::read(input, &body);
    let slug = cap_chars(&one_line(&input.repo.slug()), MAX_SLUG_CHARS);
    let title = cap_chars(&one_line(input.title), 200);
    let n = input.number;

    let mut intro = if title.is_empty() {
        format!("Issue #{n} in {slug} has no title.")
    } else {
        format!("Issue #{n} in {slug}: {}", with_full_stop(&title))
    };
    if let Some(paragraph) = first_paragraph(&body) {
        intro.push_str(" The description begins: ");
        intro.push_str(&with_full_stop(&cap_chars(&paragraph, 300)));
    }
    let mut intro = cap_chars(&intro, INTRO_MAX_CHARS);
    while intro.chars().count() < INTRO_MIN_CHARS {
        intro.push_str(" It is an open GitHub issue.");
    }

    IssueAnalysis {
        intro,
        difficulty: signals.difficulty(),
        first_steps: first_steps(input, &signals, &body, &slug),
        skills: skills(input, &signals),
    }
}

/// Joins `names` as `a, b and c`.
fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Up to `max` cleaned, non-empty, distinct names.
fn names(items: &[String], max: usize, skip: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = cap_chars(&one_line(item), 40);
        let duplicate = out.iter().any(|o| o.eq_ignore_ascii_case(&item))
            || skip.is_some_and(|s| s.eq_ignore_ascii_case(&item));
        if !item.is_empty() && !duplicate {
            out.push(item);
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// GitHub owners have at most 39 characters and names 100: real slugs are
/// never cut.
const MAX_SLUG_CHARS: usize = 150;

/// Said when nothing else can be: every repo contribot summarises came from
/// the awesome-for-beginners list.
const FALLBACK_SUMMARY: &str = "This GitHub repository is listed in awesome-for-beginners. \
No further details about it were available when this summary was written.";

/// A summary built only from the repo's fields: its name and main
/// language, the first sentence of its description, its other languages,
/// its beginner labels and its topics, as 2 to 4 sentences. Always passes
/// [`super::parse_repo_summary`].
pub fn heuristic_repo_summary(repo: &RepoContext) -> String {
    let slug = cap_chars(&one_line(&repo.slug()), MAX_SLUG_CHARS);
    let primary = repo
        .primary_language
        .as_deref()
        .map(|l| cap_chars(&one_line(l), 40))
        .filter(|l| !l.is_empty());

    // Each slot lists phrasings to try in order; the second keeps the slug
    // at the end, for names that end in punctuation.
    let mut slots: Vec<Vec<String>> = Vec::new();
    slots.push(match &primary {
        Some(lang) => vec![
            format!("{slug} is a GitHub repository written mainly in {lang}."),
            format!("Written mainly in {lang}, this is the GitHub repository {slug}."),
        ],
        None => vec![
            format!("{slug} is a GitHub repository."),
            format!("This is the GitHub repository {slug}."),
        ],
    });
    let description = repo
        .description
        .as_deref()
        .map(one_line)
        .and_then(|d| sentences(&d).first().map(|s| cap_chars(s, 300)));
    if let Some(first) = &description {
        slots.push(vec![format!(
            "Its description reads: {}",
            with_full_stop(first)
        )]);
    }
    let others = names(&repo.languages, 3, primary.as_deref());
    if !others.is_empty() {
        let verb = if primary.is_some() {
            "also contains"
        } else {
            "contains"
        };
        slots.push(vec![format!("The code base {verb} {}.", and_list(&others))]);
    }
    let labels: Vec<String> = names(&repo.listed_labels, 3, None)
        .into_iter()
        .map(|l| format!("\"{l}\""))
        .collect();
    if !labels.is_empty() {
        let noun = if labels.len() == 1 { "label" } else { "labels" };
        slots.push(vec![format!(
            "Issues for newcomers carry the {noun} {}.",
            and_list(&labels)
        )]);
    }
    let topics = names(&repo.topics, 5, None);
    if !topics.is_empty() {
        slots.push(vec![format!(
            "Its GitHub topics include {}.",
            and_list(&topics)
        )]);
    }
    let filler = if description.is_some() {
        "No further details about it were available."
    } else {
        "No description of it was available."
    };

    // Add sentences while each adds exactly one and the text stays in bounds.
    let mut text = String::new();
    let mut count = 0;
    let extend = |text: &str, count: usize, sentence: &str| -> Option<String> {
        let next = if text.is_empty() {
            sentence.to_string()
        } else {
            format!("{text} {sentence}")
        };
        (sentences(&next).len() == count + 1 && next.chars().count() <= SUMMARY_MAX_CHARS)
            .then_some(next)
    };
    for slot in &slots {
        if count == SUMMARY_MAX_SENTENCES {
            break;
        }
        if let Some(next) = slot.iter().find_map(|s| extend(&text, count, s)) {
            text = next;
            count += 1;
        }
    }
    if count < SUMMARY_MIN_SENTENCES {
        if let Some(next) = extend(&text, count, filler) {
            text = next;
        }
    }
    let valid = super::parse_repo_summary(&serde_json::json!({ "response": text }));
    valid.unwrap_or_else(|_| FALLBACK_SUMMARY.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoContext {
        RepoContext {
            owner: "octo".into(),
            name: "widget".into(),
            description: None,
            primary_language: Some("Rust".into()),
            languages: vec!["Rust".into()],
            topics: vec![],
            listed_labels: vec![],
        }
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let text = normalized("Trace the RACE-condition");
        assert!(has_any(&text, &["race condition"]));
        assert!(!has_any(&normalized("stack trace"), &["race"]));
    }

    #[test]
    fn paths_in_backticks_are_found_and_code_is_not() {
        let body = "See `src/lib.rs` and `README.md`, not `foo()` or `npm install` or `1.2.3` or `self.name`.";
        assert_eq!(mentioned_paths(body), vec!["src/lib.rs", "README.md"]);
    }

    #[test]
    fn first_paragraph_skips_headings_code_and_stubs() {
        let body = "## Describe the bug\n\nBug\n\n```\nlet x = 1; and more words here\n```\n\n> The parser drops the last line of every file.";
        assert_eq!(
            first_paragraph(body).as_deref(),
            Some("The parser drops the last line of every file.")
        );
    }

    #[test]
    fn fallback_summary_is_itself_valid() {
        let r =
            super::super::parse_repo_summary(&serde_json::json!({"response": FALLBACK_SUMMARY}));
        assert_eq!(r.as_deref(), Ok(FALLBACK_SUMMARY));
    }

    #[test]
    fn bare_repo_gets_two_sentences() {
        let s = heuristic_repo_summary(&repo());
        assert_eq!(
            s,
            "octo/widget is a GitHub repository written mainly in Rust. No description of it was available."
        );
    }
}
