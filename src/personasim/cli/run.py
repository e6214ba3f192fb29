"""`personasim run`, `personasim grade RUN` and `personasim criteria show PERSONA` (thin: the work
is in runner.py, grading.py and criteria.py)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from personasim.analysis.results import summary
from personasim.cli import llm_options as lo
from personasim.cli.common import console, err_console, guarded, print_json
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module_loader import load_module, load_modules
from personasim.inputs.persona_parser import find_persona, load_personas
from personasim.llm.backend import BACKENDS_HELP, open_backend
from personasim.llm.clients import build_client
from personasim.llm.costs import PriceTable, format_cost
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings, read_settings_file
from personasim.llm.types import ChatClient
from personasim.prompts import Prompts
from personasim.run.runner import RunConfig, RunOutcome, RunProgress, new_run_id, regrade, run
from personasim.run.state import UnitRecord, fork_run, run_defaults
from personasim.run.suite import SuiteRun, check_recordings_current, load_suite, open_suite_run, write_recorded_with

criteria_app = typer.Typer(help="Show the evaluation criteria derived from a persona.", no_args_is_help=True)
T = TypeVar("T")
USED_KEYS = "used_keys.txt"

PromptsOpt = typer.Option(None, "--prompts", help="Prompt templates folder (default: ./prompts, else the package's).")
OutOpt = typer.Option(Path("results"), "--out", help="Folder that holds run folders.")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("grade")(grade_cmd)
    app.add_typer(criteria_app, name="criteria")


class _Bar(RunProgress):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("units", total=None)

    def planned(self, todo: int, skipped: int) -> None:
        note = f" ({skipped} already finished)" if skipped else ""
        self.progress.update(self.task, total=todo, description=f"units{note}")

    def unit_done(self, record: UnitRecord) -> None:
        self.progress.advance(self.task)
        if record.status == "failed":
            self._say(f"failed: {record.unit_id}: {record.error}")
        elif not self.progress.console.is_terminal:
            # A log file gets no live bar, and a unit on a CPU model can take half an hour.
            task = next(task for task in self.progress.tasks if task.id == self.task)
            done, todo = int(task.completed), int(task.total or 0)
            self._say(f"unit {done}/{todo} finished: {record.unit_id} ({_clock(task.elapsed or 0.0)} elapsed)")

    def _say(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _with_progress(work: Callable[[ChatClient, RunProgress], Awaitable[T]], settings: LLMSettings,
                   used_keys: Path | None = None) -> T:  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    async def main() -> T:
        client = build_client(settings)
        try:
            with Progress(*columns, console=err_console, transient=False) as progress:
                return await work(client, _Bar(progress))
        finally:
            if used_keys is not None and isinstance(client, RecordingClient):
                client.write_used_keys(used_keys)  # what `personasim recordings prune --used` reads
            await client.aclose()

    return asyncio.run(main())


def _settings(run_dir: Path | None, config: Path | None, **flags: object) -> LLMSettings:
    """Flags over the config file over, for an existing run, the settings it was run with."""
    if run_dir is None:
        return lo.llm_settings(config=config, **flags)  # type: ignore[arg-type]
    _, as_run = run_defaults(run_dir)
    from_file = read_settings_file(config) if config else {}
    given = {k: v for k, v in flags.items() if v is not None}
    return LLMSettings.from_mapping({**as_run, **from_file, **given}, source=config)


def _prices(settings: LLMSettings) -> PriceTable | None:
    return PriceTable.from_file(settings.price_table) if settings.price_table else None


def _print_outcome(outcome: RunOutcome) -> None:
    frame, manifest = outcome.frame, outcome.manifest
    by = ("persona_id",) if frame["module_version"].nunique() <= 1 else ("persona_id", "module_version")
    if frame["module_id"].nunique() > 1:
        by = ("persona_id", "module_id", "module_version")
    console.print(_summary_table(summary(frame, by), by))
    statuses = list(manifest.units.values())
    usage = manifest.usage["total"]
    console.print(
        f"{statuses.count('finished')} units finished, {statuses.count('failed')} failed, "
        f"{outcome.skipped} reused; {len(frame)} rows; "
        f"{usage['prompt_tokens']} prompt ({usage['cached_tokens']} cached) + {usage['completion_tokens']} "
        f"completion tokens; cost {format_cost(manifest.cost_usd)}",
        highlight=False,
    )
    flagged = int(frame["flags"].fillna("[]").ne("[]").sum()) if len(frame) else 0
    if flagged:
        console.print(f"{flagged} rows flagged (unverified evidence, disagreeing judges, ...): see the `flags` column")
    _print_health(manifest)
    console.print(f"results: {outcome.run_dir}", highlight=False, markup=False, soft_wrap=True)


def _print_health(manifest: Any) -> None:
    """The health verdict, loud when the simulations look degenerate: a weak model's table is no evidence."""
    health = manifest.health or {}
    source = "recordings" if manifest.settings.get("mode") == "replay" else manifest.settings.get("mode")
    console.print(f"answers by model {manifest.model} ({source})", markup=False, highlight=False)
    verdict = health.get("verdict", "no health verdict")
    style = "green" if health.get("healthy") else "bold red"
    console.print(f"health: {verdict}", style=style, markup=False, highlight=False, soft_wrap=True)


_SHORT = {  # narrow headers so the lens columns fit an 80-column terminal
    "persona_id": "persona",
    "module_version": "ver",
    "module_id": "module",
    "misunderstandings": "misund",
    "competencies": "compet",
    "difference": "differ",
    "inclusion": "inclus",
    "transformational": "trans",
}


def _short_id(value: object) -> str:
    """`p17-assistant-director-of-finance` -> `p17` (the full ids are in the results table)."""
    text = str(value)
    head = text.split("-", 1)[0]
    return head if head[:1] == "p" and head[1:].isdigit() else text


def _summary_table(table: Any, by: tuple[str, ...]) -> Table:
    """`table` is results.summary()'s DataFrame (pandas stays out of the CLI)."""
    out = Table(title="mean score (1-5) by lens", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in by:
        out.add_column(_SHORT.get(name, name), no_wrap=True)
    for lens in table.columns:
        out.add_column(_SHORT.get(str(lens), str(lens)), justify="right", no_wrap=True)
    for key, row in table.iterrows():
        keys = [_short_id(k) for k in (key if isinstance(key, tuple) else (key,))]
        out.add_row(*keys, *("-" if math.isnan(v) else f"{v:.1f}" for v in row))
    return out


def _finish(outcome: RunOutcome, run_id: str, out: Path) -> None:
    _print_outcome(outcome)
    if outcome.failed:
        err_console.print(
            f"{len(outcome.failed)} units failed; retry them with: personasim run --resume {run_id} --out {out}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)


@guarded
def run_cmd(
    suite: Optional[Path] = typer.Option(None, "--suite", help="Run an eval suite (evals/*.yaml): its personas, modules, settings and recordings."),
    module: Optional[list[Path]] = typer.Option(None, "--module", help="Module version file or folder (repeatable)."),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona file or folder (repeatable)."),
    only: Optional[list[str]] = typer.Option(None, "--persona", help="With --suite: only this persona id or number (repeatable)."),
    backend: Optional[str] = typer.Option(None, "--backend", help=f"Where the model runs: {BACKENDS_HELP} [default: openai, or the suite's]."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Conversations per persona x module version [default: 1, or as the resumed run]."),
    judge_samples: Optional[int] = typer.Option(None, "--judge-samples", min=1, help="Judge repeats per criterion [default: 1, or as the resumed run]."),
    history: Optional[str] = typer.Option(None, "--history", help="full: every step's text stays in the conversation; recap: answered steps shrink to one line [default: full, or the suite's]."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Name of the run folder (default: timestamp)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish run RUN: skip its finished units."),
    out: Path = OutOpt,
    sequential: Optional[bool] = typer.Option(
        None, "--sequential/--concurrent",
        help="One conversation (and its grading) at a time: best for a local llama.cpp server [default: concurrent; sequential for local backends].",
    ),
    prompts_dir: Optional[Path] = PromptsOpt,
    config: lo.ConfigOpt = None, base_url: lo.BaseUrlOpt = None, model: lo.ModelOpt = None,
    mode: lo.ModeOpt = None, concurrency: lo.ConcurrencyOpt = None, temperature: lo.TemperatureOpt = None,
    seed: lo.SeedOpt = None, max_tokens: lo.MaxTokensOpt = None, recordings_dir: lo.RecordingsDirOpt = None,
) -> None:  # fmt: skip
    """Walk every persona through every module version, grade the transcripts, write results/<run>/.

    With --suite, the suite names everything (flags override it). With --resume RUN, the run's own
    personas, modules and settings are used unless given again."""
    if history not in (None, "full", "recap"):
        raise typer.BadParameter("--history is full or recap")
    flags = dict(base_url=base_url, model=model, mode=mode, concurrency=concurrency, temperature=temperature,
                 seed=seed, max_tokens=max_tokens, recordings_dir=recordings_dir)  # fmt: skip
    the_id = resume or run_id or new_run_id()
    prompts = Prompts(prompts_dir)
    if suite is not None:
        loaded = load_suite(suite)
        from_file = read_settings_file(config) if config else {}  # flags > --config > the suite's llm:
        given = {**from_file, **{k: v for k, v in flags.items() if v is not None}}
        with open_suite_run(loaded, backend=backend, only_personas=only, **given) as plan:
            config_ = RunConfig(
                run_id=the_id, out_dir=out, resume=bool(resume), samples=samples or loaded.samples,
                judge_samples=judge_samples or loaded.judge_samples, history=history or loaded.history,
                sequential=plan.sequential if sequential is None else sequential,
            )  # fmt: skip
            _announce(plan.settings, plan.backend_info)
            check_recordings_current(plan, prompts)
            _run_and_report(plan.settings, plan.personas, plan.modules, prompts, config_,
                            after=lambda outcome: _note_recordings(plan, prompts, outcome))  # fmt: skip
        return
    if not resume and (not module or not personas):
        raise typer.BadParameter("give --suite, or --module and --personas (or --resume RUN)")
    as_run = run_defaults(out / the_id)[0] if resume else {}
    settings = _settings(out / the_id if resume else None, config, **flags)
    loaded_personas = load_personas(personas) if personas else []
    loaded_modules = load_modules(module) if module else []
    with open_backend(backend, settings) as opened:
        config_ = RunConfig(
            run_id=the_id, out_dir=out, resume=bool(resume),
            samples=samples or as_run.get("samples", 1), judge_samples=judge_samples or as_run.get("judge_samples", 1),
            history=history or as_run.get("history", "full"),
            sequential=(opened.sequential or as_run.get("sequential", False)) if sequential is None else sequential,
        )  # fmt: skip
        _announce(opened.settings, opened.description)
        _run_and_report(opened.settings, loaded_personas, loaded_modules, prompts, config_)


def _announce(settings: LLMSettings, backend_info: dict[str, Any]) -> None:
    where = backend_info.get("backend", "openai")
    err_console.print(
        f"model {settings.model} via {where}, mode {settings.mode}"
        + (f", recordings {settings.recordings_dir}" if settings.recordings_dir else ""),
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip


def _note_recordings(plan: SuiteRun, prompts: Prompts, outcome: RunOutcome) -> None:
    """A complete recording run of the whole suite notes what produced the recordings."""
    complete = not outcome.failed and len(plan.personas) == len(plan.suite.load_personas())
    if plan.settings.mode in ("record", "auto") and complete:
        path = write_recorded_with(plan, prompts)
        err_console.print(f"recordings noted in {path}", markup=False, highlight=False)


def _run_and_report(settings: LLMSettings, personas: list[Any], modules: list[Any], prompts: Prompts,
                    config_: RunConfig, after: Callable[[RunOutcome], None] | None = None) -> None:  # fmt: skip
    prices = _prices(settings)
    try:
        outcome = _with_progress(
            lambda client, bar: run(client, personas, modules, settings=settings, prompts=prompts,
                                    config=config_, prices=prices, progress=bar),
            settings, used_keys=config_.run_dir / USED_KEYS,
        )  # fmt: skip
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted; finished units are saved: personasim run --resume {config_.run_id} --out {config_.out_dir}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(130) from None
    if after is not None:
        after(outcome)
    _finish(outcome, config_.run_id, config_.out_dir)


@guarded
def grade_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id (under --out) or run folder."),
    judge_samples: Optional[int] = typer.Option(None, "--judge-samples", min=1, help="Default: as the run."),
    out: Path = OutOpt,
    sequential: Optional[bool] = typer.Option(None, "--sequential/--concurrent", help="Default: as the run."),
    into: Optional[str] = typer.Option(None, "--into", metavar="NEW_RUN",
                                       help="Grade a copy of the run's transcripts as a new run beside it; RUN stays as it was."),
    prompts_dir: Optional[Path] = PromptsOpt,
    config: lo.ConfigOpt = None, base_url: lo.BaseUrlOpt = None, model: lo.ModelOpt = None,
    mode: lo.ModeOpt = None, concurrency: lo.ConcurrencyOpt = None, temperature: lo.TemperatureOpt = None,
    seed: lo.SeedOpt = None, max_tokens: lo.MaxTokensOpt = None, recordings_dir: lo.RecordingsDirOpt = None,
) -> None:  # fmt: skip
    """Re-grade a run's saved transcripts (no new simulation) and rebuild its results table.

    In place by default; --into NEW_RUN keeps RUN and writes the new grades to a copy.
    LLM settings default to the run's own; flags and --config override them."""
    run_dir = Path(run_ref) if Path(run_ref).is_dir() else out / run_ref
    if into:
        run_dir = fork_run(run_dir, into)
    settings = _settings(run_dir, config, base_url=base_url, model=model, mode=mode, concurrency=concurrency,
                         temperature=temperature, seed=seed, max_tokens=max_tokens,
                         recordings_dir=recordings_dir)  # fmt: skip
    prompts, prices = Prompts(prompts_dir), _prices(settings)
    outcome = _with_progress(
        lambda client, bar: regrade(run_dir, client, settings=settings, prompts=prompts, judge_samples=judge_samples,
                                    sequential=sequential, prices=prices, progress=bar),
        settings,
    )  # fmt: skip
    _finish(outcome, outcome.manifest.run_id, run_dir.parent)


@criteria_app.command("show")
@guarded
def criteria_show(
    persona_id: str = typer.Argument(..., metavar="PERSONA", help="Persona id (or its number, e.g. p17)."),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona files or folders (default: personas/)."),
    module: Optional[Path] = typer.Option(None, "--module", help="Module version file the criteria are for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:  # fmt: skip
    """The criteria a persona's transcripts are graded against."""
    persona = find_persona(personas or [Path("personas")], persona_id)
    criteria = derive_criteria(persona, load_module(module) if module else None)
    if as_json:
        print_json([c.model_dump(mode="json") for c in criteria])
        return
    table = Table(title=f"criteria for {persona.id}")
    for name in ("id", "lens", "grader"):
        table.add_column(name, overflow="fold")
    table.add_column("text", overflow="fold", ratio=1, min_width=32)
    for c in criteria:
        table.add_row(c.id, c.lens, c.grader, c.text)
    console.print(table)
