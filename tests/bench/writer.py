#!/usr/bin/python3
"""The log-capture job: writes SIZE bytes to stdout as fast as the reader takes them.

    writer.py lines|bytes SIZE TSFILE

`lines`: 100-byte lines (1 MiB blocks of 10485 lines of 100 bytes and one of 76).
`bytes`: the letter z with no newline at all, but for the end marker's.
The last bytes are always END_MARK, so a reader can tell when a log holds everything.
Before its first write it puts CLOCK_MONOTONIC (ns) in TSFILE: throughput is measured
from then, so interpreter start-up and the supervisor's spawn are left out.
"""
import os
import sys
import time

END_MARK = b"<<vigil-bench-end>>\n"
BLOCK = 1 << 20


def block(mode):
    if mode == "lines":
        b = b"x" * 99 + b"\n"
        b = b * (BLOCK // 100) + b"y" * (BLOCK - BLOCK // 100 * 100 - 1) + b"\n"
    elif mode == "bytes":
        b = b"z" * BLOCK
    else:
        raise SystemExit(f"writer.py: unknown mode {mode!r}")
    assert len(b) == BLOCK
    return b


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main():
    mode, size, tsfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = block(mode)
    with open(tsfile, "w") as f:
        f.write(str(time.clock_gettime_ns(time.CLOCK_MONOTONIC)))
    left = size
    while left > BLOCK:
        write_all(1, data)
        left -= BLOCK
    write_all(1, data[:left - len(END_MARK)] + END_MARK)


if __name__ == "__main__":
    main()
