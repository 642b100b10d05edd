#!/usr/bin/env bash
# Opens the editor in the standalone application under Xvfb (dummy audio backend), lets the
# demo autopilot capture and learn two sources from the synthetic test signal (see
# examples/standalone.rs, NMF_SEPARATOR_DEMO=1), waits for the trainer (both dictionaries and
# the separator trained from the two captures) and saves a screenshot.
#
#   scripts/screenshot.sh [output.png] [dpi scale]     (default docs/editor.png, 1)
#   NMF_SEPARATOR_DEMO=live scripts/screenshot.sh docs/editor-live.png   (Source 2 learned live)
#
# Needs Xvfb, xrdb and ImageMagick's `import` (Debian: xvfb x11-xserver-utils imagemagick) and
# Mesa's software OpenGL.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/editor.png}"
scale="${2:-1}"
# The repository's own target/ folder unless CARGO_TARGET_DIR says otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --features standalone --example nmf-separator-standalone
bin="$CARGO_TARGET_DIR/debug/examples/nmf-separator-standalone"

display=":${SCREENSHOT_DISPLAY:-97}"
width=$(awk -v s="$scale" 'BEGIN { printf "%d", 1040 * s + 40 }')
# Twice the editor's height: the pointer starts at the middle of the screen, below the
# editor, so it hovers nothing and no tooltip shows in the screenshot.
height=$(awk -v s="$scale" 'BEGIN { printf "%d", 2 * 720 * s + 80 }')
Xvfb "$display" -screen 0 "${width}x${height}x24" -nolisten tcp -noreset &
xvfb=$!
log=$(mktemp)
cleanup() {
    [ -n "${app:-}" ] && kill "$app" 2>/dev/null || true
    kill "$xvfb" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT
sleep 1

export DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 NMF_SEPARATOR_DEMO="${NMF_SEPARATOR_DEMO:-1}"
# The standalone wrapper does not pass --dpi-scale to the editor on X11; baseview takes the
# system scale from Xft.dpi (96 = 100%), as on a HiDPI desktop.
dpi=$(awk -v s="$scale" 'BEGIN { printf "%d", 96 * s }')
echo "Xft.dpi: $dpi" | xrdb -nocpp -merge
"$bin" --backend dummy --sample-rate 48000 --period-size 512 --dpi-scale "$scale" >"$log" 2>&1 &
app=$!

# The autopilot captures 0.5-4.7 s (Source 1) and 5.3-9.7 s (Source 2) of the signal and
# prints a line once both are learned and the separator trained from them is ready; then let
# the activations scroll for a while.
for _ in $(seq 1 360); do
    if grep -q "autopilot: both captures learned" "$log"; then break; fi
    if ! kill -0 "$app" 2>/dev/null; then cat "$log"; echo "the application exited" >&2; exit 1; fi
    sleep 0.5
done
grep -q "autopilot: both captures learned" "$log" || { cat "$log"; echo "timed out" >&2; exit 1; }
sleep "${SCREENSHOT_SETTLE:-12}"
mkdir -p "$(dirname "$out")"
import -display "$display" -window root -crop "$(awk -v s="$scale" 'BEGIN { printf "%dx%d+0+0", 1040 * s, 720 * s }')" +repage "$out"
grep -iE "learned|error|warn" "$log" | head -20 || true
echo "wrote $out"
