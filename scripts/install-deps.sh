#!/usr/bin/env bash
# Installs the system packages scar and its tests use (Debian/Ubuntu, as root or with sudo).
# Safe to run again: packages already present are skipped. When another process holds apt's lock
# (unattended upgrades after a boot, another install), it waits for it, saying so.
#
#   bash scripts/install-deps.sh [package ...]     (default: the list below)
#   bash scripts/install-deps.sh --engine          only what the local engine needs to run functions:
#                                                  what an ordinary user (rootless) asks an administrator for
set -euo pipefail

# The local engine alone (root or rootless): an OCI runtime (crun; runc works too), a static busybox
# for its mount helper and test container, setfattr for the layers' overlay markers; uidmap
# (newuidmap/newgidmap) lets a rootless engine map an image's other users to the user's /etc/subuid
# ranges (without it every container runs as the user). util-linux (unshare, nsenter) and e2fsprogs
# are in every Debian/Ubuntu install. Optional: fuse-overlayfs, a rootless engine's overlay where the
# kernel refuses its own in a user namespace (before Linux 5.11; without either, each run copies the
# image): --engine adds it on such kernels only.
ENGINE_PACKAGES=(crun busybox-static attr uidmap)

PACKAGES=(
  # container runtimes and image tools (engine, tests, benchmark peers)
  crun runc busybox-static
  # a registry the image tests start themselves; skopeo + umoci are the image benchmark's peer
  docker-registry skopeo umoci
  # overlay whiteouts of unpacked layers (setfattr); zstd layers in the image tests
  attr zstd
  # rootless: subordinate ids (newuidmap) and the fuse-overlayfs root file system (their tests)
  uidmap fuse-overlayfs
  # the runtime benchmark's peer (podman run --rm of the same rootfs)
  podman
  # htpasswd, for the registry basic-auth test
  apache2-utils
  # S3 clients the object-store tests drive
  awscli s3cmd python3-boto3
  # misc tools used by tests, the benchmark and the demo (unzip: the zip answers of POST /run)
  jq curl unzip
  # the demo builds its ImageMagick image from Debian's packages when Docker Hub is out of reach
  debootstrap debian-archive-keyring
  # the cgroup v2 tests boot a Debian VM under software emulation (scripts/test-hosts.sh)
  qemu-system-x86
  # npm install compiles better-sqlite3 when its prebuilt binary cannot be downloaded
  g++ make python3
  # the build compiles scar's in-container agent, a static binary (warm environments need it)
  gcc libc6-dev
  # the function image tests: a musl base image (musl's loader, musl-gcc) and an ImageMagick one
  musl musl-tools imagemagick-6.q16
  # the completion test runs the fish script in fish
  fish
  # a headless browser for the CORS test (test/engine/api-cors-browser.test.ts, via playwright-core)
  chromium
)
if [ "${1:-}" = "--engine" ]; then
  PACKAGES=("${ENGINE_PACKAGES[@]}")
  IFS=. read -r major minor _ <<<"$(uname -r)"
  if [ "${major:-0}" -lt 5 ] || { [ "$major" -eq 5 ] && [ "${minor%%[!0-9]*}" -lt 11 ]; }; then
    PACKAGES+=(fuse-overlayfs)
  fi
elif [ "$#" -gt 0 ]; then
  PACKAGES=("$@")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    # an ordinary user without sudo: say what to ask for (the engine itself never runs sudo)
    echo "missing system packages: ${missing[*]}" >&2
    echo "ask an administrator to run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  SUDO="sudo"
fi

# wait_for_apt: waits, saying so, while another process holds apt's lock
# shellcheck source=scripts/apt-lock.sh
source "$(dirname "$0")/apt-lock.sh"

# apt-get, waiting for a lock taken between our check and its start (apt waits for dpkg's lock
# itself with DPkg::Lock::Timeout; the lists lock of apt-get update it does not wait for).
apt() {
  local out
  for _ in 1 2 3 4 5; do
    wait_for_apt
    if out=$(DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1); then
      return 0
    fi
    grep -qE 'Could not get lock|Unable to lock|Unable to acquire' <<<"$out" || { echo "$out" >&2; return 1; }
  done
  echo "$out" >&2
  return 1
}

echo "installing system packages: ${missing[*]}" >&2
apt update -qq
apt install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
