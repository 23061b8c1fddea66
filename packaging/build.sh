#!/usr/bin/env bash
# Build the one-folder CPU bundle of xscreen in a fresh venv, then smoke-test it.
#
#   packaging/build.sh
#
# Environment (all optional):
#   VENV=DIR        build venv (default packaging/.venv; recreated unless REUSE_VENV=1)
#   DIST=DIR        where the bundle goes (default packaging/dist -> packaging/dist/xscreen/)
#   WORK=DIR        PyInstaller's work folder (default packaging/build)
#   PYTHON=python3  interpreter for the venv
#   SKIP_SMOKE=1    build only
# Not part of CI: it takes minutes and ~2.5 GB of disk. packaging/README.md has measured numbers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/packaging/.venv}
DIST=${DIST:-$ROOT/packaging/dist}
WORK=${WORK:-$ROOT/packaging/build}
PYTHON=${PYTHON:-python3}
t0=$(date +%s)

if [ "${REUSE_VENV:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
# CPU torch first: a bare requirement could otherwise resolve to a multi-GB CUDA build.
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q "$ROOT" pyinstaller
t1=$(date +%s)
echo "== venv ready in $((t1 - t0)) s ($("$VENV/bin/pyinstaller" --version 2>/dev/null || echo '?'))"

cd "$ROOT"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/xscreen.spec
t2=$(date +%s)
BUNDLE="$DIST/xscreen"
SIZE=$(du -sh "$BUNDLE" | cut -f1)
FILES=$(find "$BUNDLE" -type f | wc -l)
{
    echo "xscreen bundle built $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(nproc) cores"
    echo "venv + install: $((t1 - t0)) s; pyinstaller: $((t2 - t1)) s"
    echo "bundle: $SIZE in $FILES files ($BUNDLE)"
} | tee "$DIST/BUILD_INFO.txt"

if [ "${SKIP_SMOKE:-0}" != 1 ]; then
    "$ROOT/packaging/smoke_test.sh" "$BUNDLE" | tee -a "$DIST/BUILD_INFO.txt"
fi
