#!/usr/bin/env bash
# Smoke test of the installed package: build a flavour (cpu by default), `dpkg -i` its .deb, then use only
# what it installed (/usr/bin/studio) to print versions, start the GUI offscreen, run the
# self-test, and train the demo for 3 steps + export the adapter through `studio --worker`.
# Fails on any import error, missing Qt plugin, missing data file or traceback in a log.
#
#   packaging/smoke_test.sh [--flavour cpu|gpu] [--no-build] [--keep] [--deb PATH]
#     --flavour   which build to test (default cpu). The gpu one also passes on a machine without a
#                 GPU (it trains on the CPU); its self-test must then name the CUDA build of torch and
#                 show that bitsandbytes and Liger import.
#     --no-build  use the existing dist/studio-FLAVOUR_VERSION_amd64.deb
#     --keep      leave the package installed afterwards (default: dpkg -r at the end)
# Needs root (or sudo) for dpkg. Logs go to build/smoke/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' studio/__init__.py)"
BUILD=1; KEEP=0; DEB=""; FLAVOUR=cpu
while [ $# -gt 0 ]; do
    case "$1" in
        --flavour|--flavor) FLAVOUR="$2"; shift;;
        --no-build) BUILD=0;;
        --keep) KEEP=1;;
        --deb) DEB="$2"; shift;;
        *) echo "unknown option $1" >&2; exit 2;;
    esac
    shift
done
case "$FLAVOUR" in cpu|gpu) ;; *) echo "--flavour must be cpu or gpu" >&2; exit 2;; esac
[ -n "$DEB" ] || DEB="dist/studio-${FLAVOUR}_${VERSION}_amd64.deb"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
LOGS="$ROOT/build/smoke"; rm -rf "$LOGS"; mkdir -p "$LOGS"
FAILED=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=$((FAILED + 1)); }
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
# What must never appear in a log of a healthy installed app.
BAD='Traceback \(most recent call last\)|ModuleNotFoundError|ImportError|No module named|Could not load the Qt platform plugin|could not find the Qt platform plugin|FileNotFoundError|No such file or directory'
scan() {  # scan LOGFILE WHAT: fail when the log shows a broken installation
    if grep -Eq "$BAD" "$1"; then
        fail "$2: the log shows an error:"; grep -En -B2 -A6 "$BAD" "$1" | head -40 | sed 's/^/      /'
    else
        pass "$2: log clean"
    fi
}

if [ "$BUILD" = 1 ]; then
    step "build the $FLAVOUR flavour"
    T0=$(date +%s)
    packaging/build.sh "$FLAVOUR" --no-venv 2>&1 | tee "$LOGS/build.log"
    echo "build time: $(( $(date +%s) - T0 )) s"
fi
[ -f "$DEB" ] || { echo "no package at $DEB" >&2; exit 1; }

step "install $DEB with dpkg -i"
$SUDO dpkg -r studio-cpu studio-gpu >/dev/null 2>&1 || true
if $SUDO dpkg -i "$DEB" > "$LOGS/dpkg.log" 2>&1; then
    pass "dpkg -i $(basename "$DEB")"
elif grep -q "dependency problems" "$LOGS/dpkg.log"; then
    # what `apt install ./studio.deb` does in one go: fetch the missing system libraries (X11/xcb)
    grep -E "depends on|not installed" "$LOGS/dpkg.log" | sed 's/^/      /'
    echo "      -> apt-get -f install for the missing system libraries"
    if $SUDO apt-get -f install -y -q >> "$LOGS/dpkg.log" 2>&1 && dpkg -s "$(dpkg-deb -f "$DEB" Package)" | grep -q "ok installed"; then
        pass "dpkg -i $(basename "$DEB") (+ apt-get -f install of its system dependencies)"
    else
        tail -20 "$LOGS/dpkg.log"; fail "could not install the system dependencies"; exit 1
    fi
else
    cat "$LOGS/dpkg.log"; fail "dpkg -i"; exit 1
fi
[ -x /opt/studio/studio ] && pass "/opt/studio/studio installed" || fail "/opt/studio/studio missing"
[ "$(command -v studio)" = /usr/bin/studio ] && pass "studio on the PATH (/usr/bin/studio)" || fail "studio is not on the PATH"
[ -f /usr/share/applications/studio.desktop ] && pass "menu entry /usr/share/applications/studio.desktop" \
    || fail "menu entry missing"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate /usr/share/applications/studio.desktop && pass "desktop entry valid" || fail "desktop entry invalid"
fi

# The installed app sees only a throwaway home, no display and no network.
export STUDIO_HOME; STUDIO_HOME="$(mktemp -d /tmp/studio-smoke-home.XXXXXX)"
export HOME="$STUDIO_HOME/home"; mkdir -p "$HOME"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$STUDIO_HOME/hf"
cd "$STUDIO_HOME"  # nothing of the source tree is importable from here

step "studio --version"
if studio --version > "$LOGS/version.log" 2>&1 && grep -q "^studio $VERSION" "$LOGS/version.log" \
        && grep -Eq "torch +[0-9]" "$LOGS/version.log"; then
    cat "$LOGS/version.log"; pass "studio --version"
else
    cat "$LOGS/version.log"; fail "studio --version"
fi

step "start the installed GUI offscreen"
set +e
STUDIO_STARTUP_REPORT=1 STUDIO_EXIT_AFTER_STARTUP=1 timeout 120 studio > "$LOGS/gui-start.log" 2>&1
rc=$?
set -e
if [ $rc = 0 ] && grep -q "window shown" "$LOGS/gui-start.log"; then
    pass "GUI window shown: $(grep -o 'window shown.*' "$LOGS/gui-start.log")"
else
    fail "GUI start exited with $rc:"; tail -20 "$LOGS/gui-start.log"
fi
scan "$LOGS/gui-start.log" "GUI start"
# then the full start (all pages, first-launch pre-flight in a child process) must stay up
set +e
timeout 40 studio > "$LOGS/gui.log" 2>&1
rc=$?
set -e
if [ $rc = 124 ]; then pass "GUI kept running for 40 s"; else fail "GUI exited with $rc:"; tail -20 "$LOGS/gui.log"; fi
scan "$LOGS/gui.log" "GUI"
if [ -f "$STUDIO_HOME/preflight.json" ]; then
    pass "first-launch pre-flight ran: $(tr -d '\n' < "$STUDIO_HOME/preflight.json" | cut -c1-160)"
else
    fail "first-launch pre-flight did not record a result"
fi

step "studio --self-test"
set +e
studio --self-test 2>&1 | tee "$LOGS/self-test.log"
rc=${PIPESTATUS[0]}
set -e
[ $rc = 0 ] && pass "self-test exit status 0" || fail "self-test exit status $rc"
if [ "$FLAVOUR" = gpu ]; then
    # the CUDA stack must be in the package whether or not this machine has a GPU
    if grep -Eq "^(PASS  CUDA .*CUDA [0-9]|SKIP  CUDA .*CUDA [0-9.]+ build of torch)" "$LOGS/self-test.log"; then
        pass "self-test: $(grep -E '^(PASS|SKIP)  CUDA ' "$LOGS/self-test.log" | sed 's/  */ /g' | cut -c1-150)"
    else
        fail "self-test does not show a CUDA build of torch"
    fi
    for pkg in bitsandbytes "Liger kernels"; do
        if grep -Eq "^(PASS  $pkg .*|SKIP  $pkg .* imports?[ ;])" "$LOGS/self-test.log"; then
            pass "self-test: $(grep -E "^(PASS|SKIP)  $pkg " "$LOGS/self-test.log" | sed 's/  */ /g' | cut -c1-150)"
        else
            fail "self-test: $pkg is not importable in the gpu build"
        fi
    done
    # triton's first kernel needs its C launcher built with Python.h + cuda.h from the bundle
    if grep -Eq "^(PASS  triton launcher build|SKIP  triton launcher build .*no C compiler)" "$LOGS/self-test.log"; then
        pass "self-test: $(grep -E '^(PASS|SKIP)  triton launcher' "$LOGS/self-test.log" | sed 's/  */ /g' | cut -c1-150)"
    else
        fail "self-test: triton cannot build its launcher in the gpu build"
    fi
fi

step "train the demo for 3 steps through the installed app's own --worker, then export the adapter"
RUN="$STUDIO_HOME/runs/smoke-demo"; mkdir -p "$RUN"
cat > "$RUN/config.yaml" <<'EOF'
name: smoke-demo
model: {source: demo}
data: {source: demo}
method: {name: lora}
training: {max_steps: 3, batch_size: 2, device: cpu, logging_steps: 1}
EOF
set +e
T0=$(date +%s)
studio --worker train "$RUN" > "$LOGS/worker-train.log" 2>&1
rc=$?
echo "train worker: exit $rc in $(( $(date +%s) - T0 )) s"
set -e
steps=$(grep -c '"type":"step"' "$RUN/events.jsonl" 2>/dev/null || true)
state=$(sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' "$RUN/status.json" 2>/dev/null | head -1)
if [ $rc = 0 ] && [ "$state" = completed ] && [ "${steps:-0}" -ge 3 ]; then
    pass "trained $steps steps, state $state"; grep '"type":"step"' "$RUN/events.jsonl" | cut -c1-160
else
    fail "training: exit $rc, state '${state:-?}', ${steps:-0} steps"; tail -30 "$LOGS/worker-train.log"
fi
cp "$RUN/worker.log" "$LOGS/run-worker.log" 2>/dev/null || true
scan "$LOGS/worker-train.log" "train worker stdout"
[ -f "$LOGS/run-worker.log" ] && scan "$LOGS/run-worker.log" "train worker.log"

set +e
studio --worker export "$RUN" --kind adapter --out "$STUDIO_HOME/export" > "$LOGS/worker-export.log" 2>&1
rc=$?
set -e
if [ $rc = 0 ] && [ -f "$STUDIO_HOME/export/adapter_config.json" ] && ls "$STUDIO_HOME"/export/adapter_model.* >/dev/null 2>&1; then
    pass "adapter exported:"; ls -la "$STUDIO_HOME/export" | sed 's/^/      /'
else
    fail "export: exit $rc"; tail -30 "$LOGS/worker-export.log"; ls -la "$STUDIO_HOME/export" 2>/dev/null
fi
scan "$LOGS/worker-export.log" "export worker"
private=$(find "$STUDIO_HOME/export" -type f ! -perm -044 2>/dev/null | head -3)
if [ -d "$STUDIO_HOME/export" ] && [ -z "$private" ]; then
    pass "exported files readable by others (umask $(umask))"
else
    fail "exported files not readable by others: $private"
fi

cd "$ROOT"
if [ "$KEEP" = 0 ]; then
    $SUDO dpkg -P "$(dpkg-deb -f "$DEB" Package)" > "$LOGS/dpkg-remove.log" 2>&1 && pass "dpkg -P (removed)" || fail "dpkg -P"
fi
rm -rf "$STUDIO_HOME"
step "smoke test: $([ $FAILED = 0 ] && echo 'all passed' || echo "$FAILED FAILED")  (logs in build/smoke/)"
[ $FAILED = 0 ]
