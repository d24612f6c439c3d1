#!/bin/sh
# In the guest's image (as /usr/local/sbin/scar-hosts-run, started by scar-hosts.service): mounts
# the project (read-only) and the results folder that scripts/test-hosts.sh shares over 9p, then
# runs the project's own test/hosts/guest/run.sh, so that changing it needs no new image.
mkdir -p /project /results
mount -t 9p -o trans=virtio,version=9p2000.L,ro project /project || exit 1
mount -t 9p -o trans=virtio,version=9p2000.L results /results || exit 1
exec /bin/sh /project/test/hosts/guest/run.sh
