//! CPU of the scraper's hot path, natively: one scrape step (decode the
//! GraphQL answer, absorb it, hash, diff against stored hashes, plan the
//! writes) of 25 repos and of 50 (the deployed `REPOS_PER_QUERY`), and the
//! parse of the awesome-for-beginners `data.json`.
//!
//! `cargo bench -p contribot-bench --bench step`; `cargo xtask bench` runs it
//! with a short measurement time and reads criterion's `estimates.json`.

use std::hint::black_box;

use contribot_bench::fixture::{run_step, step_fixture};
use contribot_core::list::parse_data_json;
use criterion::{criterion_group, criterion_main, Criterion};

const DATA_JSON: &str = include_str!("../../../fixtures/awesome-for-beginners/data.json");

fn scrape_step(c: &mut Criterion) {
    for repos in [25, 50] {
        let fixture = step_fixture(repos, 10);
        c.bench_function(&format!("scrape_step_{repos}_repos"), |b| {
            b.iter(|| run_step(black_box(&fixture)))
        });
    }
}

fn list_parse(c: &mut Criterion) {
    c.bench_function("list_parse_data_json", |b| {
        b.iter(|| parse_data_json(black_box(DATA_JSON)).expect("the snapshot parses"))
    });
}

criterion_group!(benches, scrape_step, list_parse);
criterion_main!(benches);
