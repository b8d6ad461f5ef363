//! The awesome-for-beginners parsers against the shipped snapshot of the
//! list, and against small synthetic lists for each rule.

use std::collections::{BTreeMap, BTreeSet};

use contribot_core::list::{
    parse_data_json, parse_readme, ListError, ListedRepo, ParsedList, SkipReason,
    MAX_DESCRIPTION_CHARS, MAX_LABELS_PER_REPO, MAX_LABEL_CHARS,
};
use contribot_core::slug::{is_strict_repo_url, parse_github_url, RepoSlug, SlugError};

const DATA_JSON: &str = include_str!("../../../fixtures/awesome-for-beginners/data.json");
const README: &str = include_str!("../../../fixtures/awesome-for-beginners/README.md");

/// The one GitHub repository data.json lists with `"technologies": []`.
/// The README generator prints each repository under its technology
/// headings, so this one appears nowhere in the README: the README fallback
/// finds 221 of data.json's 222 repositories.
const UNRENDERED: &str = "cockroachdb/cockroach";

fn from_data_json() -> ParsedList {
    parse_data_json(DATA_JSON).expect("the shipped data.json parses")
}

fn from_readme() -> ParsedList {
    parse_readme(README).expect("the shipped README parses")
}

fn by_slug(list: &ParsedList) -> BTreeMap<String, &ListedRepo> {
    list.repos.iter().map(|r| (r.slug.full_name(), r)).collect()
}

fn repo<'a>(list: &'a ParsedList, full_name: &str) -> &'a ListedRepo {
    list.repos
        .iter()
        .find(|r| r.slug.full_name() == full_name)
        .unwrap_or_else(|| panic!("{full_name} not in {:?}", list.repos))
}

/// A data.json with the given `repositories` entries.
fn data_json(entries: &str) -> String {
    format!(r#"{{"sponsors": [], "repositories": [{entries}]}}"#)
}

// --- the shipped snapshot ---------------------------------------------------

#[test]
fn data_json_lists_222_unique_github_repos_in_dense_positions() {
    let list = from_data_json();
    assert_eq!(list.repos.len(), 222);
    assert_eq!(by_slug(&list).len(), 222, "slugs are unique");
    for (i, repo) in list.repos.iter().enumerate() {
        assert_eq!(repo.position as usize, i);
        assert_eq!(repo.slug.owner, repo.slug.owner.to_lowercase());
        assert_eq!(repo.slug.name, repo.slug.name.to_lowercase());
        assert!(!repo.labels.is_empty(), "{} has labels", repo.slug);
        if repo.slug.full_name() != UNRENDERED {
            assert!(
                !repo.technologies.is_empty(),
                "{} has technologies",
                repo.slug
            );
        }
        assert!(
            repo.description.is_some(),
            "{} has a description",
            repo.slug
        );
    }
    let first = &list.repos[0];
    assert_eq!(first.slug.full_name(), "mvvmcross/mvvmcross");
    assert_eq!(first.display_name, "MvvmCross");
    assert_eq!(first.labels, ["first-timers-only"]);
    assert_eq!(first.technologies, [".NET"]);
}

#[test]
fn data_json_skips_exactly_the_seven_non_github_entries() {
    let list = from_data_json();
    let hosts: Vec<(&str, &str)> = list
        .skipped
        .iter()
        .map(|s| match &s.reason {
            SkipReason::NonGithubHost { host } => (s.name.as_deref().unwrap_or(""), host.as_str()),
            other => panic!("unexpected skip reason {other:?}"),
        })
        .collect();
    let hosts: BTreeSet<_> = hosts.into_iter().collect();
    let expected: BTreeSet<_> = [
        ("PureLB", "gitlab.com"),
        ("Veloren", "gitlab.com"),
        ("Exosphere", "gitlab.com"),
        ("Rawsec Cybersecurity Inventory", "gitlab.com"),
        ("XWiki", "jira.xwiki.org"),
        ("Drupal", "www.drupal.org"),
        ("MediaWiki", "phabricator.wikimedia.org"),
    ]
    .into_iter()
    .collect();
    assert_eq!(list.skipped.len(), 7);
    assert_eq!(hosts, expected);

    let purelb = list
        .skipped
        .iter()
        .find(|s| s.name.as_deref() == Some("PureLB"))
        .unwrap();
    assert_eq!(
        purelb.entry_index, 32,
        "index in data.json's repositories array"
    );
    assert_eq!(
        purelb.to_string(),
        "entry 32 (PureLB): skipped: non-GitHub host gitlab.com"
    );
}

#[test]
fn shipped_data_json_has_no_warnings() {
    // Every GitHub entry has a label, and nothing is over a size bound.
    assert_eq!(from_data_json().warnings, Vec::<String>::new());
}

#[test]
fn readme_fallback_finds_the_same_repos_except_the_unrendered_one() {
    let json = from_data_json();
    let readme = from_readme();
    let mut json_slugs: BTreeSet<_> = by_slug(&json).into_keys().collect();
    let readme_slugs: BTreeSet<_> = by_slug(&readme).into_keys().collect();
    assert!(json_slugs.remove(UNRENDERED));
    assert_eq!(readme.repos.len(), 221);
    assert_eq!(readme_slugs, json_slugs);
    assert!(readme.warnings.is_empty(), "{:?}", readme.warnings);
    // The README lists a repository once per technology, so the same seven
    // non-GitHub projects are skipped once per section they appear in.
    let skipped_names: BTreeSet<_> = readme
        .skipped
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    let json_skipped: BTreeSet<_> = json
        .skipped
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    assert_eq!(skipped_names, json_skipped);
    assert!(readme
        .skipped
        .iter()
        .all(|s| matches!(s.reason, SkipReason::NonGithubHost { .. })));
}

#[test]
fn readme_and_data_json_agree_on_labels_technologies_and_descriptions() {
    // The README is generated from data.json, one line per (repo, technology)
    // pair, with the label field verbatim (missing labels are written `n/a`,
    // which only happens for non-GitHub entries). So after merging, every
    // repository must carry the same labels. Technologies come out in a
    // different order (README sections are alphabetical), so they are
    // compared as sets. Descriptions are written verbatim after `<br>`.
    let json = from_data_json();
    let readme = from_readme();
    let readme_by_slug = by_slug(&readme);
    for (slug, expected) in by_slug(&json) {
        if slug == UNRENDERED {
            continue;
        }
        let got = readme_by_slug[&slug];
        assert_eq!(got.labels, expected.labels, "labels of {slug}");
        let got_tech: BTreeSet<_> = got.technologies.iter().collect();
        let expected_tech: BTreeSet<_> = expected.technologies.iter().collect();
        assert_eq!(got_tech, expected_tech, "technologies of {slug}");
        assert_eq!(
            got.description, expected.description,
            "description of {slug}"
        );
        assert_eq!(got.display_name, expected.display_name, "name of {slug}");
    }
}

#[test]
fn shipped_lists_carry_the_lossy_labels_verbatim() {
    let json = from_data_json();
    assert_eq!(repo(&json, "pixijs/pixi.js").labels, ["🤩 Good First PR"]);
    assert_eq!(
        repo(&json, "appbaseio/reactivesearch").labels,
        ["good first issue-:wave:"]
    );
    assert_eq!(
        repo(&json, "mattermost/mattermost").labels,
        ["Good First Issue", "Difficulty/1:Easy"]
    );
    assert_eq!(
        repo(&json, "mattermost/mattermost").technologies,
        ["Go", "JavaScript"]
    );
}

// --- synthetic lists: the rules one by one ------------------------------------

#[test]
fn old_format_readme_takes_labels_from_label_urls() {
    let readme = "\
# Awesome First PR Opportunities [![Awesome](https://cdn.rawgit.com/badge.svg)](https://github.com/sindresorhus/awesome)

If you want a guide, see [First Contributions](https://github.com/firstcontributions/first-contributions).

## Table of Contents

- [.NET](#net)
- [Rust](#rust)
- [Awesome](https://github.com/sindresorhus/awesome)

## .NET

- [Abp](https://github.com/abpframework/abp/labels/good%20first%20issue) <br> Web application framework
- [Cake](https://github.com/cake-build/cake/labels/Good%20First%20Issue) _(label: Good First Issue)_ <br> Build automation
- [Old](https://github.com/old/Plus/labels/up+for+grabs) - plus is not a space in a path

## Rust

- [Servo](https://github.com/servo/servo/labels/E-easy) _(label: E-easy, C-assigned)_ - Browser engine
- [Search](https://github.com/o/search/issues?q=is%3Aopen+label%3A%22help+wanted%22) <br> issue-search link
- [Bad escape](https://github.com/o/bad/labels/%E2%28%A1%zz) <br> invalid UTF-8 and a bad escape
- [GitLab thing](https://gitlab.com/g/thing) <br> not GitHub

## Contribute

- [Contributing guidelines](https://github.com/MunGell/awesome-for-beginners/blob/main/CONTRIBUTING.md)
";
    let list = parse_readme(readme).unwrap();
    let names: Vec<_> = list.repos.iter().map(|r| r.slug.full_name()).collect();
    assert_eq!(
        names,
        [
            "abpframework/abp",
            "cake-build/cake",
            "old/plus",
            "servo/servo",
            "o/search",
            "o/bad"
        ]
    );
    assert_eq!(list.repos[0].labels, ["good first issue"]);
    assert_eq!(
        list.repos[0].description.as_deref(),
        Some("Web application framework")
    );
    assert_eq!(list.repos[0].technologies, [".NET"]);
    // The explicit label and the URL's label are the same ignoring case.
    assert_eq!(list.repos[1].labels, ["Good First Issue"]);
    assert_eq!(list.repos[2].labels, ["up+for+grabs"]);
    assert_eq!(
        list.repos[2].description.as_deref(),
        Some("plus is not a space in a path")
    );
    assert_eq!(list.repos[3].labels, ["E-easy", "C-assigned"]);
    assert_eq!(list.repos[3].description.as_deref(), Some("Browser engine"));
    assert_eq!(list.repos[3].technologies, ["Rust"]);
    assert_eq!(list.repos[4].labels, ["help wanted"]);
    assert_eq!(list.repos[5].labels, ["\u{fffd}(\u{fffd}%zz"]);
    assert_eq!(list.skipped.len(), 1);
    assert_eq!(
        list.skipped[0].reason,
        SkipReason::NonGithubHost {
            host: "gitlab.com".into()
        }
    );
    assert_eq!(list.skipped[0].name.as_deref(), Some("GitLab thing"));
}

#[test]
fn duplicates_across_sections_merge_into_one_repo() {
    let readme = "\
## Go

- [Mattermost](https://github.com/mattermost/mattermost) _(label: Good First Issue)_ <br> Slack alternative
- [Other](https://github.com/a/b) _(label: easy)_ <br> b

## JavaScript

- [Mattermost server](https://github.com/Mattermost/Mattermost.git) _(label: good first issue, Help Wanted)_ <br> Second description
- [Mattermost](https://www.github.com/mattermost/mattermost/labels/Difficulty%2F1%3AEasy) <br>

## javascript

- [Mattermost](https://github.com/mattermost/mattermost/) _(label: n/a)_
";
    let list = parse_readme(readme).unwrap();
    assert_eq!(list.repos.len(), 2);
    let mm = &list.repos[0];
    assert_eq!(mm.slug.full_name(), "mattermost/mattermost");
    assert_eq!(mm.position, 0);
    assert_eq!(mm.display_name, "Mattermost");
    assert_eq!(
        mm.labels,
        ["Good First Issue", "Help Wanted", "Difficulty/1:Easy"]
    );
    assert_eq!(mm.technologies, ["Go", "JavaScript"]);
    assert_eq!(mm.description.as_deref(), Some("Slack alternative"));
    assert_eq!(list.repos[1].position, 1);

    let json = data_json(
        r#"{"name": "A", "link": "https://github.com/o/a", "label": "x", "technologies": ["Go"]},
           {"name": "B", "link": "https://github.com/o/b", "label": "y"},
           {"name": "A again", "link": "https://github.com/O/A/", "label": "X, z",
            "technologies": ["Rust", "go"], "description": "late"}"#,
    );
    let list = parse_data_json(&json).unwrap();
    assert_eq!(list.repos.len(), 2);
    assert_eq!(list.repos[0].labels, ["x", "z"]);
    assert_eq!(list.repos[0].technologies, ["Go", "Rust"]);
    assert_eq!(list.repos[0].description.as_deref(), Some("late"));
    assert_eq!(list.repos[0].display_name, "A");
    assert_eq!((list.repos[0].position, list.repos[1].position), (0, 1));
}

#[test]
fn comma_joined_labels_are_split_trimmed_and_empty_ones_dropped() {
    let json = data_json(
        r#"{"name": "M", "link": "https://github.com/m/m",
            "label": "Good First Issue, Difficulty/1:Easy ,, ,help wanted"}"#,
    );
    let list = parse_data_json(&json).unwrap();
    assert_eq!(
        list.repos[0].labels,
        ["Good First Issue", "Difficulty/1:Easy", "help wanted"]
    );
    let list = parse_readme(
        "## Go\n- [M](https://github.com/m/m) _(label: Good First Issue, Difficulty/1:Easy)_ <br> d\n",
    )
    .unwrap();
    assert_eq!(
        list.repos[0].labels,
        ["Good First Issue", "Difficulty/1:Easy"]
    );
}

#[test]
fn links_are_normalised_to_lowercase_owner_and_name() {
    let cases = [
        "https://www.github.com/Foo/Bar.git/",
        "https://github.com/foo/bar",
        "http://github.com/FOO/bar/",
        "HTTPS://GitHub.com/foo/BAR.GIT",
        "https://github.com/foo/bar/labels/good%20first%20issue",
        "https://github.com/foo/bar/issues?q=is%3Aopen",
        "https://github.com/foo/bar/tree/main",
        "https://github.com/foo/bar#readme",
        "https://github.com/foo/bar?tab=readme",
        "https://github.com:443/foo/bar",
        "  https://github.com/foo/bar  ",
    ];
    for url in cases {
        let slug = parse_github_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(slug, RepoSlug::new("foo", "bar").unwrap(), "{url}");
        assert_eq!(slug.to_string(), "foo/bar");
    }
    let list = parse_data_json(&data_json(
        r#"{"name": "Bar", "link": "https://www.github.com/Foo/Bar.git/", "label": "x"}"#,
    ))
    .unwrap();
    assert_eq!(list.repos[0].slug.full_name(), "foo/bar");
}

#[test]
fn non_repository_urls_are_rejected_with_a_reason() {
    assert_eq!(
        parse_github_url("https://gitlab.com/veloren/veloren"),
        Err(SlugError::NotGithub {
            host: "gitlab.com".into()
        })
    );
    assert_eq!(
        parse_github_url("https://GitHub.com.evil.example/o/r"),
        Err(SlugError::NotGithub {
            host: "github.com.evil.example".into()
        })
    );
    for url in [
        "",
        "github.com/o/r",
        "ftp://github.com/o/r",
        "https://github.com",
        "https://github.com/",
        "https://github.com/MixeroTN",
        "https://github.com/orgs/rust-lang/repositories",
        "https://github.com/topics/rust",
        "https://github.com/o/r%20x",
        "https://github.com/o/r x",
        "https://github.com/./r",
        "https://github.com/../r",
        "https://github.com/o/.git",
        "https://user@github.com/o/r",
        "https://github.com:http/o/r",
        "https://github.com/ö/r",
    ] {
        match parse_github_url(url) {
            Err(SlugError::Malformed { reason, .. }) => assert!(!reason.is_empty(), "{url}"),
            other => panic!("{url:?} gave {other:?}"),
        }
    }
    assert!(matches!(
        RepoSlug::new("o", "r/x"),
        Err(SlugError::InvalidName { .. })
    ));
    assert!(matches!(
        RepoSlug::new("", "r"),
        Err(SlugError::InvalidOwner { .. })
    ));
    assert!(matches!(
        "nope".parse::<RepoSlug>(),
        Err(SlugError::NotAFullName { .. })
    ));
    assert_eq!(
        "Rust-Lang/Rust".parse::<RepoSlug>().unwrap().full_name(),
        "rust-lang/rust"
    );
}

#[test]
fn strict_repo_url_is_exactly_the_admin_pattern() {
    for ok in [
        "https://github.com/o/r",
        "https://github.com/o/r/",
        "https://github.com/Some_Org/repo.name-2",
        "https://github.com/./..",
    ] {
        assert!(is_strict_repo_url(ok), "{ok}");
    }
    for bad in [
        "http://github.com/o/r",
        "https://www.github.com/o/r",
        "https://GitHub.com/o/r",
        "https://github.com/o",
        "https://github.com/o/",
        "https://github.com//r",
        "https://github.com/o/r//",
        "https://github.com/o/r/issues",
        "https://github.com/o/r?x",
        "https://github.com/o/r#x",
        "https://github.com/o/r ",
        "https://github.com/o/r\n",
        "https://github.com/ö/r",
        "https://github.com/o/r%20",
        "",
    ] {
        assert!(!is_strict_repo_url(bad), "{bad:?}");
    }
}

#[test]
fn invalid_json_or_wrong_shape_is_an_error() {
    assert!(matches!(
        parse_data_json("{"),
        Err(ListError::InvalidJson(_))
    ));
    assert!(matches!(
        parse_data_json(""),
        Err(ListError::InvalidJson(_))
    ));
    assert!(matches!(
        parse_data_json("[]"),
        Err(ListError::WrongShape(_))
    ));
    assert!(matches!(
        parse_data_json("{}"),
        Err(ListError::WrongShape(_))
    ));
    assert!(matches!(
        parse_data_json(r#"{"repositories": {}}"#),
        Err(ListError::WrongShape(_))
    ));
    assert_eq!(
        parse_data_json(r#"{"repositories": []}"#),
        Err(ListError::Empty)
    );
    assert_eq!(
        parse_data_json(&data_json(
            r#"{"name": "G", "link": "https://gitlab.com/g/g"}"#
        )),
        Err(ListError::Empty)
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        parse_data_json(&deep),
        Err(ListError::InvalidJson(_))
    ));
    assert_eq!(parse_readme(""), Err(ListError::Empty));
    assert_eq!(
        parse_readme("# Title\n\n- [x](#x)\n"),
        Err(ListError::Empty)
    );
}

#[test]
fn bad_entries_are_skipped_and_the_rest_kept() {
    let json = data_json(
        r#"{"name": "No link", "label": "x"},
           {"name": "Null link", "link": null},
           {"name": "Empty link", "link": "  "},
           {"name": "Number link", "link": 42},
           "not an object",
           {"name": "Account", "link": "https://github.com/MixeroTN"},
           {"name": "Kept", "link": "https://github.com/k/kept", "label": "easy"}"#,
    );
    let list = parse_data_json(&json).unwrap();
    assert_eq!(list.repos.len(), 1);
    assert_eq!(list.repos[0].slug.full_name(), "k/kept");
    assert_eq!(list.repos[0].position, 0);
    let reasons: Vec<_> = list
        .skipped
        .iter()
        .map(|s| (s.entry_index, &s.reason))
        .collect();
    assert_eq!(reasons[0], (0, &SkipReason::MissingLink));
    assert_eq!(reasons[1], (1, &SkipReason::MissingLink));
    assert_eq!(reasons[2], (2, &SkipReason::MissingLink));
    assert_eq!(
        reasons[3],
        (
            3,
            &SkipReason::LinkNotAString {
                found: "number".into()
            }
        )
    );
    assert_eq!(
        reasons[4],
        (
            4,
            &SkipReason::NotAnObject {
                found: "string".into()
            }
        )
    );
    assert!(matches!(reasons[5], (5, SkipReason::MalformedLink { .. })));
    assert_eq!(
        list.skipped[0].to_string(),
        "entry 0 (No link): skipped: no link"
    );
    assert_eq!(
        list.skipped[4].to_string(),
        "entry 4: skipped: entry is a string, not an object"
    );
}

#[test]
fn entry_without_label_is_kept_with_no_labels_and_a_warning() {
    let json = data_json(
        r#"{"name": "Unlabelled", "link": "https://github.com/u/u"},
           {"name": "Odd label", "link": "https://github.com/u/v", "label": 7}"#,
    );
    let list = parse_data_json(&json).unwrap();
    assert_eq!(list.repos.len(), 2);
    assert!(list.repos.iter().all(|r| r.labels.is_empty()));
    assert!(list
        .warnings
        .iter()
        .any(|w| w == "u/u: no label listed; kept without labels"));
    assert!(list
        .warnings
        .iter()
        .any(|w| w.contains("`label` is a number")));

    let list =
        parse_readme("## Go\n- [U](https://github.com/u/u) _(label: n/a)_ <br> d\n").unwrap();
    assert_eq!(list.repos[0].labels, Vec::<String>::new());
}

#[test]
fn huge_description_is_kept_but_truncated() {
    let description = "é".repeat(5 * 1024 * 1024 / 2);
    let json = data_json(&format!(
        r#"{{"name": "Big", "link": "https://github.com/b/big", "label": "x", "description": "{description}"}}"#
    ));
    let list = parse_data_json(&json).unwrap();
    let kept = list.repos[0].description.as_deref().unwrap();
    assert_eq!(kept.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(kept.chars().all(|c| c == 'é'));
    assert_eq!(list.warnings, ["b/big: description cut to 1000 characters"]);

    let readme =
        format!("## Go\n- [Big](https://github.com/b/big) _(label: x)_ <br> {description}\n");
    let list = parse_readme(&readme).unwrap();
    assert_eq!(
        list.repos[0]
            .description
            .as_deref()
            .map(|d| d.chars().count()),
        Some(MAX_DESCRIPTION_CHARS)
    );
}

#[test]
fn labels_are_bounded_in_length_and_number() {
    let long = "L".repeat(5_000);
    let many: Vec<String> = (0..50).map(|i| format!("label {i}")).collect();
    let json = data_json(&format!(
        r#"{{"name": "Many", "link": "https://github.com/m/many", "label": "{long}, {}"}}"#,
        many.join(", ")
    ));
    let list = parse_data_json(&json).unwrap();
    let labels = &list.repos[0].labels;
    assert_eq!(labels.len(), MAX_LABELS_PER_REPO);
    assert_eq!(labels[0].chars().count(), MAX_LABEL_CHARS);
    assert_eq!(labels[1], "label 0");
    assert!(list
        .warnings
        .iter()
        .any(|w| w.contains("41 labels dropped")));
}
