"""`personasim batch status|collect|cancel RUN`, and how `run --batch` drives its rounds here (thin:
the rounds are run/batch_run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from personasim.cli.common import default, guarded, print_json
from personasim.cli.output import say

app = typer.Typer(
    help="Batch runs: see where a run's rounds stand, collect them, or cancel them.", no_args_is_help=True
)
OutOpt = typer.Option(Path("results"), "--out", help="Folder that holds run folders")
ENGINES = ("openai", "command")


def batch_flags(engine: str | None, command: str | None, shards: int | None, poll_s: float | None,
                detach: bool) -> dict[str, Any] | None:  # fmt: skip
    """The `batch` run setting the flags give (None: not a batch run, or as the resumed run was)."""
    from personasim.llm.batch.engine import check_command
    from personasim.llm.batch.types import BatchSettings

    if engine is None:
        for flag, value in (("--batch-command", command), ("--batch-shards", shards), ("--batch-poll", poll_s)):
            if value is not None:
                raise typer.BadParameter(f"{flag} configures a batch run: give --batch too")
        return None
    if engine not in ENGINES:
        raise typer.BadParameter(f"--batch is openai or command, not {engine!r}")
    if engine == "command":
        check_command(command)
        if detach:
            raise typer.BadParameter("--detach leaves a round with a Batch API; a --batch command runs here and "
                                     "now: drop --detach")  # fmt: skip
    elif command is not None:
        raise typer.BadParameter("--batch-command runs with --batch command, not --batch openai")
    given = {"engine": engine, "command": command, "shards": shards, "poll_s": poll_s}
    return BatchSettings(**{k: v for k, v in given.items() if v is not None}).model_dump()


class _Lines:
    """Round events as lines on stderr."""

    def batch_event(self, message: str) -> None:
        say(message)


def run_batch(opened: Any, *, detach: bool, out: Path) -> Any:
    """Run `opened` in batch rounds; a detached run prints where it stands and how to go on."""
    import asyncio

    from personasim.run.batch_run import Detached, execute_batch

    run_id = opened.config.run_id
    try:
        outcome = asyncio.run(execute_batch(opened, _Lines(), detach=detach))
    except KeyboardInterrupt:
        say(f"interrupted; what was submitted goes on, and nothing collected is lost: "
            f"personasim run --resume {run_id} --out {out}")  # fmt: skip
        raise typer.Exit(130) from None
    if isinstance(outcome, Detached):
        say(f"round {outcome.round.index} submitted ({outcome.round.requests} requests); see it with: "
            f"personasim batch status {run_id} --out {out}")  # fmt: skip
        say(f"when it is done, go on with: personasim run --resume {run_id} --out {out} (or batch collect)")
    return outcome


def _run_dir(run_ref: str, out: Path) -> Path:
    from personasim.errors import InputError

    run_dir = Path(run_ref) if Path(run_ref).is_dir() else out / run_ref
    if not (run_dir / "batch").is_dir():
        raise InputError(run_dir, None, "no batch rounds here (a run started with --batch has a batch/ folder)")
    return run_dir


@app.command("status")
@guarded
def status_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id (under --out) or run folder"),
    out: Path = OutOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON"),
    refresh: bool = typer.Option(True, "--refresh/--no-refresh", help="Ask the engine first where the round under way stands" + default("ask")),
) -> None:  # fmt: skip
    """Rounds, batch ids, request counts and states of a batch run."""
    import asyncio

    from rich.console import Console

    from personasim.cli.tables import Col, print_table
    from personasim.llm.batch.rounds import describe, load_state
    from personasim.run.batch_run import refresh_round
    from personasim.run.config import Given, resolve_run
    from personasim.run.state import read_run_config

    run_dir = _run_dir(run_ref, out)
    if refresh:
        config = resolve_run(Given(resumed=read_run_config(run_dir)), run_id=run_dir.name, out_dir=run_dir.parent)
        asyncio.run(refresh_round(config))
    state = load_state(run_dir, "openai")
    rows = describe(state)
    if as_json:
        print_json({"engine": state.engine, "finished_at": state.finished_at, "submissions": rows})
        return
    # The file's name (endpoint, model, part) is in --json; here its part, so that 80 columns hold a row.
    cols = [Col("round", True, "right"), Col("part", True, "right"), Col("requests", True, "right"),
            Col("batch", True), Col("state", True), Col("done", True, "right"), Col("failed", True, "right"),
            Col("error")]  # fmt: skip
    keys = ("round", "part", "requests", "batch_id", "state", "completed", "failed", "error")
    print_table(Console(), cols, [[row[k] for k in keys] for row in rows], title=f"batch run {run_dir.name}")
    if state.finished_at:
        say(f"finished {state.finished_at}; results in {run_dir}")
    else:
        say(f"not finished: personasim run --resume {run_dir.name} --out {run_dir.parent} (or batch collect)")


@app.command("collect")
@guarded
def collect_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id (under --out) or run folder"),
    out: Path = OutOpt,
    wait: bool = typer.Option(False, "--wait/--no-wait", help="Wait for the rounds to finish instead of leaving them"),
) -> None:
    """Download what is done and submit the next round (as `run --resume RUN --detach`)."""
    from personasim.cli.output import finish
    from personasim.run.config import Given, resolve_run
    from personasim.run.session import open_run
    from personasim.run.state import read_run_config

    run_dir = _run_dir(run_ref, out)
    saved = read_run_config(run_dir)
    config = resolve_run(Given(resumed=saved), run_id=run_dir.name, out_dir=run_dir.parent, resume=True)
    with open_run(config, [], []) as opened:
        outcome = run_batch(opened, detach=not wait, out=run_dir.parent)
    if not _detached(outcome):
        finish(outcome, config.run_id, run_dir.parent)


def _detached(outcome: Any) -> bool:
    from personasim.run.batch_run import Detached

    return isinstance(outcome, Detached)


@app.command("cancel")
@guarded
def cancel_cmd(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id (under --out) or run folder"),
    out: Path = OutOpt,
    round_index: Optional[int] = typer.Option(None, "--round", help="Only this round" + default("the round under way")),
) -> None:
    """Cancel the batches of the round under way (their requests go into the next round on resume)."""
    import asyncio

    from personasim.run.batch_run import cancel_round
    from personasim.run.config import Given, resolve_run
    from personasim.run.state import read_run_config

    run_dir = _run_dir(run_ref, out)
    config = resolve_run(Given(resumed=read_run_config(run_dir)), run_id=run_dir.name, out_dir=run_dir.parent)
    cancelled = asyncio.run(cancel_round(config, round_index))
    say(f"cancelled {cancelled} batch(es); resume with: personasim run --resume {run_dir.name} --out {run_dir.parent}")


def print_dry_run(config: Any, personas: list[Any], modules: list[Any]) -> None:
    """`run --dry-run`: the planned calls, rounds, tokens and cost; nothing is called or written."""
    from personasim.cli.output import format_cost_line
    from personasim.prompts import Prompts
    from personasim.run.dry_run import ASSUMED_ANSWER_TOKENS, estimate_run
    from personasim.run.state import inputs_or_snapshot

    personas, modules = inputs_or_snapshot(config.run_dir, personas, modules)
    estimate = estimate_run(config, personas, modules, Prompts(config.prompts_dir))
    tokens = {role: estimate.prompt_tokens[role] + estimate.completion_tokens[role] for role in ("learner", "judge")}
    say(
        f"planned: {estimate.units} units, {estimate.total_calls} calls ({estimate.calls['learner']} learner, "
        f"{estimate.calls['judge']} judge); as a batch run, {estimate.rounds} rounds (plus one per wave of re-asks)"
    )
    say(f"estimated tokens: learner ~{estimate.prompt_tokens['learner']:,} prompt + "
        f"~{estimate.completion_tokens['learner']:,} completion, judge ~{estimate.prompt_tokens['judge']:,} prompt + "
        f"~{estimate.completion_tokens['judge']:,} completion (~{sum(tokens.values()):,} in all; answers assumed "
        f"~{ASSUMED_ANSWER_TOKENS['learner']} learner / ~{ASSUMED_ANSWER_TOKENS['judge']} judge tokens, "
        "4 characters a token)")  # fmt: skip
    say(format_cost_line(estimate.cost_live, estimate.cost_batch, config.learner_settings().price_table))
    say("nothing was called or written (--dry-run)")
