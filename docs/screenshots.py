"""Screenshots of the report's first screen and of `personasim view`, for the README.

.venv/bin/python docs/screenshots.py [RUN_DIR ...]    # default: a synthetic run (tests/run_fixtures.py)

Headless Chromium through Selenium (Debian's chromium and chromium-driver, as the browser tests use
them); the viewer is the real command on 127.0.0.1. Writes docs/screenshots/*.png.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
sys.path.insert(0, str(REPO / "tests"))

from browser import chrome, wait  # noqa: E402
from personasim.report.html import write_report  # noqa: E402
from run_fixtures import build_run  # noqa: E402


def main(runs: list[Path]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="shots-"))
    if not runs:
        runs = [build_run(scratch, "synthetic", samples=2, inputs=True)]
    report = write_report(runs[:1], scratch / "report.html", n_boot=500)
    driver = chrome(1400, 950)
    exe = Path(sys.executable).with_name("personasim")
    folders = sorted({str(r.parent) for r in runs})
    proc = subprocess.Popen([str(exe), "view", *folders, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        driver.get(report.as_uri())
        driver.save_screenshot(str(OUT / "report-first-screen.png"))
        anchor = driver.find_elements("css selector", "h3[id$='-grid']")[0].get_attribute("id")
        driver.get(f"{report.as_uri()}#{anchor}")
        driver.save_screenshot(str(OUT / "report-grid.png"))
        url = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline()).group(0)
        driver.get(url)
        driver.save_screenshot(str(OUT / "viewer-runs.png"))
        key = driver.find_element("css selector", "#runs tbody td a").text
        driver.get(f"{url}run/{key}?flag=low")
        wait(driver, lambda d: d.find_element("id", "row-count"))
        driver.save_screenshot(str(OUT / "viewer-run-filtered.png"))
        driver.get(f"{url}run/{key}?tab=steps")
        driver.save_screenshot(str(OUT / "viewer-steps.png"))
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
    for png in sorted(OUT.glob("*.png")):
        print(png.relative_to(REPO), f"{png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
