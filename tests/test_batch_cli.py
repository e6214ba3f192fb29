"""Batch runs from the command line, each command its own process: `run --batch openai --detach`
submits round 1 and exits, `batch status` shows it, `run --resume` finishes it; `--dry-run` plans
without calling; batch prices and the live cost; record/auto batch runs fill the recordings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_answers import responder
from doubles.batch_server import FakeBatchServer
from personasim.analysis.results import read_manifest
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona_parser import load_personas
from personasim.llm.replay import recording_files
from personasim.run.batch_run import execute_batch
from personasim.run.config import RunConfig
from personasim.run.session import execute, open_run

REPO = Path(__file__).resolve().parents[1]
V1 = REPO / "modules" / "lotus" / "v1.md"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([sys.executable, "-c", "from personasim.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert not check or done.returncode == 0, done.stderr
    return done


def run_args(server: FakeBatchServer, out: Path) -> list[str]:
    return ["--personas", str(REPO / "personas"), "--persona", "p17", "--persona", "p21", "--module", str(V1),
            "--model", "fake-model", "--base-url", server.base_url, "--out", str(out)]  # fmt: skip


def test_detach_status_and_resume_in_separate_processes(tmp_path: Path) -> None:
    with FakeBatchServer(models=("fake-model",), polls_to_complete=1) as server:  # done at the second poll
        server.responder = responder
        first = cli("run", *run_args(server, tmp_path), "--run-id", "b", "--batch", "openai", "--batch-poll", "0.01",
                    "--detach")  # fmt: skip
        assert "round 1 submitted (2 requests)" in first.stderr and "personasim batch status b" in first.stderr
        assert not (tmp_path / "b" / "results.csv").exists()
        noted = json.loads(cli("batch", "status", "b", "--out", str(tmp_path), "--json", "--no-refresh").stdout)
        assert [(s["round"], s["requests"], s["state"]) for s in noted["submissions"]] == [(1, 2, "in_progress")]
        status = json.loads(cli("batch", "status", "b", "--out", str(tmp_path), "--json").stdout)  # asks the engine
        assert status["finished_at"] is None
        assert [(s["round"], s["requests"], s["state"]) for s in status["submissions"]] == [(1, 2, "completed")]
        assert status["submissions"][0]["batch_id"] in server.batches
        collected = cli("batch", "collect", "b", "--out", str(tmp_path))  # round 1 done: round 2 goes out
        assert "round 1: 2 answered, 0 to send again" in collected.stderr and "round 2 submitted" in collected.stderr
        done = cli("run", "--resume", "b", "--out", str(tmp_path))
        assert "batch:" in done.stdout and "rounds" in done.stdout, done.stdout
        manifest = read_manifest(tmp_path / "b")
        assert set(manifest.units.values()) == {"finished"} and server.chat_requests == []
        again = json.loads(cli("batch", "status", "b", "--out", str(tmp_path), "--json").stdout)
        assert again["finished_at"] and {s["state"] for s in again["submissions"]} == {"collected"}
        assert len({s["round"] for s in again["submissions"]}) == manifest.batch["rounds"]


def test_batch_refusals_are_one_line(tmp_path: Path) -> None:
    with FakeBatchServer(models=("fake-model",)) as server:
        args = run_args(server, tmp_path)
        no_command = cli("run", *args, "--batch", "command", check=False)
        assert no_command.returncode != 0 and "{input} and {output}" in no_command.stderr
        detach = cli(
            "run", *args, "--batch", "command", "--batch-command", "x {input} {output}", "--detach", check=False
        )
        assert detach.returncode != 0 and "drop --detach" in detach.stderr
        replay = cli("run", *args, "--batch", "openai", "--mode", "replay", "--recordings-dir", str(tmp_path / "r"),
                     check=False)  # fmt: skip
        assert replay.returncode != 0 and "replay mode makes none" in replay.stderr
        assert "Traceback" not in no_command.stderr + detach.stderr + replay.stderr
        assert server.request_log == []


def test_dry_run_plans_calls_rounds_tokens_and_cost_without_calling(tmp_path: Path) -> None:
    prices = tmp_path / "llm.yaml"
    prices.write_text(f"price_table: {tmp_path / 'prices.yaml'}\n", encoding="utf-8")
    (tmp_path / "prices.yaml").write_text(
        "fake-model: {input: 2.0, output: 8.0, batch_input: 1.0, batch_output: 4.0}\n", encoding="utf-8"
    )
    with FakeBatchServer(models=("fake-model",)) as server:
        done = cli("run", *run_args(server, tmp_path), "--config", str(prices), "--dry-run", "--judge-samples", "2")
        assert server.request_log == [] and not any(tmp_path.glob("*/inputs.json"))
    module = load_modules([V1])[0]
    steps = len(module.steps)
    assert "2 units, " in done.stderr and f"({2 * (steps + 1)} learner, " in done.stderr
    assert f"as a batch run, {steps + 2} rounds" in done.stderr
    live = float(done.stderr.split("estimated cost: live $")[1].split(",")[0])
    batch = float(done.stderr.split("batch $")[1].split()[0])
    assert live > 0 and batch == pytest.approx(live / 2, abs=1e-4)  # batch prices are half the live ones here


def test_batch_calls_cost_batch_prices_and_the_manifest_says_what_live_would_cost(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text(
        "fake-model: {input: 2.0, output: 8.0, batch_input: 1.0, batch_output: 4.0}\n", encoding="utf-8"
    )
    personas = [p for p in load_personas([REPO / "personas"]) if p.id.startswith("p17-")]
    with FakeBatchServer(models=("fake-model",)) as server:
        server.responder = responder
        learner = dict(base_url=server.base_url, model="fake-model", api_key_env="PERSONASIM_TEST_NO_KEY",
                       price_table=str(tmp_path / "prices.yaml"))  # fmt: skip
        config = RunConfig(run_id="c", out_dir=tmp_path, learner=learner, batch={"engine": "openai", "poll_s": 0.01})
        with open_run(config, personas, load_modules([V1])) as opened:
            outcome = asyncio.run(execute_batch(opened))
    manifest = outcome.manifest
    assert manifest.cost_usd is not None and manifest.batch["cost_live_usd"] is not None
    assert abs(manifest.batch["cost_live_usd"] - 2 * manifest.cost_usd) < 1e-9
    judged = outcome.frame.dropna(subset=["cost_usd"])
    at_batch_prices = (judged["prompt_tokens"] * 1.0 + judged["completion_tokens"] * 4.0) / 1_000_000
    assert len(judged) and ((judged["cost_usd"] - at_batch_prices).abs() < 1e-12).all()  # rows at batch prices


@pytest.mark.parametrize("mode", ["auto", "record"])
def test_a_recording_batch_run_fills_the_recordings_once_and_a_replay_gives_the_same_table(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import personasim.llm.replay as replay

    saves: list[str] = []
    save = replay.save_recording
    monkeypatch.setattr(replay, "save_recording", lambda d, rec: saves.append(rec.key) or save(d, rec))
    personas = [p for p in load_personas([REPO / "personas"]) if p.id[:4] in ("p17-", "p19-")]
    recordings = tmp_path / "recordings"
    with FakeBatchServer(models=("fake-model",)) as server:
        server.responder = responder
        learner = dict(base_url=server.base_url, model="fake-model", api_key_env="PERSONASIM_TEST_NO_KEY",
                       mode=mode, recordings_dir=str(recordings))  # fmt: skip
        config = RunConfig(run_id="a", out_dir=tmp_path, learner=learner, batch={"engine": "openai", "poll_s": 0.01})
        with open_run(config, personas, load_modules([V1])) as opened:
            batched = asyncio.run(execute_batch(opened))
        recorded = {path.stem for path in recording_files(recordings)}
        assert len(recorded) == server.batch_requests_total == len(saves)  # each recorded once, not once a pass
    used = set((tmp_path / "a" / "used_keys.txt").read_text(encoding="utf-8").split())
    assert used == recorded  # every pass's keys, for `recordings prune --used`
    replay_config = RunConfig(run_id="r", out_dir=tmp_path, learner={**learner, "base_url": None, "mode": "replay"})
    with open_run(replay_config, personas, load_modules([V1])) as opened:
        replayed = asyncio.run(execute(opened))
    pd.testing.assert_frame_equal(batched.frame.drop(columns=["run_id"]), replayed.frame.drop(columns=["run_id"]))
