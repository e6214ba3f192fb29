"""Batch runs: the walkthroughs in step-synchronous rounds.

Each pass runs the ordinary pipeline over the run's call store: every unfinished unit goes on until
its first call with no answer yet (a conversation's next step, all the judge calls of a finished
transcript, a re-ask), and those calls become the next round, one JSONL file per endpoint and model,
answered by an engine (`llm/batch/engine.py`). The answers are kept as live calls are (`RUN/calls/`,
and the recordings in record/auto mode), and the next pass replays them. A pass with nothing left
to ask writes the table. A failed line, an expired or failed batch sends its requests again in the
next round, up to `max_attempts` rounds. Everything needed to go on lives in the run folder
(`batch/state.json`, the round files, `calls/`): a detached run is picked up by `run --resume RUN`
or `batch collect RUN` in another process, on another day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from personasim.errors import InputError
from personasim.llm.batch.engine import Engine, make_engine
from personasim.llm.batch.lines import PendingRequest
from personasim.llm.batch.round_client import RoundClient
from personasim.llm.batch.rounds import (
    batch_dir,
    collect_round,
    load_state,
    now,
    round_answers,
    save_state,
    write_round,
)
from personasim.llm.batch.types import BatchSettings, BatchState, Round
from personasim.llm.call_store import CALLS_DIR, CallStore
from personasim.llm.replay import Recording, RecordingClient
from personasim.llm.roles import RoleClients
from personasim.llm.settings import LLMSettings
from personasim.llm.types import ChatClient
from personasim.run.config import RunConfig
from personasim.run.finalize import RunOutcome, finalize
from personasim.run.runner import Pass, run_pass
from personasim.run.session import OpenedRun, close_clients


class BatchProgress(Protocol):
    def batch_event(self, message: str) -> None: ...


class _Quiet:
    def batch_event(self, message: str) -> None:
        return None


@dataclass
class Detached:
    """A batch run left to its engine: the round under way and how to pick it up."""

    run_dir: Path
    round: Round


def check_batch_config(config: RunConfig) -> None:
    """Refuse, before anything starts, a batch run that could not send a round."""
    if config.batch is None:
        return
    if config.learner_settings().mode == "replay":
        raise InputError(None, None, "--batch sends calls to an engine, and replay mode makes none: drop --batch, "
                                     "or use --mode live, record or auto")  # fmt: skip
    if config.backend.startswith("local"):
        raise InputError(None, None, "--batch needs an endpoint with a Batch API (--batch openai) or a program that "
                                     "maps batch files (--batch command); a --backend local server answers live")  # fmt: skip


def batch_settings(opened: OpenedRun) -> BatchSettings:
    settings = _batch_of(opened.config)
    check_batch_config(opened.config)
    return settings


async def execute_batch(
    opened: OpenedRun, progress: BatchProgress | None = None, *, detach: bool = False
) -> RunOutcome | Detached:
    """Rounds until every unit is finished or failed (`detach`: until a round is under way)."""
    settings, progress = batch_settings(opened), progress or _Quiet()
    run_dir = opened.config.run_dir
    state = load_state(run_dir, settings.engine)
    if state.engine != settings.engine:
        raise InputError(batch_dir(run_dir), None, f"this run's rounds went to the {state.engine} engine; "
                                                   f"resume it with --batch {state.engine}")  # fmt: skip
    roles = {"learner": opened.roles.learner, "judge": opened.roles.judge}
    engine = make_engine(settings, roles)
    config = opened.config.model_copy(update={"sequential": False})  # a round takes every call that can go
    memo = _Memo()  # what the passes share: kept calls read once, recordings used and made
    _retry_after_the_end(run_dir, state, settings)
    given_up: set[str] = set()  # units that failed in this process's passes: the later passes leave them
    try:
        while True:
            under_way = state.open_round()
            if under_way is not None:
                if not await _advance(engine, run_dir, state, under_way, settings, progress, wait=not detach):
                    return Detached(run_dir, under_way)
                answers, unanswered = collect_round(run_dir, state, under_way)
                progress.batch_event(f"round {under_way.index}: {len(answers)} answered, {unanswered} to send again")
            else:  # collected by an earlier process (or nothing sent yet)
                answers = round_answers(run_dir, state.last_collected())
            done, pending = await _pass(opened, config, state, answers, settings, memo, given_up)
            config = config.model_copy(update={"resume": True})
            given_up |= {record.unit_id for record in done.records if record.status == "failed"}
            if not pending:
                break
            written = write_round(run_dir, state, pending, settings, roles)
            progress.batch_event(_written_line(written, done.pending))
    finally:
        await engine.aclose()
    return _finish(opened, config, state, done, settings)


async def _pass(
    opened: OpenedRun, config: RunConfig, state: BatchState, answers: dict[str, dict[str, Any]],
    settings: BatchSettings, memo: _Memo, given_up: set[str],
) -> tuple[Pass, dict[str, PendingRequest]]:  # fmt: skip
    """The pipeline over the kept calls and the round just collected: (the pass, the calls it waits for)."""
    pending: dict[str, PendingRequest] = {}
    clients = _round_clients(opened, state, answers, pending, settings, memo)
    try:
        done = await run_pass(clients, opened.personas, opened.modules, roles=opened.roles, prompts=opened.prompts,
                              config=config, skip=given_up)  # fmt: skip
    finally:
        await close_clients(clients, opened.config.run_dir)
    return done, pending


def _retry_after_the_end(run_dir: Path, state: BatchState, settings: BatchSettings) -> None:
    """Resuming a batch run that ended retries its failed units, as a live run's resume does: the
    requests that failed in every round they were sent in get their rounds again. (A run still
    under way keeps counting, so that a detached run's resumes do not resend a bad request forever.)"""
    if state.finished_at is None:
        return
    state.attempts = {key: n for key, n in state.attempts.items() if n < settings.max_attempts}
    state.finished_at = None
    save_state(run_dir, state)


def _written_line(round_: Round, units: int) -> str:
    roles = ", ".join(f"{n} {role}" for role, n in sorted(round_.by_role.items()))
    files = len(round_.submissions)
    return f"round {round_.index}: {round_.requests} requests ({roles}) from {units} units in {files} file(s)"


async def _advance(
    engine: Engine, run_dir: Path, state: BatchState, round_: Round, settings: BatchSettings,
    progress: BatchProgress, *, wait: bool,
) -> bool:  # fmt: skip
    """Send what of the round is unsent, then poll until it is finished (`wait`) or once. True when
    every submission of the round has finished."""
    folder = batch_dir(run_dir) / round_.folder
    metadata = {"personasim_run": run_dir.name, "round": str(round_.index)}

    def save() -> None:
        save_state(run_dir, state)

    unsent = [s for s in round_.submissions if s.batch_id is None and not s.finished]  # a crash may leave some
    await asyncio.gather(*(engine.submit(folder, s, metadata, save) for s in unsent))
    save()
    clock = time.monotonic()
    while True:
        await asyncio.gather(*(engine.refresh(folder, s) for s in round_.submissions if not s.finished))
        round_.waited_s = round(round_.waited_s + time.monotonic() - clock, 3)
        clock = time.monotonic()
        save()
        if round_.finished or not wait:
            return round_.finished
        done = sum(s.completed for s in round_.submissions)
        progress.batch_event(f"round {round_.index}: {done} of {round_.requests} requests done, "
                             f"waited {round_.waited_s:.0f} s")  # fmt: skip
        await asyncio.sleep(settings.poll_s)


@dataclass
class _Memo:
    """Shared by a batch run's passes: the kept calls once read, and the recordings' keys used (for
    `used_keys.txt`, over all passes) and made (record mode records each request once)."""

    calls: dict[str, Recording] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    recorded: set[str] = field(default_factory=set)


def _round_clients(
    opened: OpenedRun,
    state: BatchState,
    answers: dict[str, dict[str, Any]],
    pending: dict[str, PendingRequest],
    settings: BatchSettings,
    memo: _Memo,
) -> RoleClients:
    """Each role's client for one pass: recordings (record/auto) over the call store (which replays
    every kept answer, so that re-asks happen) over the round's answers."""
    run_dir = opened.config.run_dir
    last = state.last_collected()
    latency = last.waited_s if last else 0.0

    def client(role: str, role_settings: LLMSettings) -> ChatClient:
        inner: ChatClient = RoundClient(role, role_settings, answers, state, pending, latency, settings.max_attempts)
        inner = CallStore(inner, run_dir / CALLS_DIR, replay_all=True, memo=memo.calls)
        if role_settings.mode in ("record", "auto") and role_settings.recordings_dir is not None:
            inner = RecordingClient(inner, role_settings.recordings_dir, role_settings.mode, used_keys=memo.used,
                                    recorded=memo.recorded)  # fmt: skip
        return inner

    return RoleClients(client("learner", opened.roles.learner), client("judge", opened.roles.judge))


def _finish(opened: OpenedRun, config: RunConfig, state: BatchState, done: Pass, settings: BatchSettings) -> RunOutcome:
    """The table at batch prices, and in the manifest what the same calls cost live."""
    prices = opened.prices()
    summary = {"engine": settings.engine, "rounds": len(state.rounds),
               "requests": sum(r.requests for r in state.rounds),
               "resent": sum(state.attempts.values())}  # fmt: skip
    outcome = finalize(done.paths, done.units, opened.roles, opened.prompts, config,
                       prices.batch_prices() if prices else None, done.started, done.duration_s,
                       saved=done.saved, batch=summary, live_prices=prices)  # fmt: skip
    state.finished_at = now()
    save_state(config.run_dir, state)
    return outcome


def _batch_of(config: RunConfig) -> BatchSettings:
    if config.batch is None:
        raise InputError(None, None, "this run is not a batch run (it was started without --batch)")
    return config.batch


@asynccontextmanager
async def _engine_for(config: RunConfig) -> AsyncIterator[Engine]:
    """The run's engine, for a command outside the rounds (status, cancel); closed afterwards."""
    roles = config.roles()
    engine = make_engine(_batch_of(config), {"learner": roles.learner, "judge": roles.judge})
    try:
        yield engine
    finally:
        await engine.aclose()


async def refresh_round(config: RunConfig) -> None:
    """Ask the engine where the round under way stands, and note it (nothing collected, nothing sent)."""
    state = load_state(config.run_dir, _batch_of(config).engine)
    round_ = state.open_round()
    if round_ is None:
        return
    async with _engine_for(config) as engine:
        folder = batch_dir(config.run_dir) / round_.folder
        for submission in round_.submissions:
            if submission.under_way:
                await engine.refresh(folder, submission)
        save_state(config.run_dir, state)


async def cancel_round(config: RunConfig, index: int | None = None) -> int:
    """Cancel the submitted batches of round `index` (default: the round under way); how many."""
    state = load_state(config.run_dir, _batch_of(config).engine)
    round_ = state.open_round() if index is None else next((r for r in state.rounds if r.index == index), None)
    if round_ is None:
        raise InputError(
            batch_dir(config.run_dir), None, "no round under way" if index is None else f"no round {index}"
        )
    cancelled = 0
    async with _engine_for(config) as engine:
        for submission in round_.submissions:
            if submission.under_way:
                await engine.cancel(submission)
                cancelled += 1
                save_state(config.run_dir, state)
    return cancelled
