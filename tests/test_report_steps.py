"""The report's step by step views (issue 18, items 1-5): the step x persona grid, the grouped issues
per step, the ranked steps to revise (and B vs A step by step), the personas ranked with their
characteristics, and the tidied reliability, badges and abbreviations. Asserted from the HTML."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from personasim.report.html import write_report

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import PERSONAS, STEPS, build_run  # noqa: E402
from test_report import Page  # noqa: E402

REPEAT = "I think LOTUS is only for HR to run"
RENAMES = {"lessons-learnt": "lessons-and-next-steps"}


def block(html: str, start: str, end: str = "</table>") -> str:
    """From the first `start` to the next `end` after it."""
    at = html.index(start)
    return html[at : html.index(end, at)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("steps")
    run = build_run(root, "run-steps", samples=2, inputs=True, renames=RENAMES, repeat=REPEAT)
    return write_report([run], root / "steps.html", n_boot=200).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sample, one judge sample, no inputs.json: the plain cases."""
    root = tmp_path_factory.mktemp("single")
    run = build_run(root, "run-k1", versions=("v1",), samples=1, judge_samples=1)
    return write_report([run], root / "k1.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- 1. the grid


def test_the_grid_has_a_row_per_persona_and_a_column_per_step_for_each_version(report: str) -> None:
    for version in ("v1", "v2"):
        grid = block(report, f'id="grid-lotus-{version}"')
        head, body = grid.split("<tbody>")
        assert len(re.findall(r"<th[ >]", head)) == 1 + len(STEPS)
        assert body.count("<tr>") == len(PERSONAS)
        for _, title in PERSONAS:
            assert f'<td class="persona">{title} ' in body


def test_every_grid_cell_links_to_that_persons_answers_at_that_step(report: str) -> None:
    grid = block(report, 'id="grid-lotus-v1"')
    targets = re.findall(r'<a href="#([^"]+)"', grid)
    assert len(targets) == len(PERSONAS) * len(STEPS)
    ids = Page(report).ids()
    assert set(targets) <= ids
    assert "lotus-v1-step-3-p18-primary-care-practice-manager-s0" in targets
    answers = block(report, 'id="lotus-v1-step-3-p18-primary-care-practice-manager-s0"', "</tr>")
    assert "Primary Care Practice Manager" in answers


def test_cells_show_ratings_stops_the_first_stop_and_counts_with_the_spread_of_samples(report: str) -> None:
    grid = block(report, 'id="grid-lotus-v1"')
    p17 = grid[grid.index("Assistant Director of Finance") :].split("</tr>")[0]
    # p17 (engagement falling through v1) would stop after step 5 in one of its two samples.
    fifth = p17.split("<td")[5]  # the text starts inside the persona cell: [1] is step 1
    assert 'class="stop first"' in fifth and "stop 1/2" in fifth
    assert re.search(r'<span class="g-marks">.*M\d+ ', fifth)
    assert re.search(r'class="g-range">\d–\d / ', grid)  # two samples: the range under the mean
    assert "Left chip: engagement, right chip: relevance" in report


def test_a_single_sample_grid_has_no_spread(single: str) -> None:
    grid = block(single, 'id="grid-lotus-v1"')
    assert 'class="g-range"' not in grid and "range (min–max)" not in single


# --------------------------------------------------------------------------- 2. issues per step


def test_a_misunderstanding_repeated_at_every_step_appears_once_per_step(report: str) -> None:
    issues = block(report, 'id="issues-lotus-v1"', 'id="lotus-v1-scores"')
    for index in range(1, len(STEPS) + 1):
        card = block(issues, f'id="lotus-v1-step-{index}"', "Every answer at this step")
        assert card.count(REPEAT) == 1, index  # one group at this step, not one line per mention
        repeated = block(card, 'data-kind="repeated"', "</ul>")  # p17 raises it at every step: set apart
        item = next(li for li in repeated.split("<li>") if REPEAT in li)
        assert item.startswith('<span class="count" title="mentions at this step">2</span>')  # both samples, merged
        assert "at 6 steps" in item and "Assistant Director of Finance" in item
    recurring = block(issues, "Raised at three steps or more", "</ul>")
    assert REPEAT in recurring and "at 6 steps (1, 2, 3, 4, 5, 6)" in recurring


def test_issue_groups_name_their_personas_with_links(report: str) -> None:
    card = block(report, 'id="lotus-v1-step-1"', "Every answer at this step")
    assert re.search(r'<span class="count" title="mentions">\d+</span>', card)
    links = re.findall(r'<a href="#(lotus-v1-step-1-[^"]+)" title="(p\d+[^"]*)">', card)
    assert links and all(target.endswith(("-s0", "-s1")) for target, _ in links)
    kinds = set(re.findall(r'<div class="issue-kind">(\w+)</div>', card))
    assert kinds and kinds <= {"Misunderstandings", "Questions", "Barriers"}


# --------------------------------------------------------------------------- 3. what to change first


def test_steps_are_ranked_by_a_computed_priority_with_reasons_and_evidence(report: str) -> None:
    ranked = block(report, 'id="priorities-lotus-v1"', "</ol>")
    scores = [float(x) for x in re.findall(r"priority (\d\.\d\d)</span>", ranked)]
    assert len(scores) == len(STEPS) and scores == sorted(scores, reverse=True)
    assert "min spent against" in ranked  # inputs.json holds the planned minutes
    assert "conversations stop here first" in ranked
    ids = Page(report).ids()
    for target in re.findall(r'href="#([^"]+)"', ranked):
        assert target in ids, target
    assert re.search(r'href="#lotus-v1-g-p\d+[^"]*-s\d"', ranked)  # a judge grade citing the step


def test_without_planned_minutes_time_is_left_out_and_said_so(single: str) -> None:
    assert "this run holds no planned minutes, so that part is 0" in single


def test_two_versions_are_compared_step_by_step_with_modules_diff_matching(report: str) -> None:
    table = block(report, 'id="step-changes"')
    rows = table.split("<tbody>")[1].count("<tr>")
    assert rows == len(STEPS)  # every step of v2 paired with v1's, the renamed one too
    assert "<code>lessons-learnt -&gt; lessons-and-next-steps</code>" in table and "renamed: matched by" in table
    assert re.search(r'<span class="pill (better|worse)">(better|worse)</span>', table)
    assert "Steps paired by modules diff" in report


# --------------------------------------------------------------------------- 4. whom the module fails


def test_personas_are_ranked_with_their_characteristics(report: str) -> None:
    table = block(report, 'id="personas-lotus-v1"')
    scores = [float(x) for x in re.findall(r'<span class="score"[^>]*>(\d\.\d\d)</span>', table)]
    assert len(scores) == len(PERSONAS) and scores == sorted(scores)
    for label in ("Time available:", "Minoritised identities:", "Disability:", "Working pattern:",
                  "Learning preferences:"):  # fmt: skip
        assert table.count(label) == len(PERSONAS)
    assert "Dyslexia and ADHD" in table and "15-20 hours weekly (part-time role)" in table


def test_groups_are_compared_only_where_each_holds_two_personas(report: str) -> None:
    groups = block(report, 'id="groups-lotus-v1"')
    rows = {r.split("</td>")[0]: r for r in groups.split("<tr><td>")[1:]}
    assert re.search(r"<b>under 3 h a week</b> \(2\): \d\.\d\d \[\d\.\d\d, \d\.\d\d\]", rows["time available"])
    assert "too few personas to compare groups (disability stated 1, none stated 5)" in rows["disability"]


def test_without_persona_files_groups_are_not_guessed(single: str) -> None:
    assert "This run holds no persona files" in single and 'id="groups-lotus-v1"' not in single


# --------------------------------------------------------------------------- 5. tidy


def test_judge_reliability_is_one_line_at_k1(single: str, report: str) -> None:
    section = single[single.index('id="lotus-v1-reliability"') :]
    assert "<strong>Judge reliability:</strong> not measured: one judge sample per criterion (k = 1)" in section
    assert '<th class="num">alpha</th>' not in section
    assert '<th class="num">alpha</th>' in report[report.index('id="lotus-v1-reliability"') :]


def test_stop_and_recommend_read_as_one_statement(report: str) -> None:
    summaries = re.findall(r'<span class="pill (\w+)">(would [^<]+)</span></summary>', report)
    assert summaries and len(summaries) == 2 * 2 * len(PERSONAS)  # one per transcript, nothing beside it
    said = {text for _, text in summaries}
    assert all(re.fullmatch(r"would (stop at \d\. [\w-]+(, but would recommend| and would not recommend)|finish"
                            r"( and recommend|, but would not recommend))", s) for s in said), said  # fmt: skip
    assert ">would recommend</span>" not in report


def test_abbreviations_have_a_legend(report: str) -> None:
    legend = block(report, 'id="abbreviations"', "</dl>")
    for term in ("<dt>dz</dt>", "<dt>p</dt>", "<dt>k</dt>", "<dt>E, R</dt>", "<dt>M, B (grid)</dt>", "<dt>A, B</dt>"):
        assert term in legend, term


def test_the_first_screen_answers_what_to_change_first_for_each_version(report: str) -> None:
    glance = block(report, 'id="glance"', 'id="runs"')
    for version in ("v1", "v2"):
        ranked = block(report, f'id="priorities-lotus-{version}"', "</li>")
        first = re.search(r'<a href="(#lotus-[^"]+)">Step (\d+)', ranked)
        assert f'<a href="{first.group(1)}">Step {first.group(2)} · ' in glance  # the top-ranked step, linked
    assert glance.count("Scores lowest for") == 2 and report.index('id="glance"') < report.index('id="runs"')


def test_a_run_without_transcripts_still_reports_and_says_so(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-bare", versions=("v1",), samples=1)
    for path in (run / "transcripts").iterdir():
        path.unlink()
    html = write_report([run], tmp_path / "bare.html").read_text(encoding="utf-8")
    assert "No step answers (transcripts) for lotus@v1." in html and 'id="personas-lotus-v1"' in html
