#!/bin/sh
# Checks of a boot with a bridge network (examples/vm/run.sh --net), run by the `checks`
# unit of /etc/kennel/units-net once `web-bridge` is up (busybox sh). Prints
# `CHECK NAME ok` / `CHECK NAME FAIL DETAIL` lines and `CHECKS DONE`, then powers off.
# The host's side (run.sh) fetches the page through qemu's forwarded port meanwhile; the
# last check waits for that request to show in the container's log.
set -u
failed=0
ok() { echo "CHECK $1 ok"; }
fail() {
  name=$1
  shift
  echo "CHECK $name FAIL $*"
  failed=1
}

# The machine's own network, from ip=dhcp (qemu's user network: 10.0.2.15/24).
if ip -4 addr show dev eth0 2>/dev/null | grep -q 'inet 10\.0\.2\.15/'; then ok net-eth0-dhcp; else
  fail net-eth0-dhcp "$(ip -4 addr show dev eth0 2>&1 | tr '\n' ';')"
fi

# The container's address on the bridge and its published port, as kennel status says.
st=$(kennel status 2>&1)
line=$(echo "$st" | grep '^web-bridge ')
case "$line" in
  *10.89.*8080:80*) ok status-address-and-port ;;
  *) fail status-address-and-port "kennel status: $(echo "$st" | tr '\n' ';')" ;;
esac

# The bridge kennel made, with the container's veth on it.
if ip link show kennel0 >/dev/null 2>&1 && ip link | grep -q 'master kennel0'; then
  ok bridge-kennel0
else
  fail bridge-kennel0 "$(ip link 2>&1 | tr '\n' ';')"
fi

# The published port from the machine itself, through 127.0.0.1 and through eth0's address.
for a in 127.0.0.1 10.0.2.15; do
  body=$(timeout 10 wget -qO- "http://$a:8080/" 2>&1)
  case "$body" in
    *"served from a bridge container"*) ok "published-port-via-$a" ;;
    *) fail "published-port-via-$a" "wget: $body" ;;
  esac
done

# The host's request: qemu's user network delivers it from 10.0.2.2 to eth0:8080, kennel's
# DNAT to the container. busybox httpd -v logs `IP:PORT: response:200` (on its IPv6
# socket: `[::ffff:10.0.2.2]:PORT: response:200`).
i=0
while [ $i -lt 600 ]; do
  kennel logs web-bridge 2>/dev/null | grep -q '10\.0\.2\.2]*:[0-9]*: response:200' && break
  i=$((i + 1))
  sleep 0.5
done
if [ $i -lt 600 ]; then ok host-request-served; else
  fail host-request-served "no request from 10.0.2.2 in 300s: $(kennel logs web-bridge 2>&1 | tail -5 | tr '\n' ';')"
fi

if [ $failed = 0 ]; then echo "CHECKS DONE all ok"; else echo "CHECKS DONE with failures"; fi
if grep -qw kennelvm.check /proc/cmdline; then
  echo "checks: kennel poweroff"
  exec kennel poweroff
fi
exit 0
