#!/bin/busybox sh
# /init of the guest's initrd (scripts/test-hosts.sh): loads the modules the root disk needs
# (listed in /modules, in order), mounts it and hands over to systemd. Debian's own initrd
# (mkinitramfs, run twice when the kernel package is installed) took most of the image's build time.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod "/lib/m/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; sleep 5; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
