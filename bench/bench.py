#!/usr/bin/env python3
"""kennel side by side with crun, runc, tini, s6, busybox init (and Horust when it built).

Run by bench/run.sh, which installs the peers, builds what is needed and starts this script
in a private mount namespace (where the overlays of the OCI bundles are mounted and where
crun's cgroup.controllers mask lives). kennel itself runs in the outer mount namespace
(`nsenter --mount=OUTER`), unmasked: it needs no such trick. Standard library only.

Every measurement interleaves kennel and its peers (round i runs each tool once, in a
shuffled order) so that noise on this shared machine hits them alike. Container start and
exec are measured in two orders, their rounds alternating (`Bench.warm_and_isolated`):
"warm", each timed run right after an untimed run of the same tool (each tool's own
steady state, what a loop of that tool alone measures; the targets are judged on it), and
"isolated", each timed run after a pause in which nothing of the benchmark ran. Never a
timed run right after another tool's run: what one tool leaves to the kernel for later
(a grace period's state, namespaces torn down after the reply) would be timed as the
next tool's, and crun's and runc's `cgroup.procs` writes are fast only within a grace
period of the previous one (docs/performance.md, "A fair baseline"). Nothing here
asserts a time: the targets are reported as met or not.
"""

import argparse
import datetime
import html
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVNULL = subprocess.DEVNULL
UNSHARE_PID = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child", "--"]
CGROOT = "/sys/fs/cgroup"
# The pause before an isolated run: longer than an RCU grace period here even under load
# (5-20 ms) and than what a run leaves to finish after it returned.
ISOLATION_S = 0.25


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------

def pct(xs, p):
    """Percentile p (0..100), linear interpolation between closest ranks."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p90": pct(xs, 90),
            "min": min(xs) if xs else float("nan"), "max": max(xs) if xs else float("nan")}


def ms(x):
    if x != x:
        return "-"
    if x >= 100:
        return f"{x:.0f} ms"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.2f} ms"


def ratio(a, b):
    if not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}"


# --- processes ----------------------------------------------------------------------------

def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def rss_pss_kb(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_ns(pid):
    """CPU time of pid, all its threads, in ns: utime + stime of /proc/PID/stat, which for a
    process counts the threads that already ended too (the per-thread schedstat is finer,
    but a thread that ends between two readings, such as a pool thread retiring after
    10 s idle, takes its time out of the sum and can make it negative)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # After the command: state is field 3; utime and stime are fields 14 and 15.
        ticks = int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def wait_until(what, cond, timeout=120.0, every=0.05):
    end = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def kill_tree(proc):
    """SIGKILL a process we started (an `unshare --kill-child`: its pid namespace dies)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def rm_cgroup(rel):
    """Remove the cgroup `rel` (and what is below it) in every hierarchy, bottom up."""
    for h in os.listdir(CGROOT):
        top = os.path.join(CGROOT, h, rel.lstrip("/"))
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


class Failed(Exception):
    pass


def timed(cmd, env=None, timeout=120):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdin=DEVNULL, stdout=DEVNULL, stderr=subprocess.PIPE, env=env,
                       timeout=timeout)
    t1 = time.perf_counter()
    if r.returncode != 0:
        raise Failed(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()[-400:]}")
    return t1 - t0


# --- kennel daemons --------------------------------------------------------------------

class Kennel:
    """`kennel up` as PID 1 of its own pid + mount namespace, in the outer mount namespace,
    with its own units, state, logs, socket and cgroup parent."""

    def __init__(self, b, name, units, net=False):
        """net: in a network namespace of its own too (bench/net.py: its bridges and veths
        exist only there)."""
        self.b = b
        self.dir = os.path.join(b.work, "k-" + name)
        for d in ("units", "logs", "state"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for unit, text in units.items():
            with open(os.path.join(self.dir, "units", unit + ".toml"), "w") as f:
                f.write(text)
        self.sock = os.path.join(self.dir, "k.sock")
        self.cg = f"/kennel-bench-{os.getpid()}-{name}"
        self.env = dict(os.environ, KENNEL_SOCKET=self.sock)
        self.out = open(os.path.join(self.dir, "kennel.out"), "w")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(
            b.outer + (UNSHARE_PID[:-1] + ["--net", "--"] if net else UNSHARE_PID)
            + [b.kennel, "up", "--units", os.path.join(self.dir, "units"),
                                     "--log-dir", os.path.join(self.dir, "logs"),
                                     "--state-dir", os.path.join(self.dir, "state"),
                                     "--socket", self.sock, "--cgroup-parent", self.cg, "--quiet"],
            stdin=DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
            env=dict(os.environ, KENNEL_LOG="warn"))
        b.procs.append(self.proc)

        def connectable():
            if self.proc.poll() is not None:
                raise RuntimeError(f"kennel up exited {self.proc.returncode}: see {self.out.name}")
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.sock)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until("kennel's control socket", connectable, timeout=300, every=0.01)

    def cmd(self, sub, *args):
        return [self.b.kennel, sub, "--socket", self.sock, *args]

    def client(self, *args, timeout=600):
        r = subprocess.run(self.cmd(*args), stdin=DEVNULL, capture_output=True, env=self.env,
                           timeout=timeout)
        if r.returncode != 0:
            raise Failed(f"kennel {' '.join(args)}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()[-400:]}")
        return r.stdout.decode()

    def status(self):
        return json.loads(self.client("status", "--json"))

    def count_up(self):
        return sum(1 for u in self.status() if u.get("state") == "up")

    def daemon_pid(self):
        """The host pid of `kennel up` (the child of unshare: PID 1 of its namespace)."""
        wait_until("kennel's pid", lambda: children(self.proc.pid), timeout=30, every=0.01)
        return children(self.proc.pid)[0]

    def pids(self):
        """kennel's own processes: the daemon and every helper/in-container init (processes
        running the kennel binary), not the services."""
        d = self.daemon_pid()
        real = os.path.realpath(self.b.kennel)
        return [d] + [p for p in descendants(d) if exe(p).split(" (deleted)")[0] == real]

    def close(self):
        try:
            if self.proc.poll() is None:
                subprocess.run(self.cmd("shutdown"), env=self.env, stdin=DEVNULL, stdout=DEVNULL,
                               stderr=DEVNULL, timeout=300)
                self.proc.wait(timeout=120)
        except (subprocess.TimeoutExpired, OSError):
            log(f"kennel in {self.dir} did not shut down; killing its namespace")
        kill_tree(self.proc)
        self.out.close()
        rm_cgroup(self.cg)


# --- the benchmark ------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.quick = a.quick
        self.out = os.path.abspath(a.out)
        self.work = a.work
        self.kennel = os.path.abspath(a.kennel)
        self.horust = a.horust
        self.kennel_static = os.path.abspath(a.kennel_static) if a.kennel_static else ""
        self.entrypoint_live = None
        self.outer = ["nsenter", f"--mount={a.outer_ns}", "--"] if a.outer_ns else []
        self.procs = []
        self.mounts = []
        self.r = {"quick": self.quick, "skipped": {}, "notes": {}}
        self.rng = random.Random(1)
        self.cg_oci = f"/kennel-bench-{os.getpid()}-oci"
        q = self.quick
        self.n_start = 5 if q else 60
        self.n_start_isolated = 3 if q else 30
        self.n_exec = 5 if q else 100
        self.n_exec_isolated = 3 if q else 30
        self.n_status = 10 if q else 200
        self.n_reap_rounds = 1 if q else 5
        self.n_orphans = 2000 if q else 20000
        self.footprint_ns = [1, 100] if q else [1, 100, 1000]
        self.idle_s = 10 if q else 60
        self.n_vm = 1 if q else 5
        self.n_disk = 1 if q else 5
        self.scale_n = 100 if q else 1000
        self.scale_rounds = 2 if q else 5
        self.restart_s = 2 if q else 10

    # --- shared setup ---
    def setup(self):
        os.makedirs(self.work, exist_ok=True)
        lay = os.path.join(self.work, "layers")
        # Two busybox layers: the binary and the skeleton below, the applet links and /etc above.
        full = os.path.join(lay, "full")
        subprocess.run(["bash", os.path.join(REPO, "examples/layers/busybox.sh"), full],
                       check=True, stdout=DEVNULL)
        self.bb1, self.bb2 = os.path.join(lay, "bb1"), os.path.join(lay, "bb2")
        shutil.copytree(full, self.bb1, symlinks=True,
                        ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))
                                                 or (d == full and n == "etc")])
        os.makedirs(os.path.join(self.bb1, "etc"), exist_ok=True)
        shutil.copytree(full, self.bb2, symlinks=True,
                        ignore=lambda d, names: [n for n in names if not os.path.isdir(os.path.join(d, n))
                                                 and not os.path.islink(os.path.join(d, n))
                                                 and not d.startswith(os.path.join(full, "etc"))])
        shutil.rmtree(full)
        # Helpers (C, static when the toolchain can).
        for prog in ("orphans", "stamp"):
            src = os.path.join(REPO, "bench", prog + ".c")
            dst = os.path.join(self.work, prog)
            if subprocess.run(["cc", "-O2", "-static", "-o", dst, src], stderr=DEVNULL).returncode != 0:
                subprocess.run(["cc", "-O2", "-o", dst, src], check=True)
        # crun refuses hybrid cgroups unless cgroup v2's controllers look empty: mask them
        # in this (private) mount namespace only. kennel runs outside it.
        empty = os.path.join(self.work, "empty")
        open(empty, "w").close()
        ctl = os.path.join(CGROOT, "unified", "cgroup.controllers")
        if os.path.exists(ctl):
            subprocess.run(["mount", "--bind", empty, ctl], check=True)
            self.mounts.append(ctl)

    def container_toml(self, command, oneshot, defaults, layers=None):
        t = "[service]\ncommand = " + json.dumps(command) + "\n"
        if oneshot:
            t += 'type = "oneshot"\n\n[restart]\npolicy = "no"\n'
        t += "\n[container]\n" + f"rootfs = {json.dumps(layers or [self.bb1, self.bb2])}\n"
        t += 'namespaces = ["pid", "mount", "uts", "ipc", "net"]\n'
        if not defaults:
            # What the OCI bundle does: no init process, no seccomp filter.
            t += 'init = false\nseccomp = "unconfined"\n'
        t += '\n[resources]\nmemory_max = "64M"\n'
        return t

    def bundle(self, name, args, layers=None):
        """An OCI bundle (crun's default spec: namespaces pid, network, ipc, uts, mount) on an
        overlay of the same two layers (`layers`, bottom first), mounted here; a 64M memory
        limit."""
        bottom, top = layers or (self.bb1, self.bb2)
        d = os.path.join(self.work, "bundles", name)
        for sub in ("rootfs", "upper", "work"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={top}:{bottom},upperdir={d}/upper,workdir={d}/work",
                        f"{d}/rootfs"], check=True)
        self.mounts.append(f"{d}/rootfs")
        subprocess.run(["crun", "spec", "--bundle", d], check=True)
        cfgp = os.path.join(d, "config.json")
        with open(cfgp) as f:
            c = json.load(f)
        c["process"]["args"] = args
        c["process"]["terminal"] = False
        c["root"] = {"path": f"{d}/rootfs", "readonly": False}
        c["hostname"] = name
        c["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}
        c["linux"]["cgroupsPath"] = f"{self.cg_oci}/{name}"
        kinds = sorted(n["type"] for n in c["linux"]["namespaces"])
        assert kinds == ["ipc", "mount", "network", "pid", "uts"], kinds
        with open(cfgp, "w") as f:
            json.dump(c, f, indent=1)
        return d

    def oci(self, rt, *args):
        return [rt, "--root", os.path.join(self.work, rt + "-state"), *args]

    # --- 1. container start ---
    def start(self):
        log(f"container start: {self.n_start} interleaved rounds")
        # The two layers imported into kennel's store (`kennel layer import`: digest layers
        # with a name), as an image's layers are; every tool runs on those directories. The
        # third unit names the plain directories instead.
        state = os.path.join(self.work, "k-start", "state")
        no_units = os.path.join(self.work, "no-units")
        os.makedirs(no_units, exist_ok=True)
        # A store command asks the daemon on its socket (--socket, else KENNEL_SOCKET, else
        # the default one) for its directories and refuses others: name a socket where no
        # daemon listens, so that a kennel running on this machine is never asked.
        no_daemon = ["--socket", os.path.join(self.work, "no-daemon.sock")]
        store = []
        for name, d in (("bb1", self.bb1), ("bb2", self.bb2)):
            subprocess.run([self.kennel, "layer", "import", "--name", name, "--state-dir", state,
                            "--units", no_units, *no_daemon, d], check=True, stdout=DEVNULL)
            store.append(os.path.realpath(os.path.join(state, "layers", name)))
        k = Kennel(self, "start", {
            "ctr": self.container_toml(["/bin/true"], True, True, ["bb1", "bb2"]),
            "bare": self.container_toml(["/bin/true"], True, False, ["bb1", "bb2"]),
            "plain": self.container_toml(["/bin/true"], True, True),
        })
        try:
            wait_until("the oneshots' first runs",
                       lambda: all(u["state"] != "starting" for u in k.status()))
            bc = self.bundle("crun-true", ["/bin/true"], store)
            br = self.bundle("runc-true", ["/bin/true"], store)
            tools = {
                "kennel": k.cmd("start", "ctr"),
                "kennel (init=false, seccomp=unconfined)": k.cmd("start", "bare"),
                "kennel (plain directory layers)": k.cmd("start", "plain"),
                "crun run": self.oci("crun", "run", "--bundle", bc, "bench-true"),
                "runc run": self.oci("runc", "run", "--bundle", br, "bench-true"),
                "unshare (floor)": ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc",
                                    "--net", "/bin/true"],
            }
            self.r["start"], self.r["start_isolated"] = self.warm_and_isolated(
                tools, self.n_start, self.n_start_isolated, k.env)
        finally:
            k.close()
            rm_cgroup(self.cg_oci)

    def interleave(self, tools, rounds, env, warmup=2):
        times = {t: [] for t in tools}
        for i in range(warmup + rounds):
            order = list(tools)
            self.rng.shuffle(order)
            for t in order:
                s = timed(tools[t], env=env)
                if i >= warmup:
                    times[t].append(s * 1000)
        return {t: {"ms": v, **summary(v)} for t, v in times.items()}

    def warm_and_isolated(self, tools, rounds, rounds_isolated, env, warmup=2):
        """Each tool in two orders, one round of each in turn (in a random order) so that
        the machine's load hits both alike; within a round the tools in a shuffled order.
        warm: every timed run right after an untimed run of the same tool, so that what a
        run leaves behind (kernel work after it returned, a grace period's state) is met
        by its own tool's next run, never by a peer's timed one. isolated: every timed run
        after ISOLATION_S in which nothing of the benchmark ran, a start on a quiet moment."""
        warm = {t: [] for t in tools}
        isolated = {t: [] for t in tools}
        for i in range(warmup + max(rounds, rounds_isolated)):
            modes = [m for m, n in (("warm", rounds), ("isolated", rounds_isolated))
                     if i < warmup + n]
            self.rng.shuffle(modes)
            for m in modes:
                order = list(tools)
                self.rng.shuffle(order)
                for t in order:
                    if m == "warm":
                        timed(tools[t], env=env)
                    else:
                        time.sleep(ISOLATION_S)
                    s = timed(tools[t], env=env)
                    if i >= warmup:
                        (warm if m == "warm" else isolated)[t].append(s * 1000)
        def done(times):
            return {t: {"ms": v, **summary(v)} for t, v in times.items()}
        return done(warm), done(isolated)

    # --- 2. restart ---
    def restart(self):
        log(f"restart: {self.restart_s}s of a service that exits at once")
        stampf = os.path.join(self.work, "stamps")
        k = Kennel(self, "restart", {"flap": (
            f'[service]\ncommand = {json.dumps([os.path.join(self.work, "stamp"), stampf])}\n\n'
            '[restart]\npolicy = "always"\ndelay = "0s"\nburst = 100000000\ninterval = "1s"\n')})
        try:
            def lines():
                try:
                    with open(stampf) as f:
                        return f.read().splitlines()
                except OSError:
                    return []
            wait_until("the first restarts", lambda: len(lines()) > 10, timeout=60)
            time.sleep(0.5)
            a = len(lines())
            t0 = time.monotonic()
            time.sleep(self.restart_s)
            b = len(lines())
            t1 = time.monotonic()
            st = {u["name"]: u for u in k.status()}["flap"]
            k.client("stop", "flap")
            rows = [tuple(map(float, l.split())) for l in lines()[a:b]]
            gaps = [(rows[i + 1][0] - rows[i][1]) * 1000 for i in range(len(rows) - 1)]
            self.r["restart"] = {"per_s": (b - a) / (t1 - t0), "gap_ms": summary(gaps),
                                 "gaps": gaps, "state": st.get("state"),
                                 "restarts": st.get("restarts")}
        finally:
            k.close()

    # --- 3. exec ---
    def exec_(self):
        log(f"exec: {self.n_exec} interleaved rounds")
        k = Kennel(self, "exec", {"box": self.container_toml(["/bin/sleep", "1000000"], False, True)})
        started = []
        try:
            wait_until("unit box up", lambda: k.count_up() == 1)
            helper = [p for p in descendants(k.daemon_pid()) if comm(p) != "sleep"]
            sleeper = [p for p in descendants(k.daemon_pid()) if comm(p) == "sleep"]
            if not sleeper:
                raise Failed("no sleep process under kennel's box unit")
            target = sleeper[0]
            bc = self.bundle("crun-box", ["/bin/sleep", "1000000"])
            br = self.bundle("runc-box", ["/bin/sleep", "1000000"])
            subprocess.run(self.oci("crun", "run", "-d", "--bundle", bc, "bench-box"), check=True,
                           stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
            started.append("crun")
            subprocess.run(self.oci("runc", "run", "-d", "--bundle", br, "bench-box"), check=True,
                           stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
            started.append("runc")
            tools = {
                "kennel exec": k.cmd("exec", "box", "/bin/true"),
                "crun exec": self.oci("crun", "exec", "bench-box", "/bin/true"),
                "runc exec": self.oci("runc", "exec", "bench-box", "/bin/true"),
                "nsenter (floor)": ["nsenter", "-t", str(target), "-p", "-m", "-u", "-i", "-n",
                                    "/bin/true"],
            }
            self.r["exec"], self.r["exec_isolated"] = self.warm_and_isolated(
                tools, self.n_exec, self.n_exec_isolated, k.env)
            self.r["notes"]["exec"] = f"kennel helper processes of the box unit: {len(helper)}"
        finally:
            for rt in started:
                subprocess.run(self.oci(rt, "delete", "-f", "bench-box"), stdout=DEVNULL, stderr=DEVNULL)
            k.close()
            rm_cgroup(self.cg_oci)

    # --- 4. reaping ---
    def reaping(self):
        n = self.n_orphans
        log(f"reaping: {self.n_reap_rounds} rounds of {n} double-forked orphans")
        orphans = os.path.join(self.work, "orphans")
        tools = {
            "kennel run": self.outer + UNSHARE_PID + [self.kennel, "run", "--", orphans, str(n)],
            "tini": UNSHARE_PID + ["tini", "--", orphans, str(n)],
        }
        res = {t: {"total": [], "forking": [], "tail": []} for t in tools}
        for _ in range(self.n_reap_rounds):
            order = list(tools)
            self.rng.shuffle(order)
            for t in order:
                r = subprocess.run(tools[t], stdin=DEVNULL, capture_output=True, timeout=900)
                if r.returncode != 0:
                    raise Failed(f"{t}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-400:]}")
                total, forking = map(float, r.stdout.split()[-2:])
                res[t]["total"].append(total)
                res[t]["forking"].append(forking)
                res[t]["tail"].append((total - forking) * 1000)
        self.r["reaping"] = {"n": n, **{t: {"total": summary(v["total"]), "tail_ms": summary(v["tail"]),
                                            "per_s": n / pct(v["total"], 50)} for t, v in res.items()}}

    # --- 5. footprint (+ 6 control, 8 scale at 1000) ---
    def kennel_sleepers(self, n, name):
        units = {f"s{i:04d}": '[service]\ncommand = ["sleep", "infinity"]\n' for i in range(n)}
        k = Kennel(self, name, units)
        wait_until(f"{n} units up", lambda: k.count_up() == n, timeout=600, every=0.2)
        return k

    def measure(self, pids):
        rss = pss = 0
        for p in pids:
            a, b = rss_pss_kb(p)
            rss += a
            pss += b
        return {"rss_kb": rss, "pss_kb": pss, "procs": len(pids)}

    def s6(self, n):
        self.seq = getattr(self, "seq", 0) + 1
        d = os.path.join(self.work, f"s6-{n}-{self.seq}")
        for i in range(n):
            sd = os.path.join(d, f"s{i:04d}")
            os.makedirs(sd)
            with open(os.path.join(sd, "run"), "w") as f:
                f.write("#!/bin/sh\nexec sleep infinity\n")
            os.chmod(os.path.join(sd, "run"), 0o755)
        p = subprocess.Popen(UNSHARE_PID + ["s6-svscan", "-c", str(max(1000, 2 * n)), d],
                             stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        self.procs.append(p)
        try:
            wait_until(f"s6: {n} services up",
                       lambda: sum(1 for x in descendants(p.pid) if comm(x) == "sleep") == n,
                       timeout=600, every=0.2)
            time.sleep(1)
            ps = [x for x in descendants(p.pid) if comm(x) in ("s6-svscan", "s6-supervise")]
            m = self.measure(ps)
            c0 = sum(cpu_ns(x) for x in ps)
            return p, ps, m, c0
        except BaseException:
            kill_tree(p)
            raise

    def horust_run(self, n):
        self.seq = getattr(self, "seq", 0) + 1
        d = os.path.join(self.work, f"horust-{n}-{self.seq}")
        os.makedirs(d)
        for i in range(n):
            with open(os.path.join(d, f"s{i:04d}.toml"), "w") as f:
                f.write('command = "/bin/sleep infinity"\n')
        p = subprocess.Popen(UNSHARE_PID + [self.horust, "--services-path", d],
                             stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        self.procs.append(p)
        try:
            wait_until(f"horust: {n} services up",
                       lambda: sum(1 for x in descendants(p.pid) if comm(x) == "sleep") == n,
                       timeout=600, every=0.2)
            time.sleep(1)
            ps = [x for x in descendants(p.pid) if comm(x) != "sleep"]
            return self.measure(ps)
        finally:
            kill_tree(p)

    def footprint(self):
        fp = self.r.setdefault("footprint", {})
        for n in self.footprint_ns:
            log(f"footprint: {n} services (kennel, s6{', horust' if self.horust else ''})")
            row = fp.setdefault(str(n), {})
            order = ["kennel", "s6"] + (["horust"] if self.horust else [])
            self.rng.shuffle(order)
            for t in order:
                if t == "kennel":
                    k = self.kennel_sleepers(n, f"fp{n}")
                    try:
                        time.sleep(1)
                        pids = k.pids()
                        row["kennel"] = self.measure(pids)
                        if n == self.footprint_ns[-1]:
                            self.idle(k, pids, n)
                            if n >= self.scale_n:
                                self.control_and_scale(k)
                    finally:
                        k.close()
                elif t == "s6":
                    p, ps, m, c0 = self.s6(n)
                    try:
                        row["s6"] = m
                    finally:
                        kill_tree(p)
                elif t == "horust":
                    try:
                        row["horust"] = self.horust_run(n)
                    except Exception as e:  # a peer's failure is recorded, not fatal
                        self.r["skipped"]["horust footprint"] = str(e)[:300]
        if self.scale_n > self.footprint_ns[-1]:
            k = self.kennel_sleepers(self.scale_n, f"scale{self.scale_n}")
            try:
                self.control_and_scale(k)
            finally:
                k.close()

    def idle(self, k, pids, n):
        log(f"idle CPU: {n} services, {self.idle_s}s")
        time.sleep(2)
        c0 = sum(cpu_ns(p) for p in pids)
        t0 = time.monotonic()
        time.sleep(self.idle_s)
        c1 = sum(cpu_ns(p) for p in pids)
        t1 = time.monotonic()
        self.r["idle"] = {"n": n, "seconds": t1 - t0, "cpu_ms": (c1 - c0) / 1e6,
                          "percent": (c1 - c0) / 1e9 / (t1 - t0) * 100}
        # s6 over the same period, for reference.
        p, ps, _m, c0 = self.s6(n)
        try:
            t0 = time.monotonic()
            time.sleep(self.idle_s)
            c1 = sum(cpu_ns(x) for x in ps)
            t1 = time.monotonic()
            self.r["idle"]["s6_cpu_ms"] = (c1 - c0) / 1e6
        finally:
            kill_tree(p)

    def control_and_scale(self, big):
        n = self.scale_n
        log(f"control: status --json with 1 and {n} units; scale: stop/start {n} units")
        one = Kennel(self, "status1", {"s0000": '[service]\ncommand = ["sleep", "infinity"]\n'})
        try:
            wait_until("1 unit up", lambda: one.count_up() == 1)
            self.r["status"] = self.interleave({
                "1 unit": one.cmd("status", "--json"),
                f"{n} units": big.cmd("status", "--json"),
            }, self.n_status, one.env)
        finally:
            one.close()
        names = [f"s{i:04d}" for i in range(n)]
        stop, start = [], []
        for _ in range(self.scale_rounds):
            t = time.perf_counter()
            big.client("stop", *names)
            stop.append(time.perf_counter() - t)
            t = time.perf_counter()
            big.client("start", *names)
            start.append(time.perf_counter() - t)
            if big.count_up() != n:
                raise Failed(f"after start: {big.count_up()} of {n} units up")
        self.r["scale"] = {"n": n, "start_s": summary(start), "stop_s": summary(stop)}

    # --- 7. VM boot ---
    def vm(self):
        if not shutil.which("qemu-system-x86_64"):
            self.r["skipped"]["vm"] = "qemu-system-x86_64 not installed"
            return
        out = os.path.join(REPO, "target", "bench-vm")
        log("vm: building the kernel and initramfs with examples/vm/build.sh")
        # The VM's kennel is the static one (what build.sh puts in an initramfs); without
        # --kennel-static, build.sh builds it.
        env = dict(os.environ, KENNEL_VM_KERNEL_CACHE=os.environ.get(
            "KENNEL_VM_KERNEL_CACHE", os.path.join(REPO, "target", "vm-kernel")))
        env.pop("KENNEL_VM_BINARY", None)
        if self.kennel_static:
            env["KENNEL_VM_BINARY"] = self.kennel_static
        with open(os.path.join(self.work, "vm-build.log"), "w") as lf:
            r = subprocess.run(["bash", os.path.join(REPO, "examples/vm/build.sh"), out], env=env,
                               stdin=DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            self.r["skipped"]["vm"] = f"examples/vm/build.sh failed (exit {r.returncode}), see its log"
            return
        tree = os.path.join(out, "tree")
        marker = 'echo BENCH-MARKER > /dev/console'
        variants = {}
        for v in ("kennel", "busybox init"):
            t = os.path.join(self.work, "vm-" + v.split()[0])
            subprocess.run(["cp", "-a", tree, t], check=True)  # device nodes too
            if v == "kennel":
                ud = os.path.join(t, "etc/kennel/units")
                shutil.rmtree(ud)
                os.makedirs(ud)
                with open(os.path.join(ud, "marker.toml"), "w") as f:
                    f.write('[service]\ncommand = ["/bin/sh", "-c", ' + json.dumps(marker) +
                            ']\ntype = "oneshot"\n\n[restart]\npolicy = "no"\n')
                # The example's boot.toml loads overlay.ko for its containers; busybox init
                # loads no module and the marker needs none: the same work for both.
                with open(os.path.join(t, "etc/kennel/boot.toml"), "w") as f:
                    f.write("# bench.py: no module (busybox init loads none either)\nmodules = []\n")
            else:
                # Same tree (same size to unpack); /sbin/init -> busybox, kennel kept aside.
                os.rename(os.path.join(t, "sbin/init"), os.path.join(t, "sbin/kennel"))
                os.symlink("/bin/busybox", os.path.join(t, "sbin/init"))
                os.remove(os.path.join(t, "bin/kennel"))
                os.symlink("/sbin/kennel", os.path.join(t, "bin/kennel"))
                with open(os.path.join(t, "etc/inittab"), "w") as f:
                    f.write(f"::sysinit:/bin/sh -c '{marker}'\n")
            img = t + ".cpio.gz"
            subprocess.run(f"cd {t} && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 > {img}",
                           shell=True, check=True)
            variants[v] = img
        kernel = os.path.join(out, "vmlinuz")
        cmdline = "console=ttyS0 rdinit=/sbin/init panic=-1 quiet"
        res = {v: {"marker": [], "all_up": []} for v in variants}
        log(f"vm: {self.n_vm} interleaved boots each (TCG)")
        for _ in range(self.n_vm):
            order = list(variants)
            self.rng.shuffle(order)
            for v in order:
                m, up = self.boot(kernel, variants[v], cmdline, want_up=(v == "kennel"))
                res[v]["marker"].append(m * 1000)
                if up is not None:
                    res[v]["all_up"].append(up * 1000)
        self.r["vm"] = {"cmdline": cmdline, "kernel": open(os.path.join(out, "kernel-version")).read().strip(),
                        **{v: {"marker": summary(x["marker"]),
                               "all_up": summary(x["all_up"]) if x["all_up"] else None}
                           for v, x in res.items()}}

    def boot(self, kernel, initrd, cmdline, want_up):
        q = ["qemu-system-x86_64", "-m", "512", "-smp", "2", "-accel", "tcg", "-kernel", kernel,
             "-initrd", initrd, "-append", cmdline, "-nic", "none", "-nographic", "-no-reboot"]
        t0 = time.perf_counter()
        p = subprocess.Popen(q, stdin=DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(p)
        marker = up = None
        console = []
        try:
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(p.stdout, selectors.EVENT_READ)
            buf = b""
            end = t0 + 600
            while time.perf_counter() < end:
                if not sel.select(timeout=1):
                    continue
                chunk = os.read(p.stdout.fileno(), 65536)
                now = time.perf_counter()
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    console.append(line)
                    if marker is None and b"BENCH-MARKER" in line:
                        marker = now - t0
                    if up is None and b"all units up" in line:
                        up = now - t0
                if marker is not None and (up is not None or not want_up):
                    break
        finally:
            kill_tree(p)
        if marker is None:
            tail = b"\n".join(console[-15:]).decode(errors="replace")
            raise Failed(f"VM {os.path.basename(initrd)}: no marker within 600s; console:\n{tail}")
        return marker, up

    # --- run everything ---
    def run(self):
        self.r["machine"] = machine()
        self.r["load_start"] = os.getloadavg()
        self.r["started"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.setup()
        phases = [("start", self.start), ("restart", self.restart), ("exec", self.exec_),
                  ("reaping", self.reaping), ("footprint", self.footprint), ("vm", self.vm),
                  ("entrypoint", self.entrypoint), ("disk", self.disk), ("net", self.net),
                  ("ocipodman", self.ocipodman)]
        for name, fn in phases:
            t = time.monotonic()
            fn()
            log(f"{name}: done in {time.monotonic() - t:.0f}s")
        self.r["load_end"] = os.getloadavg()

    # --- 9. entry point of a container (bench/entrypoint.py) ---
    def entrypoint(self):
        if not self.kennel_static:
            self.r["skipped"].setdefault("entrypoint", "no static kennel")
            return
        import entrypoint
        log("entry point: kennel, s6 and tini as PID 1 of podman containers")
        self.r["entrypoint"] = entrypoint.measure(self, self.kennel_static)

    # --- 10. disk boot: kennel, systemd, busybox init (bench/disk.py) ---
    def disk(self):
        if not shutil.which("qemu-system-x86_64"):
            self.r["skipped"]["disk"] = "qemu-system-x86_64 not installed"
            return
        import disk
        res, why = disk.measure(self)
        if res is None:
            self.r["skipped"]["disk"] = why
        else:
            self.r["disk"] = res

    # --- 11. networks: bridge vs none, crun + CNI, podman + netavark (bench/net.py) ---
    def net(self):
        import net
        log("net: container start on a bridge network, kennel, crun + CNI, podman (netavark)")
        self.r["net"] = net.measure(self)

    # --- 12. podman with kennel, crun, runc as its runtime (bench/ocipodman.py) ---
    def ocipodman(self):
        import ocipodman
        log("ocipodman: podman run and exec with kennel, crun and runc as the runtime")
        try:
            self.r["ocipodman"] = ocipodman.measure(self)
        except Failed as e:
            self.r["skipped"]["ocipodman"] = str(e)

    def cleanup(self):
        if self.entrypoint_live:
            self.entrypoint_live.cleanup()
        for p in self.procs:
            kill_tree(p)
        for rt in ("crun", "runc"):
            subprocess.run(self.oci(rt, "delete", "-f", "bench-box"), stdout=DEVNULL, stderr=DEVNULL)
            subprocess.run(self.oci(rt, "delete", "-f", "bench-true"), stdout=DEVNULL, stderr=DEVNULL)
        rm_cgroup(self.cg_oci)
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], stderr=DEVNULL)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "mem_gib": mem / 1048576,
            "versions": {"crun": ver(["crun", "--version"]), "runc": ver(["runc", "--version"]),
                         "tini": ver(["tini", "--version"]),
                         "s6": ver(["dpkg-query", "-W", "-f=${Version}", "s6"]),
                         "busybox": ver(["dpkg-query", "-W", "-f=${Version}", "busybox-static"]),
                         "qemu": ver(["qemu-system-x86_64", "--version"])}}


# --- report ---------------------------------------------------------------------------------

def svg_start(r, path):
    """Start latency distributions: each run a dot, p50 and p90 as ticks, log time axis."""
    data = r["start"]
    names = list(data)
    W, rowh, left, top = 760, 34, 270, 30
    H = top + rowh * len(names) + 50
    lo = min(min(d["ms"]) for d in data.values())
    hi = max(max(d["ms"]) for d in data.values())
    import math
    l0, l1 = math.floor(math.log10(max(lo, 0.1))), math.ceil(math.log10(hi))
    def x(v):
        return left + (math.log10(max(v, 0.1)) - l0) / (l1 - l0) * (W - left - 20)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">Container start latency, /bin/true, warm runs (each dot a run; | p50, : p90)</text>']
    colors = ["#c0392b", "#e67e22", "#2471a3", "#17a589", "#7f8c8d", "#8e44ad"]
    rng = random.Random(2)
    for i, n in enumerate(names):
        y = top + rowh * i + rowh / 2
        o.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{html.escape(n)}</text>')
        c = colors[i % len(colors)]
        for v in data[n]["ms"]:
            o.append(f'<circle cx="{x(v):.1f}" cy="{y + rng.uniform(-8, 8):.1f}" r="2.5" fill="{c}" fill-opacity="0.55"/>')
        o.append(f'<line x1="{x(data[n]["p50"]):.1f}" x2="{x(data[n]["p50"]):.1f}" y1="{y - 13}" y2="{y + 13}" stroke="black" stroke-width="2"/>')
        o.append(f'<line x1="{x(data[n]["p90"]):.1f}" x2="{x(data[n]["p90"]):.1f}" y1="{y - 13}" y2="{y + 13}" stroke="black" stroke-dasharray="3,2"/>')
    yb = top + rowh * len(names) + 8
    o.append(f'<line x1="{left}" x2="{W - 20}" y1="{yb}" y2="{yb}" stroke="black"/>')
    for e in range(l0, l1 + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if v < 10 ** l0 or v > 10 ** l1:
                continue
            xx = x(v)
            o.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{yb}" stroke="#ddd"/>')
            o.append(f'<text x="{xx:.1f}" y="{yb + 16}" text-anchor="middle">{v:g}</text>')
    o.append(f'<text x="{(left + W) / 2}" y="{yb + 34}" text-anchor="middle">milliseconds (log scale)</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def svg_rss(r, path):
    """RSS and PSS against the number of services, log-log."""
    import math
    fp = r["footprint"]
    ns = sorted(int(n) for n in fp)
    series = {}
    for t in ("kennel", "s6", "horust"):
        for kind in ("rss", "pss"):
            pts = [(n, fp[str(n)][t][kind + "_kb"] / 1024) for n in ns if t in fp[str(n)]]
            if pts:
                series[f"{t} {kind.upper()}"] = pts
    W, H, left, right, top, bottom = 640, 400, 70, 170, 30, 50
    vals = [v for pts in series.values() for _, v in pts]
    y0, y1 = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    x0, x1 = 0, max(1, math.ceil(math.log10(max(ns))))
    def X(n):
        return left + (math.log10(n) - x0) / (x1 - x0) * (W - left - right)
    def Y(v):
        return H - bottom - (math.log10(v) - y0) / (y1 - y0) * (H - top - bottom)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{(W - right + left) / 2}" y="18" text-anchor="middle" font-size="14">Supervisor memory vs services (log-log)</text>']
    for e in range(y0, y1 + 1):
        o.append(f'<line x1="{left}" x2="{W - right}" y1="{Y(10 ** e):.1f}" y2="{Y(10 ** e):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{left - 6}" y="{Y(10 ** e) + 4:.1f}" text-anchor="end">{10 ** e:g} MiB</text>')
    for e in range(x0, x1 + 1):
        o.append(f'<line x1="{X(10 ** e):.1f}" x2="{X(10 ** e):.1f}" y1="{top}" y2="{H - bottom}" stroke="#ddd"/>')
        o.append(f'<text x="{X(10 ** e):.1f}" y="{H - bottom + 16}" text-anchor="middle">{10 ** e:g}</text>')
    o.append(f'<text x="{(W - right + left) / 2}" y="{H - 12}" text-anchor="middle">services</text>')
    colors = {"kennel": "#c0392b", "s6": "#2471a3", "horust": "#17a589"}
    for i, (name, pts) in enumerate(series.items()):
        c = colors[name.split()[0]]
        dash = "" if name.endswith("RSS") else ' stroke-dasharray="5,3"'
        path_d = " ".join(f"{'M' if j == 0 else 'L'}{X(n):.1f},{Y(v):.1f}" for j, (n, v) in enumerate(pts))
        o.append(f'<path d="{path_d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for n, v in pts:
            o.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3" fill="{c}"/>')
        ly = top + 10 + 20 * i
        o.append(f'<line x1="{W - right + 12}" x2="{W - right + 36}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        o.append(f'<text x="{W - right + 42}" y="{ly + 4}">{html.escape(name)}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def table_times(data, kennel_key, peers_note=None):
    rows = ["| tool | runs | p50 | p90 | min | max | kennel/tool (p50) | kennel/tool (p90) |",
            "|---|---|---|---|---|---|---|---|"]
    k = data[kennel_key]
    for name, d in data.items():
        rows.append(f"| {name} | {d['n']} | {ms(d['p50'])} | {ms(d['p90'])} | {ms(d['min'])} | {ms(d['max'])} | "
                    f"{'-' if name == kennel_key else ratio(k['p50'], d['p50'])} | "
                    f"{'-' if name == kennel_key else ratio(k['p90'], d['p90'])} |")
    return "\n".join(rows)


def mib(kb):
    return f"{kb / 1024:.2f} MiB"


def entrypoint_targets(ep):
    """Issue 19's goals: at most s6's memory at 10 services, within 2x tini's at 1 (static
    kennel, PID 1 of a podman container); PSS and RSS each."""
    m = ep["memory"]
    k1, k10 = m["kennel"]["1"], m["kennel"]["10"]
    s10, t1 = m["s6"]["10"], m["tini"]["1"]
    out = []
    for kind in ("pss", "rss"):
        a, b = k10[kind + "_kb"], s10[kind + "_kb"]
        out.append((f"container PID 1, 10 services: {kind.upper()} ≤ s6's",
                    f"{mib(a)} vs {mib(b)} (ratio {ratio(a, b)})", a <= b))
    for kind in ("pss", "rss"):
        a, b = k1[kind + "_kb"], t1[kind + "_kb"]
        out.append((f"container PID 1, 1 service: {kind.upper()} ≤ 2× tini's",
                    f"{mib(a)} vs {mib(b)} (ratio {ratio(a, b)})", a <= 2 * b))
    return out


def entrypoint_section(ep):
    v = ep["versions"]
    m, up, sz = ep["memory"], ep["up"], ep["sizes"]
    L = ["## 9. Entry point of a container (issue 19)", ""]
    L.append("kennel as PID 1 of a podman container, beside tini-static and s6-svscan, in one run. "
             f"{v['podman']}, `--runtime runc` ({v['runc']}), `--network none`, a podman store of "
             "the bench's own (`--root`, `--runroot`, `--tmpdir`, cgroupfs). One image, made by "
             "`podman import` from a tar: busybox-static, the static kennel (musl, stripped: what "
             "goes into an image; `kennel`), the glibc kennel with the libraries `ldd` names "
             "(`kennel (glibc)`, for comparison), tini-static, and Debian's s6-svscan and "
             "s6-supervise with theirs (Debian builds s6 dynamically linked, against libskarnet "
             "and glibc; s6-overlay ships static binaries). Each service, whatever its PID 1, is "
             "`sh -c 'touch /marks/NAME; exec sleep ...'`: a kennel unit, an s6 service "
             "directory's `run` script, tini's child. kennel runs its units without cgroups "
             "(podman's read-only cgroup mounts).")
    L.append("")
    L.append("**Memory**: one container at a time (two containers of one image would share its "
             "files' page cache and halve each other's PSS), measured 1 s after the host saw "
             "every service's marker. RSS and PSS from /proc/PID/smaps_rollup, summed over every "
             "process of the container except the services (the `sleep`s): kennel's daemon "
             "(PID 1) and its zygote; s6-svscan and one s6-supervise per service; tini. "
             f"The median over {len(m['kennel']['1']['rss_kb_runs'])} container(s) of each, min-max "
             "beside it; PSS split into anonymous memory (the program's own: heap, stacks, "
             "written data) and file pages (its binary's and libraries' pages in use).")
    L.append("")
    L.append("| PID 1 | services | processes counted | RSS | RSS min-max | PSS | PSS min-max | PSS anon | PSS file |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for tool in ("kennel", "kennel (glibc)", "s6", "tini"):
        for n in sorted(m.get(tool, {}), key=int):
            d = m[tool][n]
            names = {}
            for x in d["names"]:
                names[x] = names.get(x, 0) + 1
            counted = ", ".join(f"{x}" if c == 1 else f"{c} × {x}" for x, c in names.items())
            L.append(f"| {tool} | {n} | {counted} | {mib(d['rss_kb'])} | "
                     f"{mib(min(d['rss_kb_runs']))}-{mib(max(d['rss_kb_runs']))} | {mib(d['pss_kb'])} | "
                     f"{mib(min(d['pss_kb_runs']))}-{mib(max(d['pss_kb_runs']))} | "
                     f"{mib(d['pss_anon_kb'])} | {mib(d['pss_file_kb'])} |")
    L.append("")
    L.append("| ratio | RSS | PSS |")
    L.append("|---|---|---|")
    for what, a, b in (("kennel / tini, 1 service", ("kennel", "1"), ("tini", "1")),
                       ("kennel / s6, 1 service", ("kennel", "1"), ("s6", "1")),
                       ("kennel / s6, 10 services", ("kennel", "10"), ("s6", "10")),
                       ("kennel (glibc) / s6, 10 services", ("kennel (glibc)", "10"), ("s6", "10")),
                       ("kennel (glibc) / kennel, 10 services", ("kennel (glibc)", "10"), ("kennel", "10"))):
        x, y = m[a[0]][a[1]], m[b[0]][b[1]]
        L.append(f"| {what} | {ratio(x['rss_kb'], y['rss_kb'])} | {ratio(x['pss_kb'], y['pss_kb'])} |")
    L.append("")
    L.append("**Time to all services up**: from the start of `podman run -d` until the host "
             "sees every service's marker in the bind-mounted directory (polled every 2 ms), "
             f"{ISOLATION_S * 1000:.0f} ms after the previous container was removed, the "
             "configurations in a shuffled order each round, after one round not counted. "
             "tini's, with its one child, is the floor: what podman, conmon and runc take "
             "before any PID 1 starts its services. The last column is when `podman run -d` "
             "itself returned.")
    L.append("")
    L.append("| PID 1 | services | runs | p50 | p90 | min | max | kennel/this (p50) | `podman run -d` returned, p50 |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for n in sorted(up, key=int):
        k = up[n]["kennel"]
        for tool, d in up[n].items():
            L.append(f"| {tool} | {n} | {d['n']} | {ms(d['p50'])} | {ms(d['p90'])} | {ms(d['min'])} | "
                     f"{ms(d['max'])} | {'-' if tool == 'kennel' else ratio(k['p50'], d['p50'])} | "
                     f"{ms(d['returned']['p50'])} |")
    L.append("")
    L.append("**Binaries** (stripped, as in the image; as built in brackets):")
    L.append("")
    L.append("| binary | bytes |")
    L.append("|---|---|")
    for b, d in sz.items():
        extra = f" ({d['unstripped']:,})" if d.get("unstripped", d["bytes"]) != d["bytes"] else ""
        L.append(f"| {b} | {d['bytes']:,}{extra} |")
    if "s6-svscan" in sz and "s6-supervise" in sz:
        both = sz["s6-svscan"]["bytes"] + sz["s6-supervise"]["bytes"]
        lib = sz.get("libskarnet", {}).get("bytes", 0)
        L.append(f"| s6-svscan + s6-supervise | {both:,}"
                 + (f"; with libskarnet {both + lib:,} (and glibc)" if lib else "") + " |")
    L.append("")
    L.append(f"Versions: {v['tini']}, s6 {v['s6']}, busybox {v['busybox']}; kennel built by {v['rustc']}.")
    L.append("")
    return L


def report(r, out_dir, command):
    m = r["machine"]
    L = []
    L.append(f"Generated by `{command}` on {r['started']}"
             + (" (**--quick**: a few runs each, for CI; not for quoting)" if r["quick"] else "") + ".")
    L.append("")
    L.append(f"**Machine:** `nproc` = {m['nproc']}, CPU {m['cpu']}, kernel {m['kernel']}, "
             f"{m['mem_gib']:.1f} GiB RAM; hybrid cgroups (v1 controllers + v2 unified tree). "
             f"Load average at start {r['load_start'][0]:.2f}, at the end {r['load_end'][0]:.2f} "
             "(a shared machine: other builds ran meanwhile; the interleaving keeps the ratios fair).")
    v = m["versions"]
    L.append(f"**Peers:** {v['crun']}, {v['runc']}, {v['tini']}, s6 {v['s6']}, busybox {v['busybox']}, "
             f"{v['qemu']}" + (f", Horust ({r.get('horust_version', '?')})" if r.get("horust_version") else "")
             + ". All from Debian 12's packages" + (", Horust from crates.io." if r.get("horust_version") else "."))
    L.append("")
    # Targets.
    t = []
    def isolated_too(key, k, c):
        d = r.get(key + "_isolated")
        if not d:
            return ""
        return f"; isolated runs: {ms(d[k]['p50'])} vs {ms(d[c]['p50'])} ({ratio(d[k]['p50'], d[c]['p50'])})"
    st = r.get("start")
    if st:
        kp, cp = st["kennel"]["p50"], st["crun run"]["p50"]
        t.append(("container start p50 ≤ ½ crun's (warm runs)",
                  f"{ms(kp)} vs {ms(cp)} (ratio {ratio(kp, cp)})" + isolated_too("start", "kennel", "crun run"),
                  kp <= cp / 2))
    ex = r.get("exec")
    if ex:
        kp, cp = ex["kennel exec"]["p50"], ex["crun exec"]["p50"]
        t.append(("exec p50 ≤ crun exec's (warm runs)",
                  f"{ms(kp)} vs {ms(cp)} (ratio {ratio(kp, cp)})" + isolated_too("exec", "kennel exec", "crun exec"),
                  kp <= cp))
    rp = r.get("reaping")
    if rp:
        a, b = rp["kennel run"]["per_s"], rp["tini"]["per_s"]
        t.append(("reaping throughput ≥ tini's", f"{a:.0f}/s vs {b:.0f}/s ({r['reaping']['n']} orphans, p50)", a >= b))
    fp = r.get("footprint", {}).get("100")
    if fp and "s6" in fp:
        a, b = fp["kennel"]["rss_kb"], fp["s6"]["rss_kb"]
        t.append(("RSS at 100 units < s6's total", f"{a / 1024:.1f} MiB vs {b / 1024:.1f} MiB", a < b))
    idle = r.get("idle")
    if idle:
        t.append((f"idle CPU at {idle['n']} units < 0.1% of one core",
                  f"{idle['cpu_ms']:.1f} ms over {idle['seconds']:.0f} s = {idle['percent']:.4f}%"
                  + ("" if idle["n"] == 1000 else f" (--quick: {idle['n']} units)"), idle["percent"] < 0.1))
    s = r.get("status")
    if s:
        keys = list(s)
        a, b = s[keys[1]]["p50"], s[keys[0]]["p50"]
        t.append((f"status at {keys[1]} ≤ 2× status at 1 unit", f"{ms(a)} vs {ms(b)} (×{a / b:.2f})", a <= 2 * b))
    ep = r.get("entrypoint")
    if ep:
        t += entrypoint_targets(ep)
    vm = r.get("vm")
    if vm and vm.get("busybox init"):
        a, b = vm["kennel"]["marker"]["p50"], vm["busybox init"]["marker"]["p50"]
        t.append(("initramfs boot to the unit's marker ≤ busybox init's + 50 ms (p50)",
                  f"{a / 1000:.2f} s vs {b / 1000:.2f} s (+{a - b:.0f} ms; from the guest's clock: "
                  "see 'VM boot (issue 20): where the time goes')", a <= b + 50))
    dk = r.get("disk")
    if dk:
        import disk
        t += disk.targets(dk)
    nt = r.get("net")
    if nt:
        import net
        t += net.targets(nt)
    L.append("## Targets")
    L.append("")
    if r.get("updated"):
        for ph, u in r["updated"].items():
            L.append(f"Part **{ph}** measured again by `{u['command']}` on {u['started']} (load average "
                     f"{u['load_start'][0]:.2f} at its start, {u['load_end'][0]:.2f} at its end); the other "
                     "parts are from the run above.")
        L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")
    for name, meas, ok in t:
        L.append(f"| {name} | {meas} | {'**yes**' if ok else '**no**'} |")
    L.append("")
    if st:
        L.append("## 1. Container start")
        L.append("")
        L.append("From the command to the service's process having run and its exit being reported, for the "
                 "same work: namespaces pid, mount, uts, ipc, net; a cgroup with a 64M memory limit; an "
                 "overlay rootfs of two busybox layers; `/bin/true`. kennel: `kennel start NAME` of a "
                 "oneshot unit (returns once it exited successfully), through the control socket of a "
                 "running `kennel up`; `kennel` is the unit as one would write it (kennel's init in the "
                 "container, its default seccomp filter) on the two layers imported into kennel's "
                 "store (`kennel layer import`, as an image's layers are), the second row is the same "
                 "unit with `init = false` and `seccomp = \"unconfined\"`, which is what the OCI "
                 "bundle does, the third the first on the same layers named as plain directories. "
                 "crun and runc: `run` of an OCI bundle (`crun spec` with the same namespaces, memory "
                 "limit and cgroup) on an overlay of the store's two layer directories mounted "
                 "beforehand, once (their times do not include an overlay mount). kennel mounts the "
                 "overlay in the container's own mount namespace: on store layers, where the previous "
                 "run left its writable layer empty, the overlay that run handed back (no mount of "
                 "overlayfs); on plain directories, which may change between runs, a new one at each "
                 "start ([containers.md](containers.md)). Floor: `unshare --pid --fork --mount "
                 "--uts --ipc --net /bin/true` (no cgroup, no rootfs).")
        L.append("")
        L.append("**Warm runs**: each timed run comes right after an untimed run of the same tool, so that "
                 "each tool meets only what its own previous run left (a loop of that tool alone: crun's "
                 "`cgroup.procs` write then finds the kernel's lock still in its fast mode, kennel's "
                 "teardown after its reply lands on its own next run). The targets are judged on these. "
                 "The rounds alternate with those of the isolated runs below.")
        L.append("")
        L.append(table_times(st, "kennel"))
        L.append("")
        si = r.get("start_isolated")
        if si:
            L.append(f"**Isolated runs**: each timed run after {ISOLATION_S * 1000:.0f} ms in which nothing of the "
                     "benchmark ran (a start on a quiet moment): crun and runc then wait for an RCU grace "
                     "period in their first `cgroup.procs` write, which kennel never makes "
                     "([A fair baseline](#a-fair-baseline) below).")
            L.append("")
            L.append(table_times(si, "kennel"))
            L.append("")
        L.append("![start latency](performance-start.svg)")
        L.append("")
    rs = r.get("restart")
    if rs:
        g = rs["gap_ms"]
        L.append("## 2. Restart")
        L.append("")
        L.append("A plain service that exits 0 at once (a static C program that writes its start and end "
                 "times, CLOCK_MONOTONIC), `policy = \"always\"`, `delay = \"0s\"`, `burst` 10⁸: "
                 f"over {r['quick'] and 2 or 10} s.")
        L.append("")
        L.append("| restarts per second | exit → next process running: p50 | p90 | min | max | samples |")
        L.append("|---|---|---|---|---|---|")
        L.append(f"| {rs['per_s']:.0f} | {ms(g['p50'])} | {ms(g['p90'])} | {ms(g['min'])} | {ms(g['max'])} | {g['n']} |")
        L.append("")
        L.append("No peer: s6-supervise waits at least 1 s between two starts of a service by design, "
                 "and crun/runc do not restart.")
        L.append("")
    if ex:
        L.append("## 3. Exec")
        L.append("")
        L.append("`/bin/true` inside a running container (the same namespaces as above, running `sleep`): "
                 "`kennel exec UNIT /bin/true`, `crun exec` / `runc exec` into an equivalent detached "
                 "container, and `nsenter -t PID -p -m -u -i -n /bin/true` into the kennel unit's "
                 "namespaces (floor: no cgroup, no control socket). Warm runs (each right after an untimed "
                 "run of the same tool) as for the start, the targets' figures:")
        L.append("")
        L.append(table_times(ex, "kennel exec"))
        L.append("")
        xi = r.get("exec_isolated")
        if xi:
            L.append(f"Isolated runs (each after {ISOLATION_S * 1000:.0f} ms in which nothing of the benchmark ran):")
            L.append("")
            L.append(table_times(xi, "kennel exec"))
            L.append("")
    if rp:
        L.append("## 4. Reaping")
        L.append("")
        L.append(f"{rp['n']} double-forked orphans (each grandchild exits at once, so only PID 1 can reap "
                 "it), under `unshare --pid --fork --mount-proc` with kennel (`kennel run --`) or tini as "
                 "PID 1: time from the first fork until the last zombie is gone (the program polls its "
                 "namespace's /proc), and the tail after the last fork. The time is dominated by `fork` "
                 "on this machine; the tail is PID 1's backlog.")
        L.append("")
        L.append("| PID 1 | rounds | total p50 | total min | total max | orphans/s (p50) | tail after last fork p50 | tail max | kennel/tini (total p50) |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for name in ("kennel run", "tini"):
            d = rp[name]
            L.append(f"| {name} | {d['total']['n']} | {d['total']['p50']:.2f} s | {d['total']['min']:.2f} s | "
                     f"{d['total']['max']:.2f} s | {d['per_s']:.0f} | {ms(d['tail_ms']['p50'])} | {ms(d['tail_ms']['max'])} | "
                     f"{'-' if name == 'tini' else ratio(rp['kennel run']['total']['p50'], rp['tini']['total']['p50'])} |")
        L.append("")
    fpa = r.get("footprint")
    if fpa:
        L.append("## 5. Footprint")
        L.append("")
        L.append("The supervisor's own processes, idle, with N plain services (`sleep infinity`): kennel's "
                 "daemon (and any helper process of its, none for plain services) vs s6-svscan plus one "
                 "s6-supervise per service" + (", and Horust" if any("horust" in x for x in fpa.values()) else "")
                 + ". RSS and PSS from /proc/PID/smaps_rollup, summed; services themselves not counted.")
        L.append("")
        L.append("| services | kennel RSS | kennel PSS | s6 RSS | s6 PSS | s6 processes | kennel/s6 RSS | kennel/s6 PSS |"
                 + (" Horust RSS | Horust PSS |" if any("horust" in x for x in fpa.values()) else ""))
        L.append("|---|---|---|---|---|---|---|---|" + ("---|---|" if any("horust" in x for x in fpa.values()) else ""))
        for n in sorted(fpa, key=int):
            d = fpa[n]
            k, s6 = d.get("kennel", {}), d.get("s6", {})
            mb = lambda x: f"{x / 1024:.1f} MiB" if x is not None else "-"
            row = (f"| {n} | {mb(k.get('rss_kb'))} | {mb(k.get('pss_kb'))} | {mb(s6.get('rss_kb'))} | {mb(s6.get('pss_kb'))} | "
                   f"{s6.get('procs', '-')} | {ratio(k.get('rss_kb'), s6.get('rss_kb'))} | {ratio(k.get('pss_kb'), s6.get('pss_kb'))} |")
            if any("horust" in x for x in fpa.values()):
                h = d.get("horust", {})
                row += f" {mb(h.get('rss_kb'))} | {mb(h.get('pss_kb'))} |"
            L.append(row)
        L.append("")
        if idle:
            L.append(f"Idle CPU with {idle['n']} services over {idle['seconds']:.0f} s (all threads, "
                     f"/proc/PID/stat utime + stime, ended threads included; clock ticks): kennel {idle['cpu_ms']:.2f} ms = {idle['percent']:.4f}% "
                     f"of one core; s6 (svscan + {idle['n']} supervise) {idle.get('s6_cpu_ms', float('nan')):.2f} ms.")
            L.append("")
        L.append("![RSS vs services](performance-rss.svg)")
        L.append("")
    if s:
        L.append("## 6. Control")
        L.append("")
        L.append("`kennel status --json` round trip (client start, connect, request, reply, print), "
                 "against a daemon with 1 unit and one with many, interleaved.")
        L.append("")
        keys = list(s)
        L.append(table_times({keys[1]: s[keys[1]], keys[0]: s[keys[0]]}, keys[1]).replace("kennel/tool", "ratio to 1 unit"))
        L.append("")
    vm = r.get("vm")
    if vm:
        L.append("## 7. VM boot")
        L.append("")
        L.append(f"qemu (TCG, `-m 512 -smp 2`), Debian's kernel {vm['kernel']}, `-append \"{vm['cmdline']}\"`, "
                 "the same initramfs tree (examples/vm/build.sh: the static kennel, busybox-static) but for init: "
                 "kennel with one oneshot unit (and no module to load: the example's boot.toml loads overlay.ko for "
                 "its containers), or `/sbin/init -> busybox` with an `/etc/inittab` whose `sysinit` runs the same command. "
                 "The command prints `BENCH-MARKER` on the console; time from qemu's start to that line "
                 "(and, for kennel, to its `all units up`).")
        L.append("")
        L.append("| init | boots | to marker p50 | p90 | min | max | kennel/busybox (p50) |")
        L.append("|---|---|---|---|---|---|---|")
        for name in ("kennel", "busybox init"):
            d = vm[name]["marker"]
            L.append(f"| {name} | {d['n']} | {d['p50'] / 1000:.2f} s | {d['p90'] / 1000:.2f} s | {d['min'] / 1000:.2f} s | "
                     f"{d['max'] / 1000:.2f} s | {'-' if name != 'kennel' else ratio(d['p50'], vm['busybox init']['marker']['p50'])} |")
        if vm["kennel"]["all_up"]:
            d = vm["kennel"]["all_up"]
            L.append(f"| kennel, to `all units up` | {d['n']} | {d['p50'] / 1000:.2f} s | {d['p90'] / 1000:.2f} s | "
                     f"{d['min'] / 1000:.2f} s | {d['max'] / 1000:.2f} s | - |")
        L.append("")
    sc = r.get("scale")
    if sc:
        L.append("## 8. Scale")
        L.append("")
        L.append(f"{sc['n']} plain units (`sleep infinity`): `kennel stop` of all of them in one command "
                 "(returns when all are stopped), then `kennel start` of all (returns when all are up).")
        L.append("")
        L.append("| operation | rounds | p50 | p90 | min | max | per unit (p50) |")
        L.append("|---|---|---|---|---|---|---|")
        for op in ("start", "stop"):
            d = sc[op + "_s"]
            L.append(f"| {op} {sc['n']} units | {d['n']} | {d['p50']:.2f} s | {d['p90']:.2f} s | {d['min']:.2f} s | "
                     f"{d['max']:.2f} s | {ms(d['p50'] * 1000 / sc['n'])} |")
        L.append("")
    if ep:
        L += entrypoint_section(ep)
    if dk:
        L += disk.section(dk)
    if nt:
        L += net.section(nt)
    op = r.get("ocipodman")
    if op:
        import ocipodman
        L += ocipodman.section(op)
    if r["skipped"]:
        L.append("## Skipped")
        L.append("")
        for k2, why in r["skipped"].items():
            L.append(f"- {k2}: {why}")
        L.append("")
    block = "\n".join(L).rstrip() + "\n"
    os.makedirs(out_dir, exist_ok=True)
    if st:
        svg_start(r, os.path.join(out_dir, "performance-start.svg"))
    if fpa:
        svg_rss(r, os.path.join(out_dir, "performance-rss.svg"))
    md = os.path.join(out_dir, "performance.md")
    begin, end = "<!-- bench:begin (generated by bench/run.sh; edit outside these markers) -->", "<!-- bench:end -->"
    old = open(md).read() if os.path.exists(md) else ""
    if begin in old and end in old:
        new = old[:old.index(begin)] + begin + "\n" + block + end + old[old.index(end) + len(end):]
    elif old:
        # Keep what is there (e.g. another section); put the results after the title.
        lines = old.split("\n", 1)
        if lines[0].startswith("# "):
            new = lines[0] + "\n\n" + begin + "\n" + block + end + "\n\n" + (lines[1].lstrip("\n") if len(lines) > 1 else "")
        else:
            new = "# Performance\n\n" + begin + "\n" + block + end + "\n\n" + old
    else:
        new = "# Performance\n\n" + begin + "\n" + block + end + "\n"
    with open(md, "w") as f:
        f.write(new)
    with open(os.path.join(out_dir, "performance.json"), "w") as f:
        json.dump(r, f, indent=1)
    return md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--kennel", required=True)
    ap.add_argument("--horust", default="")
    ap.add_argument("--kennel-static", default="",
                    help="the static (musl) kennel, for the entrypoint part")
    ap.add_argument("--kennel-static-note", default="",
                    help="why there is no static kennel (the entrypoint part is skipped)")
    ap.add_argument("--horust-note", default="")
    ap.add_argument("--horust-version", default="")
    ap.add_argument("--outer-ns", default="")
    ap.add_argument("--command", default="bash bench/run.sh")
    ap.add_argument("--only", default="",
                    help="comma-separated phases (start, restart, exec, reaping, footprint, vm, entrypoint, disk, net, ocipodman); their "
                         "parts replace those of OUT/performance.json's run (of the same --quick), the "
                         "rest of the report is kept from it")
    a = ap.parse_args()
    b = Bench(a)
    b.r["command"] = a.command
    if a.horust:
        b.r["horust_version"] = a.horust_version or "?"
    if a.horust_note:
        b.r["skipped"]["horust"] = a.horust_note
    if a.kennel_static_note:
        b.r["skipped"]["entrypoint"] = a.kennel_static_note
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    phases = [p for p in a.only.split(",") if p]
    unknown = [p for p in phases if p not in PHASE_KEYS]
    if unknown:
        ap.error(f"--only: unknown phase(s) {', '.join(unknown)} (phases: {', '.join(PHASE_KEYS)})")
    try:
        if phases:
            b.r["machine"] = machine()
            b.r["load_start"] = os.getloadavg()
            b.r["started"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            b.setup()
            for ph in phases:
                getattr(b, {"exec": "exec_"}.get(ph, ph))()
            b.r["load_end"] = os.getloadavg()
        else:
            b.run()
    finally:
        b.cleanup()
    r, command = b.r, a.command
    if phases:
        r, command = merge(b.r, phases, a.command, os.path.join(b.out, "performance.json"))
    md = report(r, b.out, command)
    log(f"wrote {md}")


# What each phase writes into the results.
PHASE_KEYS = {"start": ["start", "start_isolated"], "restart": ["restart"],
              "exec": ["exec", "exec_isolated"], "reaping": ["reaping"],
              "footprint": ["footprint", "idle", "status", "scale"], "vm": ["vm"],
              "entrypoint": ["entrypoint"], "disk": ["disk"], "net": ["net"],
              "ocipodman": ["ocipodman"]}


def merge(new, phases, command, path):
    """The results of a run of some phases put into the last full run's (path, the same
    --quick), so that the report keeps the other parts; each phase run again is noted with
    its command, time and load. Without such a run, the report has only the new parts."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return new, command
    if old.get("quick") != new["quick"] or "started" not in old:
        return new, command
    for ph in phases:
        for key in PHASE_KEYS[ph]:
            old.pop(key, None)
            if key in new:
                old[key] = new[key]
        if ph == "net":
            for k in [k for k in old.get("skipped", {}) if k.startswith("net: ")]:
                old["skipped"].pop(k)
            for k in [k for k in new["skipped"] if k.startswith("net: ")]:
                old.setdefault("skipped", {})[k] = new["skipped"][k]
        if ph in ("vm", "entrypoint", "disk", "ocipodman"):  # a skip is the phase's result too
            old.setdefault("skipped", {}).pop(ph, None)
            if ph in new["skipped"]:
                old["skipped"][ph] = new["skipped"][ph]
        if ph == "exec":
            old.setdefault("notes", {}).pop("exec", None)
            if "exec" in new["notes"]:
                old["notes"]["exec"] = new["notes"]["exec"]
        old.setdefault("updated", {})[ph] = {k: new[k] for k in ("started", "load_start", "load_end")}
        old["updated"][ph]["command"] = command
    return old, old.get("command", "bash bench/run.sh")


if __name__ == "__main__":
    main()
