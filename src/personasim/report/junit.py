"""JUnit XML for suite verdicts: one test suite per eval suite, one test case per threshold line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from personasim.fileio import atomic_write_text


def junit_xml(results: Sequence[tuple[Any, list[str]]]) -> str:
    """`results`: (suite, misses) pairs; a suite with no misses is one passing case."""
    root = ET.Element("testsuites")
    for suite, misses in results:
        node = ET.SubElement(root, "testsuite", name=suite.name, tests=str(max(1, len(misses))),
                             failures=str(len(misses)))  # fmt: skip
        if not misses:
            ET.SubElement(node, "testcase", classname=f"personasim.{suite.name}", name="thresholds")
        for miss in misses:
            case = ET.SubElement(node, "testcase", classname=f"personasim.{suite.name}", name=miss.split(":")[0])
            ET.SubElement(case, "failure", message=miss).text = miss
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def write_junit(path: str | Path, results: Sequence[tuple[Any, list[str]]]) -> None:
    atomic_write_text(path, junit_xml(results))
