"""JUnit XML for suite verdicts: one test suite per eval suite, one test case per check (each
threshold per module version, each `require:` entry), passed or failed, with unique names such as
`lotus@v1::min_lens_mean[power]`. A suite that could not run is one failing case with the error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree as ET

from personasim.fileio import atomic_write_text


class CheckLike(Protocol):
    name: str
    passed: bool
    message: str


def junit_xml(results: Sequence[tuple[str, Sequence[CheckLike]]]) -> str:
    """`results`: (suite name, its checks) pairs, in order."""
    root = ET.Element("testsuites")
    for suite, checks in results:
        failures = sum(not check.passed for check in checks)
        node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)), failures=str(failures))
        for check in checks:
            case = ET.SubElement(node, "testcase", classname=f"personasim.{suite}", name=check.name)
            if check.passed:
                ET.SubElement(case, "system-out").text = check.message
            else:
                ET.SubElement(case, "failure", message=check.message).text = check.message
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def write_junit(path: str | Path, results: Sequence[tuple[str, Sequence[CheckLike]]]) -> None:
    atomic_write_text(path, junit_xml(results))
