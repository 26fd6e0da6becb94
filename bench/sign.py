#!/usr/bin/env python3
"""Pre-signs requests for the HTTP benchmark (scripts/bench.sh), stdlib only.

Signatures follow docs/api.md: header `api-key`, and
`Authorization: HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path + md5hex(body))>`
where `path` is the request path below `/api/v1`. A signature is valid for +-5 minutes, so
run this right before each wrk run.

Output: one request per line, tab-separated, read by bench/wrk.lua:
    METHOD <TAB> PATH <TAB> BODY <TAB> Header: value <TAB> Header: value ...

Modes:
    sign.py fixed  --key K --secret S --body JSON [--count N]
                                                            the same request, signed N times (default 1)
                                                            at N distinct timestamps: the service accepts
                                                            a signature once, so each send needs its own
    sign.py create --key K --secret S --count N --seed X   N distinct bodies (distinct userIds)
    sign.py curl   --key K --secret S --body JSON          the same request as curl arguments (NUL-separated)
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid

PATH = "/api/v1/travel-rule/widget-sessions"
ADDRESS = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def sign(key: str, secret: str, method: str, path: str, body: str, now_ms: int) -> dict:
    below = path[len("/api/v1"):] if path.startswith("/api/v1") else path
    md5 = hashlib.md5((body or "{}").encode()).hexdigest()
    message = f"{now_ms}{method}{below}{md5}".encode()
    sig = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {"api-key": key, "Authorization": f"HMAC {now_ms}:{sig}"}


def body_for(user_id: str, spaced: bool = False) -> str:
    return json.dumps(
        {"userId": user_id, "currency": "BTC", "network": "BTC", "counterpartyAddress": ADDRESS},
        separators=(", ", ": ") if spaced else (",", ":"),
    )


def line(method: str, path: str, body: str, headers: dict) -> str:
    assert "\t" not in body and "\n" not in body
    fields = [method, path, body] + [f"{k}: {v}" for k, v in headers.items()]
    return "\t".join(fields)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["fixed", "create", "curl"])
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--body", help="JSON body (fixed, curl)")
    p.add_argument("--user-id", help="body with this userId (fixed, curl)")
    p.add_argument("--count", type=int, default=0, help="number of distinct bodies (create)")
    p.add_argument("--seed", default="", help="makes the create bodies' userIds distinct per run")
    a = p.parse_args()
    now_ms = int(time.time() * 1000)

    if a.mode == "create":
        out = sys.stdout
        for i in range(a.count):
            # Deterministic per (seed, i), distinct across runs with distinct seeds.
            user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"widget-sessions-bench/{a.seed}/{i}"))
            body = body_for(user_id)
            out.write(line("POST", PATH, body, sign(a.key, a.secret, "POST", PATH, body, now_ms)) + "\n")
        return 0

    # `curl` creates the session a `fixed` run then reuses: the same request spelled with
    # spaces, so that its signature can never equal one of the run's (the service accepts
    # each signature once).
    body = a.body if a.body is not None else body_for(a.user_id or str(uuid.uuid4()), spaced=a.mode == "curl")
    headers = sign(a.key, a.secret, "POST", PATH, body, now_ms)
    if a.mode == "fixed":
        # Distinct timestamps, newest first, from 29 s ahead (the service accepts up to 30 s
        # ahead) backwards one millisecond at a time: N up to ~250 000 stays within the
        # 5-minute window for a run of a minute that starts right away.
        out = sys.stdout
        for i in range(max(1, a.count)):
            ts = now_ms + 29_000 - i
            out.write(line("POST", PATH, body, sign(a.key, a.secret, "POST", PATH, body, ts)) + "\n")
    else:
        args = ["-H", f"api-key: {headers['api-key']}", "-H", f"Authorization: {headers['Authorization']}",
                "-H", "Content-Type: application/json", "--data-raw", body]
        sys.stdout.write("\0".join(args) + "\0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
