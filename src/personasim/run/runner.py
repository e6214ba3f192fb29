"""Run the plan: every persona x module version x sample is one unit (simulate, then grade).

The learner's client simulates and the judge's client grades (`RoleClients`). Units run
concurrently (the clients' own limits bound calls in flight), or one after another with
`sequential=True`: a local llama.cpp server keeps one evaluated prefix, so each conversation and
its grading run to the end before the next starts.

Nothing finished is lost on Ctrl-C or a crash: a unit's transcript and grades are written before
its record is appended to `units.jsonl`. `resume` skips units finished with the same config
hash and redoes failed, changed and missing ones. The results table is always rebuilt from the
per-unit grade files, in plan order (`finalize.py`), so a resumed run equals an uninterrupted one.
A batch run (`batch_run.py`) makes one pass a round: a unit waiting for its round's answer
(`CallPending`) is left unrecorded, to go on in the next pass.

An endpoint that can serve no call (refused, not found, not serving the model: `EndpointError`)
or an output that cannot be written (`CannotWrite`) stops the whole run rather than failing its
units one by one; a new run stopped before anything of it was kept leaves no folder behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from personasim.analysis.results import (
    GradeFile,
    RunPaths,
    read_manifest,
    save_grades,
    utc_now,
)
from personasim.errors import InputError
from personasim.fileio import CannotWrite
from personasim.grading.grade import grade_transcript
from personasim.inputs.criteria import Criterion
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.costs import PriceTable
from personasim.llm.gather import gather_cancelling
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.llm.settings import generation_summary
from personasim.llm.types import CallPending, EndpointError, LLMError
from personasim.prompts import Prompts
from personasim.records.transcript import Transcript, load_transcript, save_transcript
from personasim.run.config import RunConfig
from personasim.run.finalize import RunOutcome, finalize, finished
from personasim.run.plan import Unit, plan_units
from personasim.run.simulate import simulate_unit
from personasim.run.state import (
    UnitRecord,
    append_unit_record,
    check_run_id,
    read_inputs,
    read_unit_records,
    update_run_config,
    write_inputs,
)
from personasim.run.stopping import RunStop, remove_if_untouched

logger = logging.getLogger(__name__)


class RunProgress:
    """Progress hooks (the CLI draws a bar); the default does nothing."""

    def planned(self, todo: int, skipped: int) -> None: ...

    def unit_done(self, record: UnitRecord) -> None: ...


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


UnitWork = Callable[["_Context", Unit], Awaitable[UnitRecord]]


@dataclass
class _Context:
    clients: RoleClients
    roles: ModelRoles
    prompts: Prompts
    config: RunConfig
    paths: RunPaths
    progress: RunProgress
    records_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # What this process saved, per unit: finalize takes these instead of reading the files back.
    saved: dict[str, tuple[Transcript, GradeFile]] = field(default_factory=dict)
    stop: RunStop = field(default_factory=RunStop)

    def __post_init__(self) -> None:
        self.clients = self.stop.watch(self.clients)  # conversations end on any LLM error: note these


async def _off_loop(write: Callable[..., None], *args: object) -> None:
    """Run a file write (it fsyncs: milliseconds each) in a thread, so the event loop keeps serving
    other units' calls meanwhile. A cancelled caller still waits for the write to end, so no file
    is written behind the back of whoever cancelled it (a crash, Ctrl-C)."""
    done = asyncio.ensure_future(asyncio.to_thread(write, *args))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        raise


async def _append_record(ctx: _Context, record: UnitRecord) -> None:
    async with ctx.records_lock:  # one writer at a time: every record is one whole line
        await _off_loop(append_unit_record, ctx.paths.units, record)


async def _do_unit(ctx: _Context, unit: Unit) -> UnitRecord:
    ctx.stop.check()
    try:
        transcript = await simulate_unit(
            ctx.clients.learner,
            unit.persona,
            unit.module,
            unit.sample,
            ctx.roles.learner,
            ctx.prompts,
            run_id=ctx.config.run_id,
            history=ctx.config.history,
        )
        ctx.stop.check()
        await _off_loop(save_transcript, transcript, ctx.paths.transcript(unit.unit_id))
        if transcript.status == "finished":
            await _grade_unit(ctx, transcript, unit.persona, unit.module, unit.criteria)
        status, error = transcript.status, transcript.error
    except CallPending:  # a batch run's unit waits for its next round: nothing to record yet
        return UnitRecord(unit_id=unit.unit_id, status="pending", config_hash=unit.config_hash, at=utc_now())
    except (EndpointError, CannotWrite):
        raise
    except LLMError as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug in one unit must not take the finished ones down with it
        logger.exception("unit %s crashed", unit.unit_id)
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    return await _record(ctx, unit, status, error)


async def _record(ctx: _Context, unit: Unit, status: str, error: str | None) -> UnitRecord:
    record = UnitRecord(unit_id=unit.unit_id, status=status, config_hash=unit.config_hash, error=error, at=utc_now())
    await _append_record(ctx, record)
    ctx.progress.unit_done(record)
    return record


async def _grade_unit(
    ctx: _Context, transcript: Transcript, persona: Persona, module: LearningModule, criteria: list[Criterion]
) -> None:
    grades = await grade_transcript(
        ctx.clients.judge,
        transcript,
        persona,
        module,
        criteria,
        ctx.config.judge_samples,
        settings=ctx.roles.judge,
        prompts=ctx.prompts,
        concurrent=not ctx.config.sequential,
    )
    ctx.stop.check()
    grade_file = GradeFile(
        unit_id=transcript.unit_id,
        prompt_hashes=ctx.prompts.template_hashes(),
        judge=generation_summary(ctx.roles.judge),
        judge_samples=ctx.config.judge_samples,
        grades=grades,
    )
    await _off_loop(save_grades, ctx.paths.grades(transcript.unit_id), grade_file)
    ctx.saved[transcript.unit_id] = (transcript, grade_file)


async def _run_all(ctx: _Context, units: list[Unit], work: UnitWork) -> list[UnitRecord]:
    if ctx.config.sequential:
        return [await work(ctx, u) for u in units]
    return await gather_cancelling([work(ctx, u) for u in units])


def _prepare(
    config: RunConfig, personas: list[Persona], modules: list[LearningModule]
) -> tuple[RunPaths, list[Persona], list[LearningModule]]:
    paths = RunPaths(config.run_dir)
    check_run_id(config.run_id)
    if config.resume:
        if not paths.units.is_file() and not paths.inputs.is_file():
            raise InputError(
                paths.root,
                None,
                "nothing to resume here (no units.jsonl: the run stopped before its first unit); "
                "start it again without --resume",
            )
        if not personas or not modules:
            snap_personas, snap_modules = read_inputs(paths)
            personas, modules = personas or snap_personas, modules or snap_modules
    elif paths.units.is_file():
        raise InputError(
            paths.root, None, f"run {config.run_id} already exists; resume it with --resume {config.run_id}"
        )
    if not personas or not modules:
        raise InputError(None, None, "a run needs at least one persona and one module")
    return paths, personas, modules


@dataclass
class Pass:
    """One pass over a run's unfinished units: its plan, the records of the units it did (a batch
    run's units waiting for their next round among them, status `pending`), and what it saved."""

    paths: RunPaths
    units: list[Unit]
    records: list[UnitRecord]
    saved: dict[str, tuple[Transcript, GradeFile]]
    skipped: int
    started: str
    duration_s: float

    @property
    def pending(self) -> int:
        return sum(r.status == "pending" for r in self.records)


async def run_pass(
    clients: RoleClients,
    personas: list[Persona],
    modules: list[LearningModule],
    *,
    roles: ModelRoles,
    prompts: Prompts,
    config: RunConfig,
    progress: RunProgress | None = None,
    skip: Collection[str] = (),
) -> Pass:
    """Simulate and grade every unit not already finished (no table yet: `finalize` makes it).
    `skip`: unit ids to leave as they are (a batch run's units that failed in an earlier pass)."""
    paths, personas, modules = _prepare(config, personas, modules)
    units = plan_units(personas, modules, config.samples, config.judge_samples, roles, prompts, config.history)
    done = read_unit_records(paths.units) if config.resume else {}
    todo = [u for u in units if not finished(paths, done.get(u.unit_id), u) and u.unit_id not in skip]
    ctx = _Context(clients, roles, prompts, config, paths, progress or RunProgress())
    ctx.progress.planned(len(todo), len(units) - len(todo))
    created = not paths.root.exists()
    paths.root.mkdir(parents=True, exist_ok=True)
    write_inputs(paths, personas, modules, config, roles)
    started, clock = utc_now(), time.perf_counter()
    try:
        records = await _run_all(ctx, todo, _do_unit)
    except EndpointError:
        if created:
            remove_if_untouched(paths.root, keep=paths.inputs)
        raise
    return Pass(paths, units, records, ctx.saved, len(units) - len(todo), started, time.perf_counter() - clock)


async def run(
    clients: RoleClients,
    personas: list[Persona],
    modules: list[LearningModule],
    *,
    roles: ModelRoles,
    prompts: Prompts,
    config: RunConfig,
    prices: PriceTable | None = None,
    progress: RunProgress | None = None,
) -> RunOutcome:
    """Simulate and grade every unit not already finished, then rebuild the results table."""
    done = await run_pass(clients, personas, modules, roles=roles, prompts=prompts, config=config, progress=progress)
    outcome = finalize(done.paths, done.units, roles, prompts, config, prices, done.started, done.duration_s,
                       saved=done.saved)  # fmt: skip
    outcome.skipped, outcome.records = done.skipped, done.records
    return outcome


async def regrade(
    run_dir: str | Path,
    clients: RoleClients,
    *,
    roles: ModelRoles,
    prompts: Prompts,
    config: RunConfig,
    prices: PriceTable | None = None,
    progress: RunProgress | None = None,
) -> RunOutcome:
    """Grade the run's saved transcripts again (current criteria, judge and templates); no simulation.
    `config` is the run's own configuration with what this re-grade changes (judge, judge samples)."""
    paths = RunPaths(run_dir)
    personas, modules = read_inputs(paths)
    started = read_manifest(paths.root).started_at if paths.manifest.is_file() else utc_now()
    units = plan_units(personas, modules, config.samples, config.judge_samples, roles, prompts, config.history)
    records = read_unit_records(paths.units)
    todo = [u for u in units if records.get(u.unit_id) and records[u.unit_id].status == "finished"]
    ctx = _Context(clients, roles, prompts, config, paths, progress or RunProgress())
    ctx.progress.planned(len(todo), len(units) - len(todo))
    update_run_config(paths, config, roles)
    clock = time.perf_counter()
    await _run_all(ctx, todo, _regrade_unit)
    return finalize(
        paths,
        units,
        roles,
        prompts,
        config,
        prices,
        started,
        time.perf_counter() - clock,
        regraded_at=utc_now(),
        saved=ctx.saved,
    )


async def _regrade_unit(ctx: _Context, unit: Unit) -> UnitRecord:
    try:
        transcript = load_transcript(ctx.paths.transcript(unit.unit_id))
        await _grade_unit(ctx, transcript, unit.persona, unit.module, unit.criteria)
        status, error = "finished", None
    except (EndpointError, CannotWrite):
        raise
    except LLMError as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    return await _record(ctx, unit, status, error)
