#!/usr/bin/env bash
# The main job, end to end on the embedded engine, with scar commands only: installs what is missing,
# gets an ImageMagick image, deploys SCAR's ImageMagick example (examples/imagemagick), uploads
# generated images (each one is converted to grayscale), waits, downloads the results, checks them,
# prints the time of every job, and runs the same conversions again with a fresh container per
# image (isolation: invocation) to print the speed-up of warm execution environments.
#
#   bash scripts/demo.sh [number of images, default 30]      (npm run demo)
#
# Everything (scar.cfg, the engine's data, the images) lives in a temporary folder that is removed
# at the end (KEEP=1 keeps it); the engine is stopped at the end, also on failure.
# SCAR_DEMO_CACHE=DIR keeps the built ImageMagick root file system there for the next runs;
# SCAR_DEMO_ROOTFS=DIR imports DIR as the image instead (the tests' quick run, with a stand-in);
# WAIT_SECONDS (default 300) bounds the wait for the results.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-30}"
W=256 H=192 # size of the generated images
DEMO_START=$(date +%s%N)
step() { printf '\n== %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The first 2 lines, "... (k more)", and the last one.
shorten() { awk 'NR <= 2 { print; next } { last = $0; k++ } END { if (k > 1) print "... (" k - 1 " more)"; if (k) print last }'; }

step "Installing what is missing"
bash scripts/install-deps.sh
[ -f dist/src/cli/main.js ] || npm install --no-audit --no-fund
SCAR="$PWD/bin/scar"
scar() { "$SCAR" "$@"; }
echo "$(scar --version), node $(node --version)"

WORK="$(mktemp -d /tmp/scar-demo.XXXXXX)"
cleanup() {
  status=$?
  scar engine stop >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
# A scar.cfg of its own: the engine keeps its data in $WORK/data and listens on free ports.
export SCAR_CONFIG_FOLDER="$WORK/config"
unset SCAR_TARGET SCAR_DATA_DIR
mkdir -p "$SCAR_CONFIG_FOLDER"
cat >"$SCAR_CONFIG_FOLDER/scar.cfg" <<EOF
{"scar": {"config_version": "2.0.0", "target": "local"},
 "local": {"data_dir": "$WORK/data", "host": "127.0.0.1", "port": 0, "s3_port": 0}}
EOF

step "The image: grycap/imagemagick"
if [ -n "${SCAR_DEMO_ROOTFS:-}" ]; then
  # the tests' quick run: a small root file system of their own with a stand-in for convert
  echo "using the root file system in $SCAR_DEMO_ROOTFS as grycap/imagemagick (SCAR_DEMO_ROOTFS)"
  scar image import "$SCAR_DEMO_ROOTFS" --tag grycap/imagemagick:latest --change 'ENV PATH=/usr/bin:/bin' \
    --data-dir "$WORK/data"
else
  bash scripts/imagemagick-image.sh "$WORK/data"
fi

step "The function: scar init -f examples/imagemagick/grayify.yaml"
cat examples/imagemagick/grayify-image.sh
scar init -f examples/imagemagick/grayify.yaml

# The engine runs now (scar init started it): its web dashboard shows the jobs below as they run.
DASHBOARD="$(scar engine status --json | jq -r .dashboard)"
echo "the dashboard, while the demo runs: $DASHBOARD (user and password: $WORK/data/credentials)"

step "$FILES images (${W}x${H} PPM) to convert"
mkdir -p "$WORK/images"
awk -v n="$FILES" -v dir="$WORK/images" -v w="$W" -v h="$H" 'BEGIN {
  for (i = 1; i <= n; i++) {
    f = sprintf("%s/img-%02d.ppm", dir, i)
    printf "P3\n%d %d\n255\n", w, h > f
    for (y = 0; y < h; y++)
      for (x = 0; x < w; x++)
        printf "%d %d %d\n", int(x * 255 / w + i * 37) % 256, int(y * 255 / h + i * 71) % 256, (x * y + i * 13) % 256 > f
    close(f)
  }
}'
ls "$WORK/images" | head -3
echo "... ($(ls "$WORK/images" | wc -l) files, $(du -sh "$WORK/images" | cut -f1))"

step "Upload: scar put -b scar-demo/input -p images (each file runs 'grayify' once)"
UPLOAD_START=$(now_ms)
scar put -b scar-demo/input -p "$WORK/images" | shorten

step "Waiting for the results: scar ls -b scar-demo/output"
count_results() { # BUCKET/FOLDER
  scar ls -b "$1" --json | jq '[.Objects[] | select(.key | endswith("/") | not)] | length'
}
wait_results() { # FUNCTION BUCKET/FOLDER
  local deadline=$(($(date +%s) + ${WAIT_SECONDS:-300})) n=0
  while :; do
    n=$(count_results "$2")
    [ "$n" -ge "$FILES" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "FAILED: only $n of $FILES results in $2 after ${WAIT_SECONDS:-300} s. The jobs:" >&2
      scar jobs ls -n "$1" --limit $((FILES * 2)) >&2 || true
      echo "The engine's log (scar engine logs):" >&2
      scar engine logs --lines 40 >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "$n of $FILES results in $2"
}
wait_results grayify scar-demo/output

step "Download: scar get -b scar-demo/output -p results"
scar get -b scar-demo/output -p "$WORK/results" | shorten
# Every result must be a ${W}x${H} PPM (P6) whose pixels all have R = G = B.
gray=0
shopt -s nullglob
for f in "$WORK"/results/output/*.ppm; do
  [ "$(head -c 2 "$f")" = P6 ] || continue
  tail -c $((W * H * 3)) "$f" | od -An -v -tu1 -w3 |
    awk '$1 != $2 || $2 != $3 { bad = 1; exit } END { exit bad }' && gray=$((gray + 1))
done
echo "$gray of $FILES results are grayscale images (every pixel has R = G = B)"
[ "$gray" -eq "$FILES" ] || { echo "FAILED: $((FILES - gray)) results are missing or not grayscale" >&2; exit 1; }

step "The jobs: scar jobs ls -n grayify --json (times in ms)"
scar jobs ls -n grayify --limit $((FILES * 2)) --json >"$WORK/jobs.json"
jq -r --argjson t0 "$UPLOAD_START" '
  def pct(p): sort | .[((length - 1) * p | floor)];
  [.jobs[] | select(.trigger.key != null) | {
    file: (.trigger.key | split("/") | last), status,
    waited: (.startedAt - .stages.queued),
    container: (.stages.script_end - .stages.container_start),
    total: (.stages.done - .stages.queued),
    done: .stages.done }] | sort_by(.file) as $j
  | (["FILE", "STATUS", "WAITED", "CONTAINER", "QUEUED->DONE"] | @tsv),
    ($j[] | [.file, .status, .waited, .container, .total] | @tsv),
    "",
    "files: \($j | length), \([$j[] | select(.status == "succeeded")] | length) succeeded",
    "wall time, from scar put to the last result: \(((($j | map(.done) | max) - $t0) / 100 | round) / 10) s",
    "throughput: \((($j | length) * 100000 / (($j | map(.done) | max) - $t0) | round) / 100) files/s",
    "per file, queued->done: p50 \($j | map(.total) | pct(0.5)) ms, p90 \($j | map(.total) | pct(0.9)) ms, max \($j | map(.total) | max) ms",
    "per file, in the container: p50 \($j | map(.container) | pct(0.5)) ms, max \($j | map(.container) | max) ms"
' "$WORK/jobs.json" | awk -F'\t' 'NF > 1 { printf "%-12s %-10s %7s %10s %13s\n", $1, $2, $3, $4, $5; next } 1'

step "The same $FILES conversions with a fresh container per image (isolation: invocation)"
# grayify runs in warm execution environments: a container stays up for the next image, as on
# Lambda. A copy of it that opts out (lambda.container.isolation: invocation) shows what that saves.
sed -e 's/name: grayify$/name: grayify-isolated/' -e 's#scar-demo/#scar-demo-isolated/#' \
  -e 's#^\( *\)image: grycap/imagemagick$#&\n\1isolation: invocation#' \
  examples/imagemagick/grayify.yaml >"$WORK/grayify-isolated.yaml"
grep -q 'isolation: invocation' "$WORK/grayify-isolated.yaml" ||
  { echo "FAILED: could not make the isolated copy of grayify.yaml" >&2; exit 1; }
cp examples/imagemagick/grayify-image.sh "$WORK/"
scar init -f "$WORK/grayify-isolated.yaml"
ISOLATED_START=$(now_ms)
scar put -b scar-demo-isolated/input -p "$WORK/images" >/dev/null
wait_results grayify-isolated scar-demo-isolated/output
# wall time from the upload to the last result, from the job records (ms)
last_done() { scar jobs ls -n "$1" --limit $((FILES * 2)) --json | jq '[.jobs[] | select(.trigger.key != null) | .stages.done] | max'; }
WARM_MS=$(($(last_done grayify) - UPLOAD_START))
ISOLATED_MS=$(($(last_done grayify-isolated) - ISOLATED_START))
awk -v w="$WARM_MS" -v i="$ISOLATED_MS" -v n="$FILES" 'BEGIN {
  printf "%d conversions: %.1f s in warm environments, %.1f s with a container per image: speed-up %.2fx\n", n, w / 1000, i / 1000, i / w }'

FIRST="$(jq -r '[.jobs[] | select(.trigger.key != null)] | sort_by(.trigger.key) | .[0].id' "$WORK/jobs.json")"
step "One job's log: scar log -n grayify -ri $FIRST"
scar log -n grayify -ri "$FIRST"

step "scar engine stop"
scar engine stop
echo "demo done in $((($(date +%s%N) - DEMO_START) / 1000000000)) s"
