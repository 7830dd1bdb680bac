#!/usr/bin/env python3
"""The disk's fdatasync latency, as the journal pays it under --sqlite_synchronous=full: append
BYTES (default 1,000: about one Step's journal record) to a file and fdatasync it, COUNT times
(default 2,000), in DIR (default /tmp; a disk, not tmpfs). Prints the median, p90 and p99 in
microseconds, and appends per second one writer could do at that median.

    /usr/bin/python3 bench/fsync_latency.py [DIR] [COUNT] [BYTES]
"""
import os
import sys
import tempfile
import time


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    fd, path = tempfile.mkstemp(dir=directory, prefix="fsync-latency.")
    try:
        chunk = b"x" * size
        took = []
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, chunk)
            os.fdatasync(fd)
            took.append(time.perf_counter() - t0)
        took.sort()
        us = [t * 1e6 for t in took]
        median = us[len(us) // 2]
        print(f"fdatasync dir={directory} count={count} bytes={size} "
              f"p50_us={median:.0f} p90_us={us[len(us) * 9 // 10]:.0f} "
              f"p99_us={us[len(us) * 99 // 100]:.0f} one_writer_per_s={1e6 / median:.0f}")
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
