//! `cargo xtask build`: compile the workers with worker-build, offline.
//!
//! worker-build writes `apps/<name>/build/index.js` and `index_bg.wasm`, plus
//! `build/worker/shim.mjs` (the `main` of `wrangler-<name>.toml`), which
//! re-exports `index.js`. When the wasm that cargo produces has not changed
//! since the last successful build of the same profile, the
//! bindgen/wasm-opt/esbuild passes are skipped.

use crate::toolchain::{self, cargo, describe, run, worker_build_env};
use crate::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
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
    Dev,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "dev",
        }
    }

    /// Cargo's output directory name for this profile.
    fn target_subdir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        }
    }
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
                "all" => workers = Some(Worker::ALL.to_vec()),
                "scraper" => workers = Some(vec![Worker::Scraper]),
                "processor" => workers = Some(vec![Worker::Processor]),
                other => {
                    return Err(Error(format!(
                    "build: unknown argument `{other}` (expected scraper, processor, all or --dev)"
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
        build_worker(worker, request.profile)?;
    }
    Ok(())
}

fn build_worker(worker: Worker, profile: Profile) -> Result<()> {
    let started = Instant::now();
    let env = worker_build_env()?;

    // Same cargo invocation as worker-build's own (it sets
    // WASM_BINDGEN_USE_JS_SYS too), so the second one is a no-op.
    let mut compile = cargo();
    compile
        .current_dir(worker.dir())
        .args(["build", "--lib", "--target", "wasm32-unknown-unknown"])
        .env("WASM_BINDGEN_USE_JS_SYS", "1");
    if profile == Profile::Release {
        compile.arg("--release");
    }
    println!("xtask: compiling {} ({})", worker.package(), profile.name());
    run(&mut compile)?;

    let stamp_path = worker.build_dir().join(".xtask-stamp");
    let stamp = input_stamp(worker, profile);
    let up_to_date = stamp.is_some()
        && worker.build_dir().join("worker/shim.mjs").is_file()
        && fs::read_to_string(&stamp_path).ok() == stamp;
    if up_to_date {
        println!("xtask: {} is up to date", worker.name());
    } else {
        let mut bundle = Command::new(toolchain::worker_build()?);
        bundle.current_dir(worker.dir()).envs(env);
        bundle.arg(match profile {
            Profile::Release => "--release",
            Profile::Dev => "--dev",
        });
        println!("xtask: running {}", describe(&bundle));
        run(&mut bundle)?;
        if let Some(stamp) = input_stamp(worker, profile) {
            fs::write(&stamp_path, stamp)
                .map_err(|e| Error(format!("cannot write {}: {e}", stamp_path.display())))?;
        }
    }
    report_size(worker)?;
    println!(
        "xtask: built {} in {:.1}s",
        worker.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Identifies the inputs of worker-build's post-processing: the profile and
/// the size and modification time of the wasm cargo produced. `None` when
/// that wasm cannot be found (for example a renamed `[lib]`); the build then
/// always runs.
fn input_stamp(worker: Worker, profile: Profile) -> Option<String> {
    let wasm = toolchain::target_dir()
        .join("wasm32-unknown-unknown")
        .join(profile.target_subdir())
        .join(format!("{}.wasm", worker.package().replace('-', "_")));
    let meta = fs::metadata(wasm).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "profile={}\nwasm_len={}\nwasm_mtime_ns={}\n",
        profile.name(),
        meta.len(),
        modified.as_nanos()
    ))
}

/// Prints the size of each `.wasm` in `build/` (worker-build 0.8 writes
/// `index_bg.wasm` there, beside `index.js`), raw and gzipped. Cloudflare's
/// Worker size limits (3 MiB free, 10 MiB paid) apply to the compressed
/// upload.
fn report_size(worker: Worker) -> Result<()> {
    let dir = worker.build_dir();
    let entries =
        fs::read_dir(&dir).map_err(|e| Error(format!("cannot read {}: {e}", dir.display())))?;
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
            "xtask: {} {}: {} raw, {} gzip",
            worker.name(),
            path.file_name().unwrap_or_default().to_string_lossy(),
            human_size(bytes.len() as u64),
            human_size(gzipped),
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
