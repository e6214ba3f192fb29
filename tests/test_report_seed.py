"""The report on the seed suite's replayed run (evals/lotus.yaml: six personas, lotus v1 with 14 steps
and v2 with 20): the grid for both versions, the grouped step issues, the ranked steps and the persona
view, each asserted from the HTML. Replays committed recordings: no network, no model."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from markupsafe import escape

from personasim.inputs.module_loader import load_module
from personasim.report.data import load_run
from personasim.report.html import render_report
from personasim.run.session import evaluate_suite

REPO = Path(__file__).resolve().parents[1]
STEPS = {v: len(load_module(REPO / "modules" / "lotus" / f"{v}.md").steps) for v in ("v1", "v2")}
PERSONAS = 6


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("seed")
    outcome, _ = evaluate_suite(REPO / "evals" / "lotus.yaml", out, "seed", mode="replay")
    assert not outcome.failed, outcome.failed
    run = out / "seed"
    return run, render_report([load_run(run)], n_boot=200)


def section(html: str, start: str, end: str) -> str:
    at = html.index(start)
    return html[at : html.index(end, at)]


def test_the_grid_has_one_row_per_persona_and_one_column_per_step_for_both_versions(seed: tuple[Path, str]) -> None:
    _, html = seed
    assert STEPS == {"v1": 14, "v2": 20}
    for version, n_steps in STEPS.items():
        grid = section(html, f'id="grid-lotus-{version}"', "</table>")
        head, body = grid.split("<tbody>")
        assert len(re.findall(r"<th[ >]", head)) == 1 + n_steps
        assert body.count("<tr>") == PERSONAS
        assert body.count('<td class="empty"') == 0  # every persona reached every step


def test_a_misunderstanding_repeated_at_many_steps_appears_once_per_step_group(seed: tuple[Path, str]) -> None:
    run, html = seed
    steps_said: dict[tuple[str, str], set[int]] = defaultdict(set)
    for t in load_run(run).transcripts.values():
        if t.module_version == "v1":
            for turn in t.turns:
                for m in turn.reaction.misunderstandings:
                    steps_said[(t.persona_id, m.strip())].add(turn.step_index)
    (persona, text), steps = sorted(steps_said.items(), key=lambda kv: (-len(kv[1]), kv[0]))[0]
    assert len(steps) >= 5, (persona, text, steps)  # the 1.5B model repeats itself across steps
    issues = section(html, 'id="issues-lotus-v1"', 'id="lotus-v1-scores"')
    shown = str(escape(text))
    for index in sorted(steps):
        card = section(issues, f'id="lotus-v1-step-{index}"', "Every answer at this step")
        assert card.count(shown) == 1, index  # once, as a group, whoever else said it here
        repeated = section(card, 'data-kind="repeated"', "</ul>")  # the persona's standing concern, set apart
        assert shown in repeated and persona in repeated, index
    # Not a log: the text shows at most once per step, plus once in the list of issues raised at 3+ steps.
    assert issues.count(shown) <= len(steps) + 1
    recurring = section(issues, "Raised at three steps or more", "</ul>")
    assert recurring.count(shown) == 1 and f"at {len(steps)} steps (" in recurring


def test_the_ranked_steps_and_the_persona_view_for_both_versions(seed: tuple[Path, str]) -> None:
    _, html = seed
    for version, n_steps in STEPS.items():
        ranked = section(html, f'id="priorities-lotus-{version}"', f'id="lotus-{version}-personas"')
        scores = [float(x) for x in re.findall(r"priority (\d+\.\d\d)</span>", ranked)]
        assert len(scores) == n_steps and scores == sorted(scores, reverse=True)
        assert "this run holds no planned minutes" not in ranked  # the run's inputs.json holds the steps' minutes
        personas = section(html, f'id="personas-lotus-{version}"', "</table>")
        assert personas.split("<tbody>")[1].count("<tr>") == PERSONAS
        assert personas.count("Time available:") == PERSONAS and "Dyslexia and ADHD" in personas
        groups = section(html, f'id="groups-lotus-{version}"', "</table>")
        assert "time available" in groups and "too few personas to compare groups" in groups
    assert 'id="step-changes"' in html and "Steps paired by modules diff" in html
