#!/usr/bin/env bash
# Packs a release of cniswap for one platform and writes its krew plugin manifest:
#
#   scripts/release.sh --url-base https://HOST/PATH [--binary FILE] [--out-dir dist]
#
# Builds the `dist` profile (LTO, stripped) unless --binary names a built cniswap, then writes
#   OUT/cniswap-vVERSION-linux-ARCH.tar.gz   the binary alone (reproducible: sorted, mtime 0)
#   OUT/cniswap.yaml                          krew manifest: `kubectl krew install
#                                             --manifest=OUT/cniswap.yaml` (add --archive=FILE
#                                             to install from the local file)
# URL-BASE is where the archive will be downloadable (e.g. a release's download directory);
# krew links `kubectl-cniswap` to the binary, which reads argv[0] and answers as the plugin.
# Exit codes: 0 written, 2 bad arguments or the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
url_base=
binary=
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --url-base) [ $# -ge 2 ] || usage; url_base=${2%/}; shift 2 ;;
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
        --out-dir) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "error: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$url_base" ] || { echo "error: --url-base is required (where the archive will be served)" >&2; exit 2; }

if [ -z "$binary" ]; then
    cargo build --locked --profile dist -p cniswap
    binary="${CARGO_TARGET_DIR:-target}/dist/cniswap"
fi
[ -x "$binary" ] || { echo "error: $binary is not an executable file" >&2; exit 2; }

version=$("$binary" --version | awk '{print $2}')
case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "error: no krew platform name for $(uname -m)" >&2; exit 2 ;;
esac
name="cniswap-v$version-linux-$arch.tar.gz"
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$binary" "$stage/cniswap"
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - cniswap \
    | gzip -n -9 > "$out/$name.tmp"
mv -f "$out/$name.tmp" "$out/$name"
sha=$(sha256sum "$out/$name" | awk '{print $1}')

cat > "$out/cniswap.yaml.tmp" <<MANIFEST
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: cniswap
spec:
  version: v$version
  shortDescription: Change the CNI of a running cluster safely
  description: |
    cniswap inspects a cluster's networking, plans a migration between Flannel, Calico and
    Cilium (Canal and Weave as sources) node by node, applies it with a journal it can resume
    and roll back, and verifies pod, Service and DNS connectivity. Talos and Omni are
    first-class platforms.
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: $arch
    uri: $url_base/$name
    sha256: $sha
    files:
    - from: cniswap
      to: .
    bin: cniswap
MANIFEST
mv -f "$out/cniswap.yaml.tmp" "$out/cniswap.yaml"
echo "wrote $out/$name (sha256 $sha) and $out/cniswap.yaml"
