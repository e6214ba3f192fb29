"""modules/lotus: faithful to the seed webinar (figures exact, nothing invented), v2 keeps v1's facts.

The seed is `tests/fixtures/seeds/003_123a1282ca9f64a4.txt`, a byte copy of
`shared/seeds/003_123a1282ca9f64a4.txt` (checked against the shared copy where one exists).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from personasim.inputs.module import LearningModule
from personasim.inputs.module_loader import load_module
from personasim.inputs.module_steps import estimate_minutes

REPO = Path(__file__).parents[1]
SEED = Path(__file__).parent / "fixtures" / "seeds" / "003_123a1282ca9f64a4.txt"
SHARED_SEEDS = [REPO / "shared" / "seeds", REPO.parent / "shared" / "seeds"]
LOTUS = REPO / "modules" / "lotus"
VERSIONS = ["v1", "v2"]

NUMBER_RE = re.compile(r"\d+(?:\.\d+)*%?")
ACTIVITY_TIME_LINE = re.compile(r"(?im)^\W*time\W*\s*\d+(?:\.\d+)?\s*min\w*\s*$")


def numbers(text: str) -> list[str]:
    """Number tokens as written: '24.0%' and '24%' differ, '10.9.24' is one token."""
    return NUMBER_RE.findall(text)


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def module(version: str) -> LearningModule:
    return load_module(LOTUS / f"{version}.md")


def module_text(version: str) -> str:
    return (LOTUS / f"{version}.md").read_text(encoding="utf-8")


def content_numbers(m: LearningModule) -> set[str]:
    return {n for step in m.steps for n in numbers(step.content)}


def seed_table_rows() -> list[list[str]]:
    """Number sequences of every table row in the seed (tab-separated lines: WRES, staff survey,
    baseline survey, audit, triage template) and of the midwifery staffing lines."""
    lines = seed_text().splitlines()
    rows = [numbers(re.sub(r"<[^>]+>", "", line)) for line in lines if "\t" in line]
    start = next(i for i, line in enumerate(lines) if "Staffing Data" in line)
    end = next(i for i, line in enumerate(lines) if "History made" in line)
    rows += [numbers(line) for line in lines[start : end + 2]]
    rows += [numbers(line) for line in lines if "Indicator 2 improved" in line]
    return [row for row in rows if row]


def contains_run(haystack: list[str], needle: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


def test_seed_fixture_matches_shared_copy() -> None:
    shared = [d / SEED.name for d in SHARED_SEEDS if (d / SEED.name).is_file()]
    for copy in shared:
        assert copy.read_bytes() == SEED.read_bytes(), f"{SEED} differs from {copy}"


def test_seed_tables_parsed() -> None:
    """Guard the parser itself: the WRES, staff-survey and staffing figures are all found."""
    flat = [n for row in seed_table_rows() for n in row]
    for figure in ("2.03", "1.63", "23.53%", "76.47%", "64.1%", "30.56%", "5.56%", "9.4%", "11.7%"):
        assert figure in flat
    assert len(seed_table_rows()) >= 30


@pytest.mark.parametrize("version", VERSIONS)
def test_every_seed_table_row_appears_with_the_same_values(version: str) -> None:
    """Each seed table row's numbers appear, in order and with the same values, on one line of the module."""
    module_lines = [numbers(line) for line in module_text(version).splitlines()]
    missing = [row for row in seed_table_rows() if not any(contains_run(line, row) for line in module_lines)]
    assert missing == [], f"{version} lacks these seed rows: {missing}"


@pytest.mark.parametrize("version", VERSIONS)
def test_no_number_is_invented(version: str) -> None:
    """Every number in the step content is one the seed has (no new statistics)."""
    seed_numbers = set(numbers(re.sub(r"<[^>]+>", " ", seed_text())))
    invented = sorted(content_numbers(module(version)) - seed_numbers)
    assert invented == []


def test_v2_has_the_same_numbers_as_v1() -> None:
    assert content_numbers(module("v2")) == content_numbers(module("v1"))


def test_v2_activities_and_questions_add_no_numbers() -> None:
    allowed = content_numbers(module("v1"))
    for step in module("v2").steps:
        extra = ACTIVITY_TIME_LINE.sub("", step.activity) + " ".join(step.reflection_questions)
        assert set(numbers(extra)) <= allowed, step.id


def seed_figure_titles() -> list[str]:
    titles = []
    for line in seed_text().splitlines():
        line = re.sub(r"<sup>.*?</sup>", "", line).strip()
        if re.match(r"^Figure [\d.]+: ", line) or line.startswith("The four stages of psychological safety"):
            titles.append(line)
    return titles


@pytest.mark.parametrize("version", VERSIONS)
def test_figures_named_and_marked_not_reproduced(version: str) -> None:
    titles = seed_figure_titles()
    assert len(titles) == 7
    for title in titles:
        steps = [s for s in module(version).steps if title in s.content]
        assert steps, f"{version}: figure {title!r} is not mentioned"
        assert "not reproduced in the source" in steps[0].content


def seed_list(after: str, pattern: str) -> list[str]:
    """Items of the list that follows the line containing `after` (markdown links reduced to text)."""
    lines = seed_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1
    items = []
    for line in lines[start:]:
        match = re.match(pattern, line.strip())
        if match:
            items.append(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1)))
        elif items:
            break
    return items


@pytest.mark.parametrize("version", VERSIONS)
def test_lists_kept_verbatim(version: str) -> None:
    text = " ".join(module_text(version).split())
    pledges = seed_list("Anti-Racist Charter Pledges", r"^\d+\. (.*)$")
    pilots = seed_list("Six organisations successfully piloting", r"^\d+\. (.*)$")
    gmc = [t.strip("* ") for t in seed_list("## Key themes", r"^- (.*)$")]
    assert (len(pledges), len(pilots), len(gmc)) == (10, 6, 5)
    for item in pledges + pilots + gmc:
        assert item in text, item


@pytest.mark.parametrize("version", VERSIONS)
def test_quotes_kept_verbatim(version: str) -> None:
    text = " ".join(module_text(version).split())
    for quote in (
        "Compassion is a sensitivity to the distress of self and others with a commitment to do something about it",
        "What leaders pay attention to, talk about and model in their own behaviour tells those in the organization "
        "what it is they should value",
        "Anti-racism is the commitment to fight racism wherever you find it, including in yourself.",
        "Everyone you meet is fighting a hard battle.",
        "Positively transform ELHT into an Intentional, Visible and Proactive Anti-Racist organisation",
        "Two band 7 midwives of BAME ethnicity appointed through competitive selection and interview process",
    ):
        assert quote.lower() in text.lower(), quote


def test_v1_follows_the_webinar_order() -> None:
    markers = [
        "What is fairness?",
        "Attending:",
        "Good Medical Practice 2024",
        "regional leaders",
        "Step 1: Learn",
        "Six organisations",
        "Initial triage and review template",
        "Examples of lessons learnt",
        "Call to action from LOTUS",
        "Our purpose",
        "ELHT WRES data",
        "Outcome 3",
        "Anti-Racist Charter Pledges",
        "Anti Racist Framework",
        "Ongoing work being progressed",
        "Call to action from Aarushi",
    ]
    steps = module("v1").steps
    positions = [next(i for i, s in enumerate(steps) if m in s.content) for m in markers]
    assert positions == sorted(positions)


def test_versions_shape() -> None:
    v1, v2 = module("v1"), module("v2")
    assert (v1.ref, v2.ref) == ("lotus@v1", "lotus@v2")
    assert v1.delivery_format == "webinar"
    assert 10 <= len(v1.steps) <= 14
    assert 14 <= len(v2.steps) <= 20
    assert v1.learning_outcomes == v2.learning_outcomes
    assert v1.target_competencies == v2.target_competencies


def test_v2_every_step_has_an_activity_and_one_or_two_questions() -> None:
    for step in module("v2").steps:
        assert step.activity, step.id
        assert ACTIVITY_TIME_LINE.search(step.activity), f"{step.id}: activity states no 'Time: N minutes'"
        assert 1 <= len(step.reflection_questions) <= 2, step.id


@pytest.mark.parametrize("version", VERSIONS)
def test_minutes_follow_the_documented_rule(version: str) -> None:
    m = module(version)
    for step in m.steps:
        assert step.minutes == estimate_minutes(step), f"{step.id}: minutes should be {estimate_minutes(step)}"
        assert step.serves or step.id == "about", step.id
    assert m.estimated_minutes == m.total_minutes
