"""Outputs are checked before work starts, and a write that fails is one line: `--out`, `report -o`
and `eval --junit` that cannot be written stop the command at once with `cannot write PATH: reason`
and exit 1, no traceback, nothing half-written; an OSError at write time reads the same."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.cli import app
from personasim.fileio import CannotWrite, atomic_write_text, check_writable
from run_fixtures import build_run
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A plain file: nothing can be written beneath it (even by root, unlike a read-only folder)."""
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def one_error_line(output: str, path: Path) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    assert errors[0].startswith(f"error: cannot write {path}: "), errors[0]
    return errors[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_check_writable_creates_nothing_and_names_the_blocking_file(tmp_path: Path, blocker: Path) -> None:
    check_writable(tmp_path / "new" / "deeper")  # judged by its nearest existing folder
    check_writable(tmp_path / "new" / "report.html", folder=False)
    assert files_under(tmp_path) == [blocker] and not (tmp_path / "new").exists()
    with pytest.raises(CannotWrite, match=f"cannot write {blocker}/results: {blocker} is a file, not a folder"):
        check_writable(blocker / "results")
    with pytest.raises(CannotWrite, match="it is a file, not a folder"):
        check_writable(blocker)
    with pytest.raises(CannotWrite, match="it is a folder, not a file"):
        check_writable(tmp_path, folder=False)


def test_a_failed_write_is_one_error_naming_the_path_and_leaves_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(CannotWrite, match=f"cannot write {target}: No space left on device") as info:
        atomic_write_text(target, "new")
    assert isinstance(info.value, OSError)  # callers catching OSError still do
    assert target.read_text() == "old" and files_under(tmp_path) == [target]


def test_run_with_an_unwritable_out_stops_before_any_call(tmp_path: Path, blocker: Path) -> None:
    with FakeOpenAIServer() as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        args = ["run", "--personas", str(three_seed_personas(tmp_path / "personas")),
                "--module", str(write_module(tmp_path / "modules", "v1", 1)), "--base-url", server.base_url,
                "--model", "fake-model", "--mode", "live", "--out", str(blocker / "results")]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert server.requests == []
    assert result.exit_code == 1
    one_error_line(result.output, blocker / "results")
    assert blocker.read_text() == "not a folder\n"


def test_a_write_that_fails_mid_run_stops_it_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "transcripts").write_text("in the way\n")  # where the run's transcripts go
    with FakeOpenAIServer() as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        args = ["run", "--personas", str(three_seed_personas(tmp_path / "personas")), "--persona", "p17",
                "--module", str(write_module(tmp_path / "modules", "v1", 1)), "--base-url", server.base_url,
                "--model", "fake-model", "--mode", "live", "--run-id", "r", "--out", str(out)]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    line = one_error_line(
        result.output, out / "r" / "transcripts" / "p17-assistant-director-of-finance__fairness@v1__s0.json"
    )
    assert "Not a directory" in line or "File exists" in line
    assert not (out / "r" / "units.jsonl").exists() and not list((out / "r").glob(".*.tmp"))


def test_report_to_an_unwritable_path_is_one_line_and_writes_nothing(tmp_path: Path, blocker: Path) -> None:
    run = build_run(tmp_path / "results")
    before = files_under(tmp_path)
    target = blocker / "report.html"
    result = CliRunner().invoke(app, ["report", str(run), "-o", str(target)])
    assert result.exit_code == 1
    one_error_line(result.output, target)
    assert files_under(tmp_path) == before


def test_report_whose_write_fails_is_one_line_and_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    run = build_run(tmp_path / "results")
    target = tmp_path / "reports" / "report.html"

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    result = CliRunner().invoke(app, ["report", str(run), "-o", str(target)])
    assert result.exit_code == 1
    assert one_error_line(result.output, target).endswith("No space left on device")
    assert list((tmp_path / "reports").iterdir()) == []  # no report, no temporary file


def test_eval_with_an_unwritable_junit_path_runs_no_suite(tmp_path: Path, blocker: Path) -> None:
    out = tmp_path / "results"
    target = blocker / "junit.xml"
    result = CliRunner().invoke(app, ["eval", str(REPO / "evals" / "lotus.yaml"), "--out", str(out),
                                      "--junit", str(target)])  # fmt: skip
    assert result.exit_code == 1
    one_error_line(result.output, target)
    assert not out.exists()


def test_eval_with_an_unwritable_out_runs_no_suite(tmp_path: Path, blocker: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(app, ["eval", str(REPO / "evals" / "lotus.yaml"), "--out", str(blocker / "r"),
                                      "--junit", str(junit)])  # fmt: skip
    assert result.exit_code == 1
    one_error_line(result.output, blocker / "r")
    assert not junit.exists()
