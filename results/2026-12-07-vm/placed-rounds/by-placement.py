import json, sys, statistics as st
# Server CPU µs/msg medians by cell and core placement (near: both round trips < 100 ns).
rows = {}
for line in sys.stdin:
    d = json.loads(line); r = d["results"]; c = r.get("core_rtt") or {}
    b, a = c.get("before_ns"), c.get("after_ns")
    if b is None or a is None: continue
    place = "near" if max(a, b) < 100 else ("far" if min(a, b) > 150 else "moved")
    key = (d["flags"]["connections"], d["flags"]["engine"], place)
    rows.setdefault(key, {}).setdefault(d["flags"]["label"], []).append(r["server"]["cpu_us_per_msg"])
for key in sorted(rows):
    v = rows[key]; f = st.median(v.get("fastwebsockets", [float("nan")]))
    print(*key, *(f"{s} {st.median(x):.2f} ({len(x)}) {st.median(x) / f:.2f}x" for s, x in sorted(v.items())), sep=" | ")
