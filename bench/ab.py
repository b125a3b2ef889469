#!/usr/bin/env python3
"""Two kennel binaries side by side (a before/after check of a change), on bench.py's setup.

    python3 bench/ab.py OLD NEW [--rounds 100] [--isolated 40] [--restart-rounds 4]
                        [--restart-s 3] [--cpu-blocks N] [--seed S] [--json FILE]

As root (docs/performance.md, "Issue 14 refactor: before and after", shows a use). For each
binary: a `kennel up` with bench.py's three start units (`ctr`, `bare`, `plain`, on the
same two busybox layers, imported into that daemon's store by that binary's `kennel layer
import`), one with its exec unit (`box`) and one with a restart unit (`flap`); each daemon
PID 1 of its own pid namespace, with its own state, socket and cgroup. Start and exec of
both binaries are timed in one loop, in bench.py's two orders (`Bench.warm_and_isolated`:
"warm", each timed run right after an untimed run of the same binary and unit, and
"isolated", after a pause), so that the machine's load hits both alike. Restart: the
`flap` unit of each binary in turn (shuffled per round), restarts per second over
--restart-s. With --cpu-blocks, CPU time per start and per exec (daemon, zygote, unit
cgroups, client), in blocks of 50 runs, the binaries in turn. Prints, per tool, p50 and
p10-p90, new/old of the p50s and the median of the per-round ratios, each with a bootstrap
90% interval. Runs itself in a private mount namespace, as bench/run.sh runs bench.py
(whose setup masks a cgroup file for crun there); the daemons run outside it.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench.py, beside this file)


pct = bench.pct


def boot_ratio(old, new, rng, n=2000):
    """The 5th and 95th percentiles of p50(new)/p50(old) over bootstrap resamples."""
    rs = []
    for _ in range(n):
        a = [rng.choice(old) for _ in old]
        b = [rng.choice(new) for _ in new]
        rs.append(pct(b, 50) / pct(a, 50))
    return pct(rs, 5), pct(rs, 95)


def paired_ratio(old, new, rng, n=2000):
    """The median of the per-round ratios new/old (both runs of a round were made within a
    few ms of each other, so the load moves both alike) and its bootstrap 90% interval."""
    rs = [b / a for a, b in zip(old, new)]
    meds = [pct([rng.choice(rs) for _ in rs], 50) for _ in range(n)]
    return pct(rs, 50), pct(meds, 5), pct(meds, 95)


def sched_ns(pid):
    """CPU time of all of pid's threads so far, in ns (/proc/PID/task/*/schedstat)."""
    t = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                t += int(f.read().split()[0])
    except OSError:
        pass
    return t


def cgroup_ns(k):
    """CPU time of everything that ran in the daemon's unit cgroups (helpers, the
    container's init and service, exec helpers), removed ones included, in ns."""
    with open(f"{bench.CGROOT}/unified{k.cg}/cpu.stat") as f:
        for line in f:
            if line.startswith("usage_usec"):
                return int(line.split()[1]) * 1000
    return 0


def cpu_snapshot(k):
    """CPU so far of: the daemon, its zygote, its unit cgroups, this script's children (the
    clients), in ns."""
    d = k.daemon_pid()
    zyg = [p for p in bench.children(d) if bench.comm(p) in ("exe", "kennel-zygote")]
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [sched_ns(d), sum(sched_ns(p) for p in zyg), cgroup_ns(k),
            (ru.ru_utime + ru.ru_stime) * 1e9]


def supports_socket(kennel):
    """Whether this binary's store commands take --socket (those after issue 14 do)."""
    r = subprocess.run([kennel, "layer", "import", "--help"], capture_output=True, text=True)
    return "--socket" in r.stdout


class Side:
    """One binary's three daemons."""

    def __init__(self, tag, kennel, b0, work, outer_ns):
        args = types.SimpleNamespace(quick=False, out=work, work=work, kennel=kennel, horust="",
                                     outer_ns=outer_ns)
        self.b = bench.Bench(args)
        self.b.bb1, self.b.bb2 = b0.bb1, b0.bb2
        self.tag = tag
        self.daemons = []
        state = os.path.join(work, f"k-start-{tag}", "state")
        no_units = os.path.join(work, "no-units")
        os.makedirs(no_units, exist_ok=True)
        sock = ["--socket", os.path.join(work, "no-daemon.sock")] if supports_socket(kennel) else []
        for name, d in (("bb1", b0.bb1), ("bb2", b0.bb2)):
            subprocess.run([kennel, "layer", "import", "--name", name, "--state-dir", state,
                            "--units", no_units, *sock, d], check=True, stdout=bench.DEVNULL)
        ct = self.b.container_toml
        self.start = self.daemon(f"start-{tag}", {
            "ctr": ct(["/bin/true"], True, True, ["bb1", "bb2"]),
            "bare": ct(["/bin/true"], True, False, ["bb1", "bb2"]),
            "plain": ct(["/bin/true"], True, True),
        })
        self.exec = self.daemon(f"exec-{tag}", {"box": ct(["/bin/sleep", "1000000"], False, True)})
        self.stampf = os.path.join(work, f"stamps-{tag}")
        self.flap = self.daemon(f"restart-{tag}", {"flap": (
            f'[service]\ncommand = {json.dumps([os.path.join(work, "stamp"), self.stampf])}\n\n'
            '[restart]\npolicy = "always"\ndelay = "0s"\nburst = 100000000\ninterval = "1s"\n')})

    def daemon(self, name, units):
        k = bench.Kennel(self.b, name, units)
        self.daemons.append(k)
        return k

    def ready(self):
        bench.wait_until(f"{self.tag}: the oneshots' first runs",
                         lambda: all(u["state"] != "starting" for u in self.start.status()))
        bench.wait_until(f"{self.tag}: box up", lambda: self.exec.count_up() == 1)
        bench.wait_until(f"{self.tag}: first restarts", lambda: len(self.stamps()) > 10, timeout=60)
        self.flap.client("stop", "flap")

    def stamps(self):
        try:
            with open(self.stampf) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def tools(self):
        t = self.tag
        return {f"{t} start ctr": self.start.cmd("start", "ctr"),
                f"{t} start bare": self.start.cmd("start", "bare"),
                f"{t} start plain": self.start.cmd("start", "plain"),
                f"{t} exec": self.exec.cmd("exec", "box", "/bin/true")}

    def restart_segment(self, seconds):
        """Restarts per second of `flap` over `seconds`, and the exit -> next start gaps."""
        n0 = len(self.stamps())
        subprocess.run(self.flap.cmd("start", "flap"), stdin=bench.DEVNULL, stdout=bench.DEVNULL,
                       stderr=bench.DEVNULL, timeout=60)
        bench.wait_until("restarts", lambda: len(self.stamps()) > n0 + 10, timeout=60, every=0.01)
        time.sleep(0.3)
        a, t0 = len(self.stamps()), time.monotonic()
        time.sleep(seconds)
        b, t1 = len(self.stamps()), time.monotonic()
        self.flap.client("stop", "flap")
        rows = [tuple(map(float, line.split())) for line in self.stamps()[a:b]]
        gaps = [(rows[i + 1][0] - rows[i][1]) * 1000 for i in range(len(rows) - 1)]
        return (b - a) / (t1 - t0), gaps

    def cpu_block(self, case, n):
        """CPU per run (ms) of n runs of `case` ("start" or "exec") in a row: the daemon,
        its zygote, its unit cgroups, the client."""
        k, cmd = (self.start, self.start.cmd("start", "ctr")) if case == "start" else \
            (self.exec, self.exec.cmd("exec", "box", "/bin/true"))
        bench.timed(cmd)
        time.sleep(0.3)  # the previous run's teardown after its reply
        a = cpu_snapshot(k)
        for _ in range(n):
            bench.timed(cmd)
        time.sleep(0.5)
        b = cpu_snapshot(k)
        return [(y - x) / n / 1e6 for x, y in zip(a, b)]

    def close(self):
        for k in self.daemons:
            k.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=100, help="warm rounds (default 100)")
    ap.add_argument("--isolated", type=int, default=40, help="isolated rounds (default 40)")
    ap.add_argument("--restart-rounds", type=int, default=4)
    ap.add_argument("--restart-s", type=float, default=3.0)
    ap.add_argument("--cpu-blocks", type=int, default=0,
                    help="also CPU time per run: this many blocks of 50 starts and of 50 execs "
                         "per binary, the binaries in turn (default 0: not measured)")
    ap.add_argument("--json", default="", help="write the raw times here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--outer-ns", default="", help=argparse.SUPPRESS)
    ap.add_argument("--work", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/ab.py: needs root (namespaces, cgroups, mounts)")
    if not a.inner:
        work = tempfile.mkdtemp(prefix="kennel-ab.")
        os.chmod(work, 0o755)
        try:
            cmd = ["unshare", "--mount", "--propagation", "private", "--", sys.executable,
                   os.path.abspath(__file__), "--inner", "--outer-ns", f"/proc/{os.getpid()}/ns/mnt",
                   "--work", work, os.path.abspath(a.old), os.path.abspath(a.new),
                   "--rounds", str(a.rounds), "--isolated", str(a.isolated),
                   "--restart-rounds", str(a.restart_rounds), "--restart-s", str(a.restart_s),
                   "--seed", str(a.seed), "--cpu-blocks", str(a.cpu_blocks)]
            if a.json:
                cmd += ["--json", os.path.abspath(a.json)]
            sys.exit(subprocess.run(cmd).returncode)
        finally:
            subprocess.run(["rm", "-rf", work])
    args = types.SimpleNamespace(quick=False, out=a.work, work=a.work, kennel=a.old, horust="",
                                 outer_ns=a.outer_ns)
    b0 = bench.Bench(args)
    b0.rng = random.Random(a.seed)
    sides = []
    try:
        b0.setup()
        bench.log("starting the daemons of both binaries")
        sides = [Side(tag, k, b0, a.work, a.outer_ns) for tag, k in (("old", a.old), ("new", a.new))]
        for s in sides:
            s.ready()
        tools = {**sides[0].tools(), **sides[1].tools()}
        bench.log(f"start and exec: {a.rounds} warm and {a.isolated} isolated rounds, interleaved")
        load0 = os.getloadavg()
        warm, iso = b0.warm_and_isolated(tools, a.rounds, a.isolated, None)
        restart = {s.tag: {"per_s": [], "gaps": []} for s in sides}
        bench.log(f"restart: {a.restart_rounds} rounds of {a.restart_s}s each")
        for _ in range(a.restart_rounds):
            order = list(sides)
            b0.rng.shuffle(order)
            for s in order:
                per_s, gaps = s.restart_segment(a.restart_s)
                restart[s.tag]["per_s"].append(per_s)
                restart[s.tag]["gaps"] += gaps
        cpu = {}
        if a.cpu_blocks:
            bench.log(f"CPU per run: {a.cpu_blocks} blocks of 50 runs per binary")
        for case in ("start", "exec"):
            for _ in range(a.cpu_blocks):
                order = list(sides)
                b0.rng.shuffle(order)
                for s in order:
                    cpu.setdefault(f"{s.tag} {case}", []).append(s.cpu_block(case, 50))
        load1 = os.getloadavg()
    finally:
        for s in sides:
            s.close()
        b0.cleanup()
    rng = random.Random(2)
    out = [f"load average {load0[0]:.2f} -> {load1[0]:.2f}; p50 (p10-p90) in ms", ""]
    for label, res in (("warm", warm), ("isolated", iso)):
        out += [f"### {label}", "", "| what | runs | old | new | new/old of the p50s (90% bootstrap) "
                "| new/old per round, median (90% bootstrap) |", "|---|---|---|---|---|---|"]
        for what in ("start ctr", "start bare", "start plain", "exec"):
            o, n = res[f"old {what}"]["ms"], res[f"new {what}"]["ms"]
            lo, hi = boot_ratio(o, n, rng)
            pm, plo, phi = paired_ratio(o, n, rng)
            out.append(f"| {what} | {len(o)} | {pct(o, 50):.2f} ({pct(o, 10):.2f}-{pct(o, 90):.2f}) | "
                       f"{pct(n, 50):.2f} ({pct(n, 10):.2f}-{pct(n, 90):.2f}) | "
                       f"{pct(n, 50) / pct(o, 50):.3f} ({lo:.3f}-{hi:.3f}) | {pm:.3f} ({plo:.3f}-{phi:.3f}) |")
        out.append("")
    out += ["### restart", "", "| binary | segments | restarts/s p50 (min-max) | exit -> next start p50 (p10-p90) |",
            "|---|---|---|---|"]
    for tag in ("old", "new"):
        r, g = restart[tag]["per_s"], restart[tag]["gaps"]
        out.append(f"| {tag} | {len(r)} | {pct(r, 50):.0f} ({min(r):.0f}-{max(r):.0f}) | "
                   f"{pct(g, 50):.3f} ({pct(g, 10):.3f}-{pct(g, 90):.3f}) ms |")
    if cpu:
        out += ["", "### CPU per run", "", "ms, median of the blocks (min-max)", "",
                "| what | blocks | daemon | zygote | unit cgroups | client | sum |", "|---|---|---|---|---|---|---|"]
        for key in [f"{t} {c}" for c in ("start", "exec") for t in ("old", "new") if f"{t} {c}" in cpu]:
            rows = cpu[key]
            cols = list(zip(*rows))
            out.append(f"| {key} | {len(rows)} | "
                       + " | ".join(f"{pct(c, 50):.3f} ({min(c):.3f}-{max(c):.3f})" for c in cols)
                       + f" | {pct([sum(r) for r in rows], 50):.3f} |")
    print("\n".join(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load": [load0, load1], "warm": warm, "isolated": iso, "restart": restart,
                       "cpu": cpu}, f)


if __name__ == "__main__":
    main()
