//! The command line's shape: exactly-one choices, value checks, defaults.

use std::time::Duration;

use clap::Parser;
use contribot_ops::cli::{parse_duration, parse_issue, parse_repo, Cli, Command, DEFAULT_URL};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("ops").chain(args.iter().copied()))
}

#[test]
fn reprocess_takes_exactly_one_target() {
    assert!(parse(&["reprocess", "--failed"]).is_ok());
    assert!(parse(&["reprocess", "--repo", "o/r"]).is_ok());
    assert!(parse(&["reprocess", "--issue", "o/r#12"]).is_ok());
    for bad in [
        vec!["reprocess"],
        vec!["reprocess", "--failed", "--repo", "o/r"],
        vec!["reprocess", "--repo", "o/r", "--issue", "o/r#1"],
    ] {
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}");
    }
}

#[test]
fn repo_and_issue_shapes_are_checked_before_any_request() {
    assert_eq!(parse_repo(" octo/cat "), Ok("octo/cat".into()));
    for bad in ["octo", "/cat", "octo/", "a/b/c", "a b/c"] {
        assert!(parse_repo(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_issue("octo/cat#42"), Ok("octo/cat#42".into()));
    for bad in ["octo/cat", "octo/cat#", "octo/cat#x1", "octo#1"] {
        assert!(parse_issue(bad).is_err(), "{bad}");
    }
}

#[test]
fn enqueue_needs_urls_or_a_file() {
    assert!(parse(&["enqueue"]).is_err());
    assert!(parse(&["enqueue", "https://github.com/a/b"]).is_ok());
    assert!(parse(&["enqueue", "--file", "list.txt"]).is_ok());
    let cli = parse(&[
        "enqueue",
        "-f",
        "l.csv",
        "https://github.com/a/b",
        "--label",
        "easy",
    ])
    .unwrap();
    let Command::Enqueue(args) = cli.command else {
        panic!("not enqueue")
    };
    assert_eq!(args.urls, vec!["https://github.com/a/b"]);
    assert_eq!(args.label.as_deref(), Some("easy"));
}

#[test]
fn status_bounds_become_query_parameters_only_when_given() {
    let cli = parse(&["status", "--runs", "3"]).unwrap();
    let Command::Status(args) = cli.command else {
        panic!("not status")
    };
    assert_eq!(args.query(), vec![("runs", "3".to_string())]);
    let cli = parse(&["status"]).unwrap();
    let Command::Status(args) = cli.command else {
        panic!("not status")
    };
    assert!(args.query().is_empty());
}

#[test]
fn logs_cursor_and_follow_exclude_each_other() {
    assert!(parse(&["logs", "--cursor", "k:3"]).is_ok());
    assert!(parse(&["logs", "--cursor", "k:3", "--follow"]).is_err());
}

#[test]
fn logs_date_must_be_a_real_day() {
    assert!(parse(&["logs", "--date", "2026-02-28"]).is_ok());
    assert!(parse(&["logs", "--date", "2026-02-30"]).is_err());
    assert!(parse(&["logs", "--date", "yesterday"]).is_err());
}

#[test]
fn durations_accept_plain_seconds_and_units() {
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("-1").is_err());
    assert!(parse_duration("soon").is_err());
}

#[test]
fn globals_work_after_the_subcommand_and_have_defaults() {
    let cli = parse(&[
        "status",
        "--json",
        "--url",
        "https://x.example",
        "--token",
        "t",
    ])
    .unwrap();
    assert!(cli.json);
    assert_eq!(cli.url, "https://x.example");
    let cli = parse(&["run"]).unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not run")
    };
    assert_eq!(args.interval, Duration::from_secs(2));
    assert!(!args.wait_processing);
    // The default URL unless CONTRIBOT_URL is set in the test's environment.
    if std::env::var_os("CONTRIBOT_URL").is_none() {
        assert_eq!(cli.url, DEFAULT_URL);
    }
}
