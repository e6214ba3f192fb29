"""One path from a resolved RunConfig to results, shared by `run`, `grade`, `eval` and `--resume`:
load the inputs, check that the outputs can be written, start the backend, build both roles' clients
(each over the run's call store, `RUN/calls/`: every completed live call is kept there, and a resumed
unit replays its own), run (or re-grade), note the recordings used, and stop everything again, also
on errors.

    config = resolve_run(Given(...), run_id=..., out_dir=...)
    with open_run(config, personas=..., modules=...) as opened:
        outcome = asyncio.run(execute(opened, progress))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personasim.fileio import atomic_write_text, check_writable
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona import Persona
from personasim.inputs.persona_parser import load_personas, select_persona
from personasim.llm.backend import open_backend
from personasim.llm.call_store import CALLS_DIR
from personasim.llm.clients import check_model_now, model_checks_enabled
from personasim.llm.costs import PriceTable
from personasim.llm.roles import ModelRoles, RoleClients, build_role_clients
from personasim.llm.types import ChatClient
from personasim.prompts import Prompts
from personasim.run.config import Given, RunConfig, resolve_run
from personasim.run.runner import RunOutcome, RunProgress, regrade, run
from personasim.run.state import inputs_or_snapshot
from personasim.run.suite import Suite, check_recordings_current, check_thresholds, load_suite, write_recorded_with

USED_KEYS = "used_keys.txt"  # what `personasim recordings prune --used` reads


@dataclass
class OpenedRun:
    """A run ready to go: its configuration (sequential decided), both roles after the backend
    started, the inputs and the templates."""

    config: RunConfig
    roles: ModelRoles
    personas: list[Persona]
    modules: list[LearningModule]
    prompts: Prompts
    backend_info: dict[str, Any] = field(default_factory=dict)
    suite: Suite | None = None

    def prices(self) -> PriceTable | None:
        table = self.roles.learner.price_table
        return PriceTable.from_file(table) if table else None


def select_personas(personas: list[Persona], only: list[str] | None, where: str) -> list[Persona]:
    """The personas named by `only` (ids or numbers, e.g. `p17`), else all of them."""
    if not only:
        return personas
    wanted = {select_persona(personas, ref, where).id for ref in only}
    return [p for p in personas if p.id in wanted]


def load_inputs(
    suite: Suite | None,
    persona_paths: list[Path] | None,
    module_paths: list[Path] | None,
    only: list[str] | None = None,
) -> tuple[list[Persona], list[LearningModule]]:
    """The personas and modules a command names (given paths win over the suite's); empty lists
    when neither names them (a resume then uses the run's own snapshot)."""
    if persona_paths:
        personas = select_personas(load_personas(persona_paths), only, ", ".join(map(str, persona_paths)))
    elif suite is not None:
        personas = suite.load_personas(only)
    else:
        personas = []
    modules = load_modules(module_paths) if module_paths else (suite.load_modules() if suite else [])
    return personas, modules


@contextmanager
def open_run(
    config: RunConfig,
    personas: list[Persona],
    modules: list[LearningModule],
    suite: Suite | None = None,
) -> Iterator[OpenedRun]:
    """Start the run's backend (a local llama.cpp server, if asked) for as long as the block runs,
    once the run folder (and the recordings folder, when recording) is known to be writable."""
    prompts = Prompts(config.prompts_dir)
    settings = config.learner_settings()
    check_writable(config.run_dir)
    if settings.mode in ("record", "auto") and settings.recordings_dir is not None:
        check_writable(settings.recordings_dir)
    with open_backend(config.backend, settings, n_ctx=config.n_ctx) as backend:
        sequential = backend.sequential if config.sequential is None else config.sequential
        yield OpenedRun(
            config=config.model_copy(update={"sequential": sequential}),
            roles=config.roles(backend.settings),
            personas=personas,
            modules=modules,
            prompts=prompts,
            backend_info=backend.description,
            suite=suite,
        )


class _CountedClient:
    """A role's ChatClient that tells the progress display of every call that completes (re-asks
    included), so a long conversation shows movement before its unit ends."""

    def __init__(self, inner: ChatClient, role: str, on_done: Callable[[str], None]) -> None:
        self.inner, self.role, self.on_done = inner, role, on_done

    async def complete(self, messages: list[dict[str, Any]], options: Any, response_model: Any = None) -> Any:
        completion = await self.inner.complete(messages, options, response_model)
        self.on_done(self.role)
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()


def _counted(clients: RoleClients, opened: OpenedRun, progress: RunProgress | None, simulate: bool) -> RoleClients:
    """`clients` reporting each call to `progress` (when it counts calls), after telling it how many
    calls each unit should take: steps + 1 reflection (when simulating), plus judge criteria x repeats."""
    on_done, expect = getattr(progress, "call_done", None), getattr(progress, "expect_calls", None)
    if on_done is None:
        return clients
    if expect is not None:
        expect(_planned_calls(opened, simulate))
    return RoleClients(
        _CountedClient(clients.learner, "learner", on_done), _CountedClient(clients.judge, "judge", on_done)
    )


def _planned_calls(opened: OpenedRun, simulate: bool) -> list[int]:
    personas, modules = inputs_or_snapshot(opened.config.run_dir, opened.personas, opened.modules)
    judged, samples = opened.config.judge_samples, opened.config.samples
    per_pair = [
        (len(module.steps) + 1 if simulate else 0)
        + judged * sum(c.grader == "judge" for c in derive_criteria(persona, module))
        for persona in personas
        for module in modules
    ]
    return [calls for calls in per_pair for _ in range(samples)]


async def execute(opened: OpenedRun, progress: RunProgress | None = None) -> RunOutcome:
    """Simulate and grade: the whole run, with both roles' clients opened and closed here."""
    if opened.suite is not None:
        check_recordings_current(opened.roles, opened.config.history, opened.prompts, opened.suite.path)
    clients = _role_clients(opened)
    try:
        await _check_models(clients, opened, ("learner", "judge"))
        return await run(
            _counted(clients, opened, progress, simulate=True),
            opened.personas,
            opened.modules,
            roles=opened.roles,
            prompts=opened.prompts,
            config=opened.config,
            prices=opened.prices(),
            progress=progress,
        )
    finally:
        await close_clients(clients, opened.config.run_dir)


async def execute_regrade(opened: OpenedRun, progress: RunProgress | None = None) -> RunOutcome:
    """Grade the run's saved transcripts again with the judge role of `opened` (its calls are kept
    in the run's call store too, but not replayed: a re-grade asks the judge again)."""
    clients = _role_clients(opened, replay_calls=False)
    try:
        await _check_models(clients, opened, ("judge",))
        return await regrade(
            opened.config.run_dir,
            _counted(clients, opened, progress, simulate=False),
            roles=opened.roles,
            prompts=opened.prompts,
            config=opened.config,
            prices=opened.prices(),
            progress=progress,
        )
    finally:
        await close_clients(clients, opened.config.run_dir)


def _role_clients(opened: OpenedRun, replay_calls: bool = True) -> RoleClients:
    calls_dir = opened.config.run_dir / CALLS_DIR
    return build_role_clients(
        opened.roles, calls_dir=calls_dir, replay_calls=replay_calls, check_models=model_checks_enabled()
    )


async def _check_models(clients: RoleClients, opened: OpenedRun, roles: tuple[str, ...]) -> None:
    """In the modes that call the model for every request (live, record), check that the endpoint
    serves each role's model before anything is written (auto may need no call at all: its first
    live call checks)."""
    if opened.roles.learner.mode not in ("live", "record"):
        return
    for role in roles:
        settings, flag = getattr(opened.roles, role), "--model" if role == "learner" else "--judge-model"
        await check_model_now(getattr(clients, role), settings.model, settings.timeout_s, flag)


async def close_clients(clients: RoleClients, run_dir: Path) -> None:
    """Note the recordings this run used (`used_keys.txt`, for `recordings prune`), then close."""
    try:
        if clients.recording_clients() and run_dir.is_dir():
            atomic_write_text(run_dir / USED_KEYS, "".join(f"{key}\n" for key in sorted(clients.used_keys())))
    finally:
        await clients.aclose()


def note_recordings(opened: OpenedRun, outcome: RunOutcome) -> Path | None:
    """After a complete recording run of a whole suite, note what produced the recordings."""
    suite = opened.suite
    if suite is None or outcome.failed or opened.roles.learner.mode not in ("record", "auto"):
        return None
    if len(opened.personas) != len(suite.load_personas()):
        return None
    return write_recorded_with(opened.roles, opened.backend_info, opened.config.history, opened.prompts, suite.name)


def evaluate_suite(path: str | Path, out_dir: Path, run_id: str, **given_run: Any) -> tuple[RunOutcome, list[str]]:
    """Run a suite (replay by default) through the same path as `run`, then check its thresholds:
    (outcome, the thresholds missed). `given_run`: `mode`, `backend` as flags would give them."""
    import asyncio

    suite = load_suite(path)
    learner = {"mode": given_run.pop("mode", None)}
    config = resolve_run(Given(learner=learner, run=given_run, suite=suite), run_id=run_id, out_dir=out_dir)
    personas, modules = load_inputs(suite, None, None)
    with open_run(config, personas, modules, suite=suite) as opened:
        outcome = asyncio.run(execute(opened))
    return outcome, check_thresholds(outcome.frame, suite.thresholds, failed_units=len(outcome.failed))
