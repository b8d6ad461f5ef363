//! Where the installed tools live and how to run them.
//!
//! `scripts/setup.sh` installs the tools; this module only finds them. Every
//! path handed to a child process is absolute, because worker-build runs in
//! the app's directory, not the repo root.

use crate::{Error, Result};
use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repo root")
        .to_path_buf()
}

/// Runs `scripts/setup.sh`, which installs what is missing and is silent
/// otherwise.
pub fn setup() -> Result<()> {
    let root = repo_root();
    run(Command::new("bash")
        .arg(root.join("scripts/setup.sh"))
        .current_dir(&root))
}

/// The cargo that started this task, so nested builds use the same toolchain.
pub fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Cargo's target directory for this workspace.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, else `~/.cargo/bin`.
pub fn cargo_bin_dir() -> Result<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"))
        .ok_or_else(|| Error::from("neither CARGO_HOME nor HOME is set"))
}

/// The worker-build that setup installed.
pub fn worker_build() -> Result<PathBuf> {
    Ok(cargo_bin_dir()?.join("worker-build"))
}

/// `node_modules/.bin`, where npm put Node 22, wrangler, wasm-opt and esbuild.
pub fn npm_bin_dir() -> PathBuf {
    repo_root().join("node_modules/.bin")
}

/// The Node 22 from the `node` npm package (the system Node may be older
/// than wrangler and Miniflare accept).
pub fn node() -> PathBuf {
    npm_bin_dir().join("node")
}

/// `PATH` with `node_modules/.bin` first, so `#!/usr/bin/env node` scripts
/// (binaryen's wasm-opt) run on the repo's Node.
pub fn path_with_npm_bin() -> Result<OsString> {
    let mut dirs = vec![npm_bin_dir()];
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).map_err(|e| Error(format!("cannot build PATH: {e}")))
}

/// The environment that makes worker-build use local tools instead of
/// downloading them: `WASM_BINDGEN_BIN`, `WASM_OPT_BIN`, `ESBUILD_BIN`.
/// A variable already set by the caller wins.
pub fn worker_build_env() -> Result<Vec<(&'static str, OsString)>> {
    let defaults = [
        ("WASM_BINDGEN_BIN", cargo_bin_dir()?.join("wasm-bindgen")),
        ("WASM_OPT_BIN", npm_bin_dir().join("wasm-opt")),
        ("ESBUILD_BIN", npm_bin_dir().join("esbuild")),
    ];
    let mut vars = Vec::new();
    for (name, default) in defaults {
        let value = env::var_os(name).unwrap_or_else(|| default.into_os_string());
        if !Path::new(&value).exists() {
            return Err(Error(format!(
                "{name}={} does not exist; run `cargo xtask setup`",
                Path::new(&value).display()
            )));
        }
        vars.push((name, value));
    }
    vars.push(("PATH", path_with_npm_bin()?));
    Ok(vars)
}

/// Runs a command to completion; a non-zero exit is an error naming it.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .map_err(|e| Error(format!("cannot start {}: {e}", describe(command))))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error(format!("{} failed ({status})", describe(command))))
    }
}

/// `program arg arg ...`, for messages.
pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}
