"""The bench's part `disk` (issue 20): the same Debian 12 machine booted from its disk with
kennel, systemd or busybox init as /sbin/init; the time from qemu's start until its daemon
(Debian's lighttpd) answers through a forwarded port.

Run by bench.py (`Bench.disk`). The images are examples/vm/disk.sh's (`--init kennel --init
systemd --init busybox`, the kennel being the benchmark's): one debootstrapped rootfs, the
three differing only in /sbin/init and its configuration (kennel's units, systemd's own unit
for lighttpd and systemd-networkd, busybox's inittab and its sysinit script), all three with
the same /etc/fstab (root by UUID, a tmpfs, a second disk by UUID, a bind mount, a swap
file), root checked and remounted read-write, the network from DHCP. Each boot is qemu (TCG)
with Debian's kernel and initramfs from the image, `root=/dev/vda ro`, the disks in
`-snapshot` mode (nothing written to the images) and user networking with the guest's port
80 forwarded to a free port of 127.0.0.1, which the host polls (an HTTP GET every 50 ms)
until the body is the image's /var/www/html/kennel.txt; then qemu is killed. The three
inits alternate, in a shuffled order each round. Nothing is asserted about a time.
"""

import os
import shutil
import socket
import subprocess
import time

import bench  # noqa: E402  (bench.py, beside this file)

DEVNULL = subprocess.DEVNULL
# init -> the image disk.sh makes for it.
IMAGES = {"kennel": "root.img", "systemd": "root-systemd.img", "busybox init": "root-busybox.img"}
# `kennelvm.bench`: the kennel image's checks unit does nothing (the other images have none).
CMDLINE = "root=/dev/vda ro console=ttyS0 panic=-1 ip=dhcp quiet kennelvm.bench"
BODY = b"served by lighttpd"
TIMEOUT_S = 600


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def answers(port):
    """Whether lighttpd in the guest serves kennel.txt through the forwarded port now.
    (qemu accepts the connection itself; without a guest listening it closes it.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.settimeout(2)
            c.sendall(b"GET /kennel.txt HTTP/1.0\r\nHost: localhost\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            return BODY in data
    except OSError:
        return False


def boot(b, out, image, console):
    """One boot of `image`: seconds from qemu's start to the daemon's first answer."""
    port = free_port()
    q = ["qemu-system-x86_64", "-m", "512", "-smp", "2", "-accel", "tcg",
         "-kernel", os.path.join(out, "vmlinuz"), "-initrd", os.path.join(out, "initrd.img"),
         "-append", CMDLINE, "-snapshot",
         "-drive", f"file={os.path.join(out, image)},if=virtio,format=raw",
         "-drive", f"file={os.path.join(out, 'data.img')},if=virtio,format=raw",
         "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:80",
         "-nographic", "-no-reboot"]
    with open(console, "wb") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(q, stdin=DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        b.procs.append(p)
        try:
            while time.perf_counter() - t0 < TIMEOUT_S:
                if answers(port):
                    return time.perf_counter() - t0
                if p.poll() is not None:
                    break
                time.sleep(0.05)
        finally:
            bench.kill_tree(p)
    with open(console, "rb") as f:
        tail = b"\n".join(f.read().splitlines()[-20:]).decode(errors="replace")
    raise bench.Failed(f"disk boot of {image}: the daemon did not answer within {TIMEOUT_S}s; console:\n{tail}")


def measure(b):
    out = os.path.join(bench.REPO, "target", "bench-vm-disk")
    bench.log("disk: building the images with examples/vm/disk.sh (the rootfs is cached)")
    env = dict(os.environ, KENNEL_VM_BINARY=b.kennel)
    build_log = os.path.join(b.work, "disk-build.log")
    with open(build_log, "w") as lf:
        r = subprocess.run(["bash", os.path.join(bench.REPO, "examples/vm/disk.sh"),
                            "--init", "kennel", "--init", "systemd", "--init", "busybox", out],
                           env=env, stdin=DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(build_log) as f:
            last = f.read().strip().splitlines()[-1:] or [""]
        return None, f"examples/vm/disk.sh failed (exit {r.returncode}): {last[0]}"
    times = {v: [] for v in IMAGES}
    bench.log(f"disk: {b.n_disk} interleaved boots of each image (TCG)")
    for i in range(b.n_disk):
        order = list(IMAGES)
        b.rng.shuffle(order)
        for v in order:
            console = os.path.join(b.work, f"disk-{v.split()[0]}-{i}.log")
            times[v].append(boot(b, out, IMAGES[v], console) * 1000)
    with open(os.path.join(out, "kernel-version")) as f:
        kernel = f.read().strip()
    res = {"cmdline": CMDLINE, "kernel": kernel, "boots": {v: {"ms": t, **bench.summary(t)} for v, t in times.items()}}
    # Keep one console of each for whoever wants to see where the time went.
    keep = os.path.join(out, "bench-consoles")
    shutil.rmtree(keep, ignore_errors=True)
    os.makedirs(keep)
    for v in IMAGES:
        shutil.copy(os.path.join(b.work, f"disk-{v.split()[0]}-0.log"), keep)
    return res, None


def targets(d):
    """Issue 20's goal: the disk boot well under systemd's."""
    k, s = d["boots"]["kennel"]["p50"], d["boots"]["systemd"]["p50"]
    return [("disk boot to the daemon answering < systemd's (p50)",
             f"{k / 1000:.2f} s vs {s / 1000:.2f} s (ratio {bench.ratio(k, s)})", k < s)]


def section(d):
    L = ["## 10. Disk boot (issue 20)", ""]
    L.append(f"qemu (TCG, `-m 512 -smp 2`), Debian's kernel {d['kernel']} and Debian's own initramfs "
             f"(initramfs-tools), both from the image, `-append \"{d['cmdline']}\"`. The images are "
             "examples/vm/disk.sh's: one `debootstrap --variant=minbase bookworm` rootfs (linux-image-amd64, "
             "initramfs-tools, lighttpd, systemd-sysv, busybox, ...), on an ext4 disk with the same "
             "/etc/fstab (a tmpfs, a second disk by UUID, a bind mount, a swap file), differing only in "
             "/sbin/init: **kennel** (units: udev, lighttpd, a getty on ttyS0, the network from `ip=dhcp`); "
             "**systemd** (Debian's default target: journald, udev, systemd-fsck, networkd with DHCP, "
             "lighttpd.service, getty); **busybox init** (an inittab whose sysinit script does what kennel "
             "does: hostname, fsck, remount, `mount -a`, `swapon -a`, machine-id, sysctl, DHCP with "
             "`udhcpc`, then lighttpd and agetty respawned; no udev). Disks in `-snapshot` mode. Time "
             "from qemu's start until lighttpd answers `GET /kennel.txt` through the forwarded port "
             "(polled every 50 ms), boots interleaved in a shuffled order.")
    L.append("")
    L.append("| init | boots | p50 | p90 | min | max | kennel/this (p50) |")
    L.append("|---|---|---|---|---|---|---|")
    k = d["boots"]["kennel"]["p50"]
    for name, x in d["boots"].items():
        L.append(f"| {name} | {x['n']} | {x['p50'] / 1000:.2f} s | {x['p90'] / 1000:.2f} s | "
                 f"{x['min'] / 1000:.2f} s | {x['max'] / 1000:.2f} s | "
                 f"{'-' if name == 'kennel' else bench.ratio(k, x['p50'])} |")
    L.append("")
    return L
