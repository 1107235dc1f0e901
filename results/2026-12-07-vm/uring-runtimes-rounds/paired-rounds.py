# wsport-uring against every other server of a run-bench directory, round by round, with the
# rule of bench-report/src/rounds.rs: rounds whose two runs had the cores placed differently
# (round trips over 1.5x apart, or moving during a run) left out; median ratio and the sign
# test's 95% interval. Usage: zcat runs.jsonl.gz | python3 paired-rounds.py
import json, sys, math, re
from math import comb
runs = {}
for line in sys.stdin:
    d = json.loads(line); r = d["results"]; c = r.get("core_rtt") or {}
    rnd = int(re.search(r"-r(\d+)\.json", d["flags"]["json"]).group(1))
    key = (d["flags"]["connections"], d["flags"]["engine"])
    runs.setdefault(key, {}).setdefault(d["flags"]["label"], {})[rnd] = (r["server"]["cpu_us_per_msg"], c.get("before_ns"), c.get("after_ns"))
def close(x, y): return max(x, y) <= 1.5 * min(x, y)
def alike(a, b):
    if None in (a[1], a[2], b[1], b[2]): return True
    return close(a[1], a[2]) and close(b[1], b[2]) and close((a[1]+a[2])/2, (b[1]+b[2])/2)
def interval(logs):
    n = len(logs); logs = sorted(logs); below = 0; k = 0
    while k <= n // 2 and (below + comb(n, k)) / 2**n <= 0.025: below += comb(n, k); k += 1
    med = (logs[(n-1)//2] + logs[n//2]) / 2
    return (math.exp(med), math.exp(logs[k-1]), math.exp(logs[n-k])) if k else (math.exp(med), None, None)
for key in sorted(runs):
    a = runs[key].get("uring", {})
    for other, b in sorted(runs[key].items()):
        if other == "uring": continue
        pairs = [(a[r], b[r]) for r in a if r in b]
        logs = [math.log(x[0] / y[0]) for x, y in pairs if alike(x, y)]
        m, lo, hi = interval(logs)
        print(key, f"uring/{other}", f"{m:.2f}", f"({lo:.2f}-{hi:.2f})" if lo else "(no interval)", f"{len(logs)} of {len(pairs)} rounds alike", "wins", sum(l < 0 for l in logs))
