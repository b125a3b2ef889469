#!/usr/bin/env python3
"""The tally of docs/systemd.md: `kennel check` on a copy of a systemd unit directory
(default /lib/systemd/system), its warnings counted by directive and status, printed as
a Markdown table. Usage: scripts/systemd-tally.py [KENNEL] [DIR]"""

import collections
import re
import shutil
import subprocess
import sys
import tempfile

kennel = sys.argv[1] if len(sys.argv) > 1 else "target/debug/kennel"
source = sys.argv[2] if len(sys.argv) > 2 else "/lib/systemd/system"

with tempfile.TemporaryDirectory() as tmp:
    copy = f"{tmp}/system"
    shutil.copytree(source, copy, symlinks=True)
    out = subprocess.run([kennel, "check", copy], capture_output=True, text=True)

counts = collections.Counter()
for line in out.stdout.splitlines():
    m = re.match(r"^(\S+?):(\d+):(\d+): warning: (.*)$", line)
    if not m:
        continue
    msg = m.group(4)
    if " is not honoured" in msg:
        key = (f"`{msg.split('=')[0]}=`", "not yet")
    elif "approximated" in msg:
        key = (f"`{msg.split('=')[0]}=`", "approximated")
    elif "no-op" in msg:
        key = (f"`{msg.split('=')[0]}=`", "no-op")
    elif msg.startswith("no [Install]"):
        key = ("(no `[Install]`)", "approximated")
    elif msg.startswith("masked"):
        key = ("(masked: symlink to /dev/null)", "not loaded")
    elif msg.startswith("an alias"):
        key = ("(alias: symlink to another service)", "not loaded")
    else:
        key = (msg, "?")
    counts[key] += 1

print("| directive | status | count |")
print("|---|---|---|")
for (directive, status), n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
    print(f"| {directive} | {status} | {n} |")
print(f"| **total** | | **{sum(counts.values())}** |")
print(out.stderr.strip(), file=sys.stderr)
