#!/usr/bin/env bash
# `vae-cpu serve` in a real browser: starts the server on a free port, loads the page in
# headless Chromium (Selenium), moves an attribute slider and checks that the edited face
# changes with no JavaScript error, picks a face, scrubs the interpolation, reports the
# latency from slider input to the new image, fires bursts of decode requests (the server
# must not crash or grow), then stops it with Ctrl-C (SIGINT) and checks it exits cleanly.
#
# usage: scripts/serve-browser-check.sh CHECKPOINT DATA [SCREENSHOT.png]
#
# Needs chromium, chromium-driver and python3-selenium (Debian: apt-get install chromium
# chromium-driver python3-selenium); .ci/run installs them.
set -euo pipefail

checkpoint=${1:?usage: scripts/serve-browser-check.sh CHECKPOINT DATA [SCREENSHOT.png]}
data=${2:?usage: scripts/serve-browser-check.sh CHECKPOINT DATA [SCREENSHOT.png]}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=${VAE_CPU:-$root/target/release/vae-cpu}
python=/usr/bin/python3
for need in chromium chromedriver; do
    command -v "$need" > /dev/null || { echo "no $need: apt-get install chromium chromium-driver" >&2; exit 2; }
done
"$python" -c "import selenium" 2> /dev/null || { echo "no selenium: apt-get install python3-selenium" >&2; exit 2; }

log="$(mktemp)"
"$bin" serve --checkpoint "$checkpoint" --data "$data" --port 0 --quiet --threads 2 > "$log" &
pid=$!
trap 'kill -9 $pid 2> /dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 120); do
    url="$(grep -o 'http://[^ ]*/' "$log" || true)"
    [ -n "$url" ] && break
    kill -0 $pid 2> /dev/null || { echo "serve exited early:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.5
done
[ -n "$url" ] || { echo "serve did not print its address within 60 s" >&2; exit 1; }
echo "== serve at $url"
"$python" "$root/scripts/serve_browser_check.py" "$url" "$pid" ${3:+"$3"}

kill -INT $pid
for _ in $(seq 1 50); do
    kill -0 $pid 2> /dev/null || break
    sleep 0.2
done
if kill -0 $pid 2> /dev/null; then
    echo "serve did not stop within 10 s of Ctrl-C" >&2
    exit 1
fi
wait $pid || { echo "serve exited with status $? after Ctrl-C" >&2; exit 1; }
grep -q "^stopped" "$log" || { echo "serve did not say it stopped" >&2; exit 1; }
echo "== serve stopped cleanly on Ctrl-C"
