#!/usr/bin/env bash
# Builds cniswap and installs it into a bin directory together with its kubectl plugin name:
# `kubectl-cniswap` is a symbolic link to `cniswap` (one binary; it reads argv[0]), so
# `kubectl cniswap ...` works and `kubectl plugin list` finds exactly one plugin file;
# `kubectl_complete-cniswap`, another link, completes `kubectl cniswap <Tab>`.
#
#   scripts/install.sh                      # ~/.local/bin (/usr/local/bin as root), release profile
#   scripts/install.sh --prefix DIR         # into DIR
#   scripts/install.sh --profile dist       # the smaller, slower-to-build published profile
#   scripts/install.sh --binary FILE        # install a cniswap that is already built
#
# Exit codes: 0 installed, 2 bad arguments or the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

if [ "$(id -u)" = 0 ]; then prefix=/usr/local/bin; else prefix="$HOME/.local/bin"; fi
profile=release
binary=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "error: unknown argument $1" >&2; usage ;;
    esac
done
case "$profile" in release|dist) ;; *) echo "error: --profile is release or dist" >&2; exit 2 ;; esac

if [ -z "$binary" ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust with rustup (https://rustup.rs), or pass --binary FILE" >&2
        exit 2
    fi
    cargo build --locked --profile "$profile" -p cniswap
    binary="${CARGO_TARGET_DIR:-target}/$profile/cniswap"
fi
if [ ! -x "$binary" ]; then
    echo "error: $binary is not an executable file" >&2
    exit 2
fi

mkdir -p "$prefix"
# Copy beside the target, then rename: a running cniswap is never overwritten in place.
tmp="$prefix/.cniswap.install.$$"
install -m 0755 "$binary" "$tmp"
mv -f "$tmp" "$prefix/cniswap"
# A link named for kubectl, relative so the directory can move. A plugin file of an older
# install (a copy, not a link) is replaced too.
ln -sfn cniswap "$prefix/kubectl-cniswap"
# kubectl 1.26+ runs kubectl_complete-<plugin> to complete `kubectl cniswap <Tab>` (the same
# binary again; not a plugin file: `kubectl plugin list` looks for kubectl-* only).
ln -sfn cniswap "$prefix/kubectl_complete-cniswap"

echo "installed $prefix/cniswap, and $prefix/kubectl-cniswap and kubectl_complete-cniswap -> cniswap"
case ":$PATH:" in
    *":$prefix:"*) ;;
    *) echo "note: $prefix is not on PATH; add it: export PATH=\"$prefix:\$PATH\"" ;;
esac
