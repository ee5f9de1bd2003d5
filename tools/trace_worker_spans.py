#!/usr/bin/env python3
"""Where a decode step's parallel regions lose time, from a profile trace.

For every decode operator that ran on the thread pool, the medians over its
calls of:
  dur   the operator's time on worker 0 (the profile's scope)
  lead  from its start to the first span of the other workers (work that
        worker 0 does alone before the region, plus the wake-up)
  tail  from the others' last span end to the operator's end (imbalance)
  busy  the other workers' busy time in it
so that fixed costs per call show apart from the weight stream.

  python3 tools/trace_worker_spans.py OUT/profiler_trace.json
"""
import collections
import json
import statistics
import sys


def main(path):
    events = json.load(open(path))["traceEvents"]
    main_spans, worker_spans = {}, collections.defaultdict(list)
    for e in events:
        args = e.get("args", {})
        if e.get("ph") != "X" or args.get("step", -1) < 0:
            continue
        key = (e["name"], args["step"])
        if e["tid"] == 0:
            main_spans[key] = e
        else:
            worker_spans[key].append(e)
    stats = collections.defaultdict(lambda: collections.defaultdict(list))
    for key, m in main_spans.items():
        spans = worker_spans.get(key)
        if not spans:
            continue
        op = key[0].split(".", 2)[-1] if key[0].startswith("layers.") else key[0]
        first = min(s["ts"] for s in spans)
        last = max(s["ts"] + s["dur"] for s in spans)
        s = stats[op]
        s["dur"].append(m["dur"])
        s["lead"].append(first - m["ts"])
        s["tail"].append(m["ts"] + m["dur"] - last)
        s["busy"].append(sum(x["dur"] for x in spans))
    print(f"{'operator (decode)':32s} {'calls':>6s} {'dur us':>9s} {'lead us':>8s} {'tail us':>8s} {'busy us':>9s}")
    for op, s in sorted(stats.items(), key=lambda kv: -statistics.median(kv[1]["dur"])):
        med = {k: statistics.median(v) for k, v in s.items()}
        print(f"{op:32s} {len(s['dur']):6d} {med['dur']:9.1f} {med['lead']:8.1f} {med['tail']:8.1f} {med['busy']:9.1f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
