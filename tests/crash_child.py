"""Child process for test_crash_safety: records steps with fsync until it is stopped.

Usage: ``python crash_child.py DIR``. It creates the recorder, prints ``PATH <file>``,
waits for a line on stdin (``go``, or ``limit N`` to cap the size of files it may write at
N bytes, as a full disk would), then records steps until it is killed or the file can no
longer be written, printing each step's index to stdout only *after* the step was written,
so every printed index must survive. When a write fails the recorder keeps the run going
in memory; the child then prints ``LOST <index>`` and stops.
"""

from __future__ import annotations

import resource
import sys

# a cycle of sizes, some large (50 KB) so that a kill sometimes lands inside a write
_SIZES = (10, 50_000, 0, 3_000, 50_000, 120, 17_000, 1)


def content(i: int) -> str:
    """The text of step ``i``: varied size, unicode, quotes and newlines (cheap to build)."""
    size = _SIZES[i % len(_SIZES)]
    return f'step {i} «ünïcödé» "q" 😀\n' + "abcdefghijklmnopqrstuvwxyz"[i % 26] * size + f" end {i}"


def main() -> None:
    import mattrace

    @mattrace.tool
    def echo(i: int, payload: str) -> int:
        return len(payload)

    with mattrace.record("crash-child", dir=sys.argv[1], fsync=True) as rec:
        sys.stdout.write(f"PATH {rec.path}\n")
        sys.stdout.flush()
        command = sys.stdin.readline().split()
        if command[:1] == ["limit"]:
            # Python ignores SIGXFSZ, so a write past the limit is cut short and the next
            # one fails with EFBIG: a write that dies mid-line
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(command[1]), resource.RLIM_INFINITY))
        for i in range(100_000):
            if i % 2:
                echo(i, content(i))
            else:
                mattrace.message("worker", content(i))
            if rec.write_error is not None:
                sys.stdout.write(f"LOST {i}\n")
                sys.stdout.flush()
                break
            sys.stdout.write(f"{i}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
