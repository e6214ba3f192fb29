"""The end of every run, re-grade and batch run: the results table and the manifest rebuilt from the
per-unit files, in plan order, and the run's coverage (which steps address each persona criterion,
no model) written beside them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personasim import __version__
from personasim.analysis.health import assess_health, health_to_dict
from personasim.analysis.results import (
    GradeFile,
    Manifest,
    RunPaths,
    load_unit,
    results_frame,
    run_cost,
    usage_totals,
    utc_now,
    write_manifest,
    write_results,
)
from personasim.llm.costs import PriceTable
from personasim.llm.roles import ModelRoles
from personasim.prompts import Prompts
from personasim.records.identity import module_fingerprint, persona_fingerprint
from personasim.records.transcript import Transcript
from personasim.run.config import RunConfig
from personasim.run.plan import Unit
from personasim.run.state import UnitRecord, read_unit_records

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunOutcome:
    run_dir: Path
    frame: pd.DataFrame
    manifest: Manifest
    skipped: int = 0
    records: list[UnitRecord] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return self.manifest.unit_errors


def finished(paths: RunPaths, record: UnitRecord | None, unit: Unit) -> bool:
    return (
        record is not None
        and record.status == "finished"
        and record.config_hash == unit.config_hash
        and paths.transcript(unit.unit_id).is_file()
        and paths.grades(unit.unit_id).is_file()
    )


def finalize(
    paths: RunPaths,
    units: list[Unit],
    roles: ModelRoles,
    prompts: Prompts,
    config: RunConfig,
    prices: PriceTable | None,
    started: str,
    duration_s: float,
    regraded_at: str | None = None,
    saved: Mapping[str, tuple[Transcript, GradeFile]] | None = None,
    batch: dict[str, Any] | None = None,
    live_prices: PriceTable | None = None,
) -> RunOutcome:
    """Rebuild the results table and manifest from the per-unit files, in plan order (`saved`:
    what this process wrote to those files, so it is not read back), and write the run's coverage
    before simulation (`coverage.json`: which steps address each persona criterion, no model).
    `batch`: a batch run's rounds, for the manifest, with what the same calls cost at `live_prices`
    (`prices` are then its batch prices)."""
    from personasim.analysis.gaps import coverage_for_run  # bm25s loads only when a run ends
    from personasim.analysis.gaps_types import COVERAGE_FILE, write_coverage

    records = read_unit_records(paths.units)
    loaded, statuses, errors = [], {}, {}
    for unit in units:
        record = records.get(unit.unit_id)
        if finished(paths, record, unit):
            loaded.append((saved or {}).get(unit.unit_id) or load_unit(paths.root, unit.unit_id))
            statuses[unit.unit_id] = "finished"
        else:
            statuses[unit.unit_id] = record.status if record else "not run"
            if record and record.error:
                errors[unit.unit_id] = record.error
    frame = results_frame(loaded, prices)
    write_results(paths.root, frame)
    totals = usage_totals(loaded)
    personas = list({u.persona.id: u.persona for u in units}.values())
    modules = list({u.module.ref: u.module for u in units}.values())
    coverage = coverage_for_run(personas, modules)
    write_coverage(coverage, paths.root / COVERAGE_FILE)
    manifest = Manifest(
        run_id=config.run_id,
        package_version=__version__,
        model=roles.learner.model,
        judge_model=roles.judge.model,
        seed=roles.learner.seed,
        settings=roles.learner.model_dump(mode="json"),
        judge_settings=roles.judge.model_dump(mode="json"),
        samples=config.samples,
        judge_samples=config.judge_samples,
        sequential=bool(config.sequential),
        history=config.history,
        backend=config.backend,
        prompts_dir=str(prompts.directory),
        personas={u.persona.id: persona_fingerprint(u.persona) for u in units},
        modules={u.module.ref: module_fingerprint(u.module) for u in units},
        prompt_hashes=prompts.template_hashes(),
        started_at=started,
        finished_at=utc_now(),
        duration_s=round(duration_s, 3),
        units=statuses,
        unit_errors=errors,
        usage={k: v.model_dump() for k, v in totals.items()},
        cost_usd=run_cost(roles.learner.model, roles.judge.model, totals, prices),
        rows=len(frame),
        regraded_at=regraded_at,
        batch=None
        if batch is None
        else {
            **batch,
            "cost_live_usd": run_cost(roles.learner.model, roles.judge.model, totals, live_prices),
        },  # fmt: skip
        health=health_to_dict(assess_health([transcript for transcript, _ in loaded], frame, coverage=coverage)),
    )
    write_manifest(paths.root, manifest)
    return RunOutcome(paths.root, frame, manifest)
