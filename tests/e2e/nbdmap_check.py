"""nbdmap_check.py QEMU_MAP.json NBD_MAP.json ORACLE.raw

Checks an NBD server's block status (nbdinfo --map --json) against qemu's
own map of the same layer (qemu-img map --output=json) and its bytes:
every byte qemu calls data is data on the export, every byte qemu calls
"data": false is flagged zero, and nothing flagged zero reads non-zero.
"""
import json
import sys

qemu = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
oracle = open(sys.argv[3], "rb")


def ranges(rows, start_key, flag):
    return [(r[start_key], r[start_key] + r["length"], flag(r)) for r in rows]


q = ranges(qemu, "start", lambda r: r["data"])
n = ranges(ours, "offset", lambda r: r["type"])
if not n or n[0][0] != 0 or any(a[1] != b[0] for a, b in zip(n, n[1:])):
    sys.exit("the export's extents do not tile the disk")
if n[-1][1] != q[-1][1]:
    sys.exit(f"the export's extents end at {n[-1][1]}, qemu's at {q[-1][1]}")

i = 0
for start, end, data in q:
    pos = start
    while pos < end:
        while n[i][1] <= pos:
            i += 1
        nstart, nend, ntype = n[i]
        stop = min(end, nend)
        if data and ntype != 0:
            sys.exit(f"[{pos}, {stop}): qemu says data, the export says type {ntype}")
        if not data and not ntype & 2:
            sys.exit(f"[{pos}, {stop}): qemu says not data, the export does not flag it zero")
        pos = stop

for start, end, ntype in n:
    if ntype & 2:
        oracle.seek(start)
        left = end - start
        while left:
            chunk = oracle.read(min(left, 1 << 20))
            if chunk.count(0) != len(chunk):
                sys.exit(f"[{start}, {end}) is flagged zero but reads non-zero")
            left -= len(chunk)
print(f"{len(n)} extents agree with qemu's {len(q)}")
