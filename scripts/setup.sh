#!/usr/bin/env bash
# Installs everything building and testing contribot needs, and nothing twice.
#
#   - the wasm32-unknown-unknown Rust target;
#   - worker-build (pinned below), which turns a workers-rs crate into a Worker;
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock;
#   - the npm devDependencies (wrangler, miniflare, Node 22, binaryen's
#     wasm-opt, esbuild, playwright-core) from package-lock.json;
#   - for the end-to-end suite: Debian's chromium (apt-get) and schemathesis
#     in a venv at target/e2e-venv, pinned in tests/e2e/requirements.txt;
#   - for the CPU bench's isolate clock: Debian's linux-perf and binutils.
#
# It prints a line for each thing it installs and nothing when all is present.
# Everything comes from crates.io, the npm registry, PyPI and Debian: no step downloads a
# prebuilt binary from anywhere else (see docs/TOOLING.md).
set -euo pipefail

WORKER_BUILD_VERSION=0.8.7

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Prints the version a tool reports ("name 1.2.3" or "1.2.3" -> "1.2.3"), or nothing.
installed_version() {
    local bin="$1"
    [[ -x "$bin" ]] || return 0
    "$bin" --version 2>/dev/null | awk 'NR == 1 { print $NF }'
}

# Prints every version of package $1 recorded in Cargo.lock, one per line.
locked_versions() {
    awk -v want="$1" '
        /^\[\[package\]\]/ { name = "" }
        /^name = /         { name = $3; gsub(/"/, "", name) }
        /^version = /      { if (name == want) { v = $3; gsub(/"/, "", v); print v } }
    ' Cargo.lock | sort -u
}

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
command -v rustup >/dev/null || die "rustup not found: the wasm target is added with rustup"
command -v npm >/dev/null || die "npm not found: install Node.js and npm (apt-get install nodejs npm)"

# 1. The wasm target, for the toolchain that builds this repo.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding Rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# 2. worker-build.
if [[ "$(installed_version "$cargo_bin/worker-build")" != "$WORKER_BUILD_VERSION" ]]; then
    say "installing worker-build $WORKER_BUILD_VERSION (cargo install, a few minutes)"
    cargo install --quiet worker-build --version "=$WORKER_BUILD_VERSION"
fi

# 3. wasm-bindgen-cli, matching the library version the workers link against.
#    worker-build would otherwise download its own from GitHub.
if [[ ! -f Cargo.lock ]]; then
    say "creating Cargo.lock"
    cargo generate-lockfile --quiet
fi
bindgen_version="$(locked_versions wasm-bindgen)"
[[ -n "$bindgen_version" ]] || die "Cargo.lock has no wasm-bindgen package"
[[ "$bindgen_version" != *$'\n'* ]] ||
    die "Cargo.lock has several wasm-bindgen versions: $(echo $bindgen_version)"
if [[ "$(installed_version "$cargo_bin/wasm-bindgen")" != "$bindgen_version" ]]; then
    say "installing wasm-bindgen-cli $bindgen_version (cargo install, a few minutes)"
    # No --locked: the crate's published lockfile does not build on current Rust.
    cargo install --quiet wasm-bindgen-cli --version "=$bindgen_version"
fi

# 4. npm devDependencies, reinstalled whenever package-lock.json changes.
stamp=node_modules/.contribot-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -x node_modules/.bin/node ]]; then
    say "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi

# 5. The e2e suite's browser and fuzzer: Debian's chromium (the page test
#    drives it with playwright-core, an npm devDependency above) and
#    schemathesis from PyPI, pinned in tests/e2e/requirements.txt, in a venv
#    under target/.
# Runs a command quietly; shows its output only when it fails.
quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

# Installs Debian packages "$@" (apt-get, as root or through sudo).
apt_install() {
    local sudo_cmd=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "$* missing and installing needs root (apt-get install $*)"
        sudo_cmd=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" ||
        { quietly "${sudo_cmd[@]}" apt-get update && quietly "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@"; } ||
        die "apt-get install $* failed"
}

if [[ ! -x /usr/bin/chromium ]]; then
    say "installing chromium (apt-get, for the page's end-to-end test)"
    apt_install chromium
fi

# perf and binutils, for the CPU bench's isolate clock (bench/isolate-clock.mjs).
if ! command -v perf >/dev/null || ! command -v nm >/dev/null || ! command -v readelf >/dev/null; then
    say "installing linux-perf and binutils (apt-get, for the CPU bench's isolate clock)"
    apt_install linux-perf binutils
fi

venv=target/e2e-venv
venv_stamp="$venv/.contribot-requirements.sha256"
want_requirements="$(sha256sum tests/e2e/requirements.txt | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/schemathesis" || ! -f "$venv_stamp" || "$(cat "$venv_stamp")" != "$want_requirements" ]]; then
    say "installing schemathesis into $venv (pip, from tests/e2e/requirements.txt)"
    command -v python3 >/dev/null || die "python3 not found: install Python 3.11 (apt-get install python3 python3-venv)"
    rm -rf "$venv"
    quietly python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    quietly "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-compile -r tests/e2e/requirements.txt ||
        die "pip install -r tests/e2e/requirements.txt failed"
    echo "$want_requirements" >"$venv_stamp"
fi
