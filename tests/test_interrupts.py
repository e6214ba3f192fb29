"""SIGINT and SIGTERM stop a run cleanly: the writes under way finish, every completed call stays in
the run's call store, the command prints the resume command and exits 128 + the signal's number;
the resumed run makes only the calls that were not answered (the one in flight when the signal
came). A second interrupt exits at once.

The signal comes from the test double when the run's Nth request arrives, and that request is
answered only once the run has exited, so where it lands is fixed by the call sequence, not by
timing."""

from __future__ import annotations

import os
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
from personasim.cli.run import Interrupts
from personasim.llm.replay import recording_files
from personasim.run.state import read_unit_records
from scripted_answers import scripted_answer

PROCESS_LIMIT_S = 120  # a hang guard only


class Signaller:
    """Answers every request; when the `at`-th arrives, sends `signum` to the run and answers only
    after the run has exited."""

    def __init__(self) -> None:
        self.lock, self.ready = threading.Lock(), threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.at: int | None = None
        self.signum = signal.SIGTERM
        self.seen = 0

    def arm(self, at: int | None, signum: int = signal.SIGTERM) -> None:
        self.at, self.signum, self.seen, self.proc = at, signum, 0, None
        self.ready.clear()

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.ready.wait(timeout=PROCESS_LIMIT_S)
        with self.lock:
            self.seen += 1
            fire = self.seen == self.at
        if fire and self.proc is not None:
            self.proc.send_signal(self.signum)
            self.proc.wait(timeout=PROCESS_LIMIT_S)
        return Reply.json(scripted_answer(body["messages"]))


def run_cli(signaller: Signaller, args: list[str], log: Path, at: int | None = None,
            signum: int = signal.SIGTERM) -> int:  # fmt: skip
    signaller.arm(at, signum)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with log.open("wb") as sink:
        command = [sys.executable, "-c", "from personasim.cli import main; main()", *args]
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        signaller.proc = proc
        signaller.ready.set()
        return proc.wait(timeout=PROCESS_LIMIT_S)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_keeps_every_completed_call_and_the_resume_makes_only_the_rest(tmp_path: Path, signum) -> None:
    out = tmp_path / "results"
    with FakeOpenAIServer(models=("fake-model",)) as server:
        signaller = Signaller()
        server.responder = signaller
        module = write_module(tmp_path / "modules", "v1", 2)
        common = ["--personas", str(three_seed_personas(tmp_path / "personas")), "--module", str(module),
                  "--base-url", server.base_url, "--model", "fake-model", "--mode", "live", "--sequential",
                  "--out", str(out)]  # fmt: skip
        assert run_cli(signaller, ["run", *common, "--run-id", "whole"], tmp_path / "whole.log") == 0
        whole = signaller.seen
        at = whole // 3 + 2  # in the second unit's walkthrough

        log = tmp_path / "stopped.log"
        code = run_cli(signaller, ["run", *common, "--run-id", "stopped"], log, at=at, signum=signum)
        text = log.read_text()
        assert code == 128 + signum, text
        assert f"personasim run --resume stopped --out {out}" in text and "Traceback" not in text
        run_dir = out / "stopped"
        kept = len(recording_files(run_dir / "calls"))
        assert kept == at - 1  # only the request in flight was lost
        assert [r.status for r in read_unit_records(run_dir / "units.jsonl").values()] == ["finished"]
        assert not list(run_dir.rglob(".*.tmp"))

        resume = ["run", "--resume", "stopped", "--out", str(out)]
        assert run_cli(signaller, resume, tmp_path / "resumed.log") == 0, (tmp_path / "resumed.log").read_text()
        assert signaller.seen == whole - kept
    stopped = pd.read_parquet(run_dir / "results.parquet").drop(columns="run_id")
    pd.testing.assert_frame_equal(stopped, pd.read_parquet(out / "whole" / "results.parquet").drop(columns="run_id"))


class FakeTask:
    def __init__(self) -> None:
        self.cancelled = 0

    def cancel(self) -> None:
        self.cancelled += 1


def test_the_first_interrupt_cancels_the_run_and_a_second_exits_at_once(monkeypatch, capsys) -> None:
    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    interrupts, task = Interrupts("personasim run --resume r --out results"), FakeTask()
    interrupts.task = task
    interrupts.received(signal.SIGTERM)
    assert task.cancelled == 1 and interrupts.signum == signal.SIGTERM and exits == []
    interrupts.received(signal.SIGINT)
    assert exits == [130] and task.cancelled == 1
    err = capsys.readouterr().err
    assert "finishing the writes under way" in err and "quitting at once" in err
    assert "personasim run --resume r --out results" in err
