"""Eval suites end to end: record against the loopback server, replay offline, thresholds, JUnit,
stale-recording detection, and the pytest entry point over evals/."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pytest
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.analysis.results import read_results
from personasim.cli import app
from personasim.errors import InputError
from personasim.llm.backend import open_backend, parse_backend
from personasim.llm.settings import LLMSettings
from personasim.run.config import Given, resolve_run
from personasim.run.suite import RECORDED_WITH, Thresholds, check_thresholds, load_suite
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]


def _suite(tmp_path: Path, server: FakeOpenAIServer, thresholds: str = "  max_failed_units: 0\n") -> Path:
    personas = three_seed_personas(tmp_path / "personas")
    v1, v2 = write_module(tmp_path / "modules", "v1", 2), write_module(tmp_path / "modules", "v2", 3)
    suite = tmp_path / "evals" / "mini.yaml"
    suite.parent.mkdir()
    suite.write_text(
        "name: mini\n"
        f"personas: [{personas}]\n"
        f"modules: [{v1}, {v2}]\n"
        "judge_samples: 2\n"
        "backend: openai\n"
        f"llm: {{model: fake-model, base_url: '{server.base_url}', concurrency: 8}}\n"
        "recordings: recordings/mini\n"
        "history: recap\n"
        f"thresholds:\n{thresholds}",
        encoding="utf-8",
    )
    return suite


def _script(server: FakeOpenAIServer) -> None:
    server.responder = lambda body: Reply.json(scripted_answer(body["messages"]), prompt_tokens=40, completion_tokens=9)


def _record(suite: Path, out: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--suite", str(suite), "--mode", "record", "--run-id", "rec", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "recordings noted in" in result.output


def test_record_then_replay_offline_gives_the_same_table_twice(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(openai_server)
    suite, out = _suite(tmp_path, openai_server), tmp_path / "results"
    _record(suite, out)
    recorded_calls = len(openai_server.chat_requests)
    assert (suite.parent / "recordings" / "mini" / RECORDED_WITH).is_file()

    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key and no server
    tables = []
    for run_id in ("r1", "r2"):
        result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--run-id", run_id, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert (
            "health:" in result.output
            and "answers by learner fake-model (also the judge) (recordings)" in result.output
        )
        tables.append(read_results(out / run_id).drop(columns=["run_id"]))
    assert len(openai_server.chat_requests) == recorded_calls  # not one call more
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[0]["persona_id"].nunique() == 3 and set(tables[0]["module_version"]) == {"v1", "v2"}
    assert (out / "r1" / "used_keys.txt").read_text().count("\n") == recorded_calls


def test_eval_passes_and_fails_naming_each_missed_threshold(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(openai_server)
    suite, out = _suite(tmp_path, openai_server), tmp_path / "results"
    _record(suite, out)
    junit = tmp_path / "junit.xml"
    passing = CliRunner().invoke(app, ["eval", str(suite), "--out", str(out), "--junit", str(junit)])
    assert passing.exit_code == 0, passing.output
    assert "PASS mini" in passing.output
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"

    impossible = suite.read_text().replace("  max_failed_units: 0\n", "  min_lens_mean: 1.0\n  min_persona_mean: 1.0\n")
    suite.write_text(impossible)
    failing = CliRunner().invoke(app, ["eval", str(suite), "--out", str(out), "--junit", str(junit)])
    assert failing.exit_code == 1
    assert "FAIL mini" in failing.output and "min_lens_mean: lens" in failing.output
    assert "min_persona_mean: p17-assistant-director-of-finance" in failing.output
    cases = ET.parse(junit).getroot().find("testsuite")
    assert int(cases.get("failures")) >= 2 and cases.find("testcase/failure") is not None


def test_a_changed_prompt_template_makes_replay_fail_naming_it_and_the_fix(
    openai_server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(openai_server)
    suite, out = _suite(tmp_path, openai_server), tmp_path / "results"
    _record(suite, out)
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    step = prompts / "step_turn.md.j2"
    step.write_text(step.read_text() + "\nBe brief.\n")
    before = len(openai_server.chat_requests)
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--prompts", str(prompts), "--out", str(out)])
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "recordings are stale" in flat and "step_turn.md.j2" in flat
    assert f"personasim run --suite {suite} --mode record" in flat
    assert len(openai_server.chat_requests) == before


def test_thresholds_are_checked_per_module_version() -> None:
    frame = pd.DataFrame({
        "module_version": ["v1", "v1", "v2", "v2"], "lens": ["power", "misunderstandings"] * 2,
        "persona_id": ["p1"] * 4, "score_norm": [0.2, 0.9, 0.8, 0.9], "passed": [False, False, True, True],
        "evidence_verified": [True, None, False, None],
    })  # fmt: skip
    misses = check_thresholds(frame, Thresholds(min_lens_means={"power": 0.5}, max_unaddressed_misunderstandings=0,
                                                min_verified_evidence_rate=0.5))  # fmt: skip
    assert misses == [
        "[v1] min_lens_mean: lens 'power' mean 0.20 < 0.50",
        "[v1] max_unaddressed_misunderstandings: 1 > 0",
        "[v2] min_verified_evidence_rate: 0.00 < 0.50",
    ]
    assert check_thresholds(frame, Thresholds(), failed_units=1) == ["max_failed_units: 1 units failed (allowed 0)"]


def test_bad_suites_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npersonas: [nowhere/]\nmodules: [m.md]\nsamples: 0\n")
    with pytest.raises(InputError, match=r"bad.yaml:4: samples"):
        load_suite(bad)
    bad.write_text("name: x\npersonas: [nowhere/]\nmodules: [m.md]\n")
    with pytest.raises(InputError, match="matches no file"):
        load_suite(bad).persona_paths()


def test_backends() -> None:
    assert parse_backend(None) == ("openai", None) and parse_backend("local") == ("local", None)
    assert parse_backend("local:smollm2-135m") == ("local", "smollm2-135m")
    with pytest.raises(InputError, match="unknown backend"):
        parse_backend("ollama")
    # Replay on a local backend starts nothing: the settings just name the model.
    replay = LLMSettings(model="x", mode="replay", recordings_dir="r")
    with open_backend("local:smollm2-135m", replay) as backend:
        assert backend.settings.model == "smollm2-135m" and backend.sequential
        assert backend.settings.structured_output == "json_object_schema" and backend.settings.base_url is None
        assert backend.settings.timeout_s == 1800  # a CPU model needs minutes for a long prompt
    explicit = LLMSettings(model="x", mode="replay", recordings_dir="r", timeout_s=30)
    with open_backend("local:smollm2-135m", explicit) as backend:
        assert backend.settings.timeout_s == 30 and backend.settings.total_timeout_s == 3600


@pytest.mark.parametrize(
    ("path", "model"), [("lotus.yaml", "qwen2.5-coder-1.5b"), ("lotus-smollm2.yaml", "smollm2-135m")]
)
def test_the_seed_suites_name_all_six_seed_personas_and_both_versions(path: str, model: str) -> None:
    suite = load_suite(REPO / "evals" / path)
    assert [p.number for p in suite.load_personas()] == [17, 18, 19, 20, 21, 22]
    assert [m.ref for m in suite.load_modules()] == ["lotus@v1", "lotus@v2"]
    settings = resolve_run(Given(suite=suite), run_id="r", out_dir=REPO / "results").learner_settings()
    assert settings.model == model and settings.mode == "replay"
    assert (REPO / "evals" / "recordings" / Path(suite.recordings or "").name / RECORDED_WITH).is_file()


def test_a_changed_key_setting_makes_replay_fail_naming_it(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(openai_server)
    suite, out = _suite(tmp_path, openai_server), tmp_path / "results"
    _record(suite, out)
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--temperature", "0.9", "--out", str(out)])
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "recordings are stale: temperature 0.0 -> 0.9" in flat and "--mode record" in flat
