"""Tables at 80 columns never split a word (ids, refs and lens names stay whole, a vertical layout
when even that does not fit); piped output is plain tab-separated lines, untruncated."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from personasim.cli import app, output
from personasim.cli.tables import Col, print_table
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module_loader import load_module
from personasim.inputs.persona_parser import find_persona, load_personas

REPO = Path(__file__).resolve().parents[1]
UNSEEN = REPO / "tests" / "fixtures" / "personas" / "stage4-persona-23.md"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LENSES = ("gaps", "misunderstandings", "competencies", "fit", "power", "difference", "inclusion", "transformational")
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def on_terminal(*args: str, columns: int = 80) -> str:
    """The command's stdout as an 80-column terminal shows it (colour codes removed)."""
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns), "TTY_COMPATIBLE": "1"})
    assert result.exit_code == 0, result.output
    text = ANSI.sub("", result.stdout)
    assert max(len(line) for line in text.splitlines()) <= columns
    return text


def assert_whole(text: str, words: set[str]) -> None:
    tokens = {token.strip(",:") for token in text.split()}
    assert sorted(words - tokens) == []


def test_personas_list_keeps_every_id_whole_at_80_columns() -> None:
    text = on_terminal("personas", "list", "personas", str(UNSEEN))
    assert_whole(text, {p.id for p in load_personas([REPO / "personas", UNSEEN])} | {"misunderstandings"})


def test_module_tables_keep_refs_and_step_ids_whole_at_80_columns() -> None:
    assert_whole(on_terminal("modules", "list"), {"lotus@v1", "lotus@v2"})
    v1 = load_module(REPO / "modules" / "lotus" / "v1.md")
    assert_whole(on_terminal("modules", "show", "lotus@v1"), {step.id for step in v1.steps})
    v2 = load_module(REPO / "modules" / "lotus" / "v2.md")
    assert_whole(
        on_terminal("modules", "diff", "lotus@v1", "lotus@v2"), {s.id for s in v2.steps} - {s.id for s in v1.steps}
    )


def test_criteria_keep_ids_and_lens_names_whole_at_80_columns() -> None:
    text = on_terminal("criteria", "show", "p17", "--module", "lotus@v1")
    criteria = derive_criteria(find_persona([REPO / "personas"], "p17"), load_module(REPO / "modules/lotus/v1.md"))
    assert_whole(text, {c.id for c in criteria} | {c.lens for c in criteria} | {c.grader for c in criteria})
    assert "transformati" not in text.replace("transformational", "")


def test_piped_tables_are_plain_untruncated_lines() -> None:
    result = runner.invoke(app, ["criteria", "show", "p17", "--module", "lotus@v1"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    criteria = derive_criteria(find_persona([REPO / "personas"], "p17"), load_module(REPO / "modules/lotus/v1.md"))
    lines = result.stdout.splitlines()
    assert lines[:2] == ["criteria for p17-assistant-director-of-finance", "id\tlens\tgrader\ttext"]
    assert lines[2:] == ["\t".join((c.id, c.lens, c.grader, " ".join(c.text.split()))) for c in criteria]


def test_the_run_summary_spells_out_its_abbreviations_and_keeps_words_whole(monkeypatch) -> None:
    index = pd.MultiIndex.from_tuples([(f"p{n}-some-long-persona-id", v) for n in (17, 18) for v in ("v1", "v2")],
                                      names=["persona_id", "module_version"])  # fmt: skip
    table = pd.DataFrame([[3.0 + i / 10] * len(LENSES) for i in range(4)], index=index, columns=list(LENSES))
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, width=80, force_terminal=True, color_system=None))
    output.print_summary(table, ("persona_id", "module_version"))
    text = screen.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert_whole(text, {"p17", "p18", "v1", "v2", "misund", "compet", "differ", "inclus", "trans", *LENSES})
    legend = "ver = module version, misund = misunderstandings, compet = competencies, differ = difference, "
    assert legend + "inclus = inclusion, trans = transformational" in " ".join(text.split())


def test_a_terminal_too_narrow_for_whole_words_gets_one_block_per_row() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=40, force_terminal=True, color_system=None)
    rows = [("p20-primary-care-operations-lead-icb", "Primary Care Operations Lead (ICB)", "transformational")]
    print_table(console, [Col("id", whole=True), "title", Col("lens", whole=True)], rows)
    assert screen.getvalue().splitlines()[0] == "p20-primary-care-operations-lead-icb"
    assert_whole(screen.getvalue(), {"transformational", "title", "lens"})
