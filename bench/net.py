"""The bench's part `net` (issue 15): what a network costs a container start, beside crun with
the CNI bridge plugin and podman with netavark; and the CNI path's own cost.

Run by bench.py (`Bench.net`). Safe: nothing here touches the host's network namespace.
kennel's `kennel up` runs with a network namespace of its own (`unshare --net`, beside its
pid and mount namespaces; its bridge `kennel0` and veths exist only there and die with it),
and every other command (the kennel client, crun, the CNI plugins, podman and netavark) runs
under `nsenter --net=PEER` in a second namespace the bench makes (an nsfs file in its work
directory, in the bench's private mount namespace), removed at the end.

Rows, all interleaved in one run (`Bench.warm_and_isolated`, as for the container start):
- kennel: `kennel start NAME` of the start section's oneshot `/bin/true` unit (store layers,
  kennel's init, seccomp), with `network = "none"` and with `network = "bridge"` (the built-in
  network `kennel`: lease, netns pinned, veth on the bridge, addresses, route; all netlink);
- crun: `crun run` of the start section's bundle (its own network namespace, lo only), and the
  same container on the CNI `bridge` plugin with `host-local` IPAM (what containerd/nerdctl do
  for one container, without their iptables plugins): a script that pins a netns
  (`unshare --net=FILE`), runs the plugin's ADD with CNI_* set, `crun run` with the bundle's
  network namespace that file, the plugin's DEL, and removes the file;
- podman (netavark): `podman run --rm` of an image of the same busybox layers, `--network
  none` and `--network bridge` (podman's default network, netavark 1.4 in Debian 12), a
  store of the bench's own.
The CNI path's own cost: `kennel cni add` and `kennel cni del` (kennel's libcni, what
`network = "cni:NAME"` runs at a unit's start and stop) of the same configuration, timed
separately.
DNS: the latency of a lookup of a running unit's name (`named`, a bridge container) from
kennel's DNS server on the bridge's gateway, asked from inside named's network namespace by
one Python UDP client (DNS_CLIENT), each query timed alone.
"""

import json
import os
import resource
import shutil
import subprocess
import time

import bench  # noqa: E402  (bench.py, beside this file)

DEVNULL = subprocess.DEVNULL
IMAGE = "localhost/kennel-bench-net:latest"
CNI_NET = "benchnet"
# The CNI network: a bridge of its own, addresses of a subnet no other part uses. No
# ipMasq (iptables), as kennel's bridge rows have no firewall rules either.
CNI_CONF = {"cniVersion": "1.0.0", "name": CNI_NET, "type": "bridge", "bridge": "kbcni0",
            "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/16"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}}
# A DNS client for the lookup latency: argv NAME SERVER N; prints the microseconds of each
# of N queries for NAME's A record (after 20 untimed), each checked for an answer.
DNS_CLIENT = r"""
import json, socket, struct, sys, time
name, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((server, 53))
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
out = []
for i in range(20 + n):
    q = struct.pack(">HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    t = time.perf_counter_ns()
    s.send(q)
    r = s.recv(4096)
    dt = (time.perf_counter_ns() - t) / 1000
    rid, flags, _, an = struct.unpack(">HHHH", r[:8])
    if rid != i & 0xFFFF or flags & 0xF != 0 or an < 1:
        sys.exit(f"query {i}: id {rid} rcode {flags & 0xF} answers {an}")
    if i >= 20:
        out.append(dt)
print(json.dumps(out))
"""
CNI_SCRIPT = r"""#!/bin/sh
# crun + the CNI bridge plugin: what a runtime without a daemon does for one container.
set -e
ns=$1 bundle=$2 id=$3 conf=$4 root=$5
: > "$ns"
unshare --net="$ns" true
export CNI_PATH=/usr/lib/cni CNI_CONTAINERID=$id CNI_NETNS=$ns CNI_IFNAME=eth0
CNI_COMMAND=ADD /usr/lib/cni/bridge < "$conf" > /dev/null
crun --root "$root" run --bundle "$bundle" "$id"
CNI_COMMAND=DEL /usr/lib/cni/bridge < "$conf"
umount "$ns"
rm -f "$ns"
"""


def run(cmd, **kw):
    return subprocess.run(cmd, stdin=DEVNULL, capture_output=True, text=True, **kw)


class Net:
    def __init__(self, b):
        self.b = b
        self.dir = os.path.join(b.work, "net")
        os.makedirs(self.dir, exist_ok=True)
        self.peer_ns = os.path.join(self.dir, "peer.netns")
        self.inns = []
        self.crun_ids = []
        self.podman = None
        self.podman_net = None
        self.k = None
        self.cni_ns = os.path.join(self.dir, "cni.netns")
        self.cni_ns_made = False

    def ns(self, cmd):
        return ["nsenter", f"--net={self.peer_ns}", "--"] + cmd

    def make_peer_ns(self):
        open(self.peer_ns, "w").close()
        subprocess.run(["unshare", f"--net={self.peer_ns}", "true"], check=True)
        self.inns.append(self.peer_ns)
        subprocess.run(self.ns(["ip", "link", "set", "lo", "up"]), check=True)

    def kennel(self):
        b = self.b
        state = os.path.join(b.work, "k-net", "state")
        no_units = os.path.join(self.dir, "no-units")
        os.makedirs(no_units, exist_ok=True)
        no_daemon = ["--socket", os.path.join(self.dir, "no-daemon.sock")]
        store = []
        for name, d in (("bb1", b.bb1), ("bb2", b.bb2)):
            subprocess.run([b.kennel, "layer", "import", "--name", name, "--state-dir", state,
                            "--units", no_units, *no_daemon, d], check=True, stdout=DEVNULL)
            store.append(os.path.realpath(os.path.join(state, "layers", name)))
        unit = b.container_toml(["/bin/true"], True, True, ["bb1", "bb2"])
        units = {net: unit.replace("[container]\n", f'[container]\nnetwork = "{net}"\n')
                 for net in ("none", "bridge")}
        # A running unit on the bridge, whose name the DNS row looks up.
        units["named"] = b.container_toml(["/bin/sleep", "1000000"], False, True, ["bb1", "bb2"]) \
            .replace("[container]\n", '[container]\nnetwork = "bridge"\n')
        self.k = bench.Kennel(b, "net", units, net=True)
        bench.wait_until("the oneshots' first runs",
                         lambda: all(u["state"] != "starting" for u in self.k.status()))
        bad = [u["name"] for u in self.k.status() if u.get("state") == "failed"]
        if bad:
            raise bench.Failed(f"kennel units failed at their first run: {bad}; "
                               f"see {self.k.out.name} and `kennel logs`")
        return store

    def crun_bundles(self, store):
        b = self.b
        plain = b.bundle("net-crun-none", ["/bin/true"], store)
        cni = b.bundle("net-crun-cni", ["/bin/true"], store)
        cfgp = os.path.join(cni, "config.json")
        with open(cfgp) as f:
            c = json.load(f)
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = os.path.join(self.dir, "crun-cni.netns")
        with open(cfgp, "w") as f:
            json.dump(c, f, indent=1)
        conf_dir = os.path.join(self.dir, "cni")
        os.makedirs(conf_dir, exist_ok=True)
        conf = dict(CNI_CONF)
        conf["ipam"] = dict(conf["ipam"], dataDir=os.path.join(self.dir, "cni-ipam"))
        self.conf = os.path.join(conf_dir, CNI_NET + ".conf")
        with open(self.conf, "w") as f:
            json.dump(conf, f)
        script = os.path.join(self.dir, "crun-cni.sh")
        with open(script, "w") as f:
            f.write(CNI_SCRIPT)
        os.chmod(script, 0o755)
        root = os.path.join(b.work, "crun-state")
        self.crun_ids += ["bench-net-none", "bench-net-cni"]
        return {
            "crun run": b.oci("crun", "run", "--bundle", plain, "bench-net-none"),
            "crun run + CNI bridge": ["/bin/sh", script, os.path.join(self.dir, "crun-cni.netns"),
                                      cni, "bench-net-cni", self.conf, root],
        }

    def podman_setup(self):
        """podman's store of the bench's own, an image of the two busybox layers; None and
        the reason when podman cannot run here."""
        if not shutil.which("podman"):
            return None, "podman not installed"
        d = os.path.join(self.dir, "podman")
        for sub in ("store", "run", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        pm = ["podman", "--root", os.path.join(d, "store"), "--runroot", os.path.join(d, "run"),
              "--tmpdir", os.path.join(d, "tmp"), "--cgroup-manager", "cgroupfs",
              "--events-backend", "file"]
        self.podman_dir = d
        self.podman = pm
        backend = run(self.ns(pm + ["info", "--format", "{{.Host.NetworkBackend}}"])).stdout.strip()
        if backend != "netavark":
            return None, f"podman's network backend here is {backend or '?'} (`podman info`), not netavark"
        root = os.path.join(d, "rootfs")
        subprocess.run(["cp", "-a", self.b.bb1 + "/.", root], check=True)
        subprocess.run(["cp", "-a", self.b.bb2 + "/.", root], check=True)
        tar = os.path.join(d, "image.tar")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", tar, "."],
                       check=True)
        r = run(self.ns(pm + ["import", "--quiet", tar, IMAGE]))
        shutil.rmtree(root)
        os.remove(tar)
        if r.returncode != 0:
            return None, f"podman import failed: {r.stderr.strip()[-300:]}"
        # The sandbox's hard RLIMIT_NOFILE is below podman's default ulimits.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
        lim = ["--ulimit", f"nofile={hard}:{hard}", "--ulimit", "nproc=1000:1000"]
        tools = {f"podman run --network {n}": pm + ["run", "--rm", "--network", n, *lim, IMAGE, "/bin/true"]
                 for n in ("none", "bridge")}
        for t, cmd in tools.items():
            r = run(self.ns(cmd), timeout=120)
            if r.returncode != 0:
                return None, f"{t} failed in the bench's network namespace: {r.stderr.strip()[-300:]}"
        return tools, None

    def cni_cost(self, rounds):
        """`kennel cni add` and `kennel cni del`, alternating, each timed."""
        b = self.b
        open(self.cni_ns, "w").close()
        subprocess.run(self.ns(["unshare", f"--net={self.cni_ns}", "true"]), check=True)
        self.cni_ns_made = True
        common = ["--network", CNI_NET, "--conf-dir", os.path.dirname(self.conf),
                  "--plugin-dir", "/usr/lib/cni", "--cache-dir", os.path.join(self.dir, "cni-cache"),
                  "--container-id", "bench-cni-cost"]
        add = self.ns([b.kennel, "cni", "add", *common, "--netns", self.cni_ns])
        dele = self.ns([b.kennel, "cni", "del", *common])
        res = {"kennel cni add": [], "kennel cni del": []}
        for i in range(2 + rounds):
            a = bench.timed(add)
            d = bench.timed(dele)
            if i >= 2:
                res["kennel cni add"].append(a * 1000)
                res["kennel cni del"].append(d * 1000)
        return {t: {"ms": v, **bench.summary(v)} for t, v in res.items()}

    def measure(self):
        b = self.b
        self.make_peer_ns()
        store = self.kennel()
        tools = {"kennel, network none": self.ns(self.k.cmd("start", "none")),
                 "kennel, network bridge": self.ns(self.k.cmd("start", "bridge"))}
        tools.update({t: self.ns(c) for t, c in self.crun_bundles(store).items()})
        podman, why = self.podman_setup()
        if podman:
            tools.update({t: self.ns(c) for t, c in podman.items()})
        else:
            b.r["skipped"]["net: podman"] = why
        n, ni = (5, 3) if b.quick else (40, 20)
        bench.log(f"net: container start, network none/bridge, {n} interleaved rounds"
                  + ("" if podman else f" (podman skipped: {why})"))
        warm, isolated = b.warm_and_isolated(tools, n, ni, self.k.env)
        res = {"start": warm, "start_isolated": isolated}
        # The bridge unit's lease: it was given an address on the network (and the other none).
        leases = os.path.join(b.work, "k-net", "state", "networks", "kennel", "leases.json")
        try:
            with open(leases) as f:
                res["leases"] = json.load(f).get("leases", {})
        except (OSError, ValueError) as e:
            raise bench.Failed(f"no leases of the bridge unit ({leases}: {e})")
        if "bridge" not in res["leases"] or "none" in res["leases"] or "named" not in res["leases"]:
            raise bench.Failed(f"leases {res['leases']}: the bridge units should have one, the other none")
        bench.log("net: the CNI path's own cost (kennel cni add / del)")
        res["cni"] = self.cni_cost(5 if b.quick else 40)
        res["cni"]["how"] = "bridge + host-local, one .conf, Debian's containernetworking-plugins"
        res["versions"] = {
            "podman": run(["podman", "--version"]).stdout.strip(),
            "netavark": run(["dpkg-query", "-W", "-f=${Version}", "netavark"]).stdout.strip(),
            "plugins": run(["dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins"]).stdout.strip(),
            "crun": run(["crun", "--version"]).stdout.splitlines()[0] if shutil.which("crun") else "?"}
        bench.log("net: DNS lookups of a unit's name")
        nq = 50 if b.quick else 2000
        res["dns"] = self.dns_latency(nq)
        if podman:
            aardvark, why = self.aardvark_latency(nq)
            if aardvark:
                res["dns_aardvark"] = aardvark
            else:
                b.r["skipped"]["net: aardvark-dns"] = why
        return res

    def dns_latency(self, n):
        """Lookups of `named` (a running unit on the bridge) from kennel's DNS server on the
        gateway, asked from inside named's network namespace (the path a container's query
        takes); microseconds each."""
        gw = "10.89.0.1"
        daemon = self.k.daemon_pid()
        # named's pinned namespace: a mount in kennel's mount namespace (`named`, or
        # `named+1`, the slot of its next run).
        pins = os.path.join(self.b.work, "k-net", "state", "netns")
        with open(f"/proc/{daemon}/mountinfo") as f:
            mounted = {line.split()[4] for line in f}
        pin = [p for p in (os.path.join(pins, "named"), os.path.join(pins, "named+1")) if p in mounted]
        if len(pin) != 1:
            raise bench.Failed(f"named's network namespace: {pin or 'none'} mounted under {pins}")
        r = run(["nsenter", "-t", str(daemon), "--mount", "--", "nsenter", f"--net={pin[0]}", "--",
                 "python3", "-c", DNS_CLIENT, "named", gw, str(n)], timeout=300)
        if r.returncode != 0:
            raise bench.Failed(f"DNS lookups of named at {gw}: {r.stderr.strip()[-400:]}")
        us = json.loads(r.stdout)
        return {"us": us, **bench.summary(us), "server": gw, "name": "named",
                "client": "python3 UDP socket in named's network namespace, one query at a time"}

    def aardvark_latency(self, n):
        """The same lookups from aardvark-dns (podman's DNS server, started by netavark for a
        network of the bench's own, which has DNS): `named`, a running podman container on
        it, asked from inside its network namespace. (None, why) if podman cannot."""
        pm = self.podman
        r = run(self.ns(pm + ["network", "create", "--subnet", "10.78.0.0/24", "kbdns"]))
        if r.returncode != 0:
            return None, f"podman network create: {r.stderr.strip()[-300:]}"
        self.podman_net = "kbdns"
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
        r = run(self.ns(pm + ["run", "-d", "--name", "named", "--network", "kbdns",
                              "--ulimit", f"nofile={hard}:{hard}", "--ulimit", "nproc=1000:1000",
                              IMAGE, "/bin/sleep", "1000000"]), timeout=120)
        if r.returncode != 0:
            return None, f"podman run -d --network kbdns: {r.stderr.strip()[-300:]}"
        pid = run(self.ns(pm + ["inspect", "-f", "{{.State.Pid}}", "named"])).stdout.strip()
        gw = "10.78.0.1"
        r = run(["nsenter", f"--net=/proc/{pid}/ns/net", "--",
                 "python3", "-c", DNS_CLIENT, "named", gw, str(n)], timeout=300)
        if r.returncode != 0:
            return None, f"lookups of named at aardvark-dns {gw}: {r.stderr.strip()[-300:]}"
        us = json.loads(r.stdout)
        v = run(["dpkg-query", "-W", "-f=${Version}", "aardvark-dns"]).stdout.strip()
        return {"us": us, **bench.summary(us), "server": gw, "name": "named", "version": v}, None

    def cleanup(self):
        if self.k:
            self.k.close()
        for cid in self.crun_ids:
            subprocess.run(self.b.oci("crun", "delete", "-f", cid), stdout=DEVNULL, stderr=DEVNULL)
        if self.podman:
            subprocess.run(self.ns(self.podman + ["rm", "-af", "-t", "0"]), stdout=DEVNULL, stderr=DEVNULL)
            if self.podman_net:
                subprocess.run(self.ns(self.podman + ["network", "rm", "-f", self.podman_net]),
                               stdout=DEVNULL, stderr=DEVNULL)
            subprocess.run(self.ns(self.podman + ["rmi", "-f", IMAGE]), stdout=DEVNULL, stderr=DEVNULL)
            mounts = []
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    mp = line.split()[4]
                    if mp.startswith(self.podman_dir + "/"):
                        mounts.append(mp)
            for mp in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], stderr=DEVNULL)
        if self.cni_ns_made:
            subprocess.run(self.ns([self.b.kennel, "cni", "del", "--network", CNI_NET,
                                    "--conf-dir", os.path.dirname(self.conf), "--plugin-dir", "/usr/lib/cni",
                                    "--cache-dir", os.path.join(self.dir, "cni-cache"),
                                    "--container-id", "bench-cni-cost"]), stdout=DEVNULL, stderr=DEVNULL)
            subprocess.run(["umount", self.cni_ns], stderr=DEVNULL)
        for f in ("crun-cni.netns",):
            p = os.path.join(self.dir, f)
            if os.path.exists(p):
                subprocess.run(["umount", p], stderr=DEVNULL)
        for p in self.inns:
            subprocess.run(["umount", p], stderr=DEVNULL)


def measure(b):
    n = Net(b)
    try:
        return n.measure()
    finally:
        n.cleanup()


def targets(net):
    st = net["start"]
    a, c = st["kennel, network bridge"]["p50"], st["kennel, network none"]["p50"]
    return [("container start, network bridge − none < 1 ms (p50, warm runs)",
             f"{bench.ms(a)} vs {bench.ms(c)} (ratio {bench.ratio(a, c)}), {a - c:+.2f} ms", a - c < 1.0)]


def section(net):
    from bench import ms, ratio
    L = ["## 11. Networks (issue 15)", ""]
    v = net["versions"]
    L.append("What a network costs a container start. The start section's container (`/bin/true`, "
             "namespaces pid, mount, uts, ipc, net, a 64M memory limit, the two busybox layers) with "
             "no network but `lo` and on a bridge, for kennel and its peers, interleaved in one run. "
             "Everything runs in network namespaces the benchmark made: `kennel up` in one of its own "
             "(`unshare --net`), every other command under `nsenter --net` in a second one.")
    L.append("")
    L.append("- **kennel**: `kennel start NAME` of a oneshot unit, `network = \"none\"` or `network = "
             "\"bridge\"` (the built-in network `kennel`: a lease, a namespace pinned under the state "
             "directory, a veth on `kennel0` renamed `eth0` inside, its address and default route; all "
             "rtnetlink from the daemon; the network's firewall base made at its first start, no "
             "published port).")
    L.append(f"- **crun + CNI**: `crun run` of the start section's bundle (its own network namespace), "
             f"and the same container on the CNI `bridge` plugin with `host-local` IPAM (Debian's "
             f"containernetworking-plugins {v['plugins']}; `ipMasq` off, no portmap/firewall: no "
             "iptables), driven the way a runtime does it: a `/bin/sh` script pinning a namespace "
             "(`unshare --net=FILE`), the plugin's ADD (CNI_* set), `crun run` in that namespace, the "
             "plugin's DEL, the file removed.")
    if any(t.startswith("podman") for t in net["start"]):
        L.append(f"- **podman**: `podman run --rm` of an image of the same layers, `--network none` "
                 f"and `--network bridge` ({v['podman']}, netavark {v['netavark']}: its default network, "
                 "with netavark's iptables rules), a store of the bench's own.")
    L.append("")
    L.append("Warm runs (each timed run right after an untimed run of the same command):")
    L.append("")
    L.append(net_table(net["start"]))
    L.append("")
    si = net.get("start_isolated")
    if si:
        L.append(f"Isolated runs (each after {bench.ISOLATION_S * 1000:.0f} ms in which nothing of the benchmark ran):")
        L.append("")
        L.append(net_table(si))
        L.append("")
    c = net["cni"]
    L.append("**The CNI path's own cost**: `kennel cni add` and `kennel cni del` (kennel's runtime side "
             "of CNI, the child process the daemon runs for `network = \"cni:NAME\"`) of the same "
             f"network ({c['how']}), alternating, each timed; the container's namespace made once. "
             "These are the two calls the daemon makes at a `cni:NAME` unit's start and end "
             "(integration/cni_units.rs); a unit's start on a CNI network is not timed here.")
    L.append("")
    L.append("| operation | runs | p50 | p90 | min | max |")
    L.append("|---|---|---|---|---|---|")
    for t in ("kennel cni add", "kennel cni del"):
        d = c[t]
        L.append(f"| {t} | {d['n']} | {ms(d['p50'])} | {ms(d['p90'])} | {ms(d['min'])} | {ms(d['max'])} |")
    L.append("")
    d = net.get("dns")
    if d:
        L.append(f"**DNS lookup of a unit name**: the A record of `{d['name']}` (a running container on "
                 f"the bridge) from kennel's DNS server on the gateway {d['server']}, asked the way a container "
                 f"asks ({d['client']}, its own overhead included), each query timed alone. "
                 + ("Beside it, the same lookups of a podman container's name from aardvark-dns "
                    f"{net['dns_aardvark']['version']} (podman's DNS server, run by netavark for a network "
                    "of the bench's own, `podman network create`), asked from inside that container's "
                    "network namespace by the same client, in the same run."
                    if net.get("dns_aardvark") else "No peer beside it in this run (see Skipped)."))
        L.append("")
        L.append("| lookup | runs | p50 | p90 | min | max | kennel/this (p50) |")
        L.append("|---|---|---|---|---|---|---|")
        rows = [("kennel's DNS, a unit name (A, UDP)", d)]
        if net.get("dns_aardvark"):
            rows.append(("aardvark-dns, a container name (A, UDP)", net["dns_aardvark"]))
        for t, x in rows:
            rel = "-" if x is d else bench.ratio(d["p50"], x["p50"])
            L.append(f"| {t} | {x['n']} | {x['p50']:.1f} µs | {x['p90']:.1f} µs | {x['min']:.1f} µs | "
                     f"{x['max']:.1f} µs | {rel} |")
        L.append("")
    return L


def net_table(d):
    """The rows, and each network's cost over the same tool without one."""
    from bench import ms
    pairs = {"kennel, network bridge": "kennel, network none",
             "crun run + CNI bridge": "crun run",
             "podman run --network bridge": "podman run --network none"}
    rows = ["| tool | runs | p50 | p90 | min | max | network's cost (p50) | network's cost (p90) | kennel bridge/tool (p50) |",
            "|---|---|---|---|---|---|---|---|---|"]
    kb = d["kennel, network bridge"]["p50"]
    for name, x in d.items():
        base = pairs.get(name)
        cost50 = f"{x['p50'] - d[base]['p50']:+.2f} ms" if base in d else "-"
        cost90 = f"{x['p90'] - d[base]['p90']:+.2f} ms" if base in d else "-"
        rows.append(f"| {name} | {x['n']} | {ms(x['p50'])} | {ms(x['p90'])} | {ms(x['min'])} | {ms(x['max'])} | "
                    f"{cost50} | {cost90} | {'-' if name == 'kennel, network bridge' else bench.ratio(kb, x['p50'])} |")
    return "\n".join(rows)
