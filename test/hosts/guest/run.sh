#!/bin/sh
# In the guest (installed as /usr/local/sbin/scar-hosts-run, started by scar-hosts.service): mounts
# the project (read-only) and the results folder that scripts/test-hosts.sh shares over 9p, runs
# the tests it names in /project/.../tests, and leaves the status in /results/status.
set -u
mkdir -p /project /results
mount -t 9p -o trans=virtio,version=9p2000.L,ro project /project || exit 1
mount -t 9p -o trans=virtio,version=9p2000.L results /results || exit 1
exec >/results/guest.log 2>&1
cfg=/results/config
echo "== host"
uname -r
echo "cgroup: $(stat -fc %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "pid 1: $(cat /proc/1/comm), $(systemctl --version | head -1)"
echo "this service's cgroup: $(cat /proc/self/cgroup)"
echo "crun $(crun --version | sed -n 's/^crun version //p'), runc $(runc --version | sed -n 's/^runc version //p'), node $(node --version)"
status=0
cd /project
# SCAR_HOSTS_TESTS: test file filters (node scripts/run-tests.mjs <substring ...>)
filters=$(sed -n 's/^tests=//p' "$cfg")
echo "== tests as root: $filters"
start=$(date +%s)
# the tests' temp folders on the guest's disk (ext4: overlay upper/work need a real file system)
TMPDIR=/var/tmp node scripts/run-tests.mjs $filters >/results/tests-root.tap 2>&1 || status=1
echo "tests as root: exit $status in $(($(date +%s) - start)) s"
bench=$(sed -n 's/^bench=//p' "$cfg")
if [ -n "$bench" ]; then
  echo "== bench: node dist/bench/runtime.js $bench"
  TMPDIR=/var/tmp node dist/bench/runtime.js "$bench" >/results/bench.txt 2>&1 || echo "bench failed"
fi
echo "$status" >/results/status
sync
exit 0
