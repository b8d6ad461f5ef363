//! `ops enqueue`'s input: URL lists, request chunking and summed answers.

use contribot_ops::enqueue::{
    parse_url_list, request_bodies, EnqueueItem, EnqueueTotals, MAX_ITEMS_PER_REQUEST,
};
use serde_json::json;

fn item(url: &str, label: Option<&str>) -> EnqueueItem {
    EnqueueItem::new(url, label)
}

#[test]
fn plain_lines_with_optional_labels_comments_and_blanks() {
    let text = "\
# repos to add
https://github.com/rust-lang/rust

https://github.com/tokio-rs/tokio  good first issue
   # indented comment
https://github.com/serde-rs/serde E-easy
";
    assert_eq!(
        parse_url_list(text).unwrap(),
        vec![
            item("https://github.com/rust-lang/rust", None),
            item(
                "https://github.com/tokio-rs/tokio",
                Some("good first issue")
            ),
            item("https://github.com/serde-rs/serde", Some("E-easy")),
        ]
    );
}

#[test]
fn csv_with_header_quotes_and_empty_label() {
    let text = "url,label\r\n\
https://github.com/a/b,\"good first issue\"\r\n\
https://github.com/c/d,\r\n\
https://github.com/e/f, \"say \"\"hi\"\"\" \r\n";
    assert_eq!(
        parse_url_list(text).unwrap(),
        vec![
            item("https://github.com/a/b", Some("good first issue")),
            item("https://github.com/c/d", None),
            item("https://github.com/e/f", Some("say \"hi\"")),
        ]
    );
}

#[test]
fn header_is_only_skipped_on_the_first_data_line() {
    let items = parse_url_list("# c\nrepoUrl,label\nurl,x\n").unwrap();
    assert_eq!(items, vec![item("url", Some("x"))]);
}

#[test]
fn unreadable_lines_name_their_line_number() {
    let err =
        parse_url_list("https://github.com/a/b\nhttps://github.com/c/d,\"open\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = parse_url_list("https://github.com/a/b,x,y\n").unwrap_err();
    assert!(err.message.contains("3 comma-separated fields"), "{err}");
    let err = parse_url_list(",label\n").unwrap_err();
    assert!(err.message.contains("no URL"), "{err}");
}

#[test]
fn invalid_urls_are_passed_through_for_the_api_to_judge() {
    let items = parse_url_list("not a url\n").unwrap();
    assert_eq!(items, vec![item("not", Some("a url"))]);
}

#[test]
fn items_serialize_as_the_api_expects() {
    let bodies = request_bodies(&[
        item("https://github.com/a/b", None),
        item("https://github.com/c/d", Some("easy")),
    ]);
    assert_eq!(
        bodies,
        vec![json!({"items": [
            {"repoUrl": "https://github.com/a/b"},
            {"repoUrl": "https://github.com/c/d", "label": "easy"},
        ]})]
    );
}

#[test]
fn requests_carry_at_most_a_thousand_items() {
    let items: Vec<EnqueueItem> = (0..2_345)
        .map(|i| item(&format!("https://github.com/o/r{i}"), None))
        .collect();
    let bodies = request_bodies(&items);
    let sizes: Vec<usize> = bodies
        .iter()
        .map(|b| b["items"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        vec![MAX_ITEMS_PER_REQUEST, MAX_ITEMS_PER_REQUEST, 345]
    );
    assert_eq!(
        bodies[2]["items"][344]["repoUrl"],
        "https://github.com/o/r2344"
    );
}

#[test]
fn answers_are_summed_and_errors_say_which_request() {
    let mut totals = EnqueueTotals::default();
    totals.absorb(0, 2, &json!({"ok": true, "enqueued": 990, "skipped": 8, "errors": ["item 4: not a GitHub URL", "item 9: bad"], "batches": [100, 100], "new_field": 1}));
    totals.absorb(
        1,
        2,
        &json!({"ok": true, "enqueued": 5, "skipped": 0, "errors": [], "batches": [5]}),
    );
    assert_eq!(totals.enqueued, 995);
    assert_eq!(totals.skipped, 8);
    assert_eq!(totals.requests, 2);
    assert!(totals.ok);
    assert_eq!(
        totals.errors,
        vec![
            "request 1/2: item 4: not a GitHub URL",
            "request 1/2: item 9: bad"
        ]
    );
    assert_eq!(totals.batches, vec![json!(100), json!(100), json!(5)]);
    let text = totals.render();
    assert!(
        text.starts_with("enqueued 995, skipped 8 (already known or repeated), 2 rejected; queue batches: 100, 100, 5\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  request 1/2: item 4: not a GitHub URL\n"),
        "{text}"
    );
}

#[test]
fn item_indexes_are_renumbered_to_the_whole_list() {
    let mut totals = EnqueueTotals::default();
    totals.absorb(0, 3, &json!({"ok": true, "enqueued": 999, "invalid": 1, "errors": ["items[7]: invalid repoUrl: x"]}));
    totals.absorb(
        2,
        3,
        &json!({"ok": true, "enqueued": 0, "invalid": 1, "errors": ["items[3]: missing repoUrl"]}),
    );
    assert_eq!(
        totals.errors,
        vec![
            "items[7]: invalid repoUrl: x",
            "items[2003]: missing repoUrl"
        ]
    );
    assert_eq!(totals.invalid, 2);
}

#[test]
fn partial_failures_and_unsent_items_are_reported() {
    let mut totals = EnqueueTotals::default();
    totals.absorb(0, 2, &json!({"ok": true, "enqueued": 10}));
    totals.absorb(
        1,
        2,
        &json!({"ok": false, "enqueued": 0, "unsent": 4, "errors": ["send failed"]}),
    );
    assert!(!totals.ok);
    assert_eq!(totals.unsent, 4);
    assert!(totals
        .render()
        .contains("4 saved but not yet queued (the next run queues them)"));
}

#[test]
fn a_single_request_keeps_the_apis_error_text() {
    let mut totals = EnqueueTotals::default();
    totals.absorb(
        0,
        1,
        &json!({"ok": false, "enqueued": 0, "skipped": 0, "errors": ["nope"]}),
    );
    assert_eq!(totals.errors, vec!["nope"]);
    assert!(!totals.ok);
}
