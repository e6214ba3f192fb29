"""The report and `personasim view` in headless Chromium (Selenium, Debian's chromium and chromedriver):
the step x persona grid, the ranked steps and a filter work, and markup injected into persona, module
and answer text never runs. Skips only when Chromium, its driver or selenium is missing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import chrome, needs_browser, viewer, wait  # noqa: E402
from run_fixtures import PERSONAS, STEPS, build_run  # noqa: E402

pytestmark = needs_browser

SIDE_EFFECT = "document.documentElement.setAttribute('data-xss','ran')"
PAYLOAD = f'<script>{SIDE_EFFECT}</script><img src=x onerror="{SIDE_EFFECT}">'
P18 = "p18-primary-care-practice-manager"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browse")
    build_run(root, "run-a", samples=2, inputs=True)
    build_run(root, "run-xss", versions=("v1",), samples=1, inject=PAYLOAD, inputs=True)
    return root


@pytest.fixture(scope="module")
def driver() -> Iterator:
    d = chrome()
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def report(runs: Path) -> Path:
    from personasim.report.html import write_report

    return write_report([runs / "run-xss"], runs / "xss.html", n_boot=200)


@pytest.fixture(scope="module")
def url(runs: Path) -> Iterator[str]:
    with viewer([runs]) as base:
        yield base


def css(d, selector: str) -> list:  # noqa: ANN001
    return d.find_elements("css selector", selector)


def inert(d) -> None:  # noqa: ANN001
    """The payload did not run: no attribute set, no global defined, and it reads as text."""
    assert d.execute_script("return document.documentElement.getAttribute('data-xss')") is None
    assert d.execute_script("return typeof window.__xss") == "undefined"
    assert not css(d, "img[src=x]")
    assert "<script>document.documentElement.setAttribute" in d.find_element("tag name", "body").text


# --------------------------------------------------------------------------- the report


def test_report_grid_cells_open_the_answers_they_link_to(driver, report: Path) -> None:  # noqa: ANN001
    driver.get(report.as_uri())
    rows = css(driver, "#grid-lotus-v1 tbody tr")
    assert len(rows) == len(PERSONAS) and rows[0].is_displayed()
    assert len(css(driver, "#grid-lotus-v1 thead th")) == 1 + len(STEPS)
    chip = css(driver, "#grid-lotus-v1 tbody td a .chip")[0]
    assert chip.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
    link = css(driver, "#grid-lotus-v1 tbody tr td a")[2]
    target = link.get_attribute("href").split("#", 1)[1]
    driver.execute_script("arguments[0].click()", link)
    # The answers sit in a closed <details>: following the link opens it and shows the row.
    wait(driver, lambda d: d.find_element("id", target).is_displayed())
    assert driver.execute_script("return location.hash") == "#" + target


def test_report_ranked_steps_link_to_their_step(driver, report: Path) -> None:  # noqa: ANN001
    driver.get(report.as_uri())
    items = css(driver, "#priorities-lotus-v1 > li")
    assert len(items) == len(STEPS)
    first = items[0].find_element("css selector", "strong a")
    target = first.get_attribute("href").split("#", 1)[1]
    driver.execute_script("arguments[0].click()", first)
    wait(
        driver,
        lambda d: (
            d.execute_script("return document.querySelector(':target') && document.querySelector(':target').id")
            == target
        ),
    )
    card = driver.find_element("id", target)
    assert card.is_displayed() and card.value_of_css_property("background-color") == "rgba(255, 248, 214, 1)"


def test_report_injected_markup_never_runs(driver, report: Path) -> None:  # noqa: ANN001
    driver.get(report.as_uri())
    inert(driver)


# --------------------------------------------------------------------------- the viewer


def test_viewer_lists_the_runs(driver, url: str) -> None:  # noqa: ANN001
    driver.get(url)
    keys = [a.text for a in css(driver, "#runs tbody td:first-child a")]
    assert sorted(keys) == ["run-a", "run-xss"]


def test_viewer_filter_changes_the_rows_and_lives_in_the_url(driver, url: str) -> None:  # noqa: ANN001
    from selenium.webdriver.support.ui import Select

    driver.get(url + "run/run-a")
    assert driver.find_element("id", "row-count").text.startswith("240 of 240 rows")
    Select(driver.find_element("id", "filter-persona")).select_by_value(P18)  # viewer.js submits on change
    wait(driver, lambda d: parse_qs(urlparse(d.current_url).query).get("persona") == [P18])
    wait(driver, lambda d: d.find_element("id", "row-count").text.startswith("40 of 240 rows"))
    query = parse_qs(urlparse(driver.current_url).query)
    assert set(query) == {"tab", "persona"}  # empty filters left out of the URL
    cells = {td.text for td in css(driver, "#results tbody td:first-child")}
    assert cells == {P18}
    Select(driver.find_element("id", "filter-lens")).select_by_value("power")
    wait(driver, lambda d: d.find_element("id", "row-count").text.startswith("4 of 240 rows"))
    driver.get(driver.current_url)  # the same URL gives the same page: the state is in it
    assert Select(driver.find_element("id", "filter-persona")).first_selected_option.get_attribute("value") == P18
    assert driver.find_element("id", "row-count").text.startswith("4 of 240 rows")


def test_viewer_grid_and_version_filter(driver, url: str) -> None:  # noqa: ANN001
    from selenium.webdriver.support.ui import Select

    driver.get(url + "run/run-a?tab=steps")
    assert len(css(driver, "#grid-run-a-lotus-v1 tbody tr")) == len(PERSONAS)
    Select(driver.find_element("id", "filter-version")).select_by_value("v2")
    wait(driver, lambda d: css(d, "#grid-run-a-lotus-v2"))
    link = css(driver, "#grid-run-a-lotus-v2 tbody tr td a")[0]
    target = link.get_attribute("href").split("#", 1)[1]
    driver.execute_script("arguments[0].click()", link)
    wait(driver, lambda d: d.find_element("id", target).is_displayed())


def test_viewer_injected_markup_never_runs(driver, url: str) -> None:  # noqa: ANN001
    for path in ("run/run-xss?tab=steps", "run/run-xss?tab=personas", "run/run-xss?flag=&persona=",
                 "run/run-xss/unit/p17-assistant-director-of-finance__lotus%40v1__s0"):  # fmt: skip
        driver.get(url + path)
        wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")
        inert(driver)
