"""`personasim modules list/show/validate/diff` end to end through the typer app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personasim.cli import app
from personasim.inputs.module_loader import load_module

REPO = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "modules"
BROKEN = FIXTURES / "broken" / "bad-minutes.md"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["modules", *args])


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(REPO)
    return REPO


def test_validate_repo_modules_passes(in_repo: Path) -> None:
    result = invoke("validate", "modules/")
    assert result.exit_code == 0, result.output
    assert "ok lotus@v1" in result.stdout and "ok lotus@v2" in result.stdout
    assert result.stderr == ""


def test_validate_defaults_to_modules_folder(in_repo: Path) -> None:
    result = invoke("validate")
    assert result.exit_code == 0, result.output
    assert "ok lotus@v2" in result.stdout


def test_list_json_shows_lotus_versions(in_repo: Path) -> None:
    result = invoke("list", "modules/", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["ref"]: row for row in json.loads(result.stdout)}
    assert {"lotus@v1", "lotus@v2"} <= set(rows)
    for version in ("v1", "v2"):
        row, module = rows[f"lotus@{version}"], load_module(REPO / "modules" / "lotus" / f"{version}.md")
        assert (row["id"], row["version"]) == ("lotus", version)
        assert row["steps"] == len(module.steps)
        assert row["minutes"] == module.total_minutes > 0
        assert row["content_hash"] == module.content_hash
        assert row["path"] == f"modules/lotus/{version}.md"
    assert 10 <= rows["lotus@v1"]["steps"] <= 14
    assert 14 <= rows["lotus@v2"]["steps"] <= 20
    assert rows["lotus@v1"]["delivery_format"] == "webinar"


def test_list_table(in_repo: Path) -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "lotus@v1" in result.stdout and "webinar" in result.stdout


def test_show_json_latest_version(in_repo: Path) -> None:
    result = invoke("show", "lotus", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ref"] == "lotus@v2"
    assert data["total_minutes"] == sum(s["minutes"] for s in data["steps"])
    assert all(s["activity"] for s in data["steps"])


def test_show_table_by_ref_and_path() -> None:
    result = invoke("show", "demo@v1", "--path", str(FIXTURES / "valid"))
    assert result.exit_code == 0, result.output
    assert "demo@v1" in result.stdout and "welcome-purpose" in result.stdout
    by_file = invoke("show", str(FIXTURES / "valid" / "demo" / "v2.md"))
    assert by_file.exit_code == 0, by_file.output
    assert "demo@v2" in by_file.stdout


def test_show_unknown_ref_fails() -> None:
    result = invoke("show", "demo@v7", "--path", str(FIXTURES / "valid"))
    assert result.exit_code == 1
    assert "no module 'demo@v7'" in result.stderr
    assert "demo@v1, demo@v2" in result.stderr


def test_validate_broken_file_exits_1_with_file_and_line() -> None:
    result = invoke("validate", str(BROKEN))
    assert result.exit_code == 1
    assert f"{BROKEN}:8: minutes must be a positive number, got 'zero'" in result.stderr
    assert "ok " not in result.stdout


def test_validate_reports_good_and_broken_files(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "valid", tmp_path / "mods")
    shutil.copy(BROKEN, tmp_path / "mods" / "broken.md")
    result = invoke("validate", str(tmp_path / "mods"))
    assert result.exit_code == 1
    assert "ok demo@v1" in result.stdout and "ok demo@v2" in result.stdout
    assert f"{tmp_path / 'mods' / 'broken.md'}:8: minutes must be a positive number" in result.stderr


def test_validate_empty_folder_fails(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "no module files found" in result.stderr


def test_list_broken_file_exits_1() -> None:
    result = invoke("list", str(BROKEN))
    assert result.exit_code == 1
    assert f"{BROKEN}:8:" in result.stderr


def test_diff_json_between_files() -> None:
    demo = FIXTURES / "valid" / "demo"
    result = invoke("diff", str(demo / "v1.md"), str(demo / "v2.md"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["before"], data["after"]) == ("demo@v1", "demo@v2")
    assert [d["id_after"] for d in data["added"]] == ["next-steps"]
    assert [d["id_before"] for d in data["removed"]] == ["closing"]
    table = next(d for d in data["changed"] if d["id_after"] == "table")
    assert (table["minutes_before"], table["minutes_after"]) == (3, 4)


def test_diff_table_between_refs(in_repo: Path) -> None:
    result = invoke("diff", "lotus@v1", "lotus@v2")
    assert result.exit_code == 0, result.output
    assert "lotus@v1 -> lotus@v2" in result.stdout
    assert "added" in result.stdout
    v1 = load_module(REPO / "modules" / "lotus" / "v1.md")
    v2 = load_module(REPO / "modules" / "lotus" / "v2.md")
    assert f"minutes: {v1.total_minutes:g} -> {v2.total_minutes:g}" in " ".join(result.stdout.split())


def test_diff_missing_file_fails(tmp_path: Path) -> None:
    result = invoke("diff", str(tmp_path / "nope.md"), str(BROKEN))
    assert result.exit_code == 1
    assert "nope.md: no such file" in result.stderr
