"""`personasim run` and `personasim grade RUN` (thin: the resolver is run/config.py, the path from
there to results run/session.py), and `with_bar`, which runs a run's coroutine under a progress bar
and turns SIGINT and SIGTERM into a clean stop with the resume command."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Optional

import typer

from personasim.cli.common import default, guarded, plural
from personasim.cli.llm_options import LLMFlags, llm_options
from personasim.cli.output import Bar, announce, finish, progress_bar, say
from personasim.llm.backend import BACKENDS_HELP

PromptsOpt = typer.Option(
    None,
    "--prompts",
    help="Prompt templates folder" + default("the templates packaged with personasim, or the suite's"),
)
OutOpt = typer.Option(Path("results"), "--out", help="Folder that holds run folders")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("grade")(grade_cmd)


@guarded
@llm_options
def run_cmd(
    suite: Optional[Path] = typer.Option(None, "--suite", help="Run an eval suite (evals/*.yaml): its personas, modules, settings and recordings" + default("none: give --module and --personas")),
    module: Optional[list[Path]] = typer.Option(None, "--module", help="Module version file or folder (repeatable)" + default("the suite's, or the resumed run's")),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona file or folder (repeatable)" + default("the suite's, or the resumed run's")),
    only: Optional[list[str]] = typer.Option(None, "--persona", help="Only this persona id or number, e.g. p17 (repeatable)" + default("every persona given")),
    backend: Optional[str] = typer.Option(None, "--backend", help=f"Where the learner runs: {BACKENDS_HELP}" + default("openai, or the suite's")),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Conversations per persona x module version" + default("1, or the suite's / the resumed run's")),
    judge_samples: Optional[int] = typer.Option(None, "--judge-samples", min=1, help="Judge repeats per criterion" + default("1, or the suite's / the resumed run's")),
    history: Optional[str] = typer.Option(None, "--history", help="full: every step's text stays in the conversation; recap: answered steps shrink to one line" + default("full, or the suite's / the resumed run's")),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Name of a new run folder" + default("a timestamp")),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN", help="Finish run RUN (under --out): skip its finished units" + default("start a new run")),
    out: Path = OutOpt,
    sequential: Optional[bool] = typer.Option(
        None, "--sequential/--concurrent",
        help="One conversation (and its grading) at a time: best for a local llama.cpp server" + default("concurrent; sequential for local backends"),
    ),
    prompts_dir: Optional[Path] = PromptsOpt,
    strict: bool = typer.Option(False, "--strict", help="Refuse to start when a persona file has warnings (unknown or missing sections)"),
    batch: Optional[str] = typer.Option(None, "--batch", help="Send the calls in rounds of batch files: openai (a Batch API at --base-url) or command (--batch-command)" + default("live calls, or as the resumed run")),
    batch_command: Optional[str] = typer.Option(None, "--batch-command", help="With --batch command: run per round, e.g. 'vllm run-batch -i {input} -o {output} --model {model}' ({shard} too)" + default("none: needed with --batch command")),
    batch_shards: Optional[int] = typer.Option(None, "--batch-shards", min=1, help="Split each round's file into this many pieces, one command each ({shard})" + default("1")),
    batch_poll: Optional[float] = typer.Option(None, "--batch-poll", min=0.01, help="Seconds between polls of a submitted batch" + default("30")),
    detach: bool = typer.Option(False, "--detach", help="With --batch openai: submit the round and exit; go on later with --resume RUN"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the planned calls, rounds, tokens and cost (live and batch), call nothing"),
    *,
    llm: LLMFlags,
) -> None:  # fmt: skip
    """Walk every persona through every module version, grade the transcripts, write results/<run>/.

    With --suite, the suite names everything (flags override it). With --resume RUN, the run's own
    personas, modules and settings are used unless given again."""
    from personasim.cli.batch import batch_flags, print_dry_run, run_batch
    from personasim.fileio import check_writable
    from personasim.run.batch_run import Detached, check_batch_config
    from personasim.run.config import Given, resolve_run
    from personasim.run.runner import new_run_id
    from personasim.run.session import execute, load_inputs, note_recordings, open_run
    from personasim.run.state import read_run_config
    from personasim.run.suite import load_suite

    _check_run_options(suite, module, personas, only, history, run_id, resume, strict)
    batched = batch_flags(batch, batch_command, batch_shards, batch_poll, detach)
    if detach and batched is None and not resume:
        raise typer.BadParameter("--detach leaves a batch round running: give --batch openai too")
    check_writable(out)
    the_id = resume or run_id or new_run_id()
    loaded_suite = load_suite(suite) if suite is not None else None
    given = Given(
        learner=llm.learner,
        judge=llm.judge,
        run=dict(samples=samples, judge_samples=judge_samples, history=history, sequential=sequential,
                 prompts_dir=prompts_dir, backend=backend, batch=batched),
        config_file=llm.config,
        suite=loaded_suite,
        resumed=read_run_config(out / the_id) if resume else None,
    )  # fmt: skip
    config = resolve_run(given, run_id=the_id, out_dir=out, resume=bool(resume))
    inputs = load_inputs(loaded_suite, personas, module, only)
    _warn_personas(personas or (loaded_suite.persona_paths() if loaded_suite else []), inputs[0], strict)
    if dry_run:
        return print_dry_run(config, *inputs)
    if detach and config.batch is None:
        raise typer.BadParameter(f"--detach: run {config.run_id} is not a batch run (it was started without --batch)")
    check_batch_config(config)
    with open_run(config, *inputs, suite=loaded_suite) as opened:
        announce(opened)
        if config.batch is not None:
            outcome = run_batch(opened, detach=detach, out=out)
            if isinstance(outcome, Detached):
                return
        else:
            outcome = with_bar(lambda bar: execute(opened, bar), config.run_id, out)
        path = note_recordings(opened, outcome)
        if path is not None:
            say(f"recordings noted in {path}")
    finish(outcome, config.run_id, out)


def _check_run_options(suite: Path | None, module: list[Path] | None, personas: list[Path] | None, only: list[str] | None,
                       history: str | None, run_id: str | None, resume: str | None, strict: bool) -> None:  # fmt: skip
    """Refuse options that would be ignored, and combinations that name no inputs."""
    if history not in (None, "full", "recap"):
        raise typer.BadParameter(f"--history is full or recap, not {history!r}")
    if suite is None and not resume and (not module or not personas):
        raise typer.BadParameter("give --suite, or --module and --personas (or --resume RUN)")
    if resume and run_id and run_id != resume:
        raise typer.BadParameter(f"--run-id names a new run and --resume an existing one: give --resume {resume} alone")
    for flag, given in (("--persona", only), ("--strict", strict)):
        if given and suite is None and not personas:
            raise typer.BadParameter(f"{flag} works on the personas of --suite or --personas: give one of them too "
                                     "(a resumed run without them reruns its own personas, unchecked)")  # fmt: skip


def _warn_personas(paths: list[Path], loaded: list[Any], strict: bool) -> None:
    """What `personas validate` would say about the personas this run loads; with --strict, refuse."""
    from personasim.errors import InputError
    from personasim.inputs.persona_lint import persona_warnings

    if not paths:
        return
    findings = persona_warnings(paths, loaded)
    for finding in findings:
        say(f"warning: {finding}")
    if findings and strict:
        raise InputError(None, None, f"--strict: {plural(len(findings), 'persona warning')} above; fix them (see "
                                     "`personasim personas validate`) or run without --strict")  # fmt: skip


class Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM while a run is under way. The first cancels the run: the writes
    under way finish (transcripts, grades, unit records, kept calls), every completed call stays in
    the run's call store, and the command exits 128 + the signal's number with the resume command.
    A second exits at once (`os._exit`), after saying so."""

    def __init__(self, resume_hint: str) -> None:
        self.resume_hint = resume_hint
        self.signum: int | None = None
        self.task: Any = None

    def install(self, loop: Any, task: Any) -> None:
        self.task = task
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.received, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
                return

    def received(self, signum: int) -> None:
        if self.signum is not None:
            say(f"interrupted again: quitting at once (the calls that completed are kept): {self.resume_hint}")
            os._exit(128 + signum)
            return
        self.signum = signum
        say("interrupted: finishing the writes under way (interrupt again to quit at once)")
        if self.task is not None:
            self.task.cancel()


def with_bar(work, run_id: str, out: Path):  # type: ignore[no-untyped-def]
    """Run `work(bar)` (a coroutine) under a progress bar; SIGINT or SIGTERM stops it cleanly (see
    `Interrupts`) and says how to resume."""

    import asyncio

    interrupts = Interrupts(f"personasim run --resume {run_id} --out {out}")

    async def main():  # type: ignore[no-untyped-def]
        interrupts.install(asyncio.get_running_loop(), asyncio.current_task())
        with progress_bar() as progress:
            bar = Bar(progress)
            outcome = await work(bar)
            bar.finished()
            return outcome

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and interrupts.signum is None:
            raise
        say(f"interrupted; finished units and completed calls are saved: {interrupts.resume_hint}")
        raise typer.Exit(128 + (interrupts.signum or signal.SIGINT)) from None


@guarded
@llm_options
def grade_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id (under --out) or run folder"),
    judge_samples: Optional[int] = typer.Option(None, "--judge-samples", min=1, help="Judge repeats per criterion" + default("as the run")),
    out: Path = OutOpt,
    sequential: Optional[bool] = typer.Option(None, "--sequential/--concurrent", help="Grade one unit at a time, its judge calls one after another (best for a local server)" + default("as the run")),
    into: Optional[str] = typer.Option(None, "--into", metavar="NEW_RUN",
                                       help="Grade a copy of the run's transcripts as a new run beside it; RUN stays as it was" + default("grade RUN in place")),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts", help="Prompt templates folder" + default("the run's")),
    *,
    llm: LLMFlags,
) -> None:  # fmt: skip
    """Re-grade a run's saved transcripts (no new simulation) and rebuild its results table.

    In place by default; --into NEW_RUN keeps RUN and writes the new grades to a copy.
    Both roles default to the run's own; --judge-* flags (or a config file's `judge:` block) set another judge."""
    from personasim.fileio import check_writable
    from personasim.run.config import Given, resolve_run
    from personasim.run.session import execute_regrade, open_run
    from personasim.run.state import fork_run, read_run_config

    run_dir = Path(run_ref) if Path(run_ref).is_dir() else out / run_ref
    check_writable(run_dir.parent if into else run_dir)
    if into:
        run_dir = fork_run(run_dir, into)
    given = Given(
        learner=llm.learner,
        judge=llm.judge,
        run=dict(judge_samples=judge_samples, sequential=sequential, prompts_dir=prompts_dir),
        config_file=llm.config,
        resumed=read_run_config(run_dir),
    )
    config = resolve_run(given, run_id=run_dir.name, out_dir=run_dir.parent)
    with open_run(config, [], []) as opened:
        announce(opened)
        outcome = with_bar(lambda bar: execute_regrade(opened, bar), config.run_id, run_dir.parent)
    finish(outcome, outcome.manifest.run_id, run_dir.parent)
