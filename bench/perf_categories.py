#!/usr/bin/env python3
"""Groups a perf profile of the service process by what the code is doing, from the leaf
symbol of each sample (the release build has no frame pointers, so call chains are not
reliable; leaf symbols are). Usage: perf_categories.py PERF_DATA PID [--top N]"""

import re
import subprocess
import sys
from collections import defaultdict

# First match wins; patterns are matched against "dso symbol".
CATEGORIES = [
    ("kernel: syscalls, loopback TCP, scheduler", r"\[kernel|\[k\]"),
    ("TLS to Postgres (rustls, ring)", r"rustls|ring::|aes_gcm|aes_hw|gcm_|chacha20_poly1305"),
    ("HMAC-SHA256 / MD5 / SHA-256 (auth, token digests)", r"sha2|sha256|hmac|md5|Md5|compress256|digest::|subtle::"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("Postgres client (sqlx)", r"sqlx|tokio_postgres|postgres_protocol"),
    ("metrics (Prometheus recorder)", r"metrics|prometheus|quanta|sketches|portable_atomic"),
    ("tracing / logging", r"tracing"),
    ("HTTP (hyper, axum, tower, httparse)", r"hyper|axum|tower|httparse|http::|h2::|matchit"),
    ("async runtime (tokio, mio, futures)", r"tokio|mio::|futures|parking_lot|crossbeam|async_trait"),
    ("memory allocation, memcpy (libc)", r"malloc|free|memcpy|memmove|memset|realloc|calloc|_int_|cfree|tcache|libc\.so|ld-linux"),
    ("uuid / rand / base64 / hex", r"uuid|rand|chacha|getrandom|base64|hex::"),
    ("time (chrono)", r"chrono|clock_gettime|vdso"),
    ("formatting, strings, collections (core/alloc/std)", r"core::fmt|alloc::|core::|std::|hashbrown|smallvec|bytes::|<&T|<T as|\bstr\b"),
    ("our code (domain, app, api, ports, postgres adapter)", r"domain::|app::|api::|ports::|postgres::|widget"),
]


def main() -> int:
    data, pid = sys.argv[1], sys.argv[2]
    top = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--top" else 25
    text = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--pid", pid, "--percentage", "relative",
         "--sort", "dso,sym", "--stdio", "-g", "none", "--percent-limit", "0"],
        capture_output=True, text=True, check=True).stdout
    line_re = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$")
    totals, examples, symbols = defaultdict(float), defaultdict(list), []
    for line in text.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        key = f"{dso} [{kind}] {sym}"
        symbols.append((pct, key))
        for name, pattern in CATEGORIES:
            if re.search(pattern, key):
                break
        else:
            name = "other"
        totals[name] += pct
        if len(examples[name]) < 3 and pct >= 0.3:
            examples[name].append(sym[:70])
    print("share of the service's CPU samples, by leaf symbol:")
    for name, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {pct:5.1f}%  {name}" + (f"   e.g. {'; '.join(examples[name])}" if examples[name] else ""))
    print()
    print(f"top {top} symbols:")
    for pct, key in symbols[:top]:
        print(f"  {pct:5.2f}%  {key[:120]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
