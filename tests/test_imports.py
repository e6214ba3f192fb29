"""Import boundaries: reading results loads no LLM client, and the CLI's start loads no heavy library."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_results_health_and_report_data_load_no_llm_client() -> None:
    loaded = loaded_after("import personasim.analysis.results, personasim.analysis.health, personasim.report.data")
    assert "openai" not in loaded and "tenacity" not in loaded


@pytest.mark.parametrize("heavy", ["pandas", "numpy", "pyarrow", "jinja2", "openai", "bm25s", "llama_cpp"])
def test_the_cli_starts_without_heavy_libraries(heavy: str) -> None:
    assert heavy not in loaded_after("import personasim.cli")
