"""Resume: a run cut short (a crash, SIGKILL, failed units) and resumed gives the rows of an
uninterrupted run: no duplicates, no gaps, and finished units are not redone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core_fixtures import make_module, make_persona
from doubles.openai_server import Reply
from doubles.scripted_client import ScriptedClient
from module_files import three_seed_personas, write_module
from personasim.analysis.results import RunPaths
from personasim.cli import app
from personasim.errors import InputError
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.llm.settings import LLMSettings
from personasim.llm.types import QuotaExceeded
from personasim.prompts import Prompts
from personasim.run.config import RunConfig
from personasim.run.plan import plan_units
from personasim.run.runner import finalize, run
from personasim.run.state import UnitRecord, append_unit_record, read_unit_records
from scripted_answers import scripted_answer, scripted_text

REPO = Path(__file__).resolve().parents[1]
SETTINGS = LLMSettings(model="m", seed=0)
ROLES = ModelRoles.of(SETTINGS)
PROMPTS = Prompts()
PERSONAS = [make_persona(17), make_persona(21, "Chief Allied Health Professional", hours=(2, 3))]
MODULES = [make_module("v1", steps=2), make_module("v2", steps=2)]
CALLS_PER_UNIT = 3 + 13  # 2 steps + reflection, 13 judge criteria


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing on the way catches it."""


def good_client() -> ScriptedClient:
    return ScriptedClient(lambda call: scripted_text(call.messages))


def crashing_client(after_calls: int) -> ScriptedClient:
    seen = {"n": 0}

    def script(call):
        seen["n"] += 1
        return Crash() if seen["n"] > after_calls else scripted_text(call.messages)

    return ScriptedClient(script)


async def _run(client, tmp_path: Path, run_id: str, *, resume=False, sequential=True, judge_samples=1, inputs=True):
    config = RunConfig(run_id=run_id, out_dir=tmp_path, sequential=sequential, resume=resume,
                       judge_samples=judge_samples)  # fmt: skip
    personas, modules = (PERSONAS, MODULES) if inputs else ([], [])
    return await run(RoleClients(client, client), personas, modules, roles=ROLES, prompts=PROMPTS, config=config)


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["run_id"]).reset_index(drop=True)


@pytest.fixture
async def full(tmp_path: Path) -> pd.DataFrame:
    outcome = await _run(good_client(), tmp_path, "full")
    assert len(outcome.frame) == 4 * 16
    return _rows(outcome.frame)


@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "concurrent"])
async def test_a_crash_then_resume_equals_an_uninterrupted_run(full, tmp_path, sequential) -> None:
    with pytest.raises(Crash):
        await _run(crashing_client(2 * CALLS_PER_UNIT + 5), tmp_path, "cut", sequential=sequential)
    finished = {r.unit_id for r in read_unit_records(tmp_path / "cut" / "units.jsonl").values()}
    assert not (tmp_path / "cut" / "results.parquet").exists()
    if sequential:
        assert len(finished) == 2

    resumed_client = good_client()
    outcome = await _run(resumed_client, tmp_path, "cut", resume=True, sequential=sequential, inputs=False)
    assert outcome.skipped == len(finished)
    assert len(resumed_client.calls) == (4 - len(finished)) * CALLS_PER_UNIT  # finished units not redone
    pd.testing.assert_frame_equal(_rows(outcome.frame), full)
    assert set(outcome.manifest.units.values()) == {"finished"}


async def test_failed_units_are_recorded_and_redone_on_resume(full, tmp_path) -> None:
    def script(call):
        if "Chief Allied Health Professional" in call.system:
            return QuotaExceeded("insufficient_quota")
        return scripted_text(call.messages)

    outcome = await _run(ScriptedClient(script), tmp_path, "flaky", sequential=False)
    assert sorted(outcome.failed) == ["p21-test__lotus@v1__s0", "p21-test__lotus@v2__s0"]
    assert outcome.failed["p21-test__lotus@v1__s0"] == "QuotaExceeded: insufficient_quota"
    assert set(outcome.frame["persona_id"]) == {"p17-test"}
    assert outcome.manifest.units["p21-test__lotus@v1__s0"] == "failed"

    retry = good_client()
    outcome = await _run(retry, tmp_path, "flaky", resume=True)
    assert len(retry.calls) == 2 * CALLS_PER_UNIT
    pd.testing.assert_frame_equal(_rows(outcome.frame), full)


async def test_a_torn_last_record_is_ignored_and_not_glued_to_the_next(full, tmp_path) -> None:
    with pytest.raises(Crash):
        await _run(crashing_client(CALLS_PER_UNIT + 1), tmp_path, "torn")
    units = tmp_path / "torn" / "units.jsonl"
    with units.open("a", encoding="utf-8") as handle:
        handle.write('{"unit_id": "p21-test__lotus@v1__s0", "status": "fini')
    assert len(read_unit_records(units)) == 1
    outcome = await _run(good_client(), tmp_path, "torn", resume=True)
    pd.testing.assert_frame_equal(_rows(outcome.frame), full)
    lines = units.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 1 + 3  # first record, torn line, three new records
    assert len(read_unit_records(units)) == 4


async def test_changed_settings_redo_finished_units(tmp_path) -> None:
    await _run(good_client(), tmp_path, "changed")
    again = good_client()
    outcome = await _run(again, tmp_path, "changed", resume=True, judge_samples=2)
    assert outcome.skipped == 0 and len(again.calls) == 4 * (3 + 2 * 13)
    assert (outcome.frame.loc[outcome.frame["grader"] == "judge", "judge_samples"] == 2).all()


async def test_an_existing_run_is_not_overwritten(tmp_path) -> None:
    append_unit_record(tmp_path / "taken" / "units.jsonl", UnitRecord(unit_id="u", status="failed", config_hash="h"))
    with pytest.raises(InputError, match="--resume taken"):
        await _run(good_client(), tmp_path, "taken")
    with pytest.raises(InputError, match="nothing to resume"):
        await _run(good_client(), tmp_path, "missing", resume=True)


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(openai_server, tmp_path) -> None:
    # Slow answers so the kill lands mid-run; sequential so units finish one by one.
    openai_server.responder = lambda body: Reply.json(scripted_answer(body["messages"]), latency_s=0.01)
    module = write_module(tmp_path / "modules", "v1", 1)
    llm = ["--base-url", openai_server.base_url, "--model", "fake-model", "--mode", "live"]
    common = ["--personas", str(three_seed_personas(tmp_path / "personas")), "--module", str(module), *llm]
    out = tmp_path / "results"
    command = [sys.executable, "-c", "from personasim.cli import main; main()", "run", "--run-id", "killed",
               "--out", str(out), "--sequential", *common]  # fmt: skip
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    units = out / "killed" / "units.jsonl"
    deadline = time.monotonic() + 60
    try:
        while not read_unit_records(units):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress from the subprocess"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = len(read_unit_records(units))
    assert 1 <= done < 3 and not (out / "killed" / "results.parquet").exists()

    openai_server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
    resumed = CliRunner().invoke(app, ["run", "--resume", "killed", "--out", str(out)], env=env)  # as run
    assert resumed.exit_code == 0, resumed.output
    assert f"{done} reused" in resumed.output
    whole = CliRunner().invoke(app, ["run", "--run-id", "whole", "--out", str(out), *common], env=env)
    assert whole.exit_code == 0, whole.output
    resumed_rows = _rows(pd.read_parquet(out / "killed" / "results.parquet"))
    pd.testing.assert_frame_equal(resumed_rows, _rows(pd.read_parquet(out / "whole" / "results.parquet")))
    assert resumed_rows["persona_id"].nunique() == 3


async def test_finalize_from_memory_equals_finalize_from_the_files(tmp_path) -> None:
    # A run hands finalize what it saved instead of reading it back: the table and the health must
    # be exactly what the files on disk give.
    outcome = await _run(good_client(), tmp_path, "mem", sequential=False)
    config = RunConfig(run_id="mem", out_dir=tmp_path)
    units = plan_units(PERSONAS, MODULES, 1, 1, ROLES, PROMPTS, config.history)
    from_files = finalize(RunPaths(tmp_path / "mem"), units, ROLES, PROMPTS, config, None, "t0", 0.0)
    pd.testing.assert_frame_equal(from_files.frame, outcome.frame)
    assert from_files.manifest.health == outcome.manifest.health and from_files.manifest.usage == outcome.manifest.usage
