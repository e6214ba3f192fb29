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
from personasim.analysis.results import read_manifest, read_results
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
    healthy = read_manifest(next(out.glob("eval-mini-*"))).health["healthy"]
    # Every threshold met; only a healthy run may read PASS (a degenerate one's scores are no evidence).
    assert ("PASS mini" in passing.output) == healthy
    assert ("NOT EVIDENCE mini: 1 check met" in passing.output) == (not healthy)
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


CITED = '[{"id": "S1.takeaway", "text": "t"}]'


def test_thresholds_are_checked_per_module_version() -> None:
    frame = pd.DataFrame({
        "module_version": ["v1", "v1", "v2", "v2"], "lens": ["power", "misunderstandings"] * 2,
        "persona_id": ["p1"] * 4, "score_norm": [0.2, 0.9, 0.8, 0.9], "passed": [False, False, True, True],
        "grader": ["judge"] * 4, "score": [5, 4, 5, 2],
        "evidence": [CITED, CITED, "[]", CITED],
    })  # fmt: skip
    misses = check_thresholds(frame, Thresholds(min_lens_means={"power": 0.5}, max_unaddressed_misunderstandings=0,
                                                max_uncited_high_scores=0.5))  # fmt: skip
    assert misses == [  # thresholds are on the 0-1 scale; each miss also gives the 1-5 mean the summary shows
        "[v1] min_lens_mean: lens 'power' mean 0.20 (1.8 on 1-5) < 0.50 (3.0 on 1-5)",
        "[v1] max_unaddressed_misunderstandings: 1 > 0",
        "[v2] max_uncited_high_scores: 1.00 > 0.50",
    ]
    assert check_thresholds(frame, Thresholds(), failed_units=1) == ["max_failed_units: 1 unit failed (allowed 0)"]


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


@pytest.mark.parametrize(("path", "model"), [("lotus.yaml", "qwen2.5-coder-1.5b")])
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


def test_thresholds_given_on_the_1_5_scale_say_which_scale_they_use(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npersonas: [p/]\nmodules: [m.md]\nthresholds:\n  min_lens_mean: 3\n")
    with pytest.raises(InputError, match=r"bad.yaml:4: thresholds.min_lens_mean: 3 reads as a 1-5 mean, but "
                                         r"thresholds use the 0-1 scale \(\(mean - 1\) / 4\): write 0.5"):  # fmt: skip
        load_suite(bad)
    bad.write_text("name: x\npersonas: [p/]\nmodules: [m.md]\nthresholds: {min_lens_means: {power: 4.5}}\n")
    with pytest.raises(InputError, match=r"min_lens_means: 4.5 reads as a 1-5 mean.*write 0.875"):
        load_suite(bad)


def test_require_accepts_health_and_check_model_verdicts(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: x\npersonas: [p/]\nmodules: [m.md]\nrequire: {health: ok, check_model: caution}\n")
    loaded = load_suite(suite)
    assert (loaded.require.health, loaded.require.check_model) == ("ok", "caution")
    suite.write_text("name: x\npersonas: [p/]\nmodules: [m.md]\nrequire: {check_model: great}\n")
    with pytest.raises(InputError, match=r"s.yaml:4: require.check_model: Input should be 'fit' or 'caution'"):
        load_suite(suite)


def _seed_suite_copy(tmp_path: Path, extra: str) -> Path:
    """evals/lotus.yaml with absolute paths (same personas, modules and recordings) plus `extra`."""
    text = (REPO / "evals" / "lotus.yaml").read_text(encoding="utf-8")
    text = text.replace("[../personas/]", f"[{REPO / 'personas'}]")
    text = text.replace("../modules/", f"{REPO / 'modules'}/")
    text = text.replace("recordings: recordings/", f"recordings: {REPO / 'evals' / 'recordings'}/")
    suite = tmp_path / "lotus-required.yaml"
    suite.write_text(text + extra, encoding="utf-8")
    return suite


def test_requiring_health_ok_fails_the_seed_suites_degenerate_run(tmp_path: Path) -> None:
    suite, junit = _seed_suite_copy(tmp_path, "require:\n  health: ok\n"), tmp_path / "junit.xml"
    result = CliRunner().invoke(app, ["eval", str(suite), "--out", str(tmp_path / "results"), "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    assert "FAIL lotus: 1 check missed of 2" in result.output
    assert "require.health: ok, but the health verdict is: simulations look degenerate" in result.output
    assert "PASS" not in result.output
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert list(cases) == ["lotus::max_failed_units", "lotus::require.health"]
    failure = cases["lotus::require.health"].find("failure")
    assert failure is not None and "simulations look degenerate" in failure.get("message")
    assert cases["lotus::max_failed_units"].find("failure") is None


def test_requiring_a_check_model_scorecard_fails_plainly_when_there_is_none(tmp_path: Path) -> None:
    suite, junit = _seed_suite_copy(tmp_path, "require: {check_model: fit}\n"), tmp_path / "junit.xml"
    result = CliRunner().invoke(app, ["eval", str(suite), "--out", str(tmp_path / "results"), "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "require.check_model: fit, but no check-model scorecard exists for these model roles" in flat
    assert "learner qwen2.5-coder-1.5b, judge qwen2.5-coder-1.5b" in flat
    names = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["lotus::max_failed_units", "lotus::require.check_model"]


def test_an_input_error_still_writes_a_junit_file_with_one_failing_case(tmp_path: Path) -> None:
    broken, junit = tmp_path / "broken.yaml", tmp_path / "junit.xml"
    broken.write_text("name: broken\npersonas: [p/]\n  modules: [m.md]\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(broken), "--junit", str(junit)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: {broken}:3: invalid YAML" in " ".join(result.output.split())
    (suite,) = ET.parse(junit).getroot().iter("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("broken", "1", "1")
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "broken::input"
    assert case.find("failure").get("message").startswith(f"{broken}:3: invalid YAML")


def test_the_readme_suite_example_is_a_valid_suite(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split("### Suite files", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    suite = load_suite(tmp_path / "example.yaml")
    assert suite.thresholds.min_lens_means == {"power": 0.75} and suite.require.check_model == "fit"
