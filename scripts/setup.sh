#!/usr/bin/env bash
# Installs everything building and testing contribot needs, and nothing twice.
#
#   - the wasm32-unknown-unknown Rust target;
#   - worker-build (pinned below), which turns a workers-rs crate into a Worker;
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock;
#   - the npm devDependencies (wrangler, miniflare, Node 22, binaryen's
#     wasm-opt, esbuild) from package-lock.json.
#
# It prints a line for each thing it installs and nothing when all is present.
# Everything comes from crates.io and the npm registry: no step downloads a
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
