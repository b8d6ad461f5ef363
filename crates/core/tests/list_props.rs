//! Properties of the list parsers, the URL parser and label resolution on
//! arbitrary input: they never panic, they are deterministic, and what they
//! return respects the documented bounds.

use contribot_core::label::{label_search_term, normalize_label, resolve_label};
use contribot_core::list::{
    parse_data_json, parse_readme, ParsedList, MAX_DESCRIPTION_CHARS, MAX_LABELS_PER_REPO,
    MAX_LABEL_CHARS, MAX_NAME_CHARS, MAX_TECHNOLOGIES_PER_REPO,
};
use contribot_core::slug::{is_strict_repo_url, parse_github_url, RepoSlug};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn assert_valid_slug(slug: &RepoSlug) {
    for part in [&slug.owner, &slug.name] {
        assert!(!part.is_empty() && part.len() <= 100, "{slug:?}");
        assert!(part != "." && part != "..", "{slug:?}");
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)),
            "{slug:?}"
        );
    }
}

/// Everything a successful parse promises, whatever the input.
fn assert_well_formed(list: &ParsedList) {
    assert!(!list.repos.is_empty());
    let mut seen = std::collections::HashSet::new();
    for (i, repo) in list.repos.iter().enumerate() {
        assert_valid_slug(&repo.slug);
        assert!(seen.insert(&repo.slug), "duplicate {}", repo.slug);
        assert_eq!(repo.position as usize, i);
        assert!(!repo.display_name.is_empty());
        assert!(repo.display_name.chars().count() <= MAX_NAME_CHARS);
        assert!(repo.labels.len() <= MAX_LABELS_PER_REPO);
        assert!(repo.technologies.len() <= MAX_TECHNOLOGIES_PER_REPO);
        for label in &repo.labels {
            assert!(!label.trim().is_empty());
            assert!(label.chars().count() <= MAX_LABEL_CHARS);
        }
        if let Some(description) = &repo.description {
            assert!(!description.is_empty());
            assert!(description.chars().count() <= MAX_DESCRIPTION_CHARS);
        }
    }
}

/// URLs near the GitHub shape, so the interesting branches get exercised.
fn url_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|HTTPS|ftp|)(://)?(www\\.)?(github|gitlab|GitHub|github\\.com\\.evil)\\.(com|org)\\.?(:[0-9a-z]{0,3})?(/[A-Za-z0-9_.%+ :@é-]{0,8}){0,5}/?([?#].{0,6})?",
        "https://github\\.com/[A-Za-z0-9_.-]{1,12}/[A-Za-z0-9_.-]{1,12}(\\.git)?/?(/labels/[A-Za-z0-9%+ ]{0,12})?",
    ]
}

fn label_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(👶 |🤩 |:[a-z_0-9]{1,5}: )?[A-Za-z]{1,6}([ _:/-]{1,2}[A-Za-z0-9]{1,6}){0,3}( ?-?:[a-z_0-9]{1,5}:| ?🚀)?",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        url_like().prop_map(Value::String),
        label_like().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("name".to_owned()),
            Just("link".to_owned()),
            Just("label".to_owned()),
            Just("technologies".to_owned()),
            Just("description".to_owned()),
            Just("repositories".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One `repositories` entry: each field absent, plausible, or any JSON.
fn entry() -> impl Strategy<Value = Value> {
    let field = |plausible: BoxedStrategy<Value>| {
        prop_oneof![
            2 => Just(None),
            5 => plausible.prop_map(Some),
            2 => json_value().prop_map(Some),
        ]
    };
    let strings =
        prop::collection::vec(label_like().prop_map(Value::String), 0..4).prop_map(Value::Array);
    (
        field(any::<String>().prop_map(Value::String).boxed()),
        field(url_like().prop_map(Value::String).boxed()),
        field(label_like().prop_map(Value::String).boxed()),
        field(strings.boxed()),
        field(any::<String>().prop_map(Value::String).boxed()),
    )
        .prop_map(|(name, link, label, technologies, description)| {
            let mut object = Map::new();
            for (key, value) in [
                ("name", name),
                ("link", link),
                ("label", label),
                ("technologies", technologies),
                ("description", description),
            ] {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            Value::Object(object)
        })
}

fn data_json_like() -> impl Strategy<Value = (usize, String)> {
    let entries = prop::collection::vec(prop_oneof![8 => entry(), 1 => json_value()], 0..12);
    (entries, prop::option::of(json_value())).prop_map(|(entries, extra)| {
        let count = entries.len();
        let mut root = Map::new();
        root.insert("repositories".to_owned(), Value::Array(entries));
        if let Some(extra) = extra {
            root.insert("sponsors".to_owned(), extra);
        }
        (count, Value::Object(root).to_string())
    })
}

/// Markdown assembled from the README's own building blocks.
fn readme_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        1 => Just("\n".to_owned()),
        1 => Just("## ".to_owned()),
        1 => Just("# ".to_owned()),
        1 => Just("- ".to_owned()),
        1 => Just("* [".to_owned()),
        1 => Just("[".to_owned()),
        1 => Just("](".to_owned()),
        1 => Just(")".to_owned()),
        1 => Just(" _(label: ".to_owned()),
        1 => Just(")_".to_owned()),
        1 => Just(" <br> ".to_owned()),
        1 => Just("```\n".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("%".to_owned()),
        1 => Just(",".to_owned()),
        1 => Just("## Table of Contents\n".to_owned()),
        3 => "\n#{1,3} [A-Za-z#+. ]{0,8}\n",
        6 => (label_like(), url_like(), label_like(), any::<String>()).prop_map(
            |(name, url, label, description)| {
                format!("\n- [{name}]({url}) _(label: {label})_ <br> {description}\n")
            }
        ),
        1 => url_like(),
        1 => label_like(),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn data_json_never_panics_on_any_text(text in any::<String>()) {
        let first = parse_data_json(&text);
        prop_assert_eq!(&first, &parse_data_json(&text));
        if let Ok(list) = first {
            assert_well_formed(&list);
        }
    }

    #[test]
    fn data_json_never_panics_on_any_json(value in json_value()) {
        let text = value.to_string();
        let first = parse_data_json(&text);
        prop_assert_eq!(&first, &parse_data_json(&text));
        if let Ok(list) = first {
            assert_well_formed(&list);
        }
    }

    #[test]
    fn data_json_accounts_for_every_entry((count, text) in data_json_like()) {
        let first = parse_data_json(&text);
        prop_assert_eq!(&first, &parse_data_json(&text));
        if let Ok(list) = first {
            assert_well_formed(&list);
            prop_assert!(list.skipped.len() + list.repos.len() <= count);
            for skipped in &list.skipped {
                prop_assert!(skipped.entry_index < count);
                prop_assert!(!skipped.to_string().contains(['\n', '\r']));
            }
        }
    }

    #[test]
    fn readme_never_panics_on_any_text(text in any::<String>()) {
        let first = parse_readme(&text);
        prop_assert_eq!(&first, &parse_readme(&text));
        if let Ok(list) = first {
            assert_well_formed(&list);
        }
    }

    #[test]
    fn readme_never_panics_on_markdown_like_text(text in readme_like()) {
        let first = parse_readme(&text);
        prop_assert_eq!(&first, &parse_readme(&text));
        if let Ok(list) = first {
            assert_well_formed(&list);
        }
    }

    #[test]
    fn github_url_parse_is_total_and_lowercase(url in url_like()) {
        let first = parse_github_url(&url);
        prop_assert_eq!(&first, &parse_github_url(&url));
        if let Ok(slug) = &first {
            assert_valid_slug(slug);
            let reparsed = slug.full_name().parse::<RepoSlug>();
            prop_assert_eq!(reparsed.as_ref(), Ok(slug));
        }
        let _ = is_strict_repo_url(&url);
    }

    #[test]
    fn strict_urls_of_plain_repos_parse_to_their_slug(
        owner in "[A-Za-z0-9][A-Za-z0-9_-]{0,15}",
        name in "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,15}",
        slash in any::<bool>(),
    ) {
        prop_assume!(!["orgs", "topics", "sponsors", "settings", "about", "apps", "codespaces",
            "collections", "enterprise", "explore", "features", "issues", "login", "marketplace",
            "notifications", "organizations", "pricing", "pulls", "search", "trending"]
            .contains(&owner.to_lowercase().as_str()));
        let url = format!("https://github.com/{owner}/{name}{}", if slash { "/" } else { "" });
        prop_assert!(is_strict_repo_url(&url));
        let slug = parse_github_url(&url);
        let lower = name.to_lowercase();
        let expected_name = lower.strip_suffix(".git").unwrap_or(&lower);
        if expected_name.is_empty() {
            prop_assert!(slug.is_err());
        } else {
            let slug = slug.unwrap();
            prop_assert_eq!(slug.owner, owner.to_lowercase());
            prop_assert_eq!(slug.name.as_str(), expected_name);
        }
    }

    #[test]
    fn normalize_label_is_total_and_canonical(label in label_like()) {
        let form = normalize_label(&label);
        prop_assert_eq!(&form, &normalize_label(&label));
        prop_assert!(!form.contains(['-', '_']));
        prop_assert!(!form.starts_with(' ') && !form.ends_with(' '));
        prop_assert!(!form.contains("  "));
        prop_assert!(form.chars().all(|c| c == ' ' || !c.is_whitespace()));
        let term = label_search_term(&label);
        prop_assert!(form.contains(term.as_str()));
        prop_assert!(term.chars().all(char::is_alphanumeric));
    }

    #[test]
    fn resolve_label_only_returns_repo_labels(
        listed in prop::collection::vec(label_like(), 0..4),
        repo in prop::collection::vec(label_like(), 0..6),
    ) {
        let got = resolve_label(&listed, &repo);
        prop_assert_eq!(&got, &resolve_label(&listed, &repo));
        if let Some(label) = got.label() {
            prop_assert!(repo.iter().any(|r| r == label));
        }
        if let Some(first) = listed.first() {
            if !first.trim().is_empty() && repo.contains(first) {
                prop_assert_eq!(got.label(), Some(first.as_str()));
            }
        }
        // Listing the repository's own labels always resolves.
        if repo.iter().any(|r| !r.trim().is_empty()) {
            prop_assert!(resolve_label(&repo, &repo).is_found());
        }
    }
}
