# Sourced by install-deps.sh (and its test): waiting for apt's lock, with a message.
# apt's locks are POSIX record locks, listed in /proc/locks with the inode of the file locked.
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)

# The process holding one of apt's locks, if any: "PID COMMAND FILE".
lock_holder() {
  local f ino pid
  for f in "${APT_LOCKS[@]}"; do
    [ -e "$f" ] || continue
    ino=$(stat -c %i "$f")
    pid=$(awk -v ino="$ino" '$2 == "POSIX" && $4 == "WRITE" { n = split($6, a, ":"); if (a[n] == ino) { print $5; exit } }' /proc/locks)
    if [ -n "$pid" ] && [ "$pid" != "$$" ]; then
      echo "$pid $(cat "/proc/$pid/comm" 2>/dev/null || echo '?') $f"
      return
    fi
  done
}
# Waits (up to APT_LOCK_WAIT seconds, default 1800) while another process holds apt's lock.
wait_for_apt() {
  local holder waited=0 limit="${APT_LOCK_WAIT:-1800}"
  while holder=$(lock_holder) && [ -n "$holder" ]; do
    # shellcheck disable=SC2086 # three words
    set -- $holder
    if [ "$waited" -ge "$limit" ]; then
      echo "apt is still locked by process $1 ($2) after ${limit} s; run this again when it is done" >&2
      exit 1
    fi
    [ "$waited" -eq 0 ] && echo "waiting for apt: process $1 ($2) holds $3 ..." >&2
    sleep 2
    waited=$((waited + 2))
  done
  [ "$waited" -eq 0 ] || echo "apt is free after ${waited} s" >&2
}
