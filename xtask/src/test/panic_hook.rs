//! Both workers install `console_error_panic_hook`, so a panic's message and
//! location reach the log.
//!
//! No honest input makes the product panic (one that did would be a bug to
//! fix, and a panic route only for tests is not wanted in product code), so
//! this is shown on the build instead, twice:
//! - in the source, every `#[event(...)]` handler of `apps/*/src/lib.rs`
//!   calls `console_error_panic_hook::set_once()` first (a unit test);
//! - in the compiled worker, the hook's own code is present: its message
//!   template (`\n\nStack:\n\n`) is in the wasm. The linker drops the hook
//!   when nothing reachable installs it, so the text is there only if a
//!   handler really calls it (the `panic hook` step).

use super::Tally;
use crate::toolchain::repo_root;
use crate::{Error, Result};

pub const WORKERS: [&str; 2] = ["scraper", "processor"];

#[cfg(test)]
const INSTALL: &str = "console_error_panic_hook::set_once();";

/// The handlers in a worker's `lib.rs`, and those of them whose body does
/// not start by installing the hook.
#[cfg(test)]
pub fn handlers_without_hook(src: &str) -> (usize, Vec<String>) {
    let mut handlers = 0;
    let mut missing = Vec::new();
    for item in src.split("#[event(").skip(1) {
        handlers += 1;
        let name = item
            .split_once("fn ")
            .and_then(|(_, rest)| rest.split(['(', '<']).next())
            .unwrap_or("?")
            .trim()
            .to_string();
        let body = item.split_once('{').map(|(_, body)| body.trim_start());
        if !body.is_some_and(|b| b.starts_with(INSTALL)) {
            missing.push(name);
        }
    }
    (handlers, missing)
}

/// What the hook appends to a panic's message before the stack: present in
/// a worker's wasm exactly when the hook is linked.
const HOOK_TEXT: &[u8] = b"\n\nStack:\n\n";

pub fn hook_linked(wasm: &[u8]) -> bool {
    wasm.windows(HOOK_TEXT.len()).any(|w| w == HOOK_TEXT)
}

/// The step: the compiled wasm of each worker carries the hook.
pub fn check_builds(tally: &mut Tally) -> Result<()> {
    let mut failures = Vec::new();
    for worker in WORKERS {
        let path = repo_root()
            .join("apps")
            .join(worker)
            .join("build/index_bg.wasm");
        let wasm = std::fs::read(&path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        if hook_linked(&wasm) {
            tally.passed += 1;
            println!("ok: {worker} links console_error_panic_hook");
        } else {
            tally.failed += 1;
            println!(
                "FAILED: {worker}: console_error_panic_hook is not in {}",
                path.display()
            );
            failures.push(worker);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error(format!("no panic hook in {}", failures.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_handler_installs_the_panic_hook_first() {
        for worker in WORKERS {
            let path = repo_root().join("apps").join(worker).join("src/lib.rs");
            let src = std::fs::read_to_string(&path).expect("worker lib.rs");
            let (handlers, missing) = handlers_without_hook(&src);
            assert!(handlers > 0, "{worker}: no #[event] handler found");
            assert_eq!(
                missing,
                Vec::<String>::new(),
                "{worker}: handlers without the hook"
            );
        }
    }

    #[test]
    fn a_handler_that_does_something_else_first_is_named() {
        let src = "#[event(fetch)]\nasync fn fetch(req: Request) -> Result<Response> {\n    console_error_panic_hook::set_once();\n    route(req).await\n}\n\n#[event(queue)]\nasync fn queue(b: MessageBatch<Value>) -> Result<()> {\n    let x = 1;\n    console_error_panic_hook::set_once();\n    Ok(())\n}\n";
        assert_eq!(handlers_without_hook(src), (2, vec!["queue".to_string()]));
    }

    #[test]
    fn only_a_wasm_with_the_hooks_text_counts_as_linked() {
        assert!(hook_linked(
            b"\0asm...panicked at src/lib.rs\n\nStack:\n\n..."
        ));
        assert!(!hook_linked(b"\0asm...panicked at src/lib.rs\nStack:\n..."));
        assert!(!hook_linked(b""));
    }
}
