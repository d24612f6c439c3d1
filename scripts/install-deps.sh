#!/usr/bin/env bash
# Installs the system packages scar and its tests use (Debian/Ubuntu, as root or with sudo).
# Safe to run again: packages already present are skipped.
set -euo pipefail

PACKAGES=(
  # container runtimes and image tools (engine, tests, benchmark peers)
  crun runc busybox-static
  # a registry the image tests start themselves; skopeo + umoci are the image benchmark's peer
  docker-registry skopeo umoci
  # overlay whiteouts of unpacked layers (setfattr); zstd layers in the image tests
  attr zstd
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
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
