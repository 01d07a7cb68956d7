#!/usr/bin/env bash
# Screenshot every HTML report of a dataset with headless Chromium, to check by eye that each figure
# survived the export. Needs Debian's `chromium` (apt-get install chromium).
#   tools/screenshot_reports.sh [reports/synth] [out_dir]
set -euo pipefail
dir=${1:-reports/synth}
out=${2:-build/screenshots}
mkdir -p "$out"
for html in "$dir"/*.html; do
  name=$(basename "$html" .html)
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
    --window-size=1400,2600 --virtual-time-budget=15000 --screenshot="$out/$name.png" "file://$(realpath "$html")" \
    >/dev/null 2>&1
  rm -rf "$profile"
  echo "$out/$name.png"
done
