"""The wheel holds the whole package, prompt templates included, and a non-editable install runs
the seed suite from any folder with the same table as the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from personasim.prompts import TEMPLATE_NAMES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("personasim-*.whl")
    return path


def test_the_wheel_holds_every_module_and_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = REPO / "src"
    modules = {p.relative_to(source).as_posix() for p in (source / "personasim").rglob("*.py")}
    templates = {f"personasim/prompt_templates/{p.name}" for p in (REPO / "prompts").glob("*.j2")}
    report = {p.relative_to(source).as_posix() for p in (source / "personasim/report/templates").iterdir()}
    assert len(templates) == len(TEMPLATE_NAMES) and report
    assert modules | templates | report <= names, sorted((modules | templates | report) - names)


def test_an_installed_wheel_replays_the_seed_suite_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    # The wheel unpacked first on sys.path stands in for `pip install .` (its dependencies come from
    # this environment); the command runs from an empty folder that has no prompts/ of its own.
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    command = [sys.executable, "-c", "from personasim.cli import main; main()"]
    where = subprocess.run(
        [sys.executable, "-c", "import personasim.prompts as p; print(p.default_prompts_dir())"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(installed)
    suite = REPO / "evals" / "lotus.yaml"
    args = ["run", "--suite", str(suite), "--run-id", "wheel", "--out", str(tmp_path / "out")]
    done = subprocess.run([*command, *args], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    from_checkout = subprocess.run(
        [*command, "run", "--suite", str(suite), "--run-id", "checkout", "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert from_checkout.returncode == 0, from_checkout.stdout + from_checkout.stderr
    tables = [
        pd.read_parquet(tmp_path / "out" / run / "results.parquet").drop(columns="run_id")
        for run in ("wheel", "checkout")
    ]
    pd.testing.assert_frame_equal(*tables)
    assert len(tables[0]) > 0
