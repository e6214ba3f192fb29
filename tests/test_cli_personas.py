"""`personasim personas ...` end to end through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personasim.cli import app
from personasim.inputs.persona import Persona
from personasim.inputs.persona_parser import load_personas

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "personas" / "stage3-personas.md"
UNSEEN = REPO / "tests" / "fixtures" / "personas" / "stage4-persona-23.md"
SEED_TITLES = {
    17: "Assistant Director of Finance",
    18: "Primary Care Practice Manager",
    19: "Information Governance Lead",
    20: "Primary Care Operations Lead (ICB)",
    21: "Chief Allied Health Professional",
    22: "Specialist Doctor in Dermatology",
}


@pytest.fixture
def run(monkeypatch):
    """Run `personasim personas ARGS` from the repository root (so `personas/` is the default)."""
    monkeypatch.chdir(REPO)
    runner = CliRunner()

    def invoke(*args: str, columns: int = 200):
        return runner.invoke(app, ["personas", *args], env={"COLUMNS": str(columns)})

    return invoke


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def test_list_json_defaults_to_personas_folder(run):
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["number"]: row["title"] for row in rows} == SEED_TITLES
    assert rows[0] == {
        "id": "p17-assistant-director-of-finance",
        "number": 17,
        "title": "Assistant Director of Finance",
        "stage": "Stage 3: Senior managers and leaders",
        "hours_per_week": {"min": 5.0, "max": 6.0},
        "gaps": 5,
        "misunderstandings": 3,
        "source": "personas/stage3-personas.md:20",
    }


def test_list_table(run):
    result = run("list", str(SEED), str(UNSEEN))
    assert result.exit_code == 0, result.output
    for persona_id in ("p17-assistant-director-of-finance", "p23-director-of-nursing-community-services"):
        assert persona_id in result.stdout
    row_17 = next(line for line in result.stdout.splitlines() if "p17-" in line)  # not a terminal: tab-separated
    assert row_17.split("\t") == [
        "p17-assistant-director-of-finance", "17", "Assistant Director of Finance", "Stage 3", "5-6", "5", "3",
    ]  # fmt: skip


def test_show_json_holds_every_field_of_p17(run):
    result = run("show", "p17-assistant-director-of-finance", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == set(Persona.model_fields)
    assert shown == load_personas([Path("personas")])[0].model_dump(mode="json")
    assert shown["competency_development_profile"]["contextual_constraints"]["hours_per_week"] == {"min": 5, "max": 6}
    assert shown["diversity_profile"]["experience_of_power"]["experienced_barriers"][-1] == (
        "Prayer time needs not always understood or accommodated"
    )


def test_show_text_and_path_option(run):
    result = run("show", "p23", "--path", str(UNSEEN))
    assert result.exit_code == 0, result.output
    assert "Persona 23: Director of Nursing – Community Services" in result.stdout
    assert "- Every video has captions and a transcript." in result.stdout
    assert "Preferred Name: Cerys" in result.stdout


def test_show_unknown_id(run):
    assert_clean_failure(run("show", "p99-nobody"), "no persona 'p99-nobody'", "p17-assistant-director-of-finance")


def test_validate_ok(run):
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "personas/stage3-personas.md: ok, 6 personas (p17-assistant-director-of-finance, "
        "p18-primary-care-practice-manager, p19-information-governance-lead, p20-primary-care-operations-lead-icb, "
        "p21-chief-allied-health-professional, p22-specialist-doctor-in-dermatology), 0 warnings"
    ]
    assert result.stderr == ""


def test_validate_prints_warnings_to_stderr(run):
    result = run("validate", str(UNSEEN))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("1 persona (p23-director-of-nursing-community-services), 3 warnings")
    assert [line.split(": ")[0] for line in result.stderr.splitlines()] == [
        f"{UNSEEN}:33",
        f"{UNSEEN}:93",
        f"{UNSEEN}:134",
    ]


def test_validate_folder_with_a_bad_file(run, tmp_path):
    (tmp_path / "a-good.md").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "b-bad.md").write_text("# Personas\n\n## Persona five: Nurse\n", encoding="utf-8")
    result = run("validate", str(tmp_path))
    assert_clean_failure(result, f"{tmp_path / 'b-bad.md'}:3: persona heading 'Persona five: Nurse' has no number")
    assert result.stdout.startswith(f"{tmp_path / 'a-good.md'}: ok, 6 personas")


def test_validate_duplicate_ids_across_files(run, tmp_path):
    (tmp_path / "a.md").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "b.md").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    assert_clean_failure(run("validate", str(tmp_path)), f"{tmp_path / 'b.md'}:20: duplicate persona id")


def test_lint_seed(run):
    result = run("lint")
    assert result.exit_code == 1
    assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [
        "personas/stage3-personas.md:60",
        "personas/stage3-personas.md:103",
        "personas/stage3-personas.md:639",
    ]
    assert "3 findings" in result.stderr
    as_json = json.loads(run("lint", "--json", "personas").stdout)
    assert [(f["line"], f["code"]) for f in as_json] == [
        (60, "stray-escape"),
        (103, "duplicate-item"),
        (639, "duplicate-item"),
    ]


def test_lint_clean_file_exits_0(run, tmp_path):
    text = SEED.read_text(encoding="utf-8")
    clean = tmp_path / "p22.md"
    clean.write_text(text[text.index("## Persona 22:") :], encoding="utf-8")
    result = run("lint", str(clean))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_schema(run):
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Persona"
    assert set(schema["properties"]) == set(Persona.model_fields)
    assert "HoursPerWeek" in schema["$defs"]


@pytest.mark.parametrize("command", ["list", "validate", "lint"])
def test_bad_file_is_one_line_on_stderr(run, tmp_path, command):
    bad = tmp_path / "bad.md"
    bad.write_text("## Persona 12:\n\nNo title above.\n", encoding="utf-8")
    assert_clean_failure(run(command, str(bad)), f"{bad}:1: persona 12 has no title")


def test_missing_path(run, tmp_path):
    assert_clean_failure(run("list", str(tmp_path / "nope")), f"{tmp_path / 'nope'}: no such file or folder")
