#!/usr/bin/env python3
"""A/B benchmark of the hot paths: a baseline build of the service against the current one,
in one run, interleaved round by round so both see the same machine.

    python3 bench/ab.py BASE_COMMIT        (or: just bench-ab BASE_COMMIT)

For each variant (A = BASE_COMMIT, B = the working tree), on a fresh database of its own on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432), behind the same Transak
emulator, ROUNDS times (BENCH_AB_ROUNDS, default 3), alternating A and B:

  - reuse: wrk, 16 connections, DURATION seconds (BENCH_AB_DURATION, default 15), every
    request signed afresh (the service accepts a signature once);
  - create at 1 connection: wrk, distinct bodies (each a new session), 10 s: latency p50;
  - bare upstream at 1 connection: the emulator's Create Widget URL straight (on a second
    emulator with its own token), 10 s: what a create cannot avoid;
  - launch: fresh sessions made by creates at 16 connections (their links recorded), then
    wrk opens each link once, 16 connections, LAUNCH_SECONDS (BENCH_AB_LAUNCH_SECONDS,
    default 3): every answer a 303 that consumes a session;

then, per variant: pgbench of its own reuse statement (from its .sqlx), 16 connections;
and reuse p99 at about half of its peak (16 connections paced with a per-connection delay).

Prints one table (medians over rounds, ratios B/A computed within the run) and writes the
raw results to target/bench-ab/<time>/results.json.
"""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROUNDS = int(os.environ.get("BENCH_AB_ROUNDS", "3"))
DUR = int(os.environ.get("BENCH_AB_DURATION", "15"))
LAUNCH_DUR = int(os.environ.get("BENCH_AB_LAUNCH_SECONDS", "3"))
CONNS = 16
THREADS = 2


def log(msg):
    print(f"[ab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build(tree, target_dir, out_dir):
    """Builds the service and the emulator of `tree` in release into `target_dir`; copies
    them to out_dir. The baseline gets a target directory of its own: two checkouts with
    the same layout sharing one would let cargo take one's artifacts for the other's."""
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    log(f"building {tree}")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "widget-sessions", "-p", "transak-emulator"],
                   cwd=tree, env=env, check=True)
    os.makedirs(out_dir, exist_ok=True)
    for b in ["widget-sessions", "transak-emulator"]:
        shutil.copy2(os.path.join(target_dir, "release", b), os.path.join(out_dir, b))


class Db:
    def __init__(self, server, name):
        p = urllib.parse.urlsplit(server)
        self.admin = urllib.parse.urlunsplit(p._replace(path="/postgres"))
        self.url = urllib.parse.urlunsplit(p._replace(path="/" + name))
        self.name = name
        run(["psql", self.admin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
             f"drop database if exists {name} with (force)", "-c", f"create database {name}"])

    def sql(self, q):
        return run(["psql", self.url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", q]).strip()

    def drop(self):
        subprocess.run(["psql", self.admin, "-X", "-q", "-c", f"drop database if exists {self.name} with (force)"],
                       capture_output=True)


class Variant:
    def __init__(self, label, bins, tree, db, emu_url, out):
        self.label, self.bins, self.tree, self.db, self.out = label, bins, tree, db, out
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = "bench_" + uuid.uuid4().hex[:16]
        self.secret = "bench_" + uuid.uuid4().hex
        apps = os.path.join(out, f"apps-{label}.json")
        with open(apps, "w") as f:
            json.dump([{"name": "bench", "apiKey": self.key, "apiSecret": self.secret}], f)
        env = {
            "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": db.url, "WIDGET_SESSIONS_LISTEN": f"127.0.0.1:{self.port}",
            "WIDGET_SESSIONS_RATE_LIMIT": "0", "WIDGET_SESSIONS_CLIENT_RATE_LIMIT": "0",
            "WIDGET_SESSIONS_GLOBAL_RATE_LIMIT": "0", "WIDGET_SESSIONS_APPS_FILE": apps,
            "WIDGET_SESSIONS_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "WIDGET_SESSIONS_LOG_FORMAT": "json", "RUST_LOG": "warn",
            "TRANSAK_ENVIRONMENT": "emulator", "TRANSAK_GATEWAY_URL": emu_url, "TRANSAK_API_URL": emu_url,
        }
        self.log = open(os.path.join(out, f"service-{label}.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bins, "widget-sessions"), "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1)
                break
            except Exception:
                if self.proc.poll() is not None:
                    sys.exit(f"{label}: the service exited (see {self.log.name})")
                time.sleep(0.2)
        self.app_id = db.sql("select id from applications where name = 'bench'")
        self.session_user = None
        self.fresh_session()
        self.pgbench_script = os.path.join(out, f"reuse-{label}.pgbench")
        with open(self.pgbench_script, "w") as f:
            f.write(run([sys.executable, os.path.join(ROOT, "bench", "pgbench_reuse.py"), "--root", tree]))

    def sign(self, mode, *args):
        return run([sys.executable, os.path.join(ROOT, "bench", "sign.py"), mode, "--key", self.key,
                    "--secret", self.secret, *args])

    def fresh_session(self):
        """A new session (one create), so reuse runs have its whole reuse window ahead."""
        self.session_user = str(uuid.uuid4())
        # The same request as the reuse runs', spelled with spaces: a different signature
        # (the reuse runs' signatures must all be new to the service), the same session.
        body = json.dumps({"userId": self.session_user, "currency": "BTC", "network": "BTC",
                           "counterpartyAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"},
                          separators=(", ", ": "))
        req = self.sign("fixed", "--body", body)
        method, path, body, *headers = req.rstrip("\n").split("\t")
        r = urllib.request.Request(self.url + path, data=body.encode(), method=method)
        for h in headers:
            k, v = h.split(": ", 1)
            r.add_header(k, v)
        r.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(r) as resp:
            assert resp.status == 201, resp.status
        self.key_hex = self.db.sql(
            f"select encode(reuse_key, 'hex') from sessions where subject_id = '{self.session_user}'")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def wrk(url, requests_file, conns, dur, out, delay_ms=0, record=""):
    threads = min(conns, THREADS)
    env = dict(os.environ, BENCH_REQUESTS=requests_file, BENCH_MODE="cycle", BENCH_DELAY_MS=str(delay_ms),
               BENCH_RECORD=record)
    text = run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{dur}s", "--latency", "-s",
                os.path.join(ROOT, "bench", "wrk.lua"), url, "--", str(threads)], env=env)
    with open(out, "w") as f:
        f.write(text)
    line = next(l for l in text.splitlines() if l.startswith("BENCHRESULT"))
    rec = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    errors = rec["status_errors"] + rec["socket_errors"]
    if errors:
        # Which answers they were: the service's own count of responses by status.
        statuses = "the answers' statuses are in the service's /metrics"
        try:
            metrics = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
            statuses = ", ".join(sorted({m for m in re.findall(r'status="([0-9]+)"', metrics) if not m.startswith("2")}))
        except Exception:
            pass
        log(f"{out}: wrk saw {errors:.0f} errors of {rec['requests']:.0f} requests (non-2xx statuses seen so far: {statuses or 'none'})")
        if errors > rec["requests"] / 1000:
            sys.exit(f"{out}: too many errors: {line}")
    return rec


def reuse_requests(v, dur, path):
    count = min(250_000, 20_000 * dur)
    with open(path, "w") as f:
        f.write(v.sign("fixed", "--user-id", v.session_user, "--count", str(count)))


def create_requests(v, seed, count, path):
    with open(path, "w") as f:
        f.write(v.sign("create", "--seed", seed, "--count", str(count)))


def launch_run(v, r, out):
    """Creates fresh sessions (links recorded), then opens each once: launches per second."""
    creq = os.path.join(out, "launch-create.req")
    create_requests(v, f"launch-{v.label}-{r}-{time.time()}", 100_000, creq)
    record = os.path.join(out, f"links-{v.label}-{r}")
    made = wrk(v.url, creq, CONNS, 5 * LAUNCH_DUR, os.path.join(out, f"launch-create-{v.label}-{r}.txt"),
               record=record)
    links = []
    for t in range(1, THREADS + 1):
        try:
            with open(f"{record}-{t}") as f:
                links += [l.strip() for l in f if l.strip()]
        except FileNotFoundError:
            pass
    lreq = os.path.join(out, "launch.req")
    with open(lreq, "w") as f:
        for link in links:
            f.write(f"GET\t{link}\t\n")
    rec = wrk(v.url, lreq, CONNS, LAUNCH_DUR, os.path.join(out, f"launch-{v.label}-{r}.txt"))
    if rec["requests"] > len(links):
        sys.exit(f"launch: {rec['requests']:.0f} opens of {len(links)} links: raise the creates' duration")
    log(f"  launch {rec['rps']:.0f} req/s over {len(links)} fresh links "
        f"(made at {made['rps']:.0f} creates/s), p99 {rec['p99_us'] / 1000:.2f} ms")
    return rec


def pgbench(v, dur, out):
    now = v.db.sql("select now()")
    until = v.db.sql("select now() + interval '60 seconds'")
    lease = v.db.sql("select now() + interval '30 seconds'")
    text = run(["pgbench", "-n", "-c", str(CONNS), "-j", str(THREADS), "-M", "prepared", "-T", str(dur),
                "-f", v.pgbench_script, "-D", f"app={v.app_id}", "-D", f"key=\\x{v.key_hex}",
                "-D", f"now={now}", "-D", f"until={until}", "-D", f"lease={lease}", "-D", "fvo=false", v.db.url])
    with open(out, "w") as f:
        f.write(text)
    return float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text).group(1))


def ensure_tools():
    """wrk and pgbench, installed with apt-get where missing and possible (as scripts/bench.sh)."""
    missing = [t for t in ("wrk", "pgbench") if shutil.which(t) is None]
    if "wrk" in missing and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk (apt-get install -y wrk)")
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)
    missing = [t for t in ("wrk", "pgbench") if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install wrk postgresql-client, or brew install wrk libpq)")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    base = sys.argv[1]
    ensure_tools()
    out = os.path.join(ROOT, "target", "bench-ab", time.strftime("%Y%m%dT%H%M%S"))
    os.makedirs(out)
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    head = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "crates", "Cargo.lock",
                            "migrations"]).returncode != 0
    base_tree = tempfile.mkdtemp(prefix="bench-ab-base-")
    run(["git", "-C", ROOT, "worktree", "add", "--detach", base_tree, base])
    variants = []
    emus = []
    dbs = []
    try:
        build(base_tree, os.path.join(ROOT, "target", "bench-ab-base"), os.path.join(out, "A"))
        build(ROOT, os.path.join(ROOT, "target"), os.path.join(out, "B"))
        emu_port, bare_port = free_port(), free_port()
        for port in (emu_port, bare_port):
            emus.append(subprocess.Popen([os.path.join(out, "B", "transak-emulator"), "--listen", f"127.0.0.1:{port}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env={"PATH": os.environ["PATH"], "RUST_LOG": "warn"}))
        emu_url, bare_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{bare_port}"
        time.sleep(1)
        dbs = [Db(server, "widget_sessions_bench_a"), Db(server, "widget_sessions_bench_b")]
        variants = [Variant("A", os.path.join(out, "A"), base_tree, dbs[0], emu_url, out),
                    Variant("B", os.path.join(out, "B"), ROOT, dbs[1], emu_url, out)]
        # The bare upstream call on the second emulator, with its own token.
        tok = json.load(urllib.request.urlopen(urllib.request.Request(
            bare_url + "/partners/api/v2/refresh-token", data=b'{"apiKey":"emulator-api-key"}',
            headers={"content-type": "application/json", "api-secret": "emulator-api-secret"})))["data"]["accessToken"]
        bare_file = os.path.join(out, "bare.req")
        with open(bare_file, "w") as f:
            body = json.dumps({"widgetParams": {"apiKey": "emulator-api-key", "referrerDomain": "localhost",
                                                "cryptoCurrencyCode": "BTC", "network": "bitcoin",
                                                "walletAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                                                "partnerOrderId": str(uuid.uuid4()),
                                                "partnerCustomerId": str(uuid.uuid4())}}, separators=(",", ":"))
            f.write(f"POST\t/api/v2/auth/session\t{body}\taccess-token: {tok}\n")

        # Warm-up: some sessions, then ANALYZE (what a service up for a minute sees).
        for v in variants:
            create_requests(v, f"warmup-{v.label}", 20_000, os.path.join(out, "warmup.req"))
            wrk(v.url, os.path.join(out, "warmup.req"), CONNS, 5, os.path.join(out, f"warmup-{v.label}.txt"))
            v.db.sql("analyze")
        results = {v.label: {"reuse": [], "create_c1_p50_us": [], "bare_c1_p50_us": [], "launch": []}
                   for v in variants}
        for r in range(1, ROUNDS + 1):
            for v in variants:
                log(f"round {r}/{ROUNDS}, {v.label}")
                v.fresh_session()
                req = os.path.join(out, "reuse.req")
                reuse_requests(v, DUR, req)
                rec = wrk(v.url, req, CONNS, DUR, os.path.join(out, f"reuse-{v.label}-{r}.txt"))
                results[v.label]["reuse"].append(rec)
                log(f"  reuse {rec['rps']:.0f} req/s, p99 {rec['p99_us'] / 1000:.2f} ms")
                creq = os.path.join(out, "create.req")
                create_requests(v, f"c1-{v.label}-{r}-{time.time()}", 30_000, creq)
                rec = wrk(v.url, creq, 1, 10, os.path.join(out, f"create-c1-{v.label}-{r}.txt"))
                results[v.label]["create_c1_p50_us"].append(rec["p50_us"])
                rec = wrk(bare_url, bare_file, 1, 10, os.path.join(out, f"bare-c1-{v.label}-{r}.txt"))
                results[v.label]["bare_c1_p50_us"].append(rec["p50_us"])
                log(f"  create c1 p50 {results[v.label]['create_c1_p50_us'][-1] / 1000:.2f} ms, "
                    f"bare {rec['p50_us'] / 1000:.2f} ms")
                results[v.label]["launch"].append(launch_run(v, r, out))
                v.db.sql("analyze")
        for v in variants:
            v.fresh_session()
            results[v.label]["pgbench_tps"] = pgbench(v, DUR, os.path.join(out, f"pgbench-{v.label}.txt"))
            log(f"{v.label}: pgbench of its reuse statement {results[v.label]['pgbench_tps']:.0f} tx/s")
            # p99 at about half of peak: pace 16 connections with a per-connection delay.
            peak = statistics.median(x["rps"] for x in results[v.label]["reuse"])
            delay = max(0, round(1000 * CONNS / (peak / 2)))
            for _ in range(4):
                v.fresh_session()
                req = os.path.join(out, "reuse.req")
                reuse_requests(v, 5, req)
                rec = wrk(v.url, req, CONNS, 5, os.path.join(out, f"calibrate-{v.label}.txt"), delay)
                if abs(rec["rps"] - peak / 2) < peak * 0.05:
                    break
                delay = max(0, round(delay * rec["rps"] / (peak / 2)))
            v.fresh_session()
            reuse_requests(v, DUR, req)
            rec = wrk(v.url, req, CONNS, DUR, os.path.join(out, f"half-{v.label}.txt"), delay)
            results[v.label]["half"] = rec
            log(f"{v.label}: at {rec['rps']:.0f} req/s (peak {peak:.0f}) p99 {rec['p99_us'] / 1000:.2f} ms")
        report(results, base, head + ("+dirty" if dirty else ""), out)
    finally:
        for v in variants:
            try:
                v.stop()
            except Exception:
                pass
        for e in emus:
            e.terminate()
        for d in dbs:
            d.drop()
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base_tree], capture_output=True)


def report(results, base, head, out):
    med = statistics.median
    rows = {}
    for label, r in results.items():
        create = med(r["create_c1_p50_us"]) / 1000
        bare = med(r["bare_c1_p50_us"]) / 1000
        rows[label] = {
            "reuse_rps": med(x["rps"] for x in r["reuse"]),
            "reuse_p99_ms_at_peak": med(x["p99_us"] for x in r["reuse"]) / 1000,
            "pgbench_tps": r["pgbench_tps"],
            "half_rps": r["half"]["rps"],
            "half_p99_ms": r["half"]["p99_us"] / 1000,
            "create_c1_p50_ms": create,
            "bare_c1_p50_ms": bare,
            "create_overhead_ms": create - bare,
            "launch_rps": med(x["rps"] for x in r["launch"]),
            "launch_p99_ms": med(x["p99_us"] for x in r["launch"]) / 1000,
        }
    a, b = rows["A"], rows["B"]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"base": base, "head": head, "raw": results, "summary": rows}, f, indent=2)
    print(f"\nA = {base}, B = {head} ({ROUNDS} rounds of {DUR} s, medians; raw results in {out})\n")
    print("| figure | A | B | B/A |")
    print("|---|---|---|---|")
    for k, unit in [("reuse_rps", "req/s"), ("reuse_p99_ms_at_peak", "ms"), ("pgbench_tps", "tx/s"),
                    ("half_rps", "req/s"), ("half_p99_ms", "ms"), ("create_c1_p50_ms", "ms"),
                    ("bare_c1_p50_ms", "ms"), ("create_overhead_ms", "ms"), ("launch_rps", "req/s"),
                    ("launch_p99_ms", "ms")]:
        print(f"| {k} ({unit}) | {a[k]:.2f} | {b[k]:.2f} | {b[k] / a[k] if a[k] else float('nan'):.2f} |")
    print(f"| reuse / pgbench of its own statement | {a['reuse_rps'] / a['pgbench_tps']:.2f} | "
          f"{b['reuse_rps'] / b['pgbench_tps']:.2f} | |")


if __name__ == "__main__":
    main()
