//! `cargo xtask build`: compile the workers with worker-build, offline.
//!
//! worker-build writes `apps/<name>/build/index.js` and `index_bg.wasm`, plus
//! `build/worker/shim.mjs` (the `main` of `wrangler-<name>.toml`), which
//! re-exports `index.js`; a worker with `apps/<name>/warm-up.mjs` gets that
//! as its `shim.mjs` instead, with the stand-ins it imports ([`install_warm_up`]). When the wasm that cargo
//! produces has not changed since the last successful build of the same
//! profile, the bindgen/wasm-opt/esbuild passes are skipped.
//!
//! `--profiling` is the release build (same cargo profile, same wasm-opt
//! passes) checked to keep the wasm `name` section, so a V8 CPU profile
//! (bench/cpu.mjs) names every Rust function. worker-build 0.8 passes
//! `--debuginfo` to wasm-opt, so the release build keeps the section too: a
//! custom section the engine only reads for stack traces and profiles, it
//! costs no CPU, only bytes (reported below with the sizes).
//!
//! [`build_variant`] builds one worker with another `opt-level` into its own
//! target and output directories, for `cargo xtask bench --opt-levels`.

use crate::toolchain::{self, cargo, describe, run, worker_build_env};
use crate::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, UNIX_EPOCH};

/// One of the two Workers in `apps/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    Scraper,
    Processor,
}

impl Worker {
    pub const ALL: [Worker; 2] = [Worker::Scraper, Worker::Processor];

    pub fn name(self) -> &'static str {
        match self {
            Worker::Scraper => "scraper",
            Worker::Processor => "processor",
        }
    }

    fn package(self) -> String {
        format!("contribot-{}", self.name())
    }

    fn dir(self) -> PathBuf {
        toolchain::repo_root().join("apps").join(self.name())
    }

    fn build_dir(self) -> PathBuf {
        self.dir().join("build")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Release,
    /// The release build, required to keep function names.
    Profiling,
    Dev,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Profiling => "profiling",
            Profile::Dev => "dev",
        }
    }

    /// Cargo's output directory name for this profile.
    fn target_subdir(self) -> &'static str {
        match self {
            Profile::Release | Profile::Profiling => "release",
            Profile::Dev => "debug",
        }
    }

    /// worker-build's flag for this profile.
    fn worker_build_flag(self) -> &'static str {
        match self {
            Profile::Release => "--release",
            Profile::Profiling => "--profiling",
            Profile::Dev => "--dev",
        }
    }
}

/// A release build of one worker with another `opt-level`, kept apart from
/// the regular build: its own cargo target directory (so switching levels
/// never rebuilds the shared one) and its own worker-build output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `[profile.release] opt-level` for this build: "z", "s", "3", ...
    pub opt_level: String,
    pub target_dir: PathBuf,
    /// Where worker-build writes (`<out_dir>/worker/shim.mjs`, `index_bg.wasm`).
    pub out_dir: PathBuf,
}

/// What `cargo xtask build ...` was asked to build.
#[derive(Debug, PartialEq, Eq)]
pub struct BuildRequest {
    pub workers: Vec<Worker>,
    pub profile: Profile,
}

impl BuildRequest {
    pub fn parse(args: &[String]) -> Result<BuildRequest> {
        let mut workers = None;
        let mut profile = Profile::Release;
        for arg in args {
            match arg.as_str() {
                "--dev" => profile = Profile::Dev,
                "--release" => profile = Profile::Release,
                "--profiling" => profile = Profile::Profiling,
                "all" => workers = Some(Worker::ALL.to_vec()),
                "scraper" => workers = Some(vec![Worker::Scraper]),
                "processor" => workers = Some(vec![Worker::Processor]),
                other => {
                    return Err(Error(format!(
                    "build: unknown argument `{other}` (expected scraper, processor, all, --dev or --profiling)"
                )))
                }
            }
        }
        Ok(BuildRequest {
            workers: workers.unwrap_or_else(|| Worker::ALL.to_vec()),
            profile,
        })
    }

    pub fn all_release() -> BuildRequest {
        BuildRequest {
            workers: Worker::ALL.to_vec(),
            profile: Profile::Release,
        }
    }
}

/// Builds each requested worker and prints its wasm size.
pub fn build(request: &BuildRequest) -> Result<()> {
    for &worker in &request.workers {
        build_worker(&Plan::regular(worker, request.profile))?;
    }
    Ok(())
}

/// Builds one worker as `variant` says; the build lands in
/// `variant.out_dir`, the shared `apps/<name>/build` is left alone.
pub fn build_variant(worker: Worker, variant: &Variant) -> Result<()> {
    build_worker(&Plan::variant(worker, variant))
}

/// Where one worker build goes and what it changes.
struct Plan {
    worker: Worker,
    profile: Profile,
    target_dir: PathBuf,
    out_dir: PathBuf,
    /// Extra environment for cargo and worker-build.
    env: Vec<(&'static str, OsString)>,
    /// Part of the stamp: what else decides the output.
    flavour: String,
    /// For messages, e.g. ", opt-level 3".
    label: String,
}

impl Plan {
    fn regular(worker: Worker, profile: Profile) -> Plan {
        Plan {
            worker,
            profile,
            target_dir: toolchain::target_dir(),
            out_dir: worker.build_dir(),
            env: Vec::new(),
            flavour: String::new(),
            label: String::new(),
        }
    }

    fn variant(worker: Worker, variant: &Variant) -> Plan {
        Plan {
            worker,
            profile: Profile::Release,
            target_dir: variant.target_dir.clone(),
            out_dir: variant.out_dir.clone(),
            env: vec![
                (
                    "CARGO_TARGET_DIR",
                    variant.target_dir.clone().into_os_string(),
                ),
                (
                    "CARGO_PROFILE_RELEASE_OPT_LEVEL",
                    OsString::from(&variant.opt_level),
                ),
            ],
            flavour: format!("opt_level={}\n", variant.opt_level),
            label: format!(", opt-level {}", variant.opt_level),
        }
    }
}

fn build_worker(plan: &Plan) -> Result<()> {
    let (worker, profile) = (plan.worker, plan.profile);
    let started = Instant::now();
    let env = worker_build_env()?;

    // Same cargo invocation as worker-build's own (it sets
    // WASM_BINDGEN_USE_JS_SYS too), so the second one is a no-op.
    let mut compile = cargo();
    compile
        .current_dir(worker.dir())
        .args(["build", "--lib", "--target", "wasm32-unknown-unknown"])
        .env("WASM_BINDGEN_USE_JS_SYS", "1")
        .envs(plan.env.iter().cloned());
    if profile != Profile::Dev {
        compile.arg("--release");
    }
    println!(
        "xtask: compiling {} ({}{})",
        worker.package(),
        profile.name(),
        plan.label
    );
    run(&mut compile)?;

    let stamp_path = plan.out_dir.join(".xtask-stamp");
    let stamp = input_stamp(plan);
    let up_to_date = stamp.is_some()
        && plan.out_dir.join("worker/shim.mjs").is_file()
        && fs::read_to_string(&stamp_path).ok() == stamp;
    if up_to_date {
        println!("xtask: {} is up to date", worker.name());
    } else {
        let mut bundle = Command::new(toolchain::worker_build()?);
        bundle
            .current_dir(worker.dir())
            .envs(env)
            .envs(plan.env.iter().cloned())
            .arg(profile.worker_build_flag());
        if plan.out_dir != worker.build_dir() {
            bundle.arg("--out-dir").arg(&plan.out_dir);
        }
        println!("xtask: running {}", describe(&bundle));
        run(&mut bundle)?;
        if let Some(stamp) = input_stamp(plan) {
            fs::write(&stamp_path, stamp)
                .map_err(|e| Error(format!("cannot write {}: {e}", stamp_path.display())))?;
        }
    }
    install_warm_up(plan)?;
    report_size(worker, &plan.out_dir)?;
    if profile == Profile::Profiling {
        require_names(&plan.out_dir.join("index_bg.wasm"))?;
    }
    println!(
        "xtask: built {} in {:.1}s",
        worker.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A worker with `apps/<name>/warm-up.mjs` gets it as its main module in
/// place of worker-build's `worker/shim.mjs` (which only re-exports
/// `../index.js`), with the stand-ins it imports (`crates/edge/js/warm-up.mjs`)
/// next to it as `worker/warm-up-kit.mjs`: it runs the handlers once at
/// start-up, so V8 compiles their code outside the per-invocation CPU budget.
/// Copied on every build, so an edit to either needs no cargo change.
fn install_warm_up(plan: &Plan) -> Result<()> {
    let source = plan.worker.dir().join("warm-up.mjs");
    if !source.is_file() {
        return Ok(());
    }
    let kit = toolchain::repo_root().join("crates/edge/js/warm-up.mjs");
    copy(&kit, &plan.out_dir.join("worker/warm-up-kit.mjs"))?;
    copy(&source, &plan.out_dir.join("worker/shim.mjs"))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).map(|_| ()).map_err(|e| {
        Error(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Identifies the inputs of worker-build's post-processing: the profile and
/// the size and modification time of the wasm cargo produced. `None` when
/// that wasm cannot be found (for example a renamed `[lib]`); the build then
/// always runs.
fn input_stamp(plan: &Plan) -> Option<String> {
    let wasm = plan
        .target_dir
        .join("wasm32-unknown-unknown")
        .join(plan.profile.target_subdir())
        .join(format!("{}.wasm", plan.worker.package().replace('-', "_")));
    let meta = fs::metadata(wasm).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "profile={}\n{}wasm_len={}\nwasm_mtime_ns={}\n",
        plan.profile.name(),
        plan.flavour,
        meta.len(),
        modified.as_nanos()
    ))
}

/// A profiling build must name its functions: fails when `index_bg.wasm`
/// has no `name` section.
fn require_names(wasm: &Path) -> Result<()> {
    let bytes =
        fs::read(wasm).map_err(|e| Error(format!("cannot read {}: {e}", wasm.display())))?;
    if has_name_section(&bytes) {
        Ok(())
    } else {
        Err(Error(format!(
            "{} has no name section: CPU profiles would not name its functions",
            wasm.display()
        )))
    }
}

/// Whether a wasm module has a custom section called `name` (function
/// names for stack traces and profiles). Malformed input reads as `false`.
pub(crate) fn has_name_section(wasm: &[u8]) -> bool {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return false;
    }
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let Some((size, len)) = leb128(&wasm[at..]) else {
            return false;
        };
        at += len;
        let Some(body) = wasm.get(at..at + size) else {
            return false;
        };
        if id == 0 {
            if let Some((name_len, len)) = leb128(body) {
                if body.get(len..len + name_len) == Some(b"name".as_slice()) {
                    return true;
                }
            }
        }
        at += size;
    }
    false
}

/// An unsigned LEB128 number and how many bytes it took.
fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Prints the size of each `.wasm` in `dir` (worker-build 0.8 writes
/// `index_bg.wasm` there, beside `index.js`), raw and gzipped, and whether
/// it keeps function names. Cloudflare's Worker size limits (3 MiB free,
/// 10 MiB paid) apply to the compressed upload.
fn report_size(worker: Worker, dir: &Path) -> Result<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error(format!("cannot read {}: {e}", dir.display())))?;
    let mut wasm_files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    wasm_files.sort();
    if wasm_files.is_empty() {
        return Err(Error(format!("no .wasm in {}", dir.display())));
    }
    for path in wasm_files {
        let bytes =
            fs::read(&path).map_err(|e| Error(format!("cannot read {}: {e}", path.display())))?;
        let gzipped = gzip_len(&bytes)?;
        println!(
            "xtask: {} {}: {} raw, {} gzip, {}",
            worker.name(),
            path.file_name().unwrap_or_default().to_string_lossy(),
            human_size(bytes.len() as u64),
            human_size(gzipped),
            if has_name_section(&bytes) {
                "function names kept"
            } else {
                "no function names"
            }
        );
    }
    Ok(())
}

/// Compressed size with `gzip -9`, the way the size limit is measured.
pub(crate) fn gzip_len(bytes: &[u8]) -> Result<u64> {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error(format!("cannot run gzip: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let input = bytes.to_vec();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|e| Error(format!("gzip failed: {e}")))?;
    writer
        .join()
        .expect("gzip writer thread panicked")
        .map_err(|e| Error(format!("cannot feed gzip: {e}")))?;
    if !output.status.success() {
        return Err(Error(format!("gzip failed ({})", output.status)));
    }
    Ok(output.stdout.len() as u64)
}

fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn no_arguments_build_both_workers_for_release() {
        let request = BuildRequest::parse(&[]).unwrap();
        assert_eq!(request, BuildRequest::all_release());
    }

    #[test]
    fn one_worker_with_dev_profile() {
        let request = BuildRequest::parse(&args(&["processor", "--dev"])).unwrap();
        assert_eq!(request.workers, vec![Worker::Processor]);
        assert_eq!(request.profile, Profile::Dev);
    }

    #[test]
    fn profiling_is_a_profile_of_its_own() {
        let request = BuildRequest::parse(&args(&["scraper", "--profiling"])).unwrap();
        assert_eq!(request.workers, vec![Worker::Scraper]);
        assert_eq!(request.profile, Profile::Profiling);
        assert_eq!(request.profile.target_subdir(), "release");
    }

    /// A wasm module: the header, then `(id, body)` sections.
    fn module(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        for (id, body) in sections {
            out.push(*id);
            out.push(body.len() as u8);
            out.extend(body);
        }
        out
    }

    fn custom(name: &str) -> (u8, Vec<u8>) {
        let mut body = vec![name.len() as u8];
        body.extend(name.as_bytes());
        body.extend([1, 2, 3]);
        (0, body)
    }

    #[test]
    fn a_name_section_is_found_among_other_sections() {
        let type_section = (1, vec![0]);
        assert!(has_name_section(&module(&[
            type_section.clone(),
            custom("name")
        ])));
        assert!(!has_name_section(&module(&[
            type_section,
            custom("producers")
        ])));
    }

    #[test]
    fn a_truncated_module_has_no_names() {
        let mut bytes = module(&[custom("name")]);
        bytes.truncate(bytes.len() - 2);
        assert!(!has_name_section(&bytes));
        assert!(!has_name_section(b"not wasm"));
    }

    #[test]
    fn unknown_argument_is_rejected() {
        assert!(BuildRequest::parse(&args(&["edge"])).is_err());
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.00 MiB");
    }
}
