#!/usr/bin/env bash
# Prometheus and promtool for the ops tests, from Debian's package, unpacked into .cache/
# (nothing is installed system-wide). Idempotent: a second run only checks what is there.
# Prints the directory holding the binaries.
set -euo pipefail

VERSION="2.42.0+ds-5+deb12u1"
SHA256="81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55"  # amd64
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="$ROOT/.cache/prometheus/$VERSION"
BIN="$DEST/usr/bin"

if [[ -x "$BIN/promtool" && -x "$BIN/prometheus" ]]; then
  echo "$BIN"
  exit 0
fi
arch="$(dpkg --print-architecture)"
if [[ "$arch" != "amd64" ]]; then
  echo "tools: only the amd64 package's checksum is pinned (this is $arch)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download -q "prometheus=$VERSION" >&2 2>"$work/apt.log"; then
  # A fresh machine may not have the package lists yet.
  apt-get update -qq >&2
  apt-get download -q "prometheus=$VERSION" >&2
fi
deb="$(ls prometheus_*.deb)"
echo "$SHA256  $deb" | sha256sum --check --quiet
mkdir -p "$DEST.partial"
dpkg-deb -x "$deb" "$DEST.partial"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
"$BIN/promtool" --version >&2
echo "$BIN"
