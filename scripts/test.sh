#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the build needs, then runs
# formatting, clippy (warnings are errors) and every test. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # gcc and pkg-config for crates that build C (ring via rustls); ca-certificates for crates.io;
    # the node agent's tests drive iproute2, iptables (legacy and nft), nftables, ipset and the
    # reference CNI plugins inside throwaway network namespaces.
    # The lab (crates/lab) runs containerd and runc, and builds images from busybox-static,
    # iptables, conntrack, ipset and netbase's /etc/protocols; util-linux gives unshare/nsenter,
    # procps kill (apply's Ctrl-C test). Cilium's image carries clang-19 (its agent compiles the
    # datapath at run time; Debian's default clang is too old) and bash (the chart's scripts);
    # bpftool lets the lab tests check that nothing was attached to the host's cgroup2 root;
    # skopeo and docker-registry read and carry the image `cniswap image build` writes and
    # `cniswap image push` sends; apache2-utils' htpasswd makes the registry's password file for
    # the push with credentials (crates/cli/tests/image.rs).
    apt-get install -y -qq --no-install-recommends build-essential pkg-config ca-certificates \
        iproute2 iptables nftables ipset containernetworking-plugins \
        containerd runc busybox-static conntrack netbase util-linux procps \
        clang-19 bash bpftool skopeo docker-registry apache2-utils >/dev/null
fi
# The lab builds Kubernetes, etcd, CoreDNS, Flannel, kwok, Cilium, Calico and helm from pinned
# Go modules.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
fi
if ! command -v go >/dev/null 2>&1; then
    echo "error: go not found; install Go 1.26 from go.dev; the lab builds Kubernetes from Go modules" >&2
    exit 2
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
