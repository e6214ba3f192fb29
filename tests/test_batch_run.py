"""Batch rounds end to end, against loopback test doubles: the six seed personas x lotus v1 and v2
through the OpenAI Batch API double (results shuffled, one line failing into the error file, one
batch expiring) and through a command (a stand-in for `vllm run-batch`, 2 shards), each to the same
table as a live run against the same deterministic double, with no chat request sent directly."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_answers import COMMAND_SCRIPT, responder
from doubles.batch_server import FakeBatchServer
from doubles.openai_server import Reply
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona_parser import load_personas
from personasim.llm.batch.rounds import load_state
from personasim.llm.replay import recording_files
from personasim.run.batch_run import Detached, execute_batch
from personasim.run.config import RunConfig
from personasim.run.session import execute, open_run

REPO = Path(__file__).resolve().parents[1]
RUN_BATCH = REPO / "tests" / "doubles" / "run_batch.py"


def seed_inputs() -> tuple[list, list]:
    personas = load_personas([REPO / "personas"])
    modules = load_modules([REPO / "modules" / "lotus" / "v1.md", REPO / "modules" / "lotus" / "v2.md"])
    return personas, modules


def config(server: FakeBatchServer, out: Path, run_id: str, batch: dict | None = None) -> RunConfig:
    learner = dict(base_url=server.base_url, model="fake-model", api_key_env="PERSONASIM_TEST_NO_KEY", mode="live",
                   max_reasks=2)  # fmt: skip
    return RunConfig(run_id=run_id, out_dir=out, learner=learner, batch=batch)


def live_frame(server: FakeBatchServer, out: Path) -> pd.DataFrame:
    personas, modules = seed_inputs()
    with open_run(config(server, out, "live"), personas, modules) as opened:
        return asyncio.run(execute(opened)).frame


def batch_outcome(server: FakeBatchServer, out: Path, run_id: str, batch: dict):  # type: ignore[no-untyped-def]
    personas, modules = seed_inputs()
    with open_run(config(server, out, run_id, batch), personas, modules) as opened:
        return asyncio.run(execute_batch(opened))


def same_table(batch: pd.DataFrame, live: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(batch.drop(columns=["run_id"]), live.drop(columns=["run_id"]))


def base_rounds(modules: list) -> int:
    """The longest conversation's calls (its steps, the reflection, p19's re-ask) + one judge round."""
    return max(len(m.steps) for m in modules) + 1 + 1 + 1


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with FakeBatchServer(models=("fake-model",), shuffle_seed=7, fail_lines=1, expire_batches=1) as double:
        double.responder = responder
        yield double


def test_openai_batch_run_equals_a_live_run_in_the_expected_rounds(server: FakeBatchServer, tmp_path: Path) -> None:
    outcome = batch_outcome(server, tmp_path, "batch", {"engine": "openai", "poll_s": 0.01, "max_requests": 40})
    assert server.chat_requests == []  # every call went through /v1/files + /v1/batches
    state = load_state(tmp_path / "batch", "openai")
    _, modules = seed_inputs()
    # The first batch expired (all of round 1 again) and one line failed (sent again next round).
    expired = state.rounds[0].submissions[0]
    assert expired.state == "expired" and "expired" in (expired.error or "")
    assert sum(state.attempts.values()) == expired.requests + 1
    assert any("HTTP 500" in why for why in state.last_error.values())
    assert base_rounds(modules) + 1 <= len(state.rounds) <= base_rounds(modules) + 2
    assert all(len(s.input_file) and s.requests <= 40 for r in state.rounds for s in r.submissions)
    assert any(len(r.submissions) > 1 for r in state.rounds)  # split at max_requests
    assert set(outcome.manifest.units.values()) == {"finished"}
    assert outcome.manifest.batch["rounds"] == len(state.rounds)
    # Answers are kept as live calls are: one call-store file per request answered.
    assert (
        len(recording_files(tmp_path / "batch" / "calls")) == server.batch_requests_total - 1
    )  # the failed line has no answer
    same_table(outcome.frame, live_frame(server, tmp_path))


def test_rounds_without_faults_are_the_longest_conversation_plus_the_judge_round(tmp_path: Path) -> None:
    with FakeBatchServer(models=("fake-model",), shuffle_seed=3) as double:
        double.responder = responder
        outcome = batch_outcome(double, tmp_path, "batch", {"engine": "openai", "poll_s": 0.01})
        state = load_state(tmp_path / "batch", "openai")
        _, modules = seed_inputs()
        assert len(state.rounds) == base_rounds(modules)
        assert [set(r.by_role) for r in state.rounds][-1] == {"judge"}  # every judge call in the last round
        assert double.chat_requests == []
        same_table(outcome.frame, live_frame(double, tmp_path))


def test_command_engine_with_two_shards_equals_a_live_run(tmp_path: Path) -> None:
    script = tmp_path / "run_batch_scripted.py"
    script.write_text(COMMAND_SCRIPT.format(tests=str(REPO / "tests")), encoding="utf-8")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} -i {{input}} -o {{output}}"
    with FakeBatchServer(models=("fake-model",)) as double:
        double.responder = responder
        outcome = batch_outcome(double, tmp_path, "cmd", {"engine": "command", "command": command, "shards": 2})
        state = load_state(tmp_path / "cmd", "command")
        assert all(len(r.submissions) == 2 for r in state.rounds if r.requests > 1)
        assert double.chat_requests == [] and not double.batches
        _, modules = seed_inputs()
        assert len(state.rounds) == base_rounds(modules)
        same_table(outcome.frame, live_frame(double, tmp_path))


def test_a_failing_command_stops_the_run_naming_round_and_command(tmp_path: Path) -> None:
    from personasim.llm.types import BatchEngineError

    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(RUN_BATCH))} -i {{input}} -o {{output}} --short"
    with (
        FakeBatchServer(models=("fake-model",)) as double,
        pytest.raises(BatchEngineError, match=r"wrote \d+ of \d+ lines \(round 1, .*--short"),
    ):
        batch_outcome(double, tmp_path, "cmd", {"engine": "command", "command": command})


def test_detached_rounds_resume_where_they_stand(tmp_path: Path) -> None:
    with FakeBatchServer(models=("fake-model",)) as double:
        double.responder = responder
        personas, modules = seed_inputs()
        personas, modules = personas[:2], modules[:1]
        batch = {"engine": "openai", "poll_s": 0.01}
        with open_run(config(double, tmp_path, "d", batch), personas, modules) as opened:
            first = asyncio.run(execute_batch(opened, detach=True))
        assert isinstance(first, Detached) and first.round.index == 1
        rounds = 1
        while True:  # each call collects what is done and submits the next round, as new processes would
            resumed = config(double, tmp_path, "d", batch).model_copy(update={"resume": True})
            with open_run(resumed, [], []) as opened:
                outcome = asyncio.run(execute_batch(opened, detach=True))
            if not isinstance(outcome, Detached):
                break
            rounds = max(rounds, outcome.round.index)
            assert rounds < 40
        assert set(outcome.manifest.units.values()) == {"finished"} and double.chat_requests == []


def test_a_request_failing_in_every_round_fails_its_unit_after_the_bounded_attempts(tmp_path: Path) -> None:
    def always_failing_for_p21(body: dict) -> Reply:
        if "Chief Allied Health Professional" in body["messages"][0]["content"]:
            return Reply.server_error(503)
        return responder(body)

    personas, modules = seed_inputs()
    chosen = [p for p in personas if p.id[:4] in ("p17-", "p21-")]
    with FakeBatchServer(models=("fake-model",)) as double:
        double.responder = always_failing_for_p21
        run_config = config(double, tmp_path, "f", {"engine": "openai", "poll_s": 0.01, "max_attempts": 2})
        with open_run(run_config, chosen, modules[:1]) as opened:
            outcome = asyncio.run(execute_batch(opened))
        failed = outcome.manifest.unit_errors
        assert list(failed) == [u for u in outcome.manifest.units if u.startswith("p21-")]
        assert "failed in 2 rounds" in next(iter(failed.values())) and "HTTP 503" in next(iter(failed.values()))
        finished = [u for u, s in outcome.manifest.units.items() if s == "finished"]
        assert finished == [u for u in outcome.manifest.units if u.startswith("p17-")]
        state = load_state(tmp_path / "f", "openai")
        assert max(state.attempts.values()) == 2  # sent twice, then given up: p17 goes on alone
        assert [r.requests for r in state.rounds[:3]] == [2, 2, 1]
        records = (tmp_path / "f" / "units.jsonl").read_text(encoding="utf-8").splitlines()
        assert sum('"failed"' in line for line in records) == 1  # recorded once, not once a pass

        double.responder = responder  # the endpoint mends: resuming the ended run retries the failed unit
        with open_run(run_config.model_copy(update={"resume": True}), [], []) as opened:
            again = asyncio.run(execute_batch(opened))
    assert set(again.manifest.units.values()) == {"finished"}


def test_a_cancelled_round_is_sent_again_on_resume(tmp_path: Path) -> None:
    from personasim.run.batch_run import cancel_round

    personas, modules = seed_inputs()
    with FakeBatchServer(models=("fake-model",)) as double:
        double.responder = responder
        batch = {"engine": "openai", "poll_s": 0.01}
        run_config = config(double, tmp_path, "x", batch)
        with open_run(run_config, personas[:1], modules[:1]) as opened:
            assert isinstance(asyncio.run(execute_batch(opened, detach=True)), Detached)
        assert asyncio.run(cancel_round(run_config)) == 1
        with open_run(run_config.model_copy(update={"resume": True}), [], []) as opened:
            outcome = asyncio.run(execute_batch(opened))
    state = load_state(tmp_path / "x", "openai")
    assert state.rounds[0].submissions[0].state == "cancelled" and state.rounds[1].requests == 1
    assert set(outcome.manifest.units.values()) == {"finished"}


def test_judge_repeats_go_in_the_same_round_as_the_criteria(tmp_path: Path) -> None:
    personas, modules = seed_inputs()
    with FakeBatchServer(models=("fake-model",)) as double:
        double.responder = responder
        run_config = config(double, tmp_path, "k", {"engine": "openai", "poll_s": 0.01})
        run_config = run_config.model_copy(update={"judge_samples": 3})
        with open_run(run_config, personas[:1], modules[:1]) as opened:
            outcome = asyncio.run(execute_batch(opened))
    state = load_state(tmp_path / "k", "openai")
    assert len(state.rounds) == len(modules[0].steps) + 1 + 1  # steps, reflection, one judge round
    judged = outcome.frame[outcome.frame["grader"] == "judge"]
    assert state.rounds[-1].by_role == {"judge": 3 * len(judged)} and (judged["judge_samples"] == 3).all()
