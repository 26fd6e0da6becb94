#!/usr/bin/env python3
"""Median and p99 latency of an 8 kB write + fdatasync in DIR (Postgres' WAL flush, which
every reuse and create request waits for at commit), for SECONDS. Usage: fsync_probe.py DIR [SECONDS]"""

import os
import statistics
import sys
import tempfile
import time


def main() -> int:
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    fd, path = tempfile.mkstemp(prefix=".bench-fsync-", dir=directory)
    try:
        block = os.urandom(8192)
        os.write(fd, block * 16)
        os.fsync(fd)
        lat = []
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            os.pwrite(fd, block, (i % 16) * 8192)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
            i += 1
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    print(f"{statistics.median(lat) * 1e6:.0f} {lat[int(len(lat) * 0.99)] * 1e6:.0f} {len(lat)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
