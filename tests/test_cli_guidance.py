"""A CLI that guides (issue 19): what to do next, progress by calls, mistakes caught before a run,
plain YAML messages, options that do not apply refused, help that states defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.cli import app
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module_loader import load_module
from personasim.inputs.persona_parser import find_persona
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "personas" / "stage3-personas.md"
runner = CliRunner()


def _serve(server: FakeOpenAIServer) -> None:
    server.responder = lambda body: Reply.json(scripted_answer(body["messages"]), prompt_tokens=40, completion_tokens=9)


def _live(server: FakeOpenAIServer) -> list[str]:
    return ["--base-url", server.base_url, "--model", "fake-model", "--mode", "live", "--concurrency", "4"]


def test_run_ends_with_the_next_commands_and_the_absolute_results_path(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.chdir(tmp_path)  # the default --out, results/, lies here: the next commands name the run by id
    _serve(openai_server)
    personas = three_seed_personas(tmp_path / "personas")
    v1, v2 = write_module(tmp_path / "modules", "v1", 2), write_module(tmp_path / "modules", "v2", 3)
    args = ["run", "--personas", str(personas), "--module", str(v1), "--module", str(v2), "--run-id", "guided"]
    result = runner.invoke(app, [*args, *_live(openai_server)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    run_dir = (tmp_path / "results" / "guided").resolve()
    assert f"results: {run_dir}" in lines
    tail = lines[lines.index(f"results: {run_dir}") :]
    assert tail[1] == "next:"
    assert tail[2].startswith("  personasim report guided ")
    assert tail[3].startswith("  personasim compare guided ") and "v2 - v1" in tail[3]
    flagged = [line for line in lines if " flagged " in line]
    assert all(line.endswith(f"see the `flags` column of {run_dir / 'results.csv'}") for line in flagged)
    # The summary spells out its abbreviated headers.
    assert "ver = module version, misund = misunderstandings" in result.output
    # Progress by calls: each finished unit's line counts the calls so far, and the plan's estimate
    # (steps + 1 reflection + judge criteria per unit) is the number of calls the server answered.
    units = [line for line in lines if line.startswith("unit ")]
    counts = [re.search(r"\((\d+)/(\d+) calls, ", line).groups() for line in units]
    assert len(units) == 6 and all(total == counts[0][1] for _, total in counts)
    done = [int(n) for n, _ in counts]
    assert done == sorted(done) and done[-1] == int(counts[-1][1]) == len(openai_server.chat_requests)


def test_the_next_commands_name_the_run_folder_when_out_is_elsewhere(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _serve(openai_server)
    personas = three_seed_personas(tmp_path / "personas")
    module = write_module(tmp_path / "modules", "v1", 1)
    out = tmp_path / "elsewhere"
    args = ["run", "--personas", str(personas), "--module", str(module), "--persona", "p17", "--run-id", "one",
            "--out", str(out), *_live(openai_server)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"  personasim report {(out / 'one').resolve()} " in result.output
    assert "personasim compare" not in result.output  # one module version: nothing to compare yet
    assert "1 unit finished, 0 failed" in result.output


def test_options_that_would_be_ignored_are_refused(tmp_path: Path) -> None:
    both = runner.invoke(app, ["run", "--resume", "old", "--run-id", "new", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "--run-id names a new run and --resume an existing one" in both.output
    picked = runner.invoke(app, ["run", "--resume", "old", "--persona", "p17", "--out", str(tmp_path)])
    assert picked.exit_code == 2 and "--persona works on the personas of --suite or --personas" in picked.output
    strict = runner.invoke(app, ["run", "--resume", "old", "--strict", "--out", str(tmp_path)])
    assert strict.exit_code == 2 and "--strict works on the personas of --suite or --personas" in strict.output


MISSPELT = (
    SEED.read_text(encoding="utf-8")
    .split("## Persona 18:")[0]
    .replace("### Learning Readiness", "### Learning Readyness")
    .replace("### Peer Learning Context", "### Peer Context")
)


def test_personas_validate_reports_unknown_and_missing_sections_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "p17.md"
    path.write_text(MISSPELT, encoding="utf-8")
    result = runner.invoke(app, ["personas", "validate", str(path)])
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    readiness = next(line for line in warnings if "'Learning Readyness'" in line)
    assert readiness.endswith("kept in extra['Learning Readyness']; did you mean 'Learning Readiness'?")
    assert f"{path}:20: persona 17 has no 'Learning Readiness': add it" in warnings
    assert f"{path}:20: persona 17 has no 'Peer Learning Context': add it" in warnings
    assert not any("did you mean" in line for line in warnings if "'Peer Context'" in line)  # not a near-miss
    assert result.stdout.strip().endswith("1 persona (p17-assistant-director-of-finance), 4 warnings")
    strict = runner.invoke(app, ["personas", "validate", "--strict", str(path)])
    assert strict.exit_code == 1


def test_run_prints_the_persona_warnings_and_refuses_them_with_strict(tmp_path: Path) -> None:
    path = tmp_path / "p17.md"
    path.write_text(MISSPELT, encoding="utf-8")
    module = write_module(tmp_path / "modules", "v1", 1)
    args = ["run", "--personas", str(path), "--module", str(module), "--model", "m", "--mode", "live",
            "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "results"), "--strict"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "warning: " in result.stderr and "did you mean 'Learning Readiness'?" in result.stderr
    assert "--strict: 4 persona warnings above" in " ".join(result.stderr.split())
    assert not (tmp_path / "results").exists()  # refused before anything ran


def test_the_seed_personas_have_no_validation_warnings() -> None:
    result = runner.invoke(app, ["personas", "validate", "--strict", str(SEED)])
    assert result.exit_code == 0 and result.stderr == ""


def test_modules_validate_warns_on_missing_and_mismatched_minutes(tmp_path: Path) -> None:
    module = write_module(tmp_path, "v1", 3)  # steps of 4, 5 and 6 minutes
    text = module.read_text(encoding="utf-8").replace("id: part-2; minutes: 5", "id: part-2")
    module.write_text(text.replace("delivery_format: webinar\n", "delivery_format: webinar\nestimated_minutes: 30\n"))
    result = runner.invoke(app, ["modules", "validate", str(module)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    step_line = text.splitlines().index("## Part 2 of the v1 webinar") + 2  # + the added estimated_minutes line
    assert any(line.startswith(f"{module}:{step_line}: step 'part-2' has no minutes: add 'minutes: ") for line in lines)
    assert f"{module}:8: estimated_minutes is 30 but the steps' minutes add up to 10: make them agree" in " ".join(
        result.stderr.split()
    )
    assert runner.invoke(app, ["modules", "validate", "--strict", str(module)]).exit_code == 1


def test_the_lotus_modules_validate_without_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["modules", "validate", "--strict"])
    assert result.exit_code == 0 and result.stderr == ""


def test_yaml_mistakes_are_told_in_plain_words_with_file_and_line(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: x\npersonas: [p/]\n  modules: [m.md]\n", encoding="utf-8")
    result = runner.invoke(app, ["run", "--suite", str(suite)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert message.startswith(f"error: {suite}:3: invalid YAML at 'modules: [m.md]': the indentation does not line up")
    assert "<block end>" not in message and "expected" not in message
    settings = tmp_path / "llm.yaml"
    settings.write_text("model: small\ndescription: two: points\n", encoding="utf-8")
    result = runner.invoke(app, ["run", "--suite", str(REPO / "evals" / "lotus.yaml"), "--config", str(settings)])
    assert result.exit_code == 1
    assert f"{settings}:2: invalid YAML at 'description: two: points': a second ': ' on one line" in " ".join(
        result.stderr.split()
    )


def test_modules_show_and_criteria_show_find_refs_in_the_default_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    shown = runner.invoke(app, ["modules", "show", "lotus@v1"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("lotus@v1  ") and "modules/lotus/v1.md" in shown.stdout
    criteria = runner.invoke(app, ["criteria", "show", "p17", "--module", "lotus@v1", "--json"])
    assert criteria.exit_code == 0, criteria.output
    module = load_module(REPO / "modules" / "lotus" / "v1.md")
    expected = derive_criteria(find_persona([REPO / "personas"], "p17"), module)
    assert json.loads(criteria.stdout) == [c.model_dump(mode="json") for c in expected]
    wrong = runner.invoke(app, ["criteria", "show", "p17", "--module", "lotus@v9"])
    assert wrong.exit_code == 1 and "no module 'lotus@v9' in modules (available: lotus@v1, lotus@v2)" in wrong.stderr
    unknown = runner.invoke(app, ["criteria", "show", "p99"])
    assert unknown.exit_code == 1 and "known ids: p17-assistant-director-of-finance" in unknown.stderr


def test_without_the_default_folders_the_error_says_what_to_give(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    shown = runner.invoke(app, ["modules", "show", "lotus@v1"])
    assert shown.exit_code == 1 and f"no modules/ folder in {tmp_path}" in " ".join(shown.stderr.split())
    criteria = runner.invoke(app, ["criteria", "show", "p17"])
    assert criteria.exit_code == 1 and "no personas/ folder" in criteria.stderr and "give --personas" in criteria.stderr


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [(*prefix, info.name or info.callback.__name__) for info in group.registered_commands]
    for sub in group.registered_groups:
        found += _commands(sub.typer_instance, (*prefix, sub.name))
    return found


GUIDED = ("run", "grade", "eval", "personas", "modules", "criteria", "recordings", "local", "batch")


@pytest.mark.parametrize("command", [c for c in _commands(app) if c[0] in GUIDED], ids=" ".join)
def test_help_states_every_default(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = [line.strip("│ ") for line in result.output.splitlines() if line.lstrip().startswith(("│ --", "│ *  --"))]
    flags = ("<bool>",)  # an on/off flag is off unless given
    undocumented = [row for row in rows if "[default:" not in row and "[required]" not in row
                    and not any(kind in row for kind in flags)]  # fmt: skip
    assert undocumented == []
    assert " ." not in result.output and "()" not in result.output
