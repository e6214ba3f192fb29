"""Headless Chromium through Selenium, pointed at Debian's `chromium` and `chromium-driver` (nothing is
downloaded: Selenium Manager never runs when both paths are given), and the viewer served in a thread
on 127.0.0.1 for a test. Tests wait for DOM conditions with a bounded WebDriverWait, never a sleep."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver") if Path(p).is_file()), None
)
WAIT_S = 20  # the most any condition is waited for

try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and HAVE_SELENIUM),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) and selenium "
    "(the test extra)",
)


def chrome(width: int = 1400, height: int = 1000):  # noqa: ANN201 (selenium is optional at import time)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(driver, condition, timeout: float = WAIT_S):  # noqa: ANN001, ANN201
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


@contextmanager
def viewer(folders: list[Path]) -> Iterator[str]:
    """The viewer over `folders` on a free port of 127.0.0.1, in a thread; yields its URL."""
    import uvicorn

    from personasim.report.viewer import bind, create_app

    sock = bind(0)
    server = uvicorn.Server(uvicorn.Config(create_app(folders), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:  # a condition, bounded
        time.sleep(0.02)
    assert server.started, "the viewer did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()
