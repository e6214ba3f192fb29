"""The report in a real browser (headless Chromium): it renders, the heatmap is laid out and
coloured under the page's own Content-Security-Policy, and injected markup never runs.

Skips only when no Chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from personasim.report.html import CSP, write_report

sys.path.insert(0, str(Path(__file__).parent))
from coverage_fixtures import write_seed_coverage  # noqa: E402
from run_fixtures import build_run  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]  # fmt: skip
CSP_META = re.compile(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">')
SIDE_EFFECT = "document.documentElement.setAttribute('data-xss','ran')"
PAYLOAD = f'<script>{SIDE_EFFECT}</script><img src=x onerror="{SIDE_EFFECT}">'
PROBE = """<script>
const t = document.getElementById('heatmap'), r = t.getBoundingClientRect(), s = getComputedStyle(t);
const cell = t.querySelector('td[style]');
const out = {width: r.width, height: r.height, display: s.display, visibility: s.visibility,
             cell_bg: getComputedStyle(cell).backgroundColor, body_font: getComputedStyle(document.body).fontFamily};
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify(out) + '</pre>');
</script>"""


COVERAGE_PROBE = """<script>
const g = document.getElementById('coverage-lotus-v1'), box = g.getBoundingClientRect();
const colour = (sel) => getComputedStyle(g.querySelector(sel)).backgroundColor;
const out = {width: box.width, yes: colour('td.yes'), no: colour('td.no'), run: colour('td.run'),
             head: getComputedStyle(g.querySelector('th.vert')).writingMode};
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify(out) + '</pre>');
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def dump_dom(tmp: Path, page: Path) -> str:
    done = chromium(tmp, "--virtual-time-budget=3000", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def probe(report: Path, tmp_path: Path, script: str) -> dict:
    """The page under its own policy plus this one probe script; what the script measured."""
    allowed = escape(CSP + "; script-src 'unsafe-inline'")
    policy = f'<meta http-equiv="Content-Security-Policy" content="{allowed}">'
    html, replaced = CSP_META.subn(policy, report.read_text(encoding="utf-8"))
    assert replaced == 1
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = dump_dom(tmp_path, probed)
    # The last match: the probe script's own source names the <pre> too.
    return json.loads(dom.rsplit('<pre id="probe">', 1)[1].split("</pre>", 1)[0])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    run = build_run(root, "run-browser", samples=2, inject=PAYLOAD)
    write_seed_coverage(run)
    return write_report([run], root / "report.html", n_boot=300)


def test_javascript_does_run_in_this_harness(tmp_path: Path) -> None:
    """Control: without it, 'the payload did not run' could mean 'nothing runs here'."""
    page = tmp_path / "control.html"
    page.write_text(f"<!doctype html><html><body><p>x</p>{PAYLOAD.split('<img')[0]}</body></html>")
    assert 'data-xss="ran"' in dump_dom(tmp_path, page)


def test_injected_script_does_not_run_and_shows_as_text(report: Path, tmp_path: Path) -> None:
    dom = dump_dom(tmp_path, report)
    html_tag = dom[dom.index("<html") : dom.index(">", dom.index("<html"))]
    assert "data-xss" not in html_tag and 'data-xss="ran"' not in dom
    assert "&lt;script&gt;document.documentElement.setAttribute(" in dom
    assert "<img" not in dom


def test_escaping_alone_stops_it_even_without_the_csp(report: Path, tmp_path: Path) -> None:
    """Defence in depth: strip the CSP meta tag, and the payload must still be inert text."""
    html, removed = CSP_META.subn("", report.read_text(encoding="utf-8"))
    assert removed == 1
    bare = tmp_path / "no-csp.html"
    bare.write_text(html, encoding="utf-8")
    dom = dump_dom(tmp_path, bare)
    assert 'data-xss="ran"' not in dom and "&lt;script&gt;document.documentElement" in dom


def test_heatmap_is_laid_out_and_coloured_under_the_page_csp(report: Path, tmp_path: Path) -> None:
    # The page's own policy, plus permission for this one probe script: styles must still apply.
    found = probe(report, tmp_path, PROBE)
    assert found["width"] > 400 and found["height"] > 200, found
    assert found["display"] == "table" and found["visibility"] == "visible"
    assert found["cell_bg"] not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)")
    assert "system-ui" in found["body_font"]  # the inline <style> applied


def test_coverage_grid_is_coloured_and_its_headers_stand_up(report: Path, tmp_path: Path) -> None:
    found = probe(report, tmp_path, COVERAGE_PROBE)
    assert found["width"] > 600, found
    assert len({found["yes"], found["no"], found["run"]}) == 3, found  # three states, three colours
    assert "rgba(0, 0, 0, 0)" not in (found["yes"], found["no"], found["run"])
    assert found["head"] == "vertical-rl"


def test_screenshot_is_a_real_page(report: Path, tmp_path: Path) -> None:
    shot, blank_shot = tmp_path / "report.png", tmp_path / "blank.png"
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")
    for page, out in ((report, shot), (blank, blank_shot)):
        done = chromium(tmp_path, f"--screenshot={out}", "--window-size=1400,2000", page.as_uri())
        assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    assert png_size(shot) == (1400, 2000)
    # A blank page compresses to almost nothing; a rendered report with a heatmap does not.
    assert shot.stat().st_size > 20 * blank_shot.stat().st_size
