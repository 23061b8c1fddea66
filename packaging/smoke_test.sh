#!/usr/bin/env bash
# Smoke-test a built bundle, running only the frozen binary (no Python from outside):
#   --version; synth (3 small bags); demo with the shipped default model; the GUI starting offscreen.
# Where no model is shipped yet, it trains a throwaway tiny model inside the bundle (1 epoch,
# 32 px patches, ngf 8) and runs demo with it on the synthetic bags - that exercises the same
# code (training, model file, screening, reports) but says so in its output.
#   packaging/smoke_test.sh [BUNDLE_DIR]     (default packaging/dist/xscreen)
# Exit status: the number of failed checks (0 = all passed).
set -uo pipefail
BUNDLE=${1:-$(dirname "$0")/dist/xscreen}
EXE="$BUNDLE/xscreen"
TMP=$(mktemp -d)
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} XSCREEN_HOME="$TMP/home"
FAILED=0
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
secs() { echo $(( $(date +%s) - $1 )); }
run() {  # run NAME CMD... : log to $TMP/NAME.log, show its tail on failure
    local name=$1; shift
    "$@" > "$TMP/$name.log" 2>&1 || { tail -15 "$TMP/$name.log" | sed 's/^/     /'; return 1; }
}

t=$(date +%s)
version=$("$EXE" --version 2>&1)
if [[ $version == "xscreen "* ]]; then echo "ok   --version -> '$version' ($(secs "$t") s, cold start)"
else fail "--version printed '$version'"; fi

t=$(date +%s)
if run synth "$EXE" synth "$TMP/synth" --benign 2 --threat 1 --seed 3 --width 500; then
    n=$(find "$TMP/synth" -name '*.h5' | wc -l)
    [ "$n" -eq 3 ] && echo "ok   synth: $n bags written ($(secs "$t") s)" || fail "synth wrote $n scans, expected 3"
else fail "synth"; fi

if ! "$EXE" --help | grep -qE '^ +demo +'; then
    echo "skip demo: this build has no 'demo' command"
else
    demo_args=(demo --out "$TMP/demo")
    if ! ls "$BUNDLE"/_internal/models/*.xsm > /dev/null 2>&1; then
        echo "note no model shipped in this bundle: training a throwaway tiny model inside it for demo"
        t=$(date +%s)
        if run train "$EXE" train "$TMP/synth/benign" --size 32 --ngf 8 --epochs 1 --batch-size 64 \
                --num-workers 0 -q -o "$TMP/tiny.xsm" && [ -s "$TMP/tiny.xsm" ]; then
            echo "ok   train (tiny, 1 epoch): $(du -h "$TMP/tiny.xsm" | cut -f1) model file ($(secs "$t") s)"
        else fail "train"; fi
        demo_args+=(--model "$TMP/tiny.xsm" --samples "$TMP/synth/threat")
    fi
    t=$(date +%s)
    if run demo "$EXE" "${demo_args[@]}" && [ -s "$TMP/demo/summary.csv" ]; then
        n=$(find "$TMP/demo" -name report.html | wc -l)
        echo "ok   demo: $n scans screened, $(find "$TMP/demo" -type f | wc -l) report files ($(secs "$t") s)"
        grep -v -E '^\s*$' "$TMP/demo.log" | grep -v '%|' | sed 's/^/     /' | head -20
    else fail "demo"; fi
fi

"$EXE" gui "$TMP/synth/benign" > "$TMP/gui.log" 2>&1 &
pid=$!
sleep 20
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; wait "$pid" 2>/dev/null
    if grep -q Traceback "$TMP/gui.log"; then sed 's/^/     /' "$TMP/gui.log" | tail -20; fail "GUI printed a traceback"
    else echo "ok   GUI (QT_QPA_PLATFORM=$QT_QPA_PLATFORM) still running after 20 s, no traceback"; fi
else
    wait "$pid"; rc=$?
    sed 's/^/     /' "$TMP/gui.log" | tail -20; fail "GUI exited early with code $rc"
fi

[ "$FAILED" -eq 0 ] && echo "SMOKE OK (work files in $TMP)" || echo "SMOKE: $FAILED check(s) failed (logs in $TMP)"
exit "$FAILED"
