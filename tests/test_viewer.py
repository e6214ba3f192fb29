"""`personasim view` without a browser: the catalogue, filters and pages over HTTP on 127.0.0.1, the
security headers, read-only routes, escaping, the 127.0.0.1-only socket, and a CLI that stays light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from personasim.analysis.results import read_results, write_results

sys.path.insert(0, str(Path(__file__).parent))
from browser import viewer  # noqa: E402
from run_fixtures import PERSONAS, STEPS, build_run  # noqa: E402

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
P18 = "p18-primary-care-practice-manager"
UNIT = "p17-assistant-director-of-finance__lotus@v1__s0"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    build_run(root, "run-a", samples=2, inputs=True, renames={"lessons-learnt": "lessons-and-next-steps"})
    run_b = build_run(root, "run-b", versions=("v1",), samples=1, seed=3)
    frame = read_results(run_b)  # one ungraded judge row (score missing) that still cites a statement
    frame.loc[(frame["unit_id"] == UNIT) & (frame["criterion_id"] == "gap-01"), "score"] = float("nan")
    write_results(run_b, frame)
    build_run(root, "run-xss", versions=("v1",), samples=1, personas=2, inject=XSS, inputs=True)
    return root


@pytest.fixture(scope="module")
def url(results: Path) -> Iterator[str]:
    with viewer([results]) as base:
        yield base


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8")


def test_the_run_list_shows_each_run_with_roles_verdicts_date_and_cost(url: str) -> None:
    status, headers, html = get(url)
    assert status == 200 and headers["content-type"].startswith("text/html")
    table = html[html.index('id="runs"') :]
    for key in ("run-a", "run-b", "run-xss"):
        assert f'<a href="/run/{key}">{key}</a>' in table
    assert "gpt-4o-mini" in table and "$0.1734" in table and "2025-11-20 10:00" in table
    assert "not assessed" in table and ">none</span>" in table  # health and check-model columns


def test_the_run_list_filters_and_sorts_in_the_url(url: str) -> None:
    _, _, html = get(url + "?q=run-b")
    assert "/run/run-b" in html and "/run/run-a" not in html
    _, _, html = get(url + "?sort=run&dir=desc")
    order = re.findall(r'<a href="/run/(run-[a-z]+)">', html)
    assert order == ["run-xss", "run-b", "run-a"]


def test_a_run_page_filters_sorts_and_pages_on_the_server(url: str) -> None:
    _, _, everything = get(url + "run/run-a")
    assert "240 of 240 rows, page 1 of 5 (50 a page)" in everything
    assert everything.split('id="results"')[1].split("<tbody>")[1].split("</tbody>")[0].count("<tr>") == 50
    _, _, html = get(url + f"run/run-a?persona={P18}&version=v2&lens=power")
    body = html.split('id="results"')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert "2 of 240 rows" in html and body.count("<tr>") == 2 and "p17-" not in body
    assert f'<option value="{P18}" selected>' in html  # the filter state reads back from the URL
    _, _, low = get(url + "run/run-a?flag=low&sort=score&dir=desc")
    scores = [float(s) for s in re.findall(r'<td class="num">(\d(?:\.\d)?)</td>', low.split('id="results"')[1])]
    assert scores and max(scores) <= 2 and scores == sorted(scores, reverse=True)
    _, _, step = get(url + "run/run-a?step=2")
    rows = step.split('id="results"')[1].split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert rows and all(re.search(r"<code>S2\.\w+</code></a>", row) for row in rows)  # each cites step 2


def test_the_steps_tab_shows_the_grid_the_ranked_steps_and_the_issues(url: str) -> None:
    _, _, html = get(url + "run/run-a?tab=steps&version=v2")
    grid = html[html.index('id="grid-run-a-lotus-v2"') :]
    grid = grid[: grid.index("</table>")]
    assert grid.split("<tbody>")[1].count("<tr>") == len(PERSONAS)
    assert 'id="priorities-run-a-lotus-v2"' in html and 'id="issues-run-a-lotus-v2"' in html
    assert "?tab=results&amp;version=v2&amp;persona=" in html  # a ranked step's evidence: the citing grades


def test_the_personas_tab_and_the_side_by_side_page(url: str) -> None:
    _, _, html = get(url + "run/run-a?tab=personas")
    assert 'id="personas-run-a-lotus-v1"' in html and "Dyslexia and ADHD" in html
    status, _, both = get(url + "compare?a=run-a&va=v1&b=run-a&vb=v2")
    assert status == 200 and 'id="side-by-side"' in both
    assert 'id="grid-run-a-lotus-v1"' in both and 'id="grid-run-a-lotus-v2"' in both
    assert both.split('id="step-changes"')[1].split("<tbody>")[1].split("</tbody>")[0].count("<tr>") == len(STEPS)
    assert 'href="/run/run-a?tab=steps&amp;version=v1#run-a-lotus-v1-step-1-' in both  # cells open the run page


def test_a_transcript_highlights_the_statements_the_judge_cited(url: str) -> None:
    unit = "p17-assistant-director-of-finance__lotus@v1__s0"
    _, _, html = get(url + f"run/run-a/unit/{unit.replace('@', '%40')}?criterion=gap-01")
    marked = re.findall(r'<div class="statement" id="st-([\w.]+)"><code>[\w.]+</code><mark class="cited">', html)
    assert marked and all(m.startswith("S") or m.startswith("END") for m in marked)
    assert "cited by gap-01 (" in html and "cited by gap-02" not in html


def test_every_response_is_read_only_escaped_and_under_a_strict_policy(url: str) -> None:
    for path in ("", "run/run-xss", "run/run-xss?tab=steps", "run/run-xss?tab=personas",
                 "run/run-xss/unit/p17-assistant-director-of-finance__lotus%40v1__s0", "static/viewer.js"):  # fmt: skip
        status, headers, body = get(url + path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert "<script>window.__xss" not in body and "<img src=x" not in body, path
    _, _, steps = get(url + "run/run-xss?tab=steps")
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in steps
    scripts = re.findall(r"<script[^>]*>", steps)
    assert scripts == ['<script src="/static/viewer.js" defer>']  # the one script, from this server
    assert get(url, "POST")[0] == 405 and get(url + "run/run-a", "DELETE")[0] == 405
    _, _, reflected = get(url + "?q=%3Cscript%3Ewindow.__xss%3D3%3C%2Fscript%3E")  # a filter value read back
    assert "<script>window.__xss=3" not in reflected and 'value="&lt;script&gt;window.__xss=3' in reflected


def test_unknown_runs_and_units_are_not_found_and_paths_never_leave_the_catalogue(url: str) -> None:
    assert get(url + "run/nope")[0] == 404
    assert get(url + "run/run-a/unit/..%2F..%2Fmanifest")[0] == 404
    assert get(url + "run/run-a/unit/p99__lotus%40v1__s0")[0] == 404
    assert get(url + "compare?a=run-a&b=nope")[0] == 404


def _listening(port: int) -> list[str]:
    """Local addresses listening on `port`, from /proc/net/tcp (IPv4) and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads the socket table from /proc/net/tcp")
def test_the_cli_serves_on_127_0_0_1_only_and_prints_the_url(results: Path) -> None:
    cmd = [sys.executable, "-c", "from personasim.cli import main; main()", "view", str(results), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # the first line is the URL, printed once the socket is bound
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        assert found, line
        host, port = found.group(1), int(found.group(2))
        assert host == "127.0.0.1"
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and no other address or IPv6 socket
        status, _, html = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "run-a" in html
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_view_has_no_host_option_and_help_does_not_load_the_web_stack() -> None:
    code = ("import sys; from typer.testing import CliRunner; from personasim.cli import app; "
            "r = CliRunner().invoke(app, ['view', '--help']); "
            "bad = CliRunner().invoke(app, ['view', '--host', '0.0.0.0']); "
            "print(json.dumps([r.exit_code, '--port' in r.output, '--open' in r.output, bad.exit_code, "
            "'starlette' in sys.modules, 'uvicorn' in sys.modules]))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, timeout=120,
                          check=True)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, True, True, 2, False, False]


def test_the_steps_tab_filters_to_one_persona(url: str) -> None:
    _, _, html = get(url + f"run/run-a?tab=steps&version=v1&persona={P18}")
    grid = html[html.index('id="grid-run-a-lotus-v1"') :]
    body = grid[: grid.index("</table>")].split("<tbody>")[1]
    assert body.count("<tr>") == 1 and "Primary Care Practice Manager" in body
    assert f'<option value="{P18}" selected>' in html


def test_a_transcript_whose_citing_grade_has_no_score_still_shows(url: str) -> None:
    status, _, html = get(url + f"run/run-b/unit/{UNIT.replace('@', '%40')}")
    assert status == 200 and "cited by gap-01 (–)" in html
