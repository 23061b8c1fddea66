#!/usr/bin/env bash
# Smoke-test a built bundle: --version, demo (synth where demo is absent), the GUI starting offscreen.
#   packaging/smoke_test.sh [BUNDLE_DIR]     (default packaging/dist/xscreen)
# Exits non-zero on the first failure.
set -uo pipefail
BUNDLE=${1:-$(dirname "$0")/dist/xscreen}
EXE="$BUNDLE/xscreen"
TMP=$(mktemp -d)
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} XSCREEN_HOME="$TMP/home"
fail() { echo "SMOKE FAIL: $*"; exit 1; }
secs() { echo $(( $(date +%s) - $1 )); }

t=$(date +%s)
version=$("$EXE" --version) || fail "--version exited non-zero"
[[ $version == "xscreen "* ]] || fail "--version printed '$version'"
echo "ok   --version -> '$version' ($(secs "$t") s, cold start)"

t=$(date +%s)
"$EXE" synth "$TMP/synth" --benign 1 --threat 1 --seed 3 > "$TMP/synth.log" 2>&1 \
    || { tail -20 "$TMP/synth.log"; fail "synth"; }
n=$(find "$TMP/synth" -name '*.h5' | wc -l)
[ "$n" -eq 2 ] || fail "synth wrote $n scans, expected 2"
echo "ok   synth: 2 bags written ($(secs "$t") s)"

if "$EXE" --help | grep -qE '^ +demo +'; then
    t=$(date +%s)
    "$EXE" demo --out "$TMP/demo" > "$TMP/demo.log" 2>&1 || { tail -20 "$TMP/demo.log"; fail "demo"; }
    [ -s "$TMP/demo/summary.csv" ] || fail "demo wrote no summary.csv"
    echo "ok   demo: $(($(wc -l < "$TMP/demo/summary.csv") - 1)) scans screened, reports in $TMP/demo ($(secs "$t") s)"
    sed -n '1,40p' "$TMP/demo.log" | sed 's/^/     /'
else
    echo "skip demo: this build has no 'demo' command"
fi

t=$(date +%s)
"$EXE" gui "$TMP/synth/benign" > "$TMP/gui.log" 2>&1 &
pid=$!
sleep 20
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; wait "$pid" 2>/dev/null
    grep -q Traceback "$TMP/gui.log" && { cat "$TMP/gui.log"; fail "GUI printed a traceback"; }
    echo "ok   GUI (QT_QPA_PLATFORM=$QT_QPA_PLATFORM) still running after 20 s, no traceback"
else
    wait "$pid"; rc=$?
    tail -20 "$TMP/gui.log"; fail "GUI exited early with code $rc"
fi
echo "SMOKE OK"
