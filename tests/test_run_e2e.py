"""`personasim run` and `personasim grade` end to end: the real openai client (via llm.build_client)
against the loopback fake server, scripted as both the persona and the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.analysis.results import COLUMNS, read_manifest, read_results
from personasim.cli import app
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-secret-do-not-store-0123456789"
REQUIRED = (
    "run_id unit_id persona_id persona_title module_id module_version sample criterion_id criterion_text lens "
    "grader score score_norm passed threshold verdict rationale evidence judge_samples score_sd "
    "score_min score_max learner_model judge_model prompt_tokens completion_tokens cached_tokens cost_usd persona_hash module_hash "
    "prompt_hash"
).split()


def script_server(server: FakeOpenAIServer) -> None:
    server.responder = lambda body: Reply.json(scripted_answer(body["messages"]), prompt_tokens=50,
                                               completion_tokens=10, cached_tokens=20)  # fmt: skip


def llm_flags(server: FakeOpenAIServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", "fake-model", "--mode", "live", "--concurrency", "8"]


def test_run_then_grade_reproduces_the_table(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    script_server(openai_server)
    out = tmp_path / "results"
    module = write_module(tmp_path / "modules", "v2", 2)  # one version keeps it quick; test_resume runs two
    args = ["run", "--personas", str(REPO / "personas"), "--module", str(module), "--run-id", "e2e",
            "--out", str(out), *llm_flags(openai_server)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mean score (1-5) by lens" in result.output and "6 units finished, 0 failed" in result.output
    # Not a terminal, so no live bar: a line per finished unit tells a log how far the run is.
    progress_lines = [line for line in result.output.splitlines() if line.startswith("unit ")]
    assert [line.split(" finished:")[0] for line in progress_lines] == [f"unit {n}/6" for n in range(1, 7)]
    assert all(line.endswith("elapsed)") for line in progress_lines)

    run_dir = out / "e2e"
    frame = read_results(run_dir)
    assert set(REQUIRED) <= set(frame.columns) and tuple(frame.columns) == COLUMNS
    assert frame["persona_id"].nunique() == 6 and list(frame["module_version"].unique()) == ["v2"]
    assert frame.groupby(["persona_id", "module_version", "sample", "criterion_id", "grader"]).size().max() == 1
    assert frame["score"].notna().all() and (frame["learner_model"] == "fake-model").all()
    assert (frame.loc[frame["grader"] == "judge", "judge_model"] == "fake-model").all()
    assert frame.loc[frame["grader"] == "judge", "prompt_tokens"].eq(50).all()
    assert frame["cost_usd"].isna().all()
    assert (run_dir / "results.csv").is_file() and len(list((run_dir / "transcripts").glob("*.json"))) == 6

    manifest = read_manifest(run_dir)
    assert set(manifest.units.values()) == {"finished"} and manifest.rows == len(frame)
    assert manifest.settings["model"] == "fake-model" and len(manifest.personas) == 6
    assert set(manifest.modules) == {"fairness@v2"} and manifest.prompt_hashes
    assert manifest.usage["total"]["prompt_tokens"] == 50 * len(openai_server.chat_requests)
    assert manifest.cost_usd is None
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".csv"}:
            assert SECRET not in path.read_text(encoding="utf-8")

    calls_before = len(openai_server.chat_requests)
    regraded = CliRunner().invoke(app, ["grade", "e2e", "--out", str(out)])  # the run's own LLM settings
    assert regraded.exit_code == 0, regraded.output
    judge_calls = len(openai_server.chat_requests) - calls_before
    assert judge_calls == (frame["grader"] == "judge").sum()  # no simulation, one call per judge criterion
    pd.testing.assert_frame_equal(read_results(run_dir), frame)
    assert read_manifest(run_dir).regraded_at is not None

    # --into grades a copy: the source run's files stay byte for byte; the copy's table is the same
    # but for its run id; a second fork of the same name is refused and leaves nothing behind.
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    forked = CliRunner().invoke(app, ["grade", "e2e", "--into", "e2e-regraded", "--out", str(out)])
    assert forked.exit_code == 0, forked.output
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    copy = read_results(out / "e2e-regraded")
    assert (copy["run_id"] == "e2e-regraded").all()
    assert json.loads((out / "e2e-regraded" / "inputs.json").read_text())["forked_from"] == "e2e"
    pd.testing.assert_frame_equal(copy.drop(columns="run_id"), frame.drop(columns="run_id"))
    again = CliRunner().invoke(app, ["grade", "e2e", "--into", "e2e-regraded", "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output
    assert sorted(p.name for p in out.iterdir()) == ["e2e", "e2e-regraded"]


def test_failed_units_exit_1_and_say_how_to_retry(openai_server, tmp_path) -> None:
    openai_server.responder = lambda body: Reply.quota_exceeded()
    out = tmp_path / "results"
    args = ["run", "--personas", str(three_seed_personas(tmp_path)), "--module", str(write_module(tmp_path, "v1", 1)),
            "--run-id", "broke", "--out", str(out), *llm_flags(openai_server)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert f"3 units failed; retry them with: personasim run --resume broke --out {out}" in result.output
    manifest = read_manifest(out / "broke")
    assert set(manifest.units.values()) == {"failed"} and manifest.rows == 0
    assert all(e.startswith("QuotaExceeded") for e in manifest.unit_errors.values())
    assert read_results(out / "broke").empty


def test_run_without_inputs_is_a_usage_error(tmp_path) -> None:
    result = CliRunner().invoke(app, ["run", "--model", "m", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--module and --personas" in result.output


def test_criteria_show_lists_a_seed_personas_criteria_as_json() -> None:
    result = CliRunner().invoke(app, ["criteria", "show", "p21", "--personas", str(REPO / "personas"), "--json"])
    assert result.exit_code == 0, result.output
    criteria = json.loads(result.stdout)
    ids = [c["id"] for c in criteria]
    assert ids[:5] == ["gap-01", "gap-02", "gap-03", "gap-04", "gap-05"]
    assert "lens-transformational" in ids and len(ids) == len(set(ids))


def test_criteria_show_names_a_missing_persona(tmp_path) -> None:
    result = CliRunner().invoke(app, ["criteria", "show", "p99", "--personas", str(REPO / "personas")])
    assert result.exit_code == 1
