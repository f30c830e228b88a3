#!/usr/bin/env python3
"""Prints one 'N passed, N failed, N skipped' line for a meson testlog.json,
counting the individual checks inside each test (gtest cases, e2e checks, node tests)."""
import json
import re
import sys

passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    if t["result"] == "SKIP":
        skipped += 1
        continue
    m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
    g = re.search(r"\[  PASSED  \] (\d+) test", out)
    n = re.search(r"^# pass (\d+)\n# fail (\d+)", out, re.M)  # node --test (TAP)
    if m:
        passed += int(m[-1][0]); failed += int(m[-1][1])
    elif g:
        passed += int(g.group(1))
        failed += len(re.findall(r"^\[  FAILED  \] .*\(\d+ ms\)$", out, re.M))
    elif n:
        passed += int(n.group(1)); failed += int(n.group(2))
    elif t["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and not (m and int(m[-1][1])):
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
