"""Model roles end to end: the learner and the judge on separate loopback servers; the whole run
configuration (history included) kept by `grade` and `--resume`; `--backend local` without a suite."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import write_module
from personasim.analysis.results import read_manifest, read_results
from personasim.cli import app
from personasim.llm import backend
from personasim.llm.local_server import LocalServer
from personasim.run.state import read_run_config
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]


def script(server: FakeOpenAIServer) -> FakeOpenAIServer:
    server.responder = lambda body: Reply.json(
        scripted_answer(body["messages"]), prompt_tokens=50, completion_tokens=10
    )
    return server


@pytest.fixture
def judge_server():
    with FakeOpenAIServer() as server:
        yield script(server)


def is_judge_call(request) -> bool:  # type: ignore[no-untyped-def]
    return "Criterion " in request.body["messages"][-1]["content"]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    module = write_module(tmp_path / "modules", "v1", 2)
    personas = ["--personas", str(REPO / "personas"), "--persona", "p17", "--persona", "p18"]
    return ["run", *personas, "--module", str(module), "--out", str(tmp_path / "out"), *extra]


def test_learner_and_judge_calls_go_to_their_own_servers(openai_server, judge_server, tmp_path) -> None:
    script(openai_server)
    args = run_args(tmp_path, "--run-id", "two", "--base-url", openai_server.base_url, "--model", "small",
                    "--judge-base-url", judge_server.base_url, "--judge-model", "big")  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    learner_calls, judge_calls = openai_server.chat_requests, judge_server.chat_requests
    assert learner_calls and judge_calls
    assert not any(is_judge_call(r) for r in learner_calls) and all(is_judge_call(r) for r in judge_calls)
    assert {r.body["model"] for r in learner_calls} == {"small"} and {r.body["model"] for r in judge_calls} == {"big"}
    assert len(learner_calls) == 2 * (2 + 1)  # 2 personas x (2 steps + reflection)
    frame = read_results(tmp_path / "out" / "two")
    assert (frame["learner_model"] == "small").all()
    judged = frame["grader"] == "judge"
    assert (frame.loc[judged, "judge_model"] == "big").all() and frame.loc[~judged, "judge_model"].isna().all()
    assert judged.sum() == len(judge_calls)
    manifest = read_manifest(tmp_path / "out" / "two")
    assert (manifest.model, manifest.judge_model) == ("small", "big")
    assert manifest.judge_settings["base_url"] == judge_server.base_url
    assert "learner small" in result.output and "judge big" in result.output


def test_a_judge_block_in_the_config_file_and_grade_with_another_judge(openai_server, judge_server, tmp_path) -> None:
    script(openai_server)
    config = tmp_path / "llm.yaml"
    config.write_text(f"base_url: {openai_server.base_url}\nmodel: small\njudge:\n  model: big\n")
    result = CliRunner().invoke(app, run_args(tmp_path, "--run-id", "cfg", "--config", str(config)))
    assert result.exit_code == 0, result.output
    assert {r.body["model"] for r in openai_server.chat_requests if is_judge_call(r)} == {"big"}
    before = len(openai_server.chat_requests)
    regraded = CliRunner().invoke(app, ["grade", "cfg", "--out", str(tmp_path / "out"), "--into", "cfg2",
                                        "--judge-base-url", judge_server.base_url, "--judge-model", "other"])  # fmt: skip
    assert regraded.exit_code == 0, regraded.output
    assert len(openai_server.chat_requests) == before  # the learner's server saw nothing more
    assert judge_server.chat_requests and {r.body["model"] for r in judge_server.chat_requests} == {"other"}
    frame = read_results(tmp_path / "out" / "cfg2")
    assert (frame.loc[frame["grader"] == "judge", "judge_model"] == "other").all()
    assert read_run_config(tmp_path / "out" / "cfg2").judge["model"] == "other"  # a resume keeps this judge


def test_grade_and_resume_keep_a_recap_run_recap(openai_server, tmp_path) -> None:
    script(openai_server)
    flags = ["--base-url", openai_server.base_url, "--model", "m", "--history", "recap"]
    result = CliRunner().invoke(app, run_args(tmp_path, "--run-id", "recap", *flags))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "out" / "recap"
    assert read_run_config(run_dir).history == "recap"
    graded = CliRunner().invoke(app, ["grade", "recap", "--out", str(tmp_path / "out")])
    assert graded.exit_code == 0, graded.output
    assert read_manifest(run_dir).history == "recap" and read_run_config(run_dir).history == "recap"
    before = len(openai_server.chat_requests)
    resumed = CliRunner().invoke(app, ["run", "--resume", "recap", "--out", str(tmp_path / "out")])
    assert resumed.exit_code == 0, resumed.output
    assert len(openai_server.chat_requests) == before and "2 reused" in resumed.output  # nothing redone
    assert json.loads((run_dir / "inputs.json").read_text())["config"]["history"] == "recap"


class LocalDouble:
    """Stands in for a started llama.cpp server: answers come from a loopback test double."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.base_url, self.n_ctx, self.startup_s = server.base_url, 4096, 0.0


def test_backend_local_needs_no_suite_and_no_model(openai_server, tmp_path, monkeypatch) -> None:
    script(openai_server)
    started = []

    @contextmanager
    def for_model(name, n_ctx=None):  # type: ignore[no-untyped-def]
        started.append(name)
        yield LocalDouble(openai_server)

    monkeypatch.setattr(LocalServer, "for_model", staticmethod(for_model))
    monkeypatch.setattr(backend, "model_path", lambda model: tmp_path / model.filename)
    result = CliRunner().invoke(app, run_args(tmp_path, "--run-id", "local", "--backend", "local"))
    assert result.exit_code == 0, result.output
    assert started == ["qwen2.5-coder-1.5b"]
    assert {r.body["model"] for r in openai_server.chat_requests} == {"qwen2.5-coder-1.5b"}
    manifest = read_manifest(tmp_path / "out" / "local")
    assert manifest.backend == "local" and manifest.sequential
    assert manifest.settings["structured_output"] == "json_object_schema"


def test_repeats_are_independent_draws_unless_a_temperature_is_set(tmp_path) -> None:
    from personasim.run.config import Given, resolve_run

    def roles(**run):  # type: ignore[no-untyped-def]
        return resolve_run(Given(learner={"model": "m"}, run=run), run_id="r", out_dir=tmp_path).roles()

    single = roles()
    assert (single.learner.temperature, single.judge.temperature) == (0.0, 0.0)
    repeated = roles(samples=3, judge_samples=3)
    assert (repeated.learner.temperature, repeated.judge.temperature) == (0.7, 0.5)
    only_judge = roles(judge_samples=2)
    assert (only_judge.learner.temperature, only_judge.judge.temperature) == (0.0, 0.5)
    pinned = resolve_run(
        Given(learner={"model": "m", "temperature": 0.0}, judge={"temperature": 0.2}, run={"samples": 2, "judge_samples": 2}),
        run_id="r", out_dir=tmp_path,
    ).roles()  # fmt: skip
    assert (pinned.learner.temperature, pinned.judge.temperature) == (0.0, 0.2)


def test_the_manifest_shows_the_temperatures_used_for_repeats(openai_server, tmp_path) -> None:
    script(openai_server)
    result = CliRunner().invoke(app, run_args(tmp_path, "--run-id", "rep", "--base-url", openai_server.base_url,
                                              "--model", "m", "--samples", "2", "--judge-samples", "2"))  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "out" / "rep")
    assert manifest.settings["temperature"] == 0.7 and manifest.judge_settings["temperature"] == 0.5
    temperatures = {r.body["temperature"] for r in openai_server.chat_requests}
    assert temperatures == {0.7, 0.5}
