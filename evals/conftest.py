"""Every suite in evals/ is a pytest item: replay its recordings, check its thresholds.

`pytest` (or `pytest evals/`) runs them next to the unit tests, with no network and no model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from personasim.run.session import evaluate_suite


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.parent == Path(__file__).parent:
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    def collect(self):  # type: ignore[no-untyped-def]
        yield SuiteItem.from_parent(self, name="thresholds")


class SuiteItem(pytest.Item):
    def runtest(self) -> None:
        out = Path(self.config._tmp_path_factory.mktemp("eval"))  # noqa: SLF001 (pytest's own tmp factory)
        outcome, misses = evaluate_suite(self.path, out, "eval", mode="replay")
        self.user_properties.append(("health", (outcome.manifest.health or {}).get("verdict", "")))
        if misses:
            raise SuiteFailed(misses)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def]
        if isinstance(excinfo.value, SuiteFailed):
            return "thresholds missed:\n" + "\n".join(f"  - {miss}" for miss in excinfo.value.misses)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"suite {self.path.name}"


class SuiteFailed(Exception):
    def __init__(self, misses: list[str]) -> None:
        super().__init__("; ".join(misses))
        self.misses = misses
