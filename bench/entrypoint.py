"""The bench's part `entrypoint` (issue 19): kennel as PID 1 of a podman container, beside
tini-static and s6-svscan, memory and time to all services up.

Run by bench.py (`Bench.entrypoint`). One image, made by `podman import` from a tar built
here: busybox-static (the services' `sh`, `sleep` and `touch`), the static kennel (stripped,
as it goes into an image), the glibc kennel (for comparison) with the libraries `ldd` names,
tini-static, and Debian's s6-svscan and s6-supervise (dynamically linked: they get their
libraries too). Each container is one of these as PID 1 (`--network none`, `--runtime runc`,
a podman store of its own under the work directory), with N services that each touch a
marker file in a bind-mounted directory and `exec sleep`. Memory: one container at a time
(two containers of the same image would share its files' page cache and halve each other's
PSS), RSS and PSS from /proc/PID/smaps_rollup of every process of the container but the
services (the `sleep`s). Time: from `podman run -d` until the host sees all N markers.
Nothing is asserted about a time; the goals are reported as met or not.
"""

import json
import os
import random
import resource
import shutil
import subprocess
import time

import bench  # noqa: E402  (bench.py, beside this file)

DEVNULL = subprocess.DEVNULL
IMAGE = "localhost/kennel-bench-entrypoint:1"
# What every service does, under each PID 1: leave its marker, then be a `sleep`.
SERVICE = "touch /marks/{name}; exec sleep 1000000000"
SIZES = (1, 10)
# The PID 1 commands: (tool, services) -> argv in the image.
PID1 = {
    "kennel": lambda n: ["/sbin/kennel", "up", "--units", f"/etc/kennel/units-{n}"],
    "kennel (glibc)": lambda n: ["/sbin/kennel-glibc", "up", "--units", f"/etc/kennel/units-{n}"],
    "s6": lambda n: ["/usr/bin/s6-svscan", f"/s6/{n}"],
    "tini": lambda n: ["/sbin/tini-static", "--", "/bin/sh", "-c", SERVICE.format(name="s0000")],
}
# Which are measured: memory at 1 and 10 services (tini: 1), time to all up likewise with
# tini's as the floor (podman's own part).
MEMORY = [("kennel", 1), ("kennel", 10), ("kennel (glibc)", 1), ("kennel (glibc)", 10),
          ("s6", 1), ("s6", 10), ("tini", 1)]
UP = [("kennel", 1), ("s6", 1), ("tini", 1), ("kennel", 10), ("s6", 10)]


def run(cmd, **kw):
    return subprocess.run(cmd, stdin=DEVNULL, capture_output=True, text=True, **kw)


class Entrypoint:
    def __init__(self, b, static_kennel):
        self.b = b
        self.static = static_kennel
        self.dir = os.path.join(b.work, "entrypoint")
        self.marks = os.path.join(self.dir, "marks")
        self.podman = ["podman", "--root", os.path.join(self.dir, "store"),
                       "--runroot", os.path.join(self.dir, "run"),
                       "--tmpdir", os.path.join(self.dir, "tmp"),
                       "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                       "--runtime", "runc"]
        self.env = dict(os.environ, TMPDIR=os.path.join(self.dir, "tmp"))
        self.seq = 0
        self.live = set()
        # The sandbox's hard RLIMIT_NOFILE (20000 here) is below podman's default ulimits.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
        self.ulimits = ["--ulimit", f"nofile={hard}:{hard}", "--ulimit", "nproc=1000:1000"]

    def pm(self, *args, check=True, timeout=120):
        r = run(self.podman + list(args), env=self.env, timeout=timeout)
        if check and r.returncode != 0:
            raise bench.Failed(f"podman {' '.join(args[:2])}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
        return r.stdout.strip()

    # --- the image ---
    def image(self):
        root = os.path.join(self.dir, "rootfs")
        for d in ("bin", "sbin", "usr/bin", "etc", "marks", "run", "tmp", "var/lib", "var/log",
                  "proc", "sys", "dev"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        for d in ("run", "tmp"):
            os.chmod(os.path.join(root, d), 0o1777 if d == "tmp" else 0o755)
        shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
        for applet in ("sh", "sleep", "touch"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        sizes = {}
        bins = {"sbin/kennel": self.static, "sbin/kennel-glibc": self.b.kennel,
                "sbin/tini-static": shutil.which("tini-static") or "/usr/bin/tini-static",
                "usr/bin/s6-svscan": shutil.which("s6-svscan"),
                "usr/bin/s6-supervise": shutil.which("s6-supervise")}
        for dst, src in bins.items():
            if not src or not os.path.exists(src):
                raise bench.Failed(f"no {dst.split('/')[-1]} on this machine")
            path = os.path.join(root, dst)
            shutil.copy(src, path)
            before = os.path.getsize(path)
            subprocess.run(["strip", path], check=True)
            sizes[os.path.basename(dst)] = {"bytes": os.path.getsize(path), "unstripped": before}
        # The dynamically linked ones get the libraries ldd names (at the same paths).
        for src in (self.b.kennel, bins["usr/bin/s6-svscan"], bins["usr/bin/s6-supervise"]):
            for lib in libraries(src):
                path = os.path.join(root, lib.lstrip("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if not os.path.exists(path):
                    shutil.copy(os.path.realpath(lib), path)
                if "skarnet" in lib:
                    sizes["libskarnet"] = {"bytes": os.path.getsize(path)}
        for n in SIZES:
            units = os.path.join(root, f"etc/kennel/units-{n}")
            os.makedirs(units)
            for i in range(n):
                with open(os.path.join(units, f"s{i:04d}.toml"), "w") as f:
                    f.write("[service]\ncommand = "
                            + json.dumps(["/bin/sh", "-c", SERVICE.format(name=f"s{i:04d}")]) + "\n")
                sd = os.path.join(root, f"s6/{n}/s{i:04d}")
                os.makedirs(sd)
                with open(os.path.join(sd, "run"), "w") as f:
                    f.write("#!/bin/sh\n" + SERVICE.format(name=f"s{i:04d}") + "\n")
                os.chmod(os.path.join(sd, "run"), 0o755)
        tar = os.path.join(self.dir, "image.tar")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", tar, "."],
                       check=True)
        self.pm("import", "--quiet", tar, IMAGE)
        os.remove(tar)
        shutil.rmtree(root)
        return sizes

    # --- one container ---
    def start(self, tool, n):
        """`podman run -d` of tool as PID 1 with n services; returns (name, ms until every
        marker is there, ms until `podman run -d` returned)."""
        self.seq += 1
        name = f"kennel-bench-ep-{os.getpid()}-{self.seq}"
        shutil.rmtree(self.marks, ignore_errors=True)
        os.makedirs(self.marks)
        cmd = self.podman + ["run", "-d", "--name", name, "--network", "none", *self.ulimits,
                             "-v", f"{self.marks}:/marks", IMAGE, *PID1[tool](n)]
        self.live.add(name)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=DEVNULL, stdout=DEVNULL, stderr=subprocess.PIPE,
                             env=self.env)
        up = returned = None
        end = t0 + 120
        while up is None or returned is None:
            now = time.perf_counter()
            if returned is None and p.poll() is not None:
                returned = now
                if p.returncode != 0:
                    raise bench.Failed(f"podman run {tool}: exit {p.returncode}: "
                                       f"{p.stderr.read().decode(errors='replace').strip()[-400:]}")
            if up is None and len(os.listdir(self.marks)) >= n:
                up = now
            if now > end:
                p.kill()
                raise bench.Failed(f"{tool} with {n} services: {len(os.listdir(self.marks))} markers "
                                   f"after 120 s; logs: {self.pm('logs', name, check=False)[-400:]}")
            time.sleep(0.002)
        p.stderr.close()
        return name, (up - t0) * 1000, (returned - t0) * 1000

    def remove(self, name):
        self.pm("rm", "-f", "-t", "0", name, check=False)
        self.live.discard(name)

    def memory(self, name, tool, n):
        """RSS and PSS of every process of the container but the n services."""
        pid1 = int(self.pm("inspect", "-f", "{{.State.Pid}}", name))
        procs = [pid1] + bench.descendants(pid1)
        services = [p for p in procs if p != pid1 and bench.comm(p) == "sleep"]
        if len(services) != n:
            raise bench.Failed(f"{tool}: {len(services)} services running, not {n}: "
                               + ", ".join(f"{p} {bench.comm(p)}" for p in procs))
        own = [p for p in procs if p not in services]
        m = self.b.measure(own)
        m["names"] = sorted(bench.comm(p) for p in own)
        # What the PSS is made of: the program's own memory (anon) and its files' pages.
        for key in ("Pss_Anon", "Pss_File"):
            m[key.lower() + "_kb"] = sum(rollup(p).get(key, 0) for p in own)
        return m

    # --- the part ---
    def measure_all(self, rounds_mem, rounds_up, rng):
        res = {"how": "podman", "versions": versions(), "sizes": self.image(), "memory": {}, "up": {}}
        mem = {(t, n): [] for t, n in MEMORY}
        for _ in range(rounds_mem):
            order = list(MEMORY)
            rng.shuffle(order)
            for t, n in order:
                name, _up, _ret = self.start(t, n)
                try:
                    time.sleep(1)  # settled: no start-up work left
                    mem[(t, n)].append(self.memory(name, t, n))
                finally:
                    self.remove(name)
        for (t, n), ms in mem.items():
            rss, pss = [m["rss_kb"] for m in ms], [m["pss_kb"] for m in ms]
            res["memory"].setdefault(t, {})[str(n)] = {
                "rss_kb": bench.pct(rss, 50), "pss_kb": bench.pct(pss, 50),
                "rss_kb_runs": rss, "pss_kb_runs": pss, "procs": ms[0]["procs"],
                "pss_anon_kb": bench.pct([m["pss_anon_kb"] for m in ms], 50),
                "pss_file_kb": bench.pct([m["pss_file_kb"] for m in ms], 50),
                "names": ms[0]["names"]}
        up = {k: [] for k in UP}
        ret = {k: [] for k in UP}
        for i in range(1 + rounds_up):  # the first round is a warm-up, not counted
            order = list(UP)
            rng.shuffle(order)
            for t, n in order:
                time.sleep(bench.ISOLATION_S)
                name, u, r = self.start(t, n)
                self.remove(name)
                if i:
                    up[(t, n)].append(u)
                    ret[(t, n)].append(r)
        for (t, n) in UP:
            res["up"].setdefault(str(n), {})[t] = {"ms": up[(t, n)], **bench.summary(up[(t, n)]),
                                                  "returned": bench.summary(ret[(t, n)])}
        return res

    def cleanup(self):
        for name in list(self.live):
            self.remove(name)
        self.pm("rmi", "-f", IMAGE, check=False)
        # Storage mounts (overlay layers, shm) before the directory goes.
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                if mp == self.dir or mp.startswith(self.dir + "/"):
                    mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], stderr=DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def rollup(pid):
    """The kB fields of /proc/PID/smaps_rollup."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def libraries(binary):
    """The shared libraries `ldd` names for binary, the interpreter too (absolute paths)."""
    r = run(["ldd", binary])
    out = []
    for line in r.stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                out.append(word)
                break
    return out


def first_line(cmd):
    """The first line of cmd's output, or "?"."""
    try:
        return run(cmd).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def versions():
    first = first_line
    return {"podman": first(["podman", "--version"]), "runc": first(["runc", "--version"]),
            "tini": first(["tini-static", "--version"]),
            "s6": first(["dpkg-query", "-W", "-f=${Version}", "s6"]),
            "busybox": first(["dpkg-query", "-W", "-f=${Version}", "busybox-static"]),
            "rustc": first(["rustc", "--version"])}


def measure(b, static_kennel):
    e = Entrypoint(b, static_kennel)
    b.entrypoint_live = e
    try:
        os.makedirs(e.dir)
        q = b.quick
        return e.measure_all(1 if q else 3, 3 if q else 20, random.Random(3))
    finally:
        e.cleanup()
        b.entrypoint_live = None
