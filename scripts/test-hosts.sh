#!/usr/bin/env bash
# The runtime's tests on a host unlike this one: a Debian 12 VM (qemu, software emulation) with the
# unified cgroup v2 hierarchy and systemd as PID 1, where the tests run as root the way the engine
# runs there (npm run test:hosts; CI runs it).
#
#   bash scripts/test-hosts.sh [test file filter ...]   (default: engine/runtime/)
#
# 1. image (cached): debootstrap of bookworm into a tmpfs (from the mirror apt's sources name, or
#    SCAR_DEBIAN_MIRROR) with systemd, crun, runc and busybox-static, this host's node binary and
#    test/hosts/guest/ (a service that mounts the shares, runs the project's run.sh and powers off),
#    made into an ext4 image; Debian's kernel package, unpacked, gives the modules and the kernel to
#    boot with -kernel, and a small initrd of ours (test/hosts/initrd-init.sh) mounts the disk.
#    Kept in $SCAR_HOSTS_CACHE (default ~/.cache/scar/hosts)/<version>; a new version (below) or
#    SCAR_HOSTS_REBUILD=1 builds again. CI machines start without it.
# 2. boot: the image as a throw-away snapshot (the cache is never written), the project folder shared
#    read-only over 9p (the guest runs its dist/), a results folder shared writable; serial console
#    into the results folder.
#    The guest runs the tests from a plain system service (the engine asks systemd for a delegated
#    scope of its own), then the v2 placement and OOM tests again under `systemd-run --scope -p
#    Delegate=yes` (the engine uses that scope), then the rootless tests (SCAR_HOSTS_USER_TESTS, test
#    file filters; default rootless.test rootless-rootfs.test rootless-engine.test cgroup2.test; empty: none) as user
#    scar with /etc/subuid ranges and a lingering systemd user session (its engine asks the user's
#    systemd for its scope), and checks that system.slice's cgroup.subtree_control is as at boot.
# 3. results: the guest's summary, the tests' TAP output, and the status; exit 1 when a test failed
#    or the guest did not finish within SCAR_HOSTS_TIMEOUT seconds (default 1500).
# SCAR_HOSTS_TESTS=REGEX runs only the tests whose names match (node --test-name-pattern; CI's part).
# SCAR_HOSTS_BENCH=N also runs the runtime benchmark (bench/runtime.ts, N runs) in the guest.
# KEEP=1 keeps the results folder. Needs root (debootstrap, the image's files) and `npm run build`.
set -euo pipefail
main() {
cd "$(dirname "$0")/.."
PROJECT="$PWD"
# Bump when the package list or the guest's set-up changes: the cache is keyed by it.
VERSION=bookworm-5
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,udev,dbus,dbus-user-session,libpam-systemd,uidmap,fuse-overlayfs,passwd,kmod,crun,runc,busybox-static,attr,e2fsprogs,util-linux
CACHE="${SCAR_HOSTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scar/hosts}/$VERSION"
FILTERS=("$@")
[ "${#FILTERS[@]}" -gt 0 ] || FILTERS=(engine/runtime/)
now() { date +%s; }
step() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "test-hosts: run as root (debootstrap and the image's files need it)" >&2; exit 1; }
[ -f dist/src/engine/runtime/index.js ] ||
  { echo "test-hosts: build first (npm run build)" >&2; exit 1; }
for bin in debootstrap qemu-system-x86_64 mkfs.ext4; do
  command -v "$bin" >/dev/null || { echo "test-hosts: $bin is missing: bash scripts/install-deps.sh" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/scar-hosts.XXXXXX)"
cleanup() {
  status=$?
  [ -z "${QEMU_PID:-}" ] || kill "$QEMU_PID" 2>/dev/null || true
  ! mountpoint -q "$WORK/rootfs" || umount "$WORK/rootfs"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT

build_image() {
  local mirror root t0
  mirror="$(bash scripts/debian-mirror.sh)" ||
    { echo "no Debian mirror in apt's sources: set SCAR_DEBIAN_MIRROR (an URL ending in /debian)" >&2; exit 1; }
  root="$WORK/rootfs"
  # built in memory: dpkg syncs every file it unpacks, which on this disk cost minutes
  mkdir -p "$root"
  mount -t tmpfs -o size=3g,mode=0755 scar-hosts-build "$root"
  t0=$(now)
  echo "debootstrap --variant=minbase $SUITE with $PACKAGES"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -30 "$WORK/debootstrap.log" >&2
    echo "debootstrap failed (above: the last 30 lines of its log)" >&2
    exit 1
  fi
  echo "debootstrap: $(($(now) - t0)) s"
  # Debian's kernel, unpacked rather than installed: installing it runs mkinitramfs twice, which took
  # 11 of the 15 minutes of a build here; a small initrd of our own loads the root disk's modules.
  t1=$(now)
  chroot "$root" sh -c 'cd /tmp && apt-get download -q "$(apt-cache depends linux-image-amd64 | sed -n "s/.*Depends: //p" | head -1)"' \
    >>"$WORK/debootstrap.log" 2>&1 || { tail -5 "$WORK/debootstrap.log" >&2; echo "could not download the kernel package" >&2; exit 1; }
  dpkg-deb -x "$root"/tmp/linux-image-*.deb "$WORK/kernel"
  rm -f "$root"/tmp/linux-image-*.deb
  kver="$(ls "$WORK/kernel/lib/modules")"
  mkdir -p "$root/lib/modules"
  cp -a "$WORK/kernel/lib/modules/$kver" "$root/lib/modules/"
  chroot "$root" depmod "$kver"
  local initrd="$WORK/initrd" m name
  mkdir -p "$initrd/bin" "$initrd/lib/m"
  cp "$root/bin/busybox" "$initrd/bin/busybox"
  install -m 0755 test/hosts/initrd-init.sh "$initrd/init"
  # (modprobe takes one module: the words after it are its parameters)
  for m in $(for mod in virtio_pci virtio_blk ext4; do chroot "$root" modprobe -S "$kver" --show-depends "$mod"; done |
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
    name="$(basename "$m")"
    name="${name%.xz}"
    name="${name%.zst}"
    case "$m" in
      *.xz) xz -dc "$root$m" >"$initrd/lib/m/$name" ;;
      *.zst) zstd -qdc "$root$m" >"$initrd/lib/m/$name" ;;
      *) cp "$root$m" "$initrd/lib/m/$name" ;;
    esac
    echo "$name" >>"$initrd/modules"
  done
  mkdir -p "$WORK/image"
  (cd "$initrd" && find . | "$root/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$WORK/image/initrd"
  cp "$WORK/kernel/boot/vmlinuz-$kver" "$WORK/image/vmlinuz"
  rm -rf "$WORK/kernel" "$initrd"
  echo "kernel $kver and initrd: $(($(now) - t1)) s"
  rm -rf "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  # the guest: root on the virtio disk, the test service, this host's node (same Debian release, so
  # its libraries are the guest's too)
  echo "/dev/vda / ext4 rw 0 1" >"$root/etc/fstab"
  echo scar-hosts >"$root/etc/hostname"
  install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"
  install -m 0755 test/hosts/guest/boot.sh "$root/usr/local/sbin/scar-hosts-run"
  install -m 0644 test/hosts/guest/scar-hosts.service "$root/etc/systemd/system/scar-hosts.service"
  ln -sf /etc/systemd/system/scar-hosts.service "$root/etc/systemd/system/multi-user.target.wants/scar-hosts.service"
  # no login prompt on the console the tests' output goes to
  ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
  ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
  truncate -s 4G "$WORK/image/disk.img"
  mkfs.ext4 -q -F -L scar-hosts -d "$root" "$WORK/image/disk.img"
  echo "$SUITE, kernel $kver, built $(date -u +%FT%TZ)" >"$WORK/image/about"
  umount "$root"
  mkdir -p "$(dirname "$CACHE")"
  rm -rf "$CACHE"
  mv "$WORK/image" "$CACHE"
  echo "image built in $(($(now) - t0)) s: $CACHE ($(du -sh --apparent-size "$CACHE/disk.img" | cut -f1) sparse, $(du -sh "$CACHE/disk.img" | cut -f1) used)"
}

step "The guest's image ($VERSION)"
if [ "${SCAR_HOSTS_REBUILD:-0}" = 1 ] || [ ! -s "$CACHE/disk.img" ]; then
  build_image
else
  echo "cached: $CACHE ($(cat "$CACHE/about"))"
fi

step "Boot and test: ${FILTERS[*]}"
OUT="$WORK/results"
mkdir -p "$OUT"
{
  echo "tests=${FILTERS[*]}"
  echo "bench=${SCAR_HOSTS_BENCH:-}"
  echo "pattern=${SCAR_HOSTS_TESTS:-}"
  echo "user=${SCAR_HOSTS_USER_TESTS-rootless.test rootless-rootfs.test rootless-engine.test cgroup2.test}"
} >"$OUT/config"
# node_modules as a link to an install elsewhere (as in the project's worktrees): shared too, mounted
# in the guest where the link leads
SHARES=()
if [ -L node_modules ]; then
  SHARES=(-virtfs "local,path=$(readlink -f node_modules),mount_tag=modules,security_model=none,readonly=on")
fi
t0=$(now)
qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd" \
  -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet" \
  -drive "file=$CACHE/disk.img,if=virtio,format=raw,snapshot=on" \
  -virtfs "local,path=$PROJECT,mount_tag=project,security_model=none,readonly=on" \
  -virtfs "local,path=$OUT,mount_tag=results,security_model=none" "${SHARES[@]}" \
  -nic none -display none -monitor none -serial "file:$OUT/serial.log" -no-reboot &
QEMU_PID=$!
deadline=$(($(now) + ${SCAR_HOSTS_TIMEOUT:-1500}))
while kill -0 "$QEMU_PID" 2>/dev/null; do
  if [ -s "$OUT/status" ] && [ -z "${done_at:-}" ]; then done_at=$(now); fi
  if [ -n "${done_at:-}" ] && [ "$(now)" -ge $((done_at + 60)) ]; then
    echo "the guest finished its tests but did not power off within 60 s: stopping it"
    kill "$QEMU_PID"
  fi
  if [ "$(now)" -ge "$deadline" ]; then
    echo "the guest did not finish within ${SCAR_HOSTS_TIMEOUT:-1500} s; the end of its console:" >&2
    tail -40 "$OUT/serial.log" >&2
    exit 1
  fi
  sleep 2
done
wait "$QEMU_PID" || true
QEMU_PID=""
echo "guest ran for $(($(now) - t0)) s"
if [ ! -s "$OUT/guest.log" ]; then
  echo "the guest did not start the tests; the end of its console:" >&2
  tail -60 "$OUT/serial.log" >&2
  exit 1
fi
cat "$OUT/guest.log"
if [ "$(cat "$OUT/status" 2>/dev/null)" != 0 ]; then
  echo "FAILED: the tests in the guest (their output below)" >&2
  cat "$OUT/tests-root.tap" "$OUT/tests-delegated.tap" >&2
  [ ! -f "$OUT/tests-user.tap" ] || cat "$OUT/tests-user.tap" >&2
  exit 1
fi
# the summaries of node's test runner
tail -9 "$OUT/tests-root.tap"
grep -E '^# (pass|fail)' "$OUT/tests-delegated.tap"
[ ! -s "$OUT/tests-user.tap" ] || grep -E '^# (tests|pass|fail|skipped)' "$OUT/tests-user.tap"
[ ! -s "$OUT/bench.txt" ] || cat "$OUT/bench.txt"
echo "test-hosts: passed"
}

main "$@"
