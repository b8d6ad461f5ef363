//! Label resolution against the lossy spellings the list really uses.

use contribot_core::label::{label_search_term, normalize_label, resolve_label, LabelResolution};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn resolve(listed: &[&str], repo: &[&str]) -> LabelResolution {
    resolve_label(&strings(listed), &strings(repo))
}

fn normalized(listed: &str, actual: &str) -> LabelResolution {
    LabelResolution::Normalized {
        listed: listed.to_owned(),
        actual: actual.to_owned(),
    }
}

#[test]
fn hyphenated_listed_label_finds_the_spaced_repo_label() {
    let got = resolve(&["help-wanted"], &["bug", "help wanted"]);
    assert_eq!(got, normalized("help-wanted", "help wanted"));
    assert_eq!(got.label(), Some("help wanted"));
    assert!(got.is_found());
}

#[test]
fn case_and_hyphens_are_ignored() {
    assert_eq!(
        resolve(&["Good-first-issue"], &["good first issue"]),
        normalized("Good-first-issue", "good first issue")
    );
    assert_eq!(
        resolve(&["Good First Issue"], &["good first issue"]),
        normalized("Good First Issue", "good first issue")
    );
    assert_eq!(
        resolve(&["Type:-Jump-In"], &["Type: Jump In"]),
        normalized("Type:-Jump-In", "Type: Jump In")
    );
}

#[test]
fn emoji_prefixes_are_ignored() {
    assert_eq!(
        resolve(&["👶 Good first issue"], &["good first issue"]),
        normalized("👶 Good first issue", "good first issue")
    );
    assert_eq!(
        resolve(&["🤩 Good First PR"], &["Good First PR 🤩"]),
        normalized("🤩 Good First PR", "Good First PR 🤩")
    );
}

#[test]
fn emoji_shortcodes_are_ignored() {
    assert_eq!(
        resolve(&["good first issue-:wave:"], &["good first issue :wave:"]),
        normalized("good first issue-:wave:", "good first issue :wave:")
    );
    assert_eq!(
        resolve(&["good first issue-:wave:"], &["good first issue"]),
        normalized("good first issue-:wave:", "good first issue")
    );
    assert_eq!(
        resolve(
            &["good first issue-:1st_place_medal:"],
            &["good first issue :1st_place_medal:"]
        ),
        normalized(
            "good first issue-:1st_place_medal:",
            "good first issue :1st_place_medal:"
        )
    );
}

#[test]
fn exact_match_beats_case_and_normalised_matches() {
    let repo = ["Good First Issue", "good-first-issue", "good first issue"];
    assert_eq!(
        resolve(&["good first issue"], &repo),
        LabelResolution::Exact("good first issue".into())
    );
    // Case-insensitive equality beats a normalised match that comes earlier.
    assert_eq!(
        resolve(&["GOOD-FIRST-ISSUE"], &repo),
        normalized("GOOD-FIRST-ISSUE", "good-first-issue")
    );
}

#[test]
fn first_listed_label_that_resolves_wins() {
    let repo = ["Difficulty: Easy", "good first issue"];
    assert_eq!(
        resolve(&["Good First Issue", "Difficulty/1:Easy"], &repo),
        normalized("Good First Issue", "good first issue")
    );
    assert_eq!(
        resolve(&["nope", "difficulty:-easy"], &repo),
        normalized("difficulty:-easy", "Difficulty: Easy")
    );
}

#[test]
fn nothing_matching_is_not_found_with_the_listed_labels() {
    let got = resolve(&["See Description", "easy"], &["bug", "difficulty/easy"]);
    assert_eq!(
        got,
        LabelResolution::NotFound {
            listed: strings(&["See Description", "easy"])
        }
    );
    assert_eq!(got.label(), None);
    assert!(!got.is_found());
}

#[test]
fn empty_inputs_are_not_found() {
    assert_eq!(
        resolve(&[], &["good first issue"]),
        LabelResolution::NotFound { listed: vec![] }
    );
    assert_eq!(
        resolve(&["good first issue"], &[]),
        LabelResolution::NotFound {
            listed: strings(&["good first issue"])
        }
    );
    // Labels that normalise to nothing do not match each other.
    assert!(!resolve(&["🤩"], &["👶"]).is_found());
    // Blank listed labels are ignored, even against blank repository labels.
    assert_eq!(
        resolve(&["", "  "], &["", " "]),
        LabelResolution::NotFound {
            listed: strings(&["", "  "])
        }
    );
}

#[test]
fn normalize_label_canonical_forms() {
    for (raw, want) in [
        ("help-wanted", "help wanted"),
        ("  Good_First__Issue ", "good first issue"),
        ("👶 Good first issue", "good first issue"),
        ("good first issue-:wave:", "good first issue"),
        (":sparkles: easy :1st_place_medal:", "easy"),
        ("status:-easy", "status: easy"),
        ("difficulty::easy", "difficulty::easy"),
        ("difficulty/low", "difficulty/low"),
        ("E-easy", "e easy"),
        ("新手 友好", "新手 友好"),
        ("🤩", ""),
        ("", ""),
        ("--", ""),
    ] {
        assert_eq!(normalize_label(raw), want, "{raw:?}");
    }
}

#[test]
fn search_term_is_the_longest_word() {
    assert_eq!(label_search_term("help-wanted"), "wanted");
    assert_eq!(label_search_term("good first issue"), "first");
    assert_eq!(label_search_term("👶 Good first issue"), "first");
    assert_eq!(label_search_term("good first issue-:wave:"), "first");
    assert_eq!(label_search_term("Difficulty/1:Easy"), "difficulty");
    assert_eq!(label_search_term("E-easy"), "easy");
    assert_eq!(label_search_term(""), "");
    assert_eq!(label_search_term("🤩"), "");
}
