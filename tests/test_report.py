"""report.py: one self-contained, escaped HTML file per run (or pair of runs)."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personasim.cli import app
from personasim.report.html import CSP, write_report

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import PERSONAS, build_run  # noqa: E402

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
        "Misunderstandings raised",
        "Grader rationales",
        "Transcripts",
        "Judge reliability",
        "gpt-4o-mini",
        "$0.1734",
        "not found",
        "verified",
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
