"""Start-up time of the CLI: `personasim --version` and `--help`, 5 runs each, median and range.

.venv/bin/python bench/startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = 5


def timed(args: list[str]) -> list[float]:
    exe = Path(sys.executable).with_name("personasim")
    out = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([str(exe), *args], check=True, capture_output=True, cwd=REPO)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for args in (["--version"], ["--help"]):
        times = timed(args)
        print(f"personasim {' '.join(args):10s} median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {RUNS} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
