#!/usr/bin/env python3
"""Webhook delivery benchmark: how many events per second the service delivers to a local
receiver with one and with three instances, and the latency from an event to its 2xx at
about half of that rate.

    python3 bench/webhooks.py            (or: just bench-webhooks)

Release build of the working tree; a fresh database on DATABASE_URL's server (default
postgres://postgres@127.0.0.1:5432); one Transak emulator; a receiver in this process
(asyncio, answers 204 at once, records when each event arrived).

1. Throughput, per instance count (1, then 3): with the instances running, N events
   (BENCH_WEBHOOK_EVENTS, default 20000) are written at once by the same SQL function the
   service uses (`emit_session_event`, with NOTIFY), copies of one real session's event;
   the figure is N divided by the time from the write to the last arrival. Repeated
   BENCH_WEBHOOK_ROUNDS times (default 3), medians reported, the ratio 3/1 within the run.
2. Latency at about half of the 3-instance rate: events written at a steady pace for
   BENCH_WEBHOOK_SECONDS (default 15); for each, arrival time minus the event's `timestamp`
   (both on this machine's clock): p50, p99.

Prints one table; raw figures go to target/bench-webhooks/<time>/results.json.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab  # noqa: E402  (shares the database and process helpers)

ROOT = ab.ROOT
EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "20000"))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_WEBHOOK_SECONDS", "15"))


def log(msg):
    print(f"[webhooks {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Receiver:
    """A minimal HTTP/1.1 server: 204 to every POST, keep-alive, records arrivals."""

    def __init__(self):
        self.arrivals = []  # (arrival unix seconds, event timestamp unix seconds)
        self.lock = threading.Lock()
        self.port = ab.free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        time.sleep(0.3)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port, backlog=1024))
        self.loop.run_until_complete(server.serve_forever())

    async def _client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                now = time.time()
                stamp = json.loads(body)["timestamp"]
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                with self.lock:
                    self.arrivals.append((now, stamp))
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    def take(self):
        with self.lock:
            out, self.arrivals = self.arrivals, []
        return out

    def count(self):
        with self.lock:
            return len(self.arrivals)


def parse_ts(s):
    # RFC 3339 with microseconds and Z.
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Service:
    def __init__(self, bins, db, emu_url, apps, out, name):
        self.port = ab.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": db.url, "WIDGET_SESSIONS_LISTEN": f"127.0.0.1:{self.port}",
            "WIDGET_SESSIONS_RATE_LIMIT": "0", "WIDGET_SESSIONS_CLIENT_RATE_LIMIT": "0",
            "WIDGET_SESSIONS_GLOBAL_RATE_LIMIT": "0", "WIDGET_SESSIONS_APPS_FILE": apps,
            "WIDGET_SESSIONS_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "WIDGET_SESSIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            "WIDGET_SESSIONS_LOG_FORMAT": "json", "RUST_LOG": "warn",
            "TRANSAK_ENVIRONMENT": "emulator", "TRANSAK_GATEWAY_URL": emu_url, "TRANSAK_API_URL": emu_url,
        }
        self.log = open(os.path.join(out, f"{name}.log"), "w")
        self.proc = subprocess.Popen([os.path.join(bins, "widget-sessions"), "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1)
                return
            except Exception:
                if self.proc.poll() is not None:
                    sys.exit(f"{name} exited (see {self.log.name})")
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def main():
    out = os.path.join(ROOT, "target", "bench-webhooks", time.strftime("%Y%m%dT%H%M%S"))
    os.makedirs(out)
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    log("building")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "widget-sessions", "-p", "transak-emulator"],
                   cwd=ROOT, check=True)
    bins = os.path.join(ROOT, "target", "release")
    db = ab.Db(server, "widget_sessions_bench_webhooks")
    emu_port = ab.free_port()
    emu = subprocess.Popen([os.path.join(bins, "transak-emulator"), "--listen", f"127.0.0.1:{emu_port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emu_url = f"http://127.0.0.1:{emu_port}"
    key, secret = "bench_" + uuid.uuid4().hex[:16], "bench_" + uuid.uuid4().hex
    apps = os.path.join(out, "apps.json")
    with open(apps, "w") as f:
        json.dump([{"name": "bench", "apiKey": key, "apiSecret": secret}], f)
    receiver = Receiver()
    services = []
    results = {"throughput": {}, "latency": {}}
    try:
        time.sleep(0.5)
        services.append(Service(bins, db, emu_url, apps, out, "instance-1"))
        first = services[0]
        app_id = db.sql("select id from applications where name = 'bench'")

        # The endpoint, then one real session (its event is the template).
        endpoint_body = json.dumps({"url": f"http://127.0.0.1:{receiver.port}/hooks"})
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        import sign  # noqa: E402
        ts = int(time.time() * 1000)
        hdrs = sign.sign(key, secret, "POST", "/webhook-endpoints", endpoint_body, ts)
        r = urllib.request.Request(first.url + "/api/v1/webhook-endpoints", data=endpoint_body.encode(), method="POST")
        for k, v in hdrs.items():
            r.add_header(k, v)
        r.add_header("Content-Type", "application/json")
        urllib.request.urlopen(r).read()
        req = ab.run([sys.executable, os.path.join(ROOT, "bench", "sign.py"), "fixed", "--key", key,
                      "--secret", secret, "--user-id", str(uuid.uuid4())]).splitlines()[0]
        m, path, body, *headers = req.split("\t")
        r = urllib.request.Request(first.url + path, data=body.encode(), method=m)
        for h in headers:
            k, v = h.split(": ", 1)
            r.add_header(k, v)
        r.add_header("Content-Type", "application/json")
        urllib.request.urlopen(r).read()
        receiver_wait(receiver, 1, 30)  # the session.created of the template session
        receiver.take()
        template = "(select session from session_events limit 1)"

        def emit(n):
            db.sql(f"select count(emit_session_event('{app_id}', gen_random_uuid(), 'session.created', now(), {template})) "
                   f"from generate_series(1, {n})")

        for count in (1, 3):
            while len(services) < count:
                services.append(Service(bins, db, emu_url, apps, out, f"instance-{len(services) + 1}"))
            rates = []
            for r_i in range(ROUNDS):
                receiver.take()
                started = time.time()
                emit(EVENTS)
                receiver_wait(receiver, EVENTS, 300)
                arrivals = receiver.take()
                last = max(a for a, _ in arrivals)
                rate = EVENTS / (last - started)
                rates.append(rate)
                log(f"{count} instance(s), round {r_i + 1}: {EVENTS} events in {last - started:.2f} s = {rate:.0f}/s")
            results["throughput"][count] = rates

        peak = statistics.median(results["throughput"][3])
        target = peak / 2
        log(f"latency at about {target:.0f} events/s for {SECONDS} s")
        receiver.take()
        batch = max(1, int(target / 20))  # 20 writes per second
        started = time.time()
        sent = 0
        while time.time() - started < SECONDS:
            t0 = time.time()
            emit(batch)
            sent += batch
            time.sleep(max(0, 0.05 - (time.time() - t0)))
        receiver_wait(receiver, sent, 120)
        arrivals = receiver.take()
        lat = sorted(a - parse_ts(s) for a, s in arrivals)
        achieved = sent / (time.time() - started)
        results["latency"] = {
            "rate": sent / SECONDS, "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1], "max_ms": 1000 * lat[-1], "events": sent,
        }
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        one = statistics.median(results["throughput"][1])
        three = statistics.median(results["throughput"][3])
        la = results["latency"]
        print(f"\nwebhook delivery, {EVENTS} events per round, {ROUNDS} rounds, medians (raw: {out})\n")
        print("| figure | value |\n|---|---:|")
        print(f"| events delivered per second, 1 instance | {one:.0f} (runs: {', '.join(f'{x:.0f}' for x in results['throughput'][1])}) |")
        print(f"| events delivered per second, 3 instances | {three:.0f} (runs: {', '.join(f'{x:.0f}' for x in results['throughput'][3])}) |")
        print(f"| 3 instances / 1 instance | {three / one:.2f} |")
        print(f"| event → 2xx at {la['rate']:.0f} events/s (about half of the 3-instance rate), p50 | {la['p50_ms']:.1f} ms |")
        print(f"| same, p99 | {la['p99_ms']:.1f} ms |")
        print(f"| same, max | {la['max_ms']:.1f} ms |")
    finally:
        for s in services:
            try:
                s.stop()
            except Exception:
                pass
        emu.terminate()
        db.drop()


def receiver_wait(receiver, n, timeout):
    started = time.time()
    while receiver.count() < n:
        if time.time() - started > timeout:
            sys.exit(f"only {receiver.count()} of {n} events arrived within {timeout} s")
        time.sleep(0.01)


if __name__ == "__main__":
    main()
