"""The seed personas' coverage by lotus v1 and v2 (computed once), written into synthetic run folders."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from personasim.analysis.gaps import coverage_for_run
from personasim.analysis.gaps_types import Coverage, write_coverage
from personasim.inputs.module_loader import load_module
from personasim.inputs.persona_parser import load_personas

REPO = Path(__file__).resolve().parents[1]
MODULES = {v: REPO / "modules" / "lotus" / f"{v}.md" for v in ("v1", "v2")}


@lru_cache(maxsize=1)
def seed_coverage() -> Coverage:
    """Every seed persona x lotus v1 and v2 (the persona ids of `run_fixtures.PERSONAS`)."""
    return coverage_for_run(load_personas([REPO / "personas"]), [load_module(p) for p in MODULES.values()])


def write_seed_coverage(run_dir: Path, versions: tuple[str, ...] = ("v1", "v2")) -> Coverage:
    """Write `coverage.json` into `run_dir`, as a run of those versions would have."""
    full = seed_coverage()
    coverage = full.model_copy(update={"items": [i for i in full.items if i.module_ref.split("@")[1] in versions]})
    write_coverage(coverage, run_dir / "coverage.json")
    return coverage
