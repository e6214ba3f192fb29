"""`personasim view` under load: 100 runs (99 of 1,000 result rows, one of 100,000), served by the real
command on 127.0.0.1, timed from a client on the same machine: the run list, a 100,000-row run page
(first and later loads, filtered, sorted, a deep page) and the steps tab of a run with 120 transcripts;
then `personasim query` over all of them.

.venv/bin/python bench/viewer.py [--runs 100] [--big 100000] [--repeat 5]

Each figure is the median (and max) of `--repeat` requests after the first, with the first (cold: the
manifest or Parquet file read) shown apart, and the page's size: a page holds only what it shows.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from _common import REPO, machine  # noqa: F401  (puts tests/ on sys.path)
from personasim.analysis.results import read_results, write_results
from run_fixtures import build_run


def make_runs(root: Path, n_runs: int, big_rows: int) -> None:
    base = build_run(root, "base", samples=2, inputs=True)
    frame = read_results(base)
    manifest = json.loads((base / "manifest.json").read_text())

    def clone(run_id: str, rows: int, day: int) -> None:
        copies = -(-rows // len(frame))
        parts = []
        for k in range(copies):
            part = frame.copy()
            part["persona_id"] = part["persona_id"] + f"-{k % 50}"
            part["sample"] = part["sample"] + 2 * (k // 50)
            part["unit_id"] = part["unit_id"] + f"-{k}"
            parts.append(part)
        out = pd.concat(parts, ignore_index=True).iloc[:rows].copy()
        out["run_id"] = run_id
        folder = root / run_id
        folder.mkdir()
        write_results(folder, out)
        (folder / "manifest.json").write_text(json.dumps(manifest | {"run_id": run_id, "rows": len(out),
                                                                     "started_at": f"2026-11-{1 + day % 28:02d}T10:00:00+00:00"}))  # fmt: skip

    clone("big", big_rows, 0)
    for i in range(n_runs - 2):
        clone(f"run-{i:03d}", 1000, i)
    build_run(root, "transcripts-120", samples=10, inputs=True)  # 6 personas x 2 versions x 10 samples


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:  # loopback only
        body = response.read()
    return time.perf_counter() - started, len(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    try:
        started = time.perf_counter()
        make_runs(root, args.runs, args.big)
        print(f"{args.runs} runs written in {time.perf_counter() - started:.1f} s under {root}")
        exe = Path(sys.executable).with_name("personasim")
        proc = subprocess.Popen(
            [str(exe), "view", str(root), "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        try:
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
            pages = [
                ("run list (100 runs)", ""),
                ("big run: results page 1", "run/big"),
                ("big run: persona + lens filter", "run/big?persona=p18-primary-care-practice-manager-7&lens=power"),
                ("big run: step 2 + low scores", "run/big?step=2&flag=low"),
                ("big run: sorted by score, page 1000", "run/big?sort=score&dir=desc&page=1000"),
                ("120 transcripts: steps tab v2", "run/transcripts-120?tab=steps&version=v2"),
                ("120 transcripts: personas tab", "run/transcripts-120?tab=personas"),
            ]
            print(f"\n{'page':40} {'first (s)':>10} {'median (s)':>11} {'max (s)':>8} {'size (KB)':>10}")
            for label, path in pages:
                first, size = fetch(url + path)
                times = [fetch(url + path)[0] for _ in range(args.repeat)]
                print(
                    f"{label:40} {first:10.3f} {statistics.median(times):11.3f} {max(times):8.3f} {size / 1024:10.0f}"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        sql = "SELECT run, COUNT(*) AS n, AVG(score) AS mean FROM results GROUP BY run"
        times = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([str(exe), "query", sql, str(root), "--csv"], check=True, capture_output=True, cwd=REPO)
            times.append(time.perf_counter() - started)
        print(f"\npersonasim query over every run (load + GROUP BY): median {statistics.median(times):.2f} s of 3")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
