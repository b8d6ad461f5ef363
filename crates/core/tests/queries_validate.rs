//! Every GraphQL text the workers can send, validated against GitHub's
//! real schema (`fixtures/github/schema.graphql`), with the variables the
//! request bodies carry checked against the variables the texts declare.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use apollo_compiler::executable::Operation;
use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::{Valid, WithErrors};
use apollo_compiler::{ExecutableDocument, Schema};
use contribot_core::github::{
    enrich_query_text, enrich_request_body, scrape_query_text, scrape_request_body, EnrichTarget,
    RepoQuery, MAX_REPOS_PER_QUERY,
};
use serde_json::Value;

/// The most repos, and issues, one enrich query is checked with.
const ENRICH_CHECKED: usize = 10;

/// GitHub's schema, parsed and validated once: it is 1.2 MB.
///
/// GitHub's published schema is not quite valid GraphQL: `EnterpriseOwnerInfo`
/// defines two of its fields twice (identically). apollo-compiler reports
/// those while building the schema and keeps the first definition. Only that
/// kind of error is tolerated here; the rest of the schema must then pass
/// apollo-compiler's full schema validation.
fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/github/schema.graphql"
        );
        let text = std::fs::read_to_string(path).expect("read GitHub's schema fixture");
        let built = match Schema::parse(text, "schema.graphql") {
            Ok(schema) => schema,
            Err(WithErrors { partial, errors }) => {
                let unexpected: Vec<String> = errors
                    .iter()
                    .map(|d| d.error.to_string())
                    .filter(|m| !is_known_schema_quirk(m))
                    .collect();
                assert!(
                    unexpected.is_empty(),
                    "GitHub's schema does not build:\n{}",
                    unexpected.join("\n")
                );
                partial
            }
        };
        built
            .validate()
            .unwrap_or_else(|e| panic!("GitHub's schema does not validate:\n{}", e.errors))
    })
}

/// The duplicate field definitions GitHub ships in its public schema.
fn is_known_schema_quirk(message: &str) -> bool {
    message.starts_with("duplicate definitions for the `")
        && message.contains("field of object type `EnterpriseOwnerInfo`")
}

fn validate(query: &str, label: &str) -> Valid<ExecutableDocument> {
    ExecutableDocument::parse_and_validate(schema(), query, label).unwrap_or_else(|e| {
        panic!(
            "{label} does not validate against GitHub's schema:\n{}\n{query}",
            e.errors
        )
    })
}

fn operation<'d>(doc: &'d Valid<ExecutableDocument>, name: &str) -> &'d Operation {
    doc.operations
        .get(Some(name))
        .unwrap_or_else(|_| panic!("no operation named {name}"))
}

/// Check a request body's `variables` against the operation it carries:
/// the same names, every non-null variable non-null, and every value of
/// its declared type (GraphQL's own variable coercion).
fn assert_variables_fit(body: &Value, operation_name: &str) {
    assert_eq!(body["operationName"], operation_name);
    let query = body["query"].as_str().expect("query is a string");
    let doc = validate(query, operation_name);
    let op = operation(&doc, operation_name);
    let vars = body["variables"]
        .as_object()
        .expect("variables is an object");

    let declared: BTreeSet<&str> = op.variables.iter().map(|v| v.name.as_str()).collect();
    let provided: BTreeSet<&str> = vars.keys().map(String::as_str).collect();
    assert_eq!(
        declared, provided,
        "declared vs provided variables of {operation_name}"
    );

    for def in &op.variables {
        if def.ty.is_non_null() {
            let value = &vars[def.name.as_str()];
            assert!(!value.is_null(), "non-null ${} is null in {body}", def.name);
        }
    }

    let map: JsonMap =
        serde_json::from_value(Value::Object(vars.clone())).expect("variables as a JSON map");
    if let Err(e) = coerce_variable_values(schema(), op, &map) {
        panic!(
            "variables of {operation_name} do not coerce: {}\n{body}",
            e.message()
        );
    }
}

fn repo_query(
    owner: &str,
    name: &str,
    label: Option<&str>,
    after: Option<&str>,
    search: Option<&str>,
) -> RepoQuery {
    RepoQuery {
        owner: owner.to_string(),
        name: name.to_string(),
        issue_label: label.map(str::to_string),
        after: after.map(str::to_string),
        label_search: search.map(str::to_string),
    }
}

/// Repos covering every combination of the optional parts of a query.
fn mixed_repo_queries(n: usize) -> Vec<RepoQuery> {
    (0..n)
        .map(|i| {
            let owner = format!("owner{i}");
            let name = format!("repo-{i}");
            match i % 4 {
                0 => repo_query(&owner, &name, Some("good first issue"), None, Some("first")),
                1 => repo_query(
                    &owner,
                    &name,
                    Some("help wanted"),
                    Some("Y3Vyc29yOnYyOpHOAAAA"),
                    None,
                ),
                2 => repo_query(&owner, &name, None, None, Some("beginner")),
                _ => repo_query(&owner, &name, None, None, None),
            }
        })
        .collect()
}

fn mixed_enrich_targets(repos: usize, issues: usize) -> Vec<EnrichTarget> {
    let mut out = Vec::new();
    // Interleave so the alias counters of both kinds are exercised.
    for k in 0..repos.max(issues) {
        if k < issues {
            out.push(EnrichTarget::Issue {
                owner: format!("o{k}"),
                name: format!("n{k}"),
                number: 1 + k as i64,
            });
        }
        if k < repos {
            out.push(EnrichTarget::Repo {
                owner: format!("o{k}"),
                name: format!("n{k}"),
            });
        }
    }
    out
}

#[test]
fn github_schema_fixture_validates_apart_from_its_duplicate_fields() {
    let s = schema();
    assert!(
        s.types.contains_key("Repository"),
        "the fixture is GitHub's schema"
    );
    assert!(s.types.contains_key("RateLimit"));
}

#[test]
fn every_scrape_query_text_validates_against_github_schema() {
    for n in 1..=MAX_REPOS_PER_QUERY {
        let text = scrape_query_text(n);
        let doc = validate(&text, &format!("scrape_query_text({n})"));
        let op = operation(&doc, "Scrape");
        assert!(op.is_query());
        assert_eq!(
            op.variables.len(),
            7 * n,
            "seven variables per repo for n = {n}"
        );
        // rateLimit plus one alias per repo.
        assert_eq!(
            op.selection_set.fields().count(),
            n + 1,
            "top-level fields for n = {n}"
        );
    }
}

#[test]
fn every_enrich_query_text_validates_against_github_schema() {
    for r in 0..=ENRICH_CHECKED {
        for i in 0..=ENRICH_CHECKED {
            if r + i == 0 {
                continue;
            }
            let text = enrich_query_text(r, i);
            let doc = validate(&text, &format!("enrich_query_text({r}, {i})"));
            let op = operation(&doc, "Enrich");
            assert!(op.is_query());
            assert_eq!(
                op.variables.len(),
                2 * r + 3 * i,
                "variables for ({r}, {i})"
            );
            assert_eq!(
                op.selection_set.fields().count(),
                r + i + 1,
                "top-level fields for ({r}, {i})"
            );
        }
    }
}

#[test]
fn scrape_bodies_provide_exactly_the_declared_variables() {
    for n in 1..=MAX_REPOS_PER_QUERY {
        let body = scrape_request_body(&mixed_repo_queries(n));
        assert_variables_fit(&body, "Scrape");
    }
}

#[test]
fn scrape_body_switches_label_search_and_issues_with_its_flags() {
    let body = scrape_request_body(&mixed_repo_queries(4));
    let v = &body["variables"];
    // Repo 0 searches labels and fetches issues; repo 3 does neither.
    assert_eq!(v["wl0"], true);
    assert_eq!(v["wi0"], true);
    assert_eq!(v["l0"], serde_json::json!(["good first issue"]));
    assert_eq!(v["c1"], "Y3Vyc29yOnYyOpHOAAAA");
    assert_eq!(v["wl1"], false);
    assert_eq!(v["wl3"], false);
    assert_eq!(v["wi3"], false);
    assert!(v["l3"].is_null());
    assert!(v["q3"].is_null());
}

#[test]
fn enrich_bodies_provide_exactly_the_declared_variables() {
    for r in 0..=ENRICH_CHECKED {
        for i in 0..=ENRICH_CHECKED {
            if r + i == 0 {
                continue;
            }
            let body = enrich_request_body(&mixed_enrich_targets(r, i));
            assert_eq!(
                body["query"].as_str(),
                Some(enrich_query_text(r, i).as_str())
            );
            assert_variables_fit(&body, "Enrich");
        }
    }
}

#[test]
fn hostile_repo_names_never_reach_the_query_text() {
    let hostile = [
        ("a\"b", "x){evil}"),
        (
            "}} query Evil { viewer { login } } #",
            "name\nwith\nnewlines",
        ),
        ("$o0", "\\\"\\"),
        ("owner", "r0: repository(owner: \"x\", name: \"y\") { id }"),
    ];
    let repos: Vec<RepoQuery> = hostile
        .iter()
        .map(|(o, n)| repo_query(o, n, Some("\") { evil }"), Some("\"}"), Some("#{")))
        .collect();
    let body = scrape_request_body(&repos);
    assert_eq!(
        body["query"].as_str(),
        Some(scrape_query_text(repos.len()).as_str())
    );
    for (i, (o, n)) in hostile.iter().enumerate() {
        assert_eq!(body["variables"][format!("o{i}")], *o);
        assert_eq!(body["variables"][format!("n{i}")], *n);
    }
    assert_variables_fit(&body, "Scrape");

    let targets: Vec<EnrichTarget> = hostile
        .iter()
        .flat_map(|(o, n)| {
            [
                EnrichTarget::Repo {
                    owner: o.to_string(),
                    name: n.to_string(),
                },
                EnrichTarget::Issue {
                    owner: o.to_string(),
                    name: n.to_string(),
                    number: 7,
                },
            ]
        })
        .collect();
    let body = enrich_request_body(&targets);
    assert_eq!(
        body["query"].as_str(),
        Some(enrich_query_text(hostile.len(), hostile.len()).as_str())
    );
    assert_variables_fit(&body, "Enrich");
}

#[test]
fn query_text_depends_only_on_the_repo_count() {
    let a = scrape_request_body(&mixed_repo_queries(3));
    let b = scrape_request_body(&[
        repo_query("zzz", "yyy", None, None, None),
        repo_query("q", "w", Some("x"), Some("c"), Some("s")),
        repo_query("1", "2", Some("bug"), None, None),
    ]);
    assert_eq!(a["query"], b["query"]);
}

#[test]
fn a_query_with_an_unknown_field_fails_validation() {
    let bad = scrape_query_text(1).replace("stargazerCount", "stargazerCountButWrong");
    assert!(ExecutableDocument::parse_and_validate(schema(), bad, "bad.graphql").is_err());
    let bad_arg = enrich_query_text(0, 1).replace("issue(number:", "issue(numbr:");
    assert!(ExecutableDocument::parse_and_validate(schema(), bad_arg, "bad_arg.graphql").is_err());
    let bad_var = scrape_query_text(1).replace("$wl0: Boolean!", "$wl0: String!");
    assert!(ExecutableDocument::parse_and_validate(schema(), bad_var, "bad_var.graphql").is_err());
}

#[test]
fn variables_of_the_wrong_type_fail_coercion() {
    // Proves the variable check is live: a string where Int! is declared.
    let body = enrich_request_body(&mixed_enrich_targets(0, 1));
    let doc = validate(body["query"].as_str().unwrap(), "Enrich");
    let op = operation(&doc, "Enrich");
    let mut vars = body["variables"].as_object().unwrap().clone();
    vars.insert("inum0".into(), Value::from("seven"));
    let map: JsonMap = serde_json::from_value(Value::Object(vars.clone())).unwrap();
    assert!(coerce_variable_values(schema(), op, &map).is_err());
    vars.insert("inum0".into(), Value::Null);
    let map: JsonMap = serde_json::from_value(Value::Object(vars)).unwrap();
    assert!(coerce_variable_values(schema(), op, &map).is_err());
}
