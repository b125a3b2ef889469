#!/bin/sh
# The `console` unit: a shell on the serial console, again each time it ends, unless the
# boot is an automated one (run.sh --check / --crashing / --panic).
for w in $(cat /proc/cmdline); do
  case "$w" in kennelvm.check | kennel.test_panic=1) exit 0 ;; esac
done
tty=/dev/ttyS0
[ -c "$tty" ] || exit 0
while :; do
  echo "console: a shell on $tty (kennel status, kennel exec -it web sh, kennel poweroff)" >"$tty"
  # -c: the tty becomes the shell's controlling terminal (job control, Ctrl-C).
  setsid -c /bin/sh -l <"$tty" >"$tty" 2>&1
  sleep 1
done
