"""report.py: one self-contained, escaped HTML file per run (or pair of runs)."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personasim.analysis.gaps_types import write_coverage
from personasim.analysis.results import read_results, write_results
from personasim.cli import app
from personasim.inputs.module_loader import load_module
from personasim.inputs.persona_parser import load_personas
from personasim.report.html import CSP, write_report

sys.path.insert(0, str(Path(__file__).parent))
from coverage_fixtures import REPO, write_seed_coverage  # noqa: E402
from run_fixtures import PERSONAS, build_run  # noqa: E402

P18 = "p18-primary-care-practice-manager"

XSS = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"> & 'quoted'"
FETCHING_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href"}


class Page(HTMLParser):
    """Tags, attributes and text of a page, as a browser's tokenizer would see them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("report")
    run = build_run(root, "run-xss", samples=1, inject=XSS)
    out = write_report([run], root / "report.html", n_boot=200)
    return run, out.read_text(encoding="utf-8")


def test_one_file_with_no_external_references(injected: tuple[Path, str]) -> None:
    _, html = injected
    page = Page(html)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "img", "base", "form"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in FETCHING_ATTRS:
                assert tag == "a" and name == "href" and (value or "").startswith("#"), (tag, name, value)
            assert not name.startswith("on"), (tag, name)
    metas = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert metas == [{"http-equiv": "Content-Security-Policy", "content": CSP}]
    assert "default-src 'none'" in CSP and "script-src" not in CSP


def test_every_injected_string_is_escaped_text(injected: tuple[Path, str]) -> None:
    _, html = injected
    assert "<script>window.__xss" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=" in html
    text = "".join(Page(html).text)
    # The payload went into persona titles, system prompts, reflections, misunderstandings,
    # criterion texts, rationales and evidence: each shows up as text, never as markup.
    assert text.count(XSS) >= 6 * 6
    carriers = {name for _, attrs in Page(html).tags for name, value in attrs.items() if "__xss" in (value or "")}
    assert carriers == {"title"}  # tooltips: quoted, escaped attribute text


def test_sections_of_a_two_version_run(injected: tuple[Path, str]) -> None:
    run, html = injected
    page = Page(html)
    ids = page.ids()
    assert {"heatmap", "runs", "comparison", "heatmap-delta", "lotus-v1", "lotus-v2-scores"} <= ids
    heat = html[html.index('id="heatmap"') :]
    heat = heat[: heat.index("</table>")]
    assert heat.count("<tr>") == 1 + len(PERSONAS)  # header + one row per persona
    for lens in ("gaps", "misunderstandings", "competencies", "fit", "power", "transformational"):
        assert f"<th>{lens}</th>" in heat
    text = " ".join(page.text)
    for expected in (
        "Comparison: lotus@v2 vs lotus@v1",
        "What goes wrong at each step",
        "Where the module loses whom",
        "What to change first",
        "Whom the module fails",
        "Grader rationales",
        "Transcripts",
        "Judge reliability",
        "gpt-4o-mini",
        "$0.1734",
        "S1.takeaway",  # a cited statement, by id
        "verdict:",
        "cites nothing",
    ):
        assert expected in text, expected
    assert sum(1 for t, a in page.tags if t == "details" and "box" in (a.get("class") or "")) >= 2 * 6 + 2 * 6
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 1 + 2 * 2  # forest + 2 charts per version


def test_single_version_run_has_no_comparison(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-one", versions=("v1",), samples=1, personas=3)
    html = write_report([run], tmp_path / "one.html").read_text(encoding="utf-8")
    ids = Page(html).ids()
    assert "heatmap" in ids and "comparison" not in ids and "heatmap-delta" not in ids


def test_two_runs_are_compared_run_against_run(tmp_path: Path) -> None:
    a = build_run(tmp_path, "run-a", versions=("v1",), samples=2, seed=1)
    b = build_run(tmp_path, "run-b", versions=("v2",), samples=2, seed=2)
    html = write_report([a, b], tmp_path / "pair.html", n_boot=200).read_text(encoding="utf-8")
    text = " ".join(Page(html).text)
    assert "Comparison: run-b · lotus@v2 vs run-a · lotus@v1" in text
    assert "Only 6 personas" in text
    assert {"heatmap", "heatmap-run-b-lotus-v2"} <= Page(html).ids()


def test_degenerate_simulations_and_failed_units_are_shown_first(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-h", versions=("v1",), samples=1, personas=2, degenerate=True)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["units"]["p99__lotus@v1__s0"] = "failed"
    manifest["unit_errors"] = {"p99__lotus@v1__s0": "quota <exceeded>"}
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report([run], tmp_path / "h.html").read_text(encoding="utf-8")
    banner = html[html.index('<div class="banner bad" role="alert">') :]
    assert "simulations look degenerate" in banner[: banner.index("</div>\n")]
    assert "1 of 3 units did not finish" in html and "quota &lt;exceeded&gt;" in html
    assert html.index("simulations look degenerate") < html.index('id="runs"')  # above everything else


def test_healthy_simulations_get_a_quiet_banner(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-ok", versions=("v1",), samples=1)
    html = write_report([run], tmp_path / "ok.html").read_text(encoding="utf-8")
    assert '<div class="banner good">' in html and "simulations look healthy" in html
    assert 'class="banner bad"' not in html


def test_cli_report_writes_next_to_the_run_by_default(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-cli", versions=("v1",), samples=1, personas=2)
    result = CliRunner().invoke(app, ["report", "run-cli", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file() and "report.html" in result.stdout
    other = CliRunner().invoke(app, ["report", str(run), "-o", str(tmp_path / "x" / "r.html")])
    assert other.exit_code == 0 and (tmp_path / "x" / "r.html").is_file()


# --------------------------------------------------------------------------- coverage before simulation


def _with_credited_p18(run: Path) -> None:
    """The judge gives p18 a 5 on competency-01 in v1, which no step of v1 serves."""
    frame = read_results(run)
    hit = (frame["persona_id"] == P18) & (frame["module_version"] == "v1") & (frame["criterion_id"] == "competency-01")
    frame.loc[hit, ["score", "score_norm"]] = [5.0, 1.0]
    write_results(run, frame)


@pytest.fixture(scope="module")
def covered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("covered")
    run = build_run(root, "run-cov", samples=1)
    write_seed_coverage(run)
    _with_credited_p18(run)
    return run, write_report([run], root / "cov.html", n_boot=200).read_text(encoding="utf-8")


def test_the_report_shows_coverage_before_simulation_per_version(covered: tuple[Path, str]) -> None:
    _, html = covered
    page = Page(html)
    assert {"lotus-v1-coverage", "lotus-v2-coverage", "coverage-lotus-v1", "coverage-lotus-v2"} <= page.ids()
    grid = html[html.index('id="coverage-lotus-v1"') :]
    grid = grid[: grid.index("</table>")]
    assert grid.count("<tr>") == 1 + len(PERSONAS)
    assert '<th class="vert" title="competencies">competency-01</th>' in grid
    assert '<th class="vert" title="fit">fit-abandonment</th>' in grid
    # p17's competency-01 is served by four steps of v1; fit-abandonment needs the learner's answers.
    p17 = grid[grid.index(PERSONAS[0][1]) :].split("</tr>")[0]
    assert 'title="competency-01 (competencies): served by 4 steps: fairness-and-compassion' in p17
    assert '<td class="run" title="fit-abandonment (fit): decided from the learner' in p17
    text = " ".join(page.text)
    assert "Coverage before simulation" in text and "Coverage for Assistant Director of Finance" in text
    assert "Build compassionate leadership and culture." in text  # a best sentence of a step


def test_a_judge_5_on_an_unaddressed_criterion_is_flagged_in_the_report(covered: tuple[Path, str]) -> None:
    _, html = covered
    section = html[html.index('id="lotus-v1-coverage"') : html.index('id="lotus-v1-engagement"')]
    p18 = section[section.index("Primary Care Practice Manager") :].split("</tr>")[0]
    assert '<td class="no credited" title="competency-01 (competencies): not addressed by any step' in p18
    assert "credited though no step addresses it" in p18 and ">0!</td>" in p18
    credited = section[section.index("Judge scored 4+ where no step addresses the criterion") :]
    credited = credited[: credited.index("</details>")]
    assert f"<code>{P18}/competency-01</code>" in credited
    assert "credited_unaddressed" in section and "look_here" in section
    banner = html[: html.index('id="runs"')]
    assert "<td>credited_unaddressed</td>" in banner and "<td>look_here</td>" in banner  # in the health checks


def test_the_comparison_shows_what_coverage_b_gained_or_lost(covered: tuple[Path, str]) -> None:
    _, html = covered
    comparison = html[html.index('id="comparison"') : html.index('id="lotus-v1"')]
    assert "Coverage before simulation: what B gained or lost" in comparison
    assert "3 gained" in comparison and "2 lost" in comparison
    lost = comparison[comparison.index("Criteria gained or lost") :]
    assert "p21-chief-allied-health-professional/fit-time" in lost  # 38 min fits 2-3 h a week, 133 min does not
    assert "p18-primary-care-practice-manager/fit-preferences" in lost


def test_coverage_of_an_older_run_is_computed_from_its_inputs(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-old", versions=("v1",), samples=1)
    none = write_report([run], tmp_path / "none.html").read_text(encoding="utf-8")
    assert "No coverage for this module version: no coverage.json or inputs.json in this run folder" in none
    personas = load_personas([REPO / "personas"])
    inputs = {"version": 2, "personas": [p.model_dump(mode="json") for p in personas],
              "modules": [load_module(REPO / "modules" / "lotus" / "v1.md").model_dump(mode="json")]}  # fmt: skip
    (run / "inputs.json").write_text(json.dumps(inputs), encoding="utf-8")
    html = write_report([run], tmp_path / "old.html").read_text(encoding="utf-8")
    assert 'id="coverage-lotus-v1"' in html and "computed now from inputs.json (the run has no coverage.json)" in html
    assert not (run / "coverage.json").exists()  # the report reads a run, it never writes into it


def test_coverage_strings_are_escaped(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-cx", versions=("v1",), samples=1, personas=2)
    coverage = write_seed_coverage(run, ("v1",))
    item = coverage.items[0]
    item.persona_title = XSS
    item.criteria[0].summary = XSS
    item.criteria[0].steps[0].sentences[0].text = XSS
    write_coverage(coverage, run / "coverage.json")
    html = write_report([run], tmp_path / "cx.html").read_text(encoding="utf-8")
    assert "<script>window.__xss" not in html and "<img src=x" not in html
    assert "".join(Page(html).text).count(XSS) >= 3


def test_flags_read_with_their_small_n_tag_in_every_table(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-n", samples=6, personas=1)
    html = write_report([run], tmp_path / "n.html", n_boot=300).read_text(encoding="utf-8")
    by_persona = html[html.index("<h3>By persona</h3>") :]
    by_persona, by_criterion = (
        by_persona[: by_persona.index("</table>")],
        by_persona[by_persona.index("By criterion") :],
    )
    assert '<span class="pill better">better (small n)</span>' in by_persona
    assert '<span class="pill better">better (small n)</span>' in by_criterion[: by_criterion.index("</table>")]
    assert "whole interval lies on one side of 0" not in html
    assert "the interval\n    excludes 0 and p &lt; 0.05; below 10 clusters it reads" in html


def test_report_by_id_compares_runs_whose_persona_files_differ(tmp_path: Path) -> None:
    first = build_run(tmp_path, "run-a", versions=("v1",), samples=1, seed=1)
    second = build_run(tmp_path, "run-b", versions=("v1",), samples=1, seed=2)
    frame = read_results(second)
    frame.loc[frame["persona_id"] == P18, "persona_hash"] = "edited-persona-file"
    write_results(second, frame)
    runner = CliRunner()
    refused = runner.invoke(app, ["report", str(first), str(second), "-o", str(tmp_path / "r.html"), "--n-boot", "200"])
    assert refused.exit_code == 0, refused.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "These two cannot be compared: persona files differ" in html and "--by-id" in html
    anyway = runner.invoke(app, ["report", str(first), str(second), "-o", str(tmp_path / "i.html"), "--by-id",
                                 "--n-boot", "200"])  # fmt: skip
    assert anyway.exit_code == 0, anyway.output
    html = (tmp_path / "i.html").read_text(encoding="utf-8")
    assert "cannot be compared" not in html and 'id="heatmap-delta"' in html
    assert "Persona files differ between" in html and "paired by criterion id anyway" in html
