"""compare pairing: on persona file and criterion text, refusing edited personas unless --by-id."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from personasim.analysis.compare import CompareError, compare, pair_rows
from personasim.analysis.results import read_results, write_results
from personasim.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import build_run  # noqa: E402

GAP = "Does the module help this learner close the gap: {}?"


def side(gaps: list[tuple[str, float]], persona_hash: str = "hash-one", personas: int = 6) -> pd.DataFrame:
    """Personas p17.. each with one row per (gap text, score_norm) in order: gap-01, gap-02, ..."""
    rows = [
        {"persona_id": f"p{17 + p}", "persona_title": f"Persona {17 + p}", "sample": 0, "grader": "judge",
         "criterion_id": f"gap-{n:02d}", "criterion_text": GAP.format(gap), "lens": "gaps", "score_norm": score,
         "persona_hash": persona_hash if p == 0 else f"hash-of-p{17 + p}"}
        for p in range(personas)
        for n, (gap, score) in enumerate(gaps, start=1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


# Persona p17 edited between the runs: a new first gap moves "influencing" from gap-01 to gap-02.
BEFORE = [("influencing across functions", 0.25), ("reading investigation data", 0.5)]
AFTER = [("chairing a hearing", 1.0), ("influencing across functions", 0.25), ("reading investigation data", 0.5)]


def test_an_edited_persona_is_refused_by_name() -> None:
    # By id, p17's gap-01 would pair "influencing" (0.25) with "chairing a hearing" (1.0): +0.75 for nothing.
    with pytest.raises(CompareError, match=r"persona files differ between run-a and run-b: p17 \(hash hash-one in"):
        compare(side(BEFORE), side(AFTER, persona_hash="hash-two"), label_a="run-a", label_b="run-b")


def test_by_id_compares_anyway_and_names_what_differs() -> None:
    result = compare(side(BEFORE), side(AFTER, persona_hash="hash-two"), pairing="id")
    assert result.pairing == "id"
    gap01 = next(c for c in result.by("criterion") if c.key == "p17/gap-01")
    assert gap01.delta == pytest.approx(0.75)  # the mispairing, done because it was asked for
    assert any("Persona files differ between A and B (p17 (hash hash-one in A, hash-two in B))" in w
               for w in result.warnings)  # fmt: skip
    assert any("Criterion text differs between A and B for p17/gap-01, p17/gap-02" in w for w in result.warnings)


def test_reordered_criteria_pair_on_their_text() -> None:
    # Same persona file (say the hash is not recorded), gaps reordered: pairing on text pairs each gap
    # with itself, so nothing changed; pairing on id would report +0.75 and -0.25 on p17.
    a, b = side(BEFORE).drop(columns="persona_hash"), side(AFTER).drop(columns="persona_hash")
    pairs, unmatched_a, unmatched_b = pair_rows(a, b)
    assert (len(pairs), unmatched_a, unmatched_b) == (12, 0, 6)  # "chairing a hearing" has no partner
    assert pairs["diff"].abs().max() == 0
    result = compare(a, b)
    keys = {c.key for c in result.by("criterion") if c.key.startswith("p17/")}
    assert keys == {"p17/gap-01 (B: gap-02)", "p17/gap-02 (B: gap-03)"}
    assert result.overall.delta == 0 and result.pairing == "content"
    by_id = compare(a, b, pairing="id").by("criterion")
    assert next(c for c in by_id if c.key == "p17/gap-01").delta == pytest.approx(0.75)


def test_a_criterion_whose_text_changed_is_left_out_and_named() -> None:
    a = side(BEFORE)
    b = a.copy()
    b.loc[(b["persona_id"] == "p18") & (b["criterion_id"] == "gap-02"), "criterion_text"] = GAP.format("data")
    result = compare(a, b)
    assert result.n_pairs == 11 and (result.unmatched_a, result.unmatched_b) == (1, 1)
    assert any("Criterion text differs between A and B for p18/gap-02: left out" in w for w in result.warnings)


def test_same_persona_files_pair_as_before() -> None:
    a = side(BEFORE)
    result = compare(a, a.assign(score_norm=a["score_norm"] + 0.1))
    assert result.n_pairs == 12 and result.overall.delta == pytest.approx(0.1) and not result.unmatched_a
    assert not any("differ" in w for w in result.warnings)


def test_unknown_pairing_is_an_error() -> None:
    with pytest.raises(CompareError, match="pairing must be one of content, id"):
        compare(side(BEFORE), side(BEFORE), pairing="text")  # type: ignore[arg-type]


def test_cli_refuses_an_edited_persona_and_compares_by_id_on_request(tmp_path: Path) -> None:
    first = build_run(tmp_path, "run-a", versions=("v1",), samples=1, seed=1)
    second = build_run(tmp_path, "run-b", versions=("v1",), samples=1, seed=2)
    frame = read_results(second)
    edited = frame["persona_id"] == "p19-information-governance-lead"
    frame.loc[edited, "persona_hash"] = "edited-persona-file"
    write_results(second, frame)
    runner = CliRunner()
    refused = runner.invoke(app, ["compare", str(first), str(second), "--n-boot", "200"])
    assert refused.exit_code == 1
    assert "persona files differ" in refused.output and "p19-information-governance-lead" in refused.output
    assert "--by-id" in refused.output
    anyway = runner.invoke(app, ["compare", str(first), str(second), "--n-boot", "200", "--by-id", "--json"])
    assert anyway.exit_code == 0, anyway.output
    data = json.loads(anyway.stdout)
    assert data["pairing"] == "id" and any("p19-information-governance-lead" in w for w in data["warnings"])
    table = runner.invoke(app, ["compare", str(first), str(second), "--n-boot", "200", "--by-id"])
    assert table.exit_code == 0 and "Persona files differ" in table.output
