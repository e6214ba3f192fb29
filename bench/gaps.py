"""Wall time of `personasim gaps` on the six seed personas x lotus v1 and v2, start-up included.

Runs the installed command in a fresh process `--runs` times (default 5) and prints each wall time,
then the best, median and worst; then, in this process, the coverage computation alone (personas and
modules already loaded) and what importing the command's code costs (`python -X importtime`, the
slowest modules). The issue's target is under 2 s a run, start-up included.

    .venv/bin/python bench/gaps.py
    .venv/bin/python bench/gaps.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = ["gaps", "--personas", "personas/", "--module", "modules/lotus/v1.md", "--module", "modules/lotus/v2.md",
           "--json"]  # fmt: skip


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}"


def personasim() -> str:
    found = Path(sys.executable).with_name("personasim")
    return str(found) if found.exists() else "personasim"


def wall_times(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([personasim(), *COMMAND], cwd=REPO, capture_output=True, text=True)
        out.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"personasim gaps failed: {done.stderr.strip()}")
    return out


def compute_time(repeats: int = 5) -> tuple[float, int]:
    from personasim.analysis.gaps import coverage_for_run
    from personasim.inputs.module_loader import load_modules
    from personasim.inputs.persona_parser import load_personas

    personas = load_personas([REPO / "personas"])
    modules = load_modules([REPO / "modules/lotus/v1.md", REPO / "modules/lotus/v2.md"])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        coverage = coverage_for_run(personas, modules)
        best = min(best, time.perf_counter() - start)
    return best, sum(len(i.criteria) for i in coverage.items)


def import_costs(module: str, top: int = 6) -> tuple[float, list[tuple[float, str]]]:
    """Cumulative import time of `module`, and the top-level packages that cost most, from `-X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=REPO,
                          capture_output=True, text=True, check=True)  # fmt: skip
    cumulative: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)", line)
        if match:
            name = match.group(2)
            cumulative[name] = max(cumulative.get(name, 0.0), int(match.group(1)) / 1e6)
    packages = [(t, n) for n, t in cumulative.items() if "." not in n and not n.startswith("_") and n != "personasim"]
    return cumulative.get(module, 0.0), sorted(packages, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: personasim {' '.join(COMMAND)}")
    times = wall_times(args.runs)
    print("wall s per run: " + " ".join(f"{t:.2f}" for t in times))
    print(f"best {min(times):.2f} s, median {statistics.median(times):.2f} s, worst {max(times):.2f} s (target < 2 s)")
    compute, criteria = compute_time()
    print(
        f"coverage computation alone (6 personas x 2 versions, {criteria} criteria): {compute * 1000:.0f} ms (best of 5)"
    )
    for module in ("personasim.cli", "personasim.analysis.gaps"):
        total, slowest = import_costs(module)
        print(f"import {module}: {total:.2f} s; costliest packages: " + ", ".join(f"{n} {t:.2f}" for t, n in slowest))
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
