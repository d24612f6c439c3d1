#!/usr/bin/env bash
# Puts an ImageMagick image, named grycap/imagemagick:latest, into the local engine's image store.
#
#   bash scripts/imagemagick-image.sh [DATA_DIR]     (default: scar's, i.e. $SCAR_DATA_DIR or ~/.scar/data)
#
# When Docker Hub answers, it pulls SCAR's grycap/imagemagick (`scar image pull`). Otherwise it builds
# an equivalent image from Debian's packages: a bookworm minbase root file system with imagemagick
# (debootstrap, from the Debian mirror in apt's sources, or SCAR_DEBIAN_MIRROR=URL), imported with
# `scar image import`.
# SCAR_DEMO_CACHE=DIR keeps the built root file system there as a tarball and reuses it next time
# (by default nothing is kept: every run builds). Needs scar built, and root or sudo to build.
set -euo pipefail
cd "$(dirname "$0")/.."
SCAR="$PWD/bin/scar"
IMAGE=grycap/imagemagick:latest
DATA_ARGS=()
[ -z "${1:-}" ] || DATA_ARGS=(--data-dir "$1")
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# scar knows where Docker Hub is; a registry out of reach fails the pull within seconds
if PULL_ERR="$("$SCAR" image pull "$IMAGE" "${DATA_ARGS[@]}" 2>&1 >/dev/null)"; then
  echo "pulled $IMAGE"
  exit 0
fi
echo "scar image pull $IMAGE: $(sed -n 's/^error: //p' <<<"$PULL_ERR" | head -1)"
echo "building $IMAGE from Debian's packages instead"

CACHED="${SCAR_DEMO_CACHE:+$SCAR_DEMO_CACHE/imagemagick-rootfs.tar.gz}"
if [ -n "$CACHED" ] && [ -s "$CACHED" ]; then
  echo "using the root file system built earlier: $CACHED"
  "$SCAR" image import "$CACHED" --tag "$IMAGE" --change "$PATH_ENV" "${DATA_ARGS[@]}"
  exit 0
fi

# The Debian mirror: SCAR_DEBIAN_MIRROR, else the one apt uses (deb822 .sources or one-line .list).
MIRROR="${SCAR_DEBIAN_MIRROR:-$(
  {
    sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | grep -E '/debian/?$' | head -1 || true
)}"
if [ -z "$MIRROR" ]; then
  echo "no Debian mirror in apt's sources: set SCAR_DEBIAN_MIRROR to one (an URL ending in /debian)" >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo" # debootstrap and reading the root file system need root
BUILD="$(mktemp -d /tmp/scar-imagemagick.XXXXXX)"
trap '$SUDO rm -rf "$BUILD"' EXIT
start=$(date +%s)
echo "debootstrap --variant=minbase --include=imagemagick bookworm ... $MIRROR"
if ! $SUDO debootstrap --variant=minbase --include=imagemagick bookworm "$BUILD/rootfs" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1; then
  tail -20 "$BUILD/debootstrap.log" >&2
  echo "debootstrap failed (above: the last 20 lines of its log)" >&2
  exit 1
fi
$SUDO rm -rf "$BUILD/rootfs/var/cache/apt/"* "$BUILD/rootfs/var/lib/apt/lists/"*
echo "built the root file system in $(($(date +%s) - start)) s ($($SUDO du -sh "$BUILD/rootfs" | cut -f1)," \
  "$($SUDO chroot "$BUILD/rootfs" convert -version | sed -n '1s/^Version: //p' | cut -d' ' -f1-3))"
TARBALL="${CACHED:-$BUILD/rootfs.tar.gz}"
[ -z "$CACHED" ] || mkdir -p "$SCAR_DEMO_CACHE"
$SUDO tar -C "$BUILD/rootfs" -cf - . | gzip -1 >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
[ -z "$CACHED" ] || echo "kept it for the next runs: $CACHED"
"$SCAR" image import "$TARBALL" --tag "$IMAGE" --change "$PATH_ENV" "${DATA_ARGS[@]}"
