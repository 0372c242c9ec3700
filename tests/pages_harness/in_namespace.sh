#!/bin/sh
# Run a command with the Unraid-shaped root of a page-test sandbox mounted where Unraid has it.
# Usage: unshare -m --propagation private sh in_namespace.sh SANDBOX COMMAND...
# Only this private mount namespace sees the mounts; they vanish with its last process.
#   /usr/local   an overlay whose upper layer (a tmpfs) adds emhttp/ (the docroot) and sbin/ entries
#   /var/local   SANDBOX/var-local (emhttpd's state files)      /boot     SANDBOX/boot (the flash drive)
#   /var/tmp     SANDBOX/var-tmp                                /run      a fresh tmpfs
set -eu
sb=$1
shift
mount -t tmpfs -o mode=755 pcr-pages "$sb/ns"
mkdir "$sb/ns/upper" "$sb/ns/work"
cp -a "$sb/usr-local/." "$sb/ns/upper/"
mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$sb/ns/upper,workdir=$sb/ns/work" /usr/local
mount --bind "$sb/var-local" /var/local
mount --bind "$sb/boot" /boot
mount --bind "$sb/var-tmp" /var/tmp
mount -t tmpfs -o mode=755 pcr-run /run
exec "$@"
