"""Crash soak: a run killed with SIGKILL at random moments (a seeded RNG; at least ten kills),
resumed each time with `--resume RUN` until it finishes, gives the results table of a run that
was never interrupted.

The suite (3 seed personas x 2 module versions x 4 samples = 24 units) is recorded once against
the loopback server (`--mode record`); both runs replay those recordings in a subprocess
(`personasim run --mode replay --sequential`), so the two see the same answers and every kill
lands in real process work: start-up, simulation, grading, file writes, the results table.
Kill times are drawn within about the next two units' work (from the uninterrupted run's
timings), and some kills wait for a unit to finish first, so several land in a half-done run.

The tables are compared on every column but `run_id` (the runs are named apart on purpose). The table has no timing columns; the transcripts' timing fields (`started_at`,
`duration_s`, each call's `latency_s`) and `run_id` are left out of the transcript comparison,
since they record when and how fast, not what.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.records.transcript import load_transcript
from personasim.run.state import read_unit_records
from scripted_answers import scripted_answer

pytestmark = pytest.mark.slow

MIN_KILLS = 10
MAX_CYCLES = 40
TIME_LIMIT_S = 110.0
SAMPLES = 4
TIMING_FIELDS = {"started_at", "duration_s", "latency_s", "run_id"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from personasim.cli import main; main()", *args]


def suite_args(tmp: Path) -> list[str]:
    personas = three_seed_personas(tmp / "personas")
    modules = [write_module(tmp / "modules", "v1", 4), write_module(tmp / "modules", "v2", 6)]
    module_args = [arg for m in modules for arg in ("--module", str(m))]
    return ["--personas", str(personas), *module_args, "--samples", str(SAMPLES), "--model", "fake-model"]


def run_to_end(args: list[str], limit_s: float = 60) -> None:
    done = subprocess.run(cli(*args), capture_output=True, text=True, timeout=limit_s, env=_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def timed_run(args: list[str], run_dir: Path, limit_s: float = 60) -> tuple[float, float, float]:
    """Run to the end, watching units.jsonl: (seconds to the first finished unit less one unit's
    time, i.e. start-up; seconds per unit; seconds from the last unit to exit, i.e. the results)."""
    started, stamps = time.monotonic(), []
    proc = subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    while proc.poll() is None and time.monotonic() - started < limit_s:
        if records(run_dir) > len(stamps):
            stamps += [time.monotonic() - started] * (records(run_dir) - len(stamps))
        time.sleep(0.002)
    assert proc.wait(timeout=5) == 0 and len(stamps) > 1, proc.stderr.read() if proc.stderr else ""
    unit_s = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return stamps[0] - unit_s, unit_s, time.monotonic() - started - stamps[-1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}


def record(tmp: Path, recordings: Path) -> None:
    with FakeOpenAIServer() as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        llm = ["--base-url", server.base_url, "--mode", "record", "--recordings-dir", str(recordings)]
        run_to_end(["run", *suite_args(tmp), "--run-id", "recording", "--out", str(tmp / "results"), *llm])


def records(run_dir: Path) -> int:
    return len(read_unit_records(run_dir / "units.jsonl"))


def kill_at_random(proc: subprocess.Popen[bytes], run_dir: Path, rng: random.Random, span_s: float) -> str:
    """SIGKILL `proc` at a random moment: after a random delay within `span_s`, or just after it
    finishes a unit (so some kills surely leave a run half done). Returns what the kill interrupted."""
    before, deadline = records(run_dir), time.monotonic() + 30
    if rng.random() < 0.35:
        while records(run_dir) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.01))
    else:
        time.sleep(rng.uniform(0, span_s))
    if proc.poll() is not None:
        return "finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "progress" if records(run_dir) > before else "no progress"


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    started = time.monotonic()
    recordings, out = tmp_path / "recordings", tmp_path / "results"
    record(tmp_path, recordings)
    # Sequential: units end one by one, so a random moment falls between, inside or after any unit.
    replay = [*suite_args(tmp_path), "--mode", "replay", "--recordings-dir", str(recordings), "--out", str(out),
              "--sequential"]  # fmt: skip
    startup_s, unit_s, results_s = timed_run(["run", *replay, "--run-id", "whole"], out / "whole")
    units = records(out / "whole")

    rng, kills, outcomes = random.Random(20251123), 0, []
    for cycle in range(MAX_CYCLES):
        # A kill during start-up, before the run folder holds its inputs, leaves nothing to resume
        # (`--resume` says so and exits 1): as a user would, start the run again with its command.
        started_run = (out / "killed" / "inputs.json").is_file()
        resume = ["run", "--resume", "killed", "--out", str(out)]
        args = resume if started_run else ["run", *replay, "--run-id", "killed"]
        if kills >= MIN_KILLS:
            run_to_end(args)
            break
        left = units - records(out / "killed")  # a kill lands within about the next two units' work
        span = startup_s + min(left, 2) * unit_s + (results_s if left <= 2 else 0)
        log = tmp_path / f"cycle-{cycle}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(cli(*args), stdout=sink, stderr=subprocess.STDOUT, env=_env())
            outcome = kill_at_random(proc, out / "killed", rng, span)
        assert outcome != "finished" or proc.returncode == 0, f"cycle {cycle} ({outcomes}): {log.read_text()[-3000:]}"
        kills += outcome != "finished"
        outcomes.append(outcome)
        assert time.monotonic() - started < TIME_LIMIT_S, f"too slow: {kills} kills so far: {outcomes}"
    else:
        pytest.fail(f"the killed run did not finish in {MAX_CYCLES} cycles: {outcomes}")

    print(f"{kills} kills: {outcomes}; start-up {startup_s:.2f} s, {unit_s:.3f} s a unit")
    assert kills >= MIN_KILLS and outcomes.count("progress") >= 3 and "no progress" in outcomes, outcomes
    killed = pd.read_parquet(out / "killed" / "results.parquet").drop(columns=["run_id"])
    whole = pd.read_parquet(out / "whole" / "results.parquet").drop(columns=["run_id"])
    assert len(whole) and whole["unit_id"].nunique() == units == 3 * 2 * SAMPLES
    pd.testing.assert_frame_equal(killed, whole)
    for path in sorted((out / "whole" / "transcripts").glob("*.json")):
        mine = load_transcript(out / "killed" / "transcripts" / path.name).model_dump(mode="json")
        assert without_timing(mine) == without_timing(load_transcript(path).model_dump(mode="json")), path.name
