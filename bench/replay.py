"""How close a replay run gets to the cost of just reading its recordings.

A generated suite (100 personas in the real persona-document format x one generated 10-step
module) is recorded once through the loopback server (`record` mode, the real client stack), then
replayed (`replay` mode: no network) in a fresh process, timed, and set against the floor:

  read+parse   every recording file read and `json.loads`-ed once (what any replay must do);
  + writes     the replay run's own output written as it writes it: the same bytes as the recorded
               run's transcripts/ and grades/ files, one atomic write (temp file, fsync, rename)
               each. A replay that skipped these would not be a run, so the floor includes them.

Peak memory is the replay process's peak resident set size (VmHWM in /proc/self/status), with
its size after imports and setup shown beside it.

    .venv/bin/python bench/replay.py                 # 100 personas x 10 steps
    .venv/bin/python bench/replay.py --personas 20   # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, ServerProcess, live_settings, machine, plan_of, write_module, write_personas
from personasim.fileio import atomic_write_bytes
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona_parser import load_personas
from personasim.llm.clients import build_client
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.run.config import RunConfig
from personasim.run.runner import run

RUN_RECORD, RUN_REPLAY = "record", "replay"


def settings_for(mode: str, recordings: Path, base_url: str | None = None) -> LLMSettings:
    base = live_settings(base_url or "http://127.0.0.1:9/v1", concurrency=32)
    return base.with_overrides(mode=mode, recordings_dir=recordings)


async def run_suite(work: Path, settings: LLMSettings, run_id: str) -> tuple[float, int, int]:
    personas, modules = load_personas([work / "personas.md"]), load_modules([work / "module"])
    client, prompts = build_client(settings), Prompts()
    config = RunConfig(run_id=run_id, out_dir=work / "results", judge_samples=1)
    try:
        started = time.perf_counter()
        outcome = await run(
            RoleClients(client, client),
            personas,
            modules,
            roles=ModelRoles.of(settings),
            prompts=prompts,
            config=config,
        )
        wall = time.perf_counter() - started
    finally:
        await client.aclose()
    if outcome.failed:
        raise SystemExit(f"{len(outcome.failed)} units failed, e.g. {next(iter(outcome.failed.values()))}")
    return wall, len(outcome.frame), len(personas) * len(modules)


def record(work: Path, personas: int, steps: int) -> dict[str, Any]:
    write_personas(work, personas)
    write_module(work / "module", steps)
    plan = plan_of(load_personas([work / "personas.md"]), load_modules([work / "module"]))
    with ServerProcess(0.0) as server:
        settings = settings_for("record", work / "recordings", server.base_url)
        wall, rows, units = asyncio.run(run_suite(work, settings, RUN_RECORD))
    files = len(list((work / "recordings").glob("*.json")))
    if files != plan.calls or server.stats["chat_requests"] != plan.calls:
        raise SystemExit(f"recorded {files} files / {server.stats['chat_requests']} calls; the plan has {plan.calls}")
    return {"record_wall_s": wall, "calls": plan.calls, "units": units, "rows": rows}


# --------------------------------------------------------------------------- replay process


def read_parse_floor(recordings: Path) -> float:
    started = time.perf_counter()
    for path in sorted(recordings.glob("*.json")):
        json.loads(path.read_bytes())
    return time.perf_counter() - started


def write_floor(recorded_run: Path, scratch: Path) -> tuple[float, int]:
    sources = sorted([*recorded_run.glob("transcripts/*.json"), *recorded_run.glob("grades/*.json")])
    blobs = [(scratch / p.parent.name / p.name, p.read_bytes()) for p in sources]
    started = time.perf_counter()
    for target, data in blobs:
        atomic_write_bytes(target, data)
    return time.perf_counter() - started, len(blobs)


def max_rss_mib() -> float:
    """Peak resident set size of this process image. /proc's VmHWM starts afresh at exec, while
    getrusage's ru_maxrss keeps the peak of the parent this process was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def replay_phase(work: Path) -> dict[str, Any]:
    """Runs in a fresh process, so its peak memory is the replay's own."""
    settings = settings_for("replay", work / "recordings")
    recorded = work / "results" / RUN_RECORD
    rss_setup = max_rss_mib()
    wall, rows, _ = asyncio.run(run_suite(work, settings, RUN_REPLAY))
    rss_peak = max_rss_mib()
    # The floor after the run, best of two (page cache warm for both: record mode just wrote them).
    read_parse = min(read_parse_floor(work / "recordings") for _ in range(2))
    writes, files = min(write_floor(recorded, work / f"scratch-{n}") for n in range(2))
    return {
        "replay_wall_s": wall, "rows": rows, "read_parse_s": read_parse, "writes_s": writes, "written_files": files,
        "rss_setup_mib": rss_setup, "rss_peak_mib": rss_peak,
    }  # fmt: skip


# --------------------------------------------------------------------------- main


def report(recorded: dict[str, Any], replayed: dict[str, Any]) -> None:
    floor_read = replayed["read_parse_s"]
    floor_all = floor_read + replayed["writes_s"]
    wall = replayed["replay_wall_s"]
    print(f"suite: {recorded['units']} units, {recorded['calls']} calls = recording files, {replayed['rows']} rows")
    print(f"record (loopback, 0 ms latency, concurrency 32): {recorded['record_wall_s']:.2f} s")
    print(f"floor: read+parse {floor_read:.3f} s; + {replayed['written_files']} atomic writes "
          f"{replayed['writes_s']:.3f} s = {floor_all:.3f} s")  # fmt: skip
    print(f"replay run: {wall:.3f} s = {wall / floor_all:.2f}x the floor with writes "
          f"({wall / floor_read:.2f}x read+parse alone); {recorded['calls'] / wall:.0f} calls/s")  # fmt: skip
    print(f"replay process memory: {replayed['rss_setup_mib']:.0f} MiB after setup, "
          f"peak {replayed['rss_peak_mib']:.0f} MiB (VmHWM)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--replay-phase", type=Path, help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.replay_phase:
        print(json.dumps(replay_phase(args.replay_phase)))
        return 0
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        recorded = record(work, args.personas, args.steps)
        child = [sys.executable, str(REPO / "bench" / "replay.py"), "--replay-phase", str(work)]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        report(recorded, json.loads(out.strip().splitlines()[-1]))
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
