#!/usr/bin/env python3
"""Summarises one `scripts/bench.sh` run (results.jsonl + meta.json) as Markdown: medians of
the runs, ratios computed within each run, the targets, and sanity checks."""

import json
import os
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ms(us):
    return "–" if us is None else f"{us / 1000:.2f} ms"


def fmt(x, spec=".0f"):
    return "–" if x is None else format(x, spec)


def main() -> int:
    out = sys.argv[1]
    rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
    meta = json.load(open(os.path.join(out, "meta.json")))
    sel = lambda **kw: [r for r in rows if all(str(r.get(k)) == str(v) for k, v in kw.items())]
    conns = meta["connections"]
    p = print

    p(f"# widget-sessions HTTP benchmark — {meta['date']}, commit {meta['commit']}")
    p()
    p(f"{meta['nproc']} CPUs ({meta['cpu']}), {meta['mem_gib']} GiB, PostgreSQL {meta['postgres']}; "
      f"{meta['runs']} runs of {meta['duration_s']} s per wrk figure (pgbench {meta['pgbench_duration_s']} s), "
      f"{conns} connections, 2 wrk threads; total {meta['total_seconds']} s.")
    p()

    fs = [r for r in rows if r.get("tool") == "fsync"]
    if fs:
        p("WAL-flush latency of the server's disk (8 kB write + fdatasync, 1 s each): "
          + ", ".join(f"{r['label'][6:]} p50 {r['p50_us']:.0f} µs / p99 {r['p99_us']:.0f} µs" for r in fs) + ".")
        p()

    # --- main table ------------------------------------------------------------------
    p(f"## Paths at {conns} connections (medians of {meta['runs']} runs)")
    p()
    p("| path | req/s | p50 | p99 | per run (req/s) | CPU µs/req: service · postgres · wrk | other work (cores) |")
    p("|---|---:|---:|---:|---|---|---|")
    main = {}
    for path in ["reuse", "create", "reject", "bare"]:
        rs = sel(phase="main", path=path)
        if not rs:
            continue
        main[path] = rs
        cpu = lambda k: med([r["cpu_us_per_req"][k] for r in rs])
        name = {"bare": "bare upstream call (emulator)", "reject": "rejection (400)"}.get(path, path)
        procs = f"{fmt(cpu('service'))} · {fmt(cpu('postgres'))} · {fmt(cpu('wrk'))}"
        if path == "bare":
            procs = f"emulator {fmt(cpu('emulator'))} · wrk {fmt(cpu('wrk'))}"
        elif path == "create":
            procs += f" (+ emulator {fmt(cpu('emulator'))})"
        p(f"| {name} | {fmt(med(r['rps'] for r in rs))} | {ms(med(r['p50_us'] for r in rs))} | "
          f"{ms(med(r['p99_us'] for r in rs))} | {', '.join(fmt(r['rps']) for r in rs)} | {procs} | "
          f"{', '.join(fmt(r['other_cpu_cores'], '.2f') for r in rs)} |")
    pg = sorted((r for r in rows if r.get("tool") == "pgbench" and not r["label"].startswith("async-")), key=lambda r: r["label"])
    if pg:
        cpu = lambda k: med([r["cpu_us_per_req"][k] for r in pg])
        p(f"| pgbench, same reuse SQL | {fmt(med(r['tps'] for r in pg))} tx/s | avg {fmt(med(r['latency_avg_ms'] for r in pg), '.2f')} ms | – | "
          f"{', '.join(fmt(r['tps']) for r in pg)} | postgres {fmt(cpu('postgres'))} · pgbench {fmt(cpu('pgbench'))} | "
          f"{', '.join(fmt(r['other_cpu_cores'], '.2f') for r in pg)} |")
    p()

    ratios = []
    if pg and "reuse" in main:
        by_run = {int(r["run"]): r for r in main["reuse"]}
        for i, r in enumerate(pg, start=1):
            if i in by_run:
                ratios.append(by_run[i]["rps"] / r["tps"])
        p(f"**Reuse / pgbench ceiling**: per run {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"median **{med(ratios):.2f}** (ratio of medians {med(r['rps'] for r in main['reuse']) / med(r['tps'] for r in pg):.2f}).")
        p()

    over16 = []
    if "create" in main and "bare" in main:
        b = {int(r["run"]): r for r in main["bare"]}
        over16 = [(r["p50_us"] - b[int(r["run"])]["p50_us"]) for r in main["create"] if int(r["run"]) in b]
    lat = {path: sel(phase="latency", path=path) for path in ["create", "bare", "reuse"]}
    over1 = []
    if lat["create"] and lat["bare"]:
        b = {int(r["run"]): r for r in lat["bare"]}
        over1 = [(r["p50_us"] - b[int(r["run"])]["p50_us"]) for r in lat["create"] if int(r["run"]) in b]
        p("## One connection (no queueing)")
        p()
        p("| path | req/s | p50 | p99 |")
        p("|---|---:|---:|---:|")
        for path in ["reuse", "create", "bare"]:
            rs = lat[path]
            if rs:
                p(f"| {path} | {fmt(med(r['rps'] for r in rs))} | {ms(med(r['p50_us'] for r in rs))} | {ms(med(r['p99_us'] for r in rs))} |")
        p()
    if over16 or over1:
        p(f"**Create-path overhead over the bare upstream call (p50 difference, same run)**: "
          f"at {conns} connections {', '.join(ms(x) for x in over16)} → median {ms(med(over16))}; "
          f"at 1 connection {', '.join(ms(x) for x in over1)} → median {ms(med(over1))}.")
        p()

    half = sel(phase="half")
    peak = med(r["rps"] for r in main.get("reuse", [])) if main.get("reuse") else None
    hr = None
    if half:
        p(f"## Reuse at about half of peak (peak {fmt(peak)} req/s)")
        p()
        p(f"Paced load: {conns} connections, each waiting {meta['half_delay_ms']} ms after every response "
          "(wrk `delay()`), the delay calibrated with 5 s probes until throughput ≈ peak / 2.")
        p()
        p("| load | req/s (share of peak) | p50 | p99 |")
        p("|---|---:|---:|---:|")
        for r in sel(phase="probe"):
            p(f"| {r['connections']} connections, unpaced (5 s probe) | {fmt(r['rps'])} ({r['rps'] / peak:.0%}) | {ms(r['p50_us'])} | {ms(r['p99_us'])} |")
        for r in sel(phase="calibrate"):
            p(f"| {r['connections']} connections, {r['delay_ms']} ms pacing (5 s probe) | {fmt(r['rps'])} ({r['rps'] / peak:.0%}) | {ms(r['p50_us'])} | {ms(r['p99_us'])} |")
        hr = med(r["rps"] for r in half)
        p(f"| **{conns} connections, {meta['half_delay_ms']} ms pacing** (median of {len(half)}: "
          f"p99 {', '.join(ms(r['p99_us']) for r in half)}) | {fmt(hr)} ({hr / peak:.0%}) | "
          f"{ms(med(r['p50_us'] for r in half))} | **{ms(med(r['p99_us'] for r in half))}** |")
        p()

    asy = {k: sel(phase="async", path=k) for k in ["reuse", "reuse-c1", "create-c1"]}
    apg = [r for r in rows if r.get("tool") == "pgbench" and r["label"].startswith("async-")]
    if asy["reuse"]:
        p("## Diagnostic: asynchronous commit (synchronous_commit=off on the service's connections and pgbench's)")
        p()
        p("| path | req/s | p50 | p99 | CPU µs/req: service · postgres |")
        p("|---|---:|---:|---:|---|")
        for k, name in [("reuse", f"reuse, {conns} connections"), ("reuse-c1", "reuse, 1 connection"), ("create-c1", "create, 1 connection")]:
            rs = asy[k]
            if rs:
                p(f"| {name} | {fmt(med(r['rps'] for r in rs))} | {ms(med(r['p50_us'] for r in rs))} | {ms(med(r['p99_us'] for r in rs))} | "
                  f"{fmt(med(r['cpu_us_per_req']['service'] for r in rs))} · {fmt(med(r['cpu_us_per_req']['postgres'] for r in rs))} |")
        if apg:
            p(f"| pgbench, same reuse SQL, {conns} connections | {fmt(med(r['tps'] for r in apg))} tx/s | avg {fmt(med(r['latency_avg_ms'] for r in apg), '.2f')} ms | – | postgres {fmt(med(r['cpu_us_per_req']['postgres'] for r in apg))} |")
            ar = [a["rps"] / b["tps"] for a, b in zip(sorted(asy["reuse"], key=lambda r: r["run"]), sorted(apg, key=lambda r: r["label"]))]
            p()
            p(f"Reuse / pgbench with asynchronous commit: per run {', '.join(f'{x:.2f}' for x in ar)}, median {med(ar):.2f}.")
        p()

    small, big = sel(phase="scale", size="small"), sel(phase="scale", size="big")
    fills = {r["label"]: r for r in rows if r.get("label", "").startswith("fill-")}
    scale_ratio = None
    if small and big:
        s50, b50 = med(r["p50_us"] for r in small), med(r["p50_us"] for r in big)
        scale_ratio = b50 / s50
        p(f"## Reuse path vs stored sessions ({conns} connections)")
        p()
        p("| stored sessions | launch tokens | database | req/s | p50 | p99 | per run p50 |")
        p("|---:|---:|---:|---:|---:|---:|---|")
        for name, rs in [("fill-small", small), ("fill-big", big)]:
            f = fills.get(name, {})
            p(f"| {f.get('sessions', '?'):,} | {f.get('launch_tokens', '?'):,} | {f.get('bytes', 0) / 2**20:.0f} MiB | "
              f"{fmt(med(r['rps'] for r in rs))} | {ms(med(r['p50_us'] for r in rs))} | {ms(med(r['p99_us'] for r in rs))} | "
              f"{', '.join(ms(r['p50_us']) for r in rs)} |")
        p()
        p(f"**p50(big) / p50(small) = {scale_ratio:.2f}**")
        p()

    rss_reuse = max((r["rss_peak_kib"] for r in rows if r.get("path") == "reuse" and r.get("phase") != "async" and "rss_peak_kib" in r), default=None)
    rss_create = max((r["rss_peak_kib"] for r in rows if r.get("path") == "create" and r.get("phase") != "async" and "rss_peak_kib" in r), default=None)
    rss_any = max((r["rss_peak_kib"] for r in rows if r.get("path") in ("reuse", "create", "reject") and r.get("phase") != "async" and "rss_peak_kib" in r), default=None)
    p("## Memory (service RSS)")
    p()
    p(f"idle after start {meta['idle_rss_kib'] / 1024:.1f} MiB (VmHWM at start {meta['idle_hwm_kib'] / 1024:.1f} MiB); "
      f"peak under reuse load {fmt(rss_reuse and rss_reuse / 1024, '.1f')} MiB; "
      f"peak under create load {fmt(rss_create and rss_create / 1024, '.1f')} MiB (VmHWM, reset before each run).")
    p()

    # --- targets ----------------------------------------------------------------------
    p("## Targets")
    p()
    p("| target | measured | met |")
    p("|---|---|---|")
    yes = lambda ok: "yes" if ok else "**no**"
    if ratios:
        p(f"| reuse ≥ 0.5 × pgbench ceiling | {med(ratios):.2f} × | {yes(med(ratios) >= 0.5)} |")
    if half:
        h99 = med(r["p99_us"] for r in half)
        p(f"| p99 ≤ 5 ms at half of peak | {ms(h99)} at {fmt(hr)} req/s ({hr / peak:.0%} of peak, paced) | {yes(h99 <= 5000)} |")
    if over16 or over1:
        o = med(over1) if over1 else med(over16)
        p(f"| create overhead over bare upstream ≤ 1 ms (p50) | {ms(med(over1))} at 1 connection; {ms(med(over16))} at {conns} | {yes(o <= 1000)} |")
    if rss_any is not None:
        p(f"| RSS under load ≤ 64 MiB | {rss_any / 1024:.1f} MiB | {yes(rss_any <= 64 * 1024)} |")
    if scale_ratio is not None:
        p(f"| reuse p50 at {meta['big']:,} ≤ 1.2 × at {meta['small']:,} | {scale_ratio:.2f} × | {yes(scale_ratio <= 1.2)} |")
    p()

    # --- checks -----------------------------------------------------------------------
    problems = []
    for r in rows:
        if r.get("tool") != "wrk":
            continue
        n = r["requests"]
        if r.get("socket_errors"):
            problems.append(f"{r['label']}: {r['socket_errors']:.0f} socket errors")
        if r.get("path", "").startswith("reuse") and (r["created"] > 0 or r["status_errors"] > 0):
            problems.append(f"{r['label']}: {r['created']:.0f} creates / {r['status_errors']:.0f} errors during a reuse run")
        if r.get("path", "").startswith("create") and (r["reused"] > 0 or r["status_errors"] > 0):
            problems.append(f"{r['label']}: {r['reused']:.0f} reuses / {r['status_errors']:.0f} errors during a create run (request list too short?)")
        if r.get("path") == "reject" and r["status_errors"] != n:
            problems.append(f"{r['label']}: {n - r['status_errors']:.0f} of {n:.0f} requests were not rejected")
    for r in rows:
        if r.get("label") == "plan-check" and r["sessions_pk_tuples_per_scan"] > 1.5:
            problems.append(f"plan check: {r['sessions_pk_tuples_per_scan']:.1f} sessions_pkey entries read per reuse lookup "
                            f"with {r['sessions']} sessions stored (expected 1: a stale plan?)")
    for r in pg:
        if r["tokens_inserted"] != r["transactions"]:
            problems.append(f"{r['label']}: {r['tokens_inserted']} launch tokens for {r['transactions']} transactions")
    p("## Checks")
    p()
    if problems:
        for x in problems:
            p(f"- {x}")
    else:
        p("- reuse runs: every answer a reuse (no create, no error); create runs: every answer a create; "
          "rejection runs: every answer an error; pgbench: one launch token inserted per transaction; "
          "plan check: one sessions_pkey entry read per reuse lookup.")
    p(f"- autovacuum on the server: {meta.get('autovacuum', '?')}" + ("" if meta.get("autovacuum") == "on" else " (the bench ran ANALYZE after each create phase instead)"))
    prof = os.path.join(out, "profile-service-categories.txt")
    if os.path.exists(prof) and os.path.getsize(prof):
        p()
        p("## Profile of the reuse path (perf, service process, by leaf symbol)")
        p()
        p("```")
        p(open(prof).read().rstrip())
        p("```")
    byproc = os.path.join(out, "profile-by-process.txt")
    if os.path.exists(byproc) and os.path.getsize(byproc):
        p()
        p("CPU samples by process and object (whole machine, during the reuse load):")
        p()
        p("```")
        p("\n".join(open(byproc).read().rstrip().splitlines()[:25]))
        p("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
