#!/bin/sh
# In the guest, from boot.sh, with the project at /project and the results folder at /results (9p
# shares of scripts/test-hosts.sh): runs the tests /results/config names (and the benchmark) as
# root, then the rootless ones as an ordinary user with a systemd user session, and leaves their
# status in /results/status.
set -u
exec >/results/guest.log 2>&1
if [ -L /project/node_modules ]; then
  modules=$(realpath -m /project/node_modules)
  mkdir -p "$modules" && mount -t 9p -o trans=virtio,version=9p2000.L,ro modules "$modules" ||
    echo "node_modules: cannot mount the shared install at $modules"
fi
cfg=/results/config
echo "== host"
uname -r
echo "cgroup: $(stat -fc %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "pid 1: $(cat /proc/1/comm), $(systemctl --version | head -1)"
echo "this service's cgroup: $(cat /proc/self/cgroup)"
echo "crun $(crun --version | sed -n 's/^crun version //p'), runc $(runc --version | sed -n 's/^runc version //p'), node $(node --version)"
status=0
cd /project
# what systemd set in the cgroups it owns, before any container: the engine and the runtimes must
# leave it so (crun enables every controller in every cgroup above a container's)
slice_before=$(cat /sys/fs/cgroup/system.slice/cgroup.subtree_control)
# the test file filters (node scripts/run-tests.mjs <substring ...>)
filters=$(sed -n 's/^tests=//p' "$cfg")
echo "== tests as root: $filters"
start=$(date +%s)
# the tests' temp folders on the guest's disk (ext4: overlay upper/work need a real file system)
pattern=$(sed -n 's/^pattern=//p' "$cfg")
if [ -z "$pattern" ]; then
  TMPDIR=/var/tmp node scripts/run-tests.mjs $filters >/results/tests-root.tap 2>&1 || status=1
else
  # only the tests whose names match (node --test-name-pattern), of the files the filters select
  files=$(find dist/test -name '*.test.js' | sort | while read -r f; do
    for s in $filters; do case "$f" in *"$s"*) echo "$f"; break ;; esac; done
  done)
  echo "tests named like: $pattern"
  TMPDIR=/var/tmp node --test --test-name-pattern="$pattern" $files >/results/tests-root.tap 2>&1 || status=1
fi
echo "tests as root: exit $status in $(($(date +%s) - start)) s"
# The other way an engine gets its cgroup on v2: started in a delegated scope (the tests above ran
# from a plain service, so the engine asked systemd for a scope of its own).
echo "== in a delegated scope (systemd-run --scope -p Delegate=yes): the v2 placement and OOM tests, crun"
start=$(date +%s)
d=0
TMPDIR=/var/tmp systemd-run --scope --quiet -p Delegate=yes node --test \
  --test-name-pattern="cgroup v2: the engine in a leaf|OOM kill" dist/test/engine/runtime/crun.test.js \
  >/results/tests-delegated.tap 2>&1 || d=1
[ "$d" = 0 ] || status=1
echo "in a delegated scope: exit $d in $(($(date +%s) - start)) s"
user_tests=$(sed -n 's/^user=//p' "$cfg")
if [ -n "$user_tests" ]; then
  # An ordinary user the way a shared server has one: /etc/subuid ranges (Debian's uidmap gives
  # newuidmap) and a systemd user session kept without a login (enable-linger starts user@1000.service,
  # which delegates cpu, memory and pids on systemd 252, and its user bus). The tests run as root and
  # drop to the user (setpriv) for the engine, which finds the bus at /run/user/1000.
  echo "== as an ordinary user (scar, uid 1000, systemd user session): $user_tests"
  start=$(date +%s)
  useradd -m -u 1000 -s /bin/sh scar
  echo scar:100000:65536 >/etc/subuid
  echo scar:100000:65536 >/etc/subgid
  loginctl enable-linger scar
  i=0
  while [ ! -S /run/user/1000/bus ] && [ "$i" -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
  echo "user session: $(systemctl is-active user@1000.service), bus $([ -S /run/user/1000/bus ] && echo up || echo missing), delegated: $(cat /sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers)"
  files=$(find dist/test -name '*.test.js' | sort | while read -r f; do
    for s in $user_tests; do case "$f" in *"$s"*) echo "$f"; break ;; esac; done
  done)
  u=0
  TMPDIR=/var/tmp SCAR_TEST_ROOTLESS_UID=1000 SCAR_TEST_ROOTLESS_LIMITS=1 SCAR_TEST_ROOTLESS_MAPPING=ranges \
    node --test $files >/results/tests-user.tap 2>&1 || u=1
  [ "$u" = 0 ] || status=1
  echo "as the user: exit $u in $(($(date +%s) - start)) s"
  # what `scar doctor` tells that user (read by whoever checks its wording; its exit status is not judged)
  echo "== scar doctor as the user"
  setpriv --reuid=1000 --regid=1000 --init-groups env -u SCAR_DATA_DIR HOME=/home/scar \
    XDG_RUNTIME_DIR=/run/user/1000 node bin/scar doctor 2>&1 || echo "(doctor: exit $?)"
fi
slice_after=$(cat /sys/fs/cgroup/system.slice/cgroup.subtree_control)
if [ "$slice_before" = "$slice_after" ]; then
  echo "system.slice's cgroup.subtree_control unchanged by the runs: $slice_after"
else
  echo "FAILED: system.slice's cgroup.subtree_control was '$slice_before' at boot, '$slice_after' after the runs"
  status=1
fi
echo "== scar doctor as root"
HOME=/root node bin/scar doctor 2>&1 || echo "(doctor: exit $?)"
bench=$(sed -n 's/^bench=//p' "$cfg")
if [ -n "$bench" ]; then
  echo "== bench: node dist/bench/runtime.js $bench"
  TMPDIR=/var/tmp node dist/bench/runtime.js "$bench" >/results/bench.txt 2>&1 || echo "bench failed"
fi
echo "$status" >/results/status
echo "scar-hosts: done, powering off" >/dev/console
# Off at once: everything worth keeping is on the 9p share (written through), the root disk is a
# throw-away snapshot, and an orderly shutdown hung here once after the benchmark.
timeout 20 sync
systemctl poweroff --force --force || echo o >/proc/sysrq-trigger
exit 0
