"""Launch to first complete frame, median of N launches (target ≤ 500 ms).

The frame is complete when the footer (the last thing on screen) is written.
"""

from __future__ import annotations

import statistics
import sys

from pty_run import CONSOLE_DONE, Terminal, compile_console, console_argv


def measure(config: str, launches: int = 5) -> list[float]:
    times = []
    for _ in range(launches):
        term = Terminal(console_argv("--config", config))
        took = term.wait_for(CONSOLE_DONE, timeout=20)
        term.stop()
        if took is None:
            raise SystemExit("the console drew no complete frame within 20 s")
        times.append(took)
    return times


if __name__ == "__main__":
    compile_console()
    times = measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    print(f"first frame: median {statistics.median(times) * 1000:.0f} ms, "
          f"all {[round(t * 1000) for t in times]}")
