#!/usr/bin/env bash
# The main job, end to end on the embedded engine: installs what it needs, starts the engine, deploys a
# function, uploads files (each processed in its own container), and shows the results and job times.
#
#   bash scripts/demo.sh [number of files, default 20]
#
# Everything lives in a temporary folder that is removed at the end (set KEEP=1 to keep it).
# Until `scar init/put/get` land (issue 6), it deploys through the engine's OSCAR-compatible API and
# uploads with the AWS CLI, which is exactly what those commands will do for you.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-20}"

bash scripts/install-deps.sh
[ -f dist/src/cli/main.js ] || npm install --no-audit --no-fund
SCAR="$PWD/bin/scar"
AWS=/usr/bin/aws # Debian's awscli v2 (another `aws` may come first on PATH)

WORK="$(mktemp -d /tmp/scar-demo.XXXXXX)"
DATA="$WORK/data"
cleanup() {
  [ -n "${ENGINE_PID:-}" ] && kill "$ENGINE_PID" 2>/dev/null && wait "$ENGINE_PID" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "An image: a busybox root file system, imported (no Docker daemon, no registry needed)"
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"/{bin,tmp,proc,dev,sys,etc}
cp /bin/busybox "$ROOTFS/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOTFS/bin/$a"; done
"$SCAR" image import "$ROOTFS" --tag localhost/demo/busybox:1 --change 'ENV PATH=/bin' --data-dir "$DATA"

step "The engine: object store, job queue, containers, API (scar serve)"
"$SCAR" serve --data-dir "$DATA" --port 0 --s3-port 0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
ENGINE_PID=$!
for _ in $(seq 300); do grep -q "functions:" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
cat "$WORK/serve.out"
API="$(sed -n 's/.*API: *\(http[^ ]*\).*/\1/p' "$WORK/serve.out")"
S3="$(sed -n 's/.*object store: *\(http[^ ]*\).*/\1/p' "$WORK/serve.out")"
[ -n "$API" ] || { cat "$WORK/serve.err"; exit 1; }
PASSWORD="$(jq -r .admin.password "$DATA/credentials")"
export AWS_ACCESS_KEY_ID="$(jq -r .s3.accessKeyId "$DATA/credentials")"
export AWS_SECRET_ACCESS_KEY="$(jq -r .s3.secretAccessKey "$DATA/credentials")"
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null

step "A function: count the words of each uploaded file (input demo/in, output demo/out)"
SCRIPT='name=$(basename "$INPUT_FILE_PATH")
wc -w < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name.words"
echo "counted the words of $STORAGE_OBJECT_KEY in request $REQUEST_ID"'
jq -n --arg script "$SCRIPT" '{
  name: "word-count", image: "localhost/demo/busybox:1", memory: "128Mi", script: $script,
  input: [{storage_provider: "minio", path: "demo/in"}],
  output: [{storage_provider: "minio", path: "demo/out"}]
}' >"$WORK/service.json"
curl -sf -u "scar:$PASSWORD" -X POST --data @"$WORK/service.json" "$API/system/services"
echo "deployed 'word-count'"

step "$FILES files uploaded to s3://demo/in/ with the AWS CLI"
mkdir -p "$WORK/files"
for i in $(seq 1 "$FILES"); do
  seq 1 "$i" | sed 's/^/word/' | tr '\n' ' ' >"$WORK/files/doc-$i.txt"
done
"$AWS" --endpoint-url "$S3" s3 cp "$WORK/files/" s3://demo/in/ --recursive --only-show-errors

step "Waiting for the results"
for _ in $(seq 600); do
  n=$("$AWS" --endpoint-url "$S3" s3 ls s3://demo/out/ | grep -c '\.words$' || true)
  [ "$n" -ge "$FILES" ] && break
  sleep 0.2
done
echo "$n of $FILES results in s3://demo/out/"
LISTING="$("$AWS" --endpoint-url "$S3" s3 ls s3://demo/out/)" # whole, then cut: `| head` would break awscli's pipe
echo "$LISTING" | head -5
echo "doc-$FILES.txt has $("$AWS" --endpoint-url "$S3" s3 cp "s3://demo/out/doc-$FILES.txt.words" -) words"

step "The jobs (one per file), and one job's log"
curl -sf -u "scar:$PASSWORD" "$API/system/logs/word-count" |
  jq -r '.jobs | to_entries | map(.value.status) | group_by(.) | map("\(length) \(.[0])") | .[]'
JOB="$(curl -sf -u "scar:$PASSWORD" "$API/system/logs/word-count" | jq -r '.jobs | keys[0]')"
curl -sf -u "scar:$PASSWORD" "$API/system/logs/word-count/$JOB"
curl -sf -u "scar:$PASSWORD" "$API/system/jobs/$JOB" |
  jq -r '.stages | to_entries | map(select(.value != null)) | sort_by(.value) | .[0].value as $t0 | .[] | "  \(.key): +\(.value - $t0) ms"'
[ "$n" -ge "$FILES" ]
