"""The bench's part `ocipodman` (issue 16): podman with kennel as its OCI runtime, beside
crun and runc, in one run.

Run by bench.py (`Bench.ocipodman`). One podman store of the bench's own (`--root`,
`--runroot`, `--tmpdir`, cgroupfs, file events; a containers.conf of its own for the
ulimits), one busybox image made by `podman import`, `--network none`. The runtimes:
kennel (`--runtime` naming a link `kennel-runc` to the kennel under test), crun and runc,
each by its path. Two measures, their rounds interleaved (each round runs every runtime
once, in a shuffled order, after a pause, so that load and caches fall on all alike):

- `podman run --rm IMAGE true`: podman's whole path (conmon, the runtime's create, start,
  delete, podman's cleanup);
- `podman exec C true` in a running container of each runtime (`sleep`).

Nothing is asserted about a time; the report gives each runtime's median and kennel's
ratio to crun's and runc's.
"""

import os
import random
import shutil
import subprocess
import time

import bench  # noqa: E402  (bench.py, beside this file)
from entrypoint import first_line as first, run  # noqa: E402

IMAGE = "localhost/kennel-bench-oci:1"
RUNTIMES = ("kennel", "crun", "runc")


class OciPodman:
    def __init__(self, b):
        self.b = b
        self.dir = os.path.join(b.work, "ocipodman")
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            # The sandbox's hard RLIMIT_NOFILE is below podman's default ulimits.
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf, TMPDIR=os.path.join(self.dir, "tmp"))
        link = os.path.join(self.dir, "kennel-runc")
        os.symlink(b.kennel, link)
        self.paths = {"kennel": link, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
        self.podman = ["podman", "--root", os.path.join(self.dir, "store"),
                       "--runroot", os.path.join(self.dir, "run"),
                       "--tmpdir", os.path.join(self.dir, "tmp"),
                       "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        self.live = set()

    def pm(self, *args, runtime=None):
        cmd = self.podman + (["--runtime", self.paths[runtime]] if runtime else []) + list(args)
        r = run(cmd, env=self.env, timeout=120)
        if r.returncode != 0:
            raise bench.Failed(f"podman {' '.join(args[:2])} ({runtime}): exit {r.returncode}: "
                               f"{r.stderr.strip()[-400:]}")
        return r.stdout.strip()

    def image(self):
        root = os.path.join(self.dir, "rootfs")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
        for applet in ("sh", "sleep", "true"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        tar = os.path.join(self.dir, "image.tar")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", tar, "."], check=True)
        self.pm("import", "--quiet", tar, IMAGE)
        os.remove(tar)
        shutil.rmtree(root)

    def timed(self, runtime, *args):
        cmd = self.podman + ["--runtime", self.paths[runtime]] + list(args)
        return bench.timed(cmd, env=self.env) * 1000

    def measure_all(self, rounds, rng):
        missing = [rt for rt in RUNTIMES if not self.paths[rt]]
        if missing:
            raise bench.Failed(f"not installed: {', '.join(missing)}")
        self.image()
        res = {"versions": versions(self.b.kennel), "rounds": rounds, "run": {}, "exec": {}}
        times = {rt: [] for rt in RUNTIMES}
        for i in range(1 + rounds):  # the first round is a warm-up, not counted
            order = list(RUNTIMES)
            rng.shuffle(order)
            for rt in order:
                time.sleep(bench.ISOLATION_S)
                t = self.timed(rt, "run", "--rm", "--network", "none", IMAGE, "true")
                if i:
                    times[rt].append(t)
        for rt in RUNTIMES:
            res["run"][rt] = {"ms": times[rt], **bench.summary(times[rt])}
        names = {}
        for rt in RUNTIMES:
            name = f"kennel-bench-oci-{os.getpid()}-{rt}"
            self.live.add(name)
            self.pm("run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "1000000",
                    runtime=rt)
            names[rt] = name
        times = {rt: [] for rt in RUNTIMES}
        for i in range(1 + rounds):
            order = list(RUNTIMES)
            rng.shuffle(order)
            for rt in order:
                time.sleep(bench.ISOLATION_S)
                t = self.timed(rt, "exec", names[rt], "true")
                if i:
                    times[rt].append(t)
        for rt in RUNTIMES:
            res["exec"][rt] = {"ms": times[rt], **bench.summary(times[rt])}
        return res

    def cleanup(self):
        for name in list(self.live):
            run(self.podman + ["rm", "-f", "-t", "0", name], env=self.env, timeout=60)
            self.live.discard(name)
        run(self.podman + ["rmi", "-f", "-a"], env=self.env, timeout=60)


def versions(kennel):
    return {"podman": first(["podman", "--version"]), "conmon": first(["conmon", "--version"]),
            "crun": first(["crun", "--version"]), "runc": first(["runc", "--version"]),
            "kennel": first([kennel, "--version"])}


def measure(b):
    o = OciPodman(b)
    try:
        return o.measure_all(5 if b.quick else 30, random.Random(16))
    finally:
        o.cleanup()


def section(r):
    v = r["versions"]
    L = ["## 12. podman with kennel as its OCI runtime (issue 16)", ""]
    L.append(f"{v['podman']} ({v['conmon']}), `--runtime` naming kennel (`kennel-runc`, a link to "
             f"the bench's kennel), crun ({v['crun']}) or runc ({v['runc']}); a podman store of the "
             "bench's own, cgroupfs, `--network none`, a busybox image made by `podman import`. "
             f"{r['rounds']} interleaved rounds of each (every runtime once per round, shuffled, "
             "after a warm-up round), in one run. **run**: `podman run --rm IMAGE true`, podman's "
             "whole path (conmon, the runtime's create, start and delete, podman's cleanup). "
             "**exec**: `podman exec C true` in a running container of that runtime.")
    L.append("")
    L.append("| measure | kennel p50 | crun p50 | runc p50 | kennel / crun | kennel / runc | kennel min-max |")
    L.append("|---|---|---|---|---|---|---|")
    for what in ("run", "exec"):
        d = r[what]
        k, c, rc = d["kennel"]["p50"], d["crun"]["p50"], d["runc"]["p50"]
        L.append(f"| {what} | {bench.ms(k)} | {bench.ms(c)} | {bench.ms(rc)} | {bench.ratio(k, c)} | "
                 f"{bench.ratio(k, rc)} | {bench.ms(d['kennel']['min'])}-{bench.ms(d['kennel']['max'])} |")
    L.append("")
    return L
