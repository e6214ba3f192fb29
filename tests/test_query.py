"""`personasim query`: SQL over many runs' results (SQLite in memory), reading only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personasim.cli import app
from personasim.errors import InputError
from personasim.report.query import database, run_query

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import build_run  # noqa: E402


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("q")
    build_run(root, "run-a", samples=2)
    build_run(root, "run-b", versions=("v1",), samples=1, personas=2, seed=3)
    return root


def test_sql_runs_across_runs_with_a_runs_table(results: Path) -> None:
    con = database([results])
    counts = run_query(con, "SELECT run, COUNT(*) AS n FROM results GROUP BY run ORDER BY run")
    assert counts.to_dict("records") == [{"run": "run-a", "n": 240}, {"run": "run-b", "n": 20}]
    joined = run_query(con, "SELECT r.run, AVG(score) AS mean, runs.learner_model FROM results r "
                            "JOIN runs USING (run) WHERE lens = 'power' GROUP BY r.run ORDER BY r.run")  # fmt: skip
    assert list(joined["learner_model"]) == ["gpt-4o-mini"] * 2 and joined["mean"].between(1, 5).all()


@pytest.mark.parametrize("sql", ["DELETE FROM results", "CREATE TABLE t (x)", "ATTACH DATABASE 'x.db' AS x",
                                 "PRAGMA writable_schema = 1", "UPDATE runs SET cost_usd = 0"])  # fmt: skip
def test_anything_but_reading_is_refused(
    results: Path, sql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="not authorized"):
        run_query(database([results]), sql)
    assert not list(tmp_path.iterdir())  # no file made


def test_the_cli_prints_json_and_csv(results: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["query", "SELECT run, rows FROM runs ORDER BY run", str(results), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == [{"run": "run-a", "rows": 240}, {"run": "run-b", "rows": 20}]
    csv = runner.invoke(app, ["query", "SELECT COUNT(*) AS n FROM results", str(results), "--csv"])
    assert csv.stdout == "n\n260\n"
    bad = runner.invoke(app, ["query", "SELECT nope FROM results", str(results)])
    assert bad.exit_code != 0 and "no such column: nope" in bad.output
