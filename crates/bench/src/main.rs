//! `contribot-bench peer <ts-original|goodfirstissue> --sim URL --token T [--state FILE]`:
//! replays a peer's GitHub request pattern against the simulator and prints
//! one JSON line with the requests (and GraphQL points) it made.

use std::path::PathBuf;
use std::process::ExitCode;

use contribot_bench::peer::{self, Pattern};

const USAGE: &str = "usage: contribot-bench peer <ts-original|goodfirstissue> --sim URL --token TOKEN [--state FILE]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok((pattern, sim, token, state)) => {
            match peer::run(pattern, &sim, &token, state.as_deref()) {
                Ok(report) => {
                    println!(
                        "{}",
                        serde_json::to_string(&report).expect("report serialises")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("contribot-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(message) => {
            eprintln!("contribot-bench: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

type Parsed = (Pattern, String, String, Option<PathBuf>);

fn parse(args: &[String]) -> Result<Parsed, String> {
    let [command, name, rest @ ..] = args else {
        return Err("missing command".into());
    };
    if command != "peer" {
        return Err(format!("unknown command `{command}`"));
    }
    let pattern = Pattern::parse(name).ok_or_else(|| format!("unknown peer `{name}`"))?;
    let (mut sim, mut token, mut state) = (None, None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        match flag.as_str() {
            "--sim" => sim = Some(value),
            "--token" => token = Some(value),
            "--state" => state = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok((
        pattern,
        sim.ok_or("--sim is required")?,
        token.ok_or("--token is required")?,
        state,
    ))
}
