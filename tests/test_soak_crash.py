"""Crash soak: a run killed with SIGKILL at seeded random points (at least ten kills), resumed
each time with `--resume RUN` until it finishes, gives the results table of a run that was never
interrupted.

The suite (3 seed personas x 2 module versions x 4 samples = 24 units) runs live, sequentially, in
a subprocess against the loopback test double, whose answers depend only on the request. The kill
comes from the double itself: it SIGKILLs the run when the run's Nth request of that process
arrives (N drawn from a seeded RNG, within about the next two units' calls), so every kill lands at
a point fixed by the call sequence, never by how fast the machine is. Some kills come before the
process finished a unit ("no progress"), some after ("progress").

Every completed call is kept in the run's call store (`RUN/calls/`) and a resumed unit replays its
own, so each kill loses only the request in flight: each killed process kept all its answered
requests but that one, each resume asks the server for exactly the calls not yet kept (the last:
the whole run's calls minus those kept), and the killed run's requests add up to the whole run's
plus one per kill.

The tables are compared on every column but `run_id` (the runs are named apart on purpose). The
transcripts' timing fields (`started_at`, `duration_s`, each call's `latency_s`) and `run_id` are
left out of the transcript comparison, since they record when and how fast, not what.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.llm.replay import recording_files
from personasim.records.transcript import load_transcript
from personasim.run.state import read_unit_records
from scripted_answers import scripted_answer

pytestmark = pytest.mark.slow

MIN_KILLS = 10
MAX_CYCLES = 40
PROCESS_LIMIT_S = 300  # a hang guard only: nothing below depends on how long anything takes
SAMPLES = 4
STEPS = (4, 6)
JUDGE_CALLS = 13
TIMING_FIELDS = {"started_at", "duration_s", "latency_s", "run_id"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from personasim.cli import main; main()", *args]


def suite_args(tmp: Path, server: FakeOpenAIServer) -> list[str]:
    personas = three_seed_personas(tmp / "personas")
    modules = [write_module(tmp / "modules", f"v{i + 1}", steps) for i, steps in enumerate(STEPS)]
    module_args = [arg for m in modules for arg in ("--module", str(m))]
    return ["--personas", str(personas), *module_args, "--samples", str(SAMPLES), "--model", "fake-model",
            "--base-url", server.base_url, "--mode", "live", "--sequential"]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}


def records(run_dir: Path) -> int:
    return len(read_unit_records(run_dir / "units.jsonl"))


def kept(run_dir: Path) -> int:
    return len(recording_files(run_dir / "calls")) if (run_dir / "calls").is_dir() else 0


class Killer:
    """The double's responder: answers every request, and SIGKILLs the calling run when its
    `kill_at`-th request arrives (never when disarmed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid_known = threading.Event()
        self.pid: int | None = None
        self.kill_at: int | None = None
        self.seen = 0

    def arm(self, kill_at: int | None) -> None:
        with self.lock:
            self.kill_at, self.seen, self.pid = kill_at, 0, None
            self.pid_known.clear()

    def started(self, pid: int) -> None:
        self.pid = pid
        self.pid_known.set()

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.pid_known.wait(timeout=PROCESS_LIMIT_S)  # the run's pid is set before any answer is given
        with self.lock:
            self.seen += 1
            if self.kill_at is not None and self.seen == self.kill_at and self.pid is not None:
                os.kill(self.pid, signal.SIGKILL)
        return Reply.json(answer(body))


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The scripted answer, marked with the request's seed, as a model sampling at temperature would
    answer: each sample's walkthrough differs, and so do its judge requests, so no two requests of
    a run are the same (the store would keep them once, and a resume would replay the copy)."""
    good = scripted_answer(body["messages"])
    if "takeaway" in good:
        good["takeaway"] += f" (seed {body.get('seed')})"
    return good


def run_once(args: list[str], killer: Killer, kill_at: int | None, log: Path) -> int:
    killer.arm(kill_at)
    with log.open("wb") as sink:
        proc = subprocess.Popen(cli(*args), stdout=sink, stderr=subprocess.STDOUT, env=_env())
        killer.started(proc.pid)
        return proc.wait(timeout=PROCESS_LIMIT_S)


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    out, killer = tmp_path / "results", Killer()
    with FakeOpenAIServer(models=("fake-model",)) as server:  # the model check runs in every process
        server.responder = killer
        args = suite_args(tmp_path, server)
        assert (
            run_once(["run", *args, "--run-id", "whole", "--out", str(out)], killer, None, tmp_path / "whole.log") == 0
        )
        units, whole_requests, whole_kept = records(out / "whole"), killer.seen, kept(out / "whole")
        assert whole_kept == whole_requests  # every request of the run kept, each its own file
        calls_per_unit = max(STEPS) + 1 + JUDGE_CALLS

        rng, kills, outcomes, killed_requests = random.Random(20251123), 0, [], 0
        for cycle in range(MAX_CYCLES):
            # A kill before the run folder holds its inputs leaves nothing to resume (`--resume`
            # says so and exits 1): as a user would, start the run again with its command.
            started_run = (out / "killed" / "inputs.json").is_file()
            resume = ["run", "--resume", "killed", "--out", str(out)]
            cycle_args = resume if started_run else ["run", *args, "--run-id", "killed", "--out", str(out)]
            kill_at = None if kills >= MIN_KILLS else rng.randint(1, 2 * calls_per_unit)
            before, log = records(out / "killed"), tmp_path / f"cycle-{cycle}.log"
            kept_before = kept(out / "killed")
            code = run_once(cycle_args, killer, kill_at, log)
            assert code in (0, -signal.SIGKILL), f"cycle {cycle} ({outcomes}): {log.read_text()[-3000:]}"
            killed_requests += killer.seen
            if code == 0:
                # The resume asked for exactly what was not kept yet, nothing twice.
                assert killer.seen == whole_kept - kept_before, (cycle, killer.seen, kept_before)
                outcomes.append("finished")
                if kill_at is None:
                    break
                continue
            kills += 1
            assert killer.seen == kill_at and kept(out / "killed") == kept_before + kill_at - 1, cycle  # one lost
            outcomes.append("progress" if records(out / "killed") > before else "no progress")
        else:
            pytest.fail(f"the killed run did not finish in {MAX_CYCLES} cycles: {outcomes}")

    print(f"{kills} kills: {outcomes}; {killed_requests} requests against {whole_requests} uninterrupted")
    assert kills >= MIN_KILLS and outcomes.count("progress") >= 3 and "no progress" in outcomes, outcomes
    assert kept(out / "killed") == whole_kept  # the same calls kept, every one of them
    assert killed_requests == whole_requests + kills  # each kill lost the request in flight, and only that
    killed = pd.read_parquet(out / "killed" / "results.parquet").drop(columns=["run_id"])
    whole = pd.read_parquet(out / "whole" / "results.parquet").drop(columns=["run_id"])
    assert len(whole) and whole["unit_id"].nunique() == units == 3 * 2 * SAMPLES
    pd.testing.assert_frame_equal(killed, whole)
    for path in sorted((out / "whole" / "transcripts").glob("*.json")):
        mine = load_transcript(out / "killed" / "transcripts" / path.name).model_dump(mode="json")
        assert without_timing(mine) == without_timing(load_transcript(path).model_dump(mode="json")), path.name
