"""What run-like commands show on the terminal: the progress bar, the summary table, the health
verdict, both model roles and what to do when units failed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from personasim.cli.common import console, err_console

if TYPE_CHECKING:
    from personasim.run.runner import RunOutcome
    from personasim.run.session import OpenedRun
    from personasim.run.state import UnitRecord


def progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=False)


class Bar:
    """RunProgress drawn as a rich bar (and as plain lines when stderr is not a terminal)."""

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
            self._say(f"unit {done}/{todo} finished: {record.unit_id} ({clock(task.elapsed or 0.0)} elapsed)")

    def _say(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def say(line: str, **style: Any) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True, **style)


def announce(opened: OpenedRun) -> None:
    """Both roles and where they run, before the first call."""
    learner, judge = opened.roles.learner, opened.roles.judge
    where = opened.backend_info.get("backend", "openai")
    line = f"learner {learner.model} via {where}, mode {learner.mode}"
    if not opened.roles.shared_client or judge.model != learner.model:
        line += f"; judge {judge.model}" + (f" at {judge.base_url}" if judge.base_url != learner.base_url else "")
    if learner.recordings_dir:
        line += f", recordings {learner.recordings_dir}"
    say(line)


def print_outcome(outcome: RunOutcome) -> None:
    from personasim.analysis.results import summary
    from personasim.llm.costs import format_cost

    frame, manifest = outcome.frame, outcome.manifest
    by = ("persona_id",) if frame["module_version"].nunique() <= 1 else ("persona_id", "module_version")
    if frame["module_id"].nunique() > 1:
        by = ("persona_id", "module_id", "module_version")
    console.print(summary_table(summary(frame, by), by))
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
    print_health(manifest)
    console.print(f"results: {outcome.run_dir}", highlight=False, markup=False, soft_wrap=True)


def print_health(manifest: Any) -> None:
    """The health verdict, loud when the simulations look degenerate: a weak model's table is no evidence."""
    health = manifest.health or {}
    source = "recordings" if manifest.settings.get("mode") == "replay" else manifest.settings.get("mode")
    judge = manifest.judge_model or manifest.model
    roles = f"learner {manifest.model}" + (f", judge {judge}" if judge != manifest.model else " (also the judge)")
    console.print(f"answers by {roles} ({source})", markup=False, highlight=False)
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


def short_id(value: object) -> str:
    """`p17-assistant-director-of-finance` -> `p17` (the full ids are in the results table)."""
    text = str(value)
    head = text.split("-", 1)[0]
    return head if head[:1] == "p" and head[1:].isdigit() else text


def summary_table(table: Any, by: tuple[str, ...]) -> Table:
    """`table` is results.summary()'s DataFrame (pandas stays out of the CLI)."""
    out = Table(title="mean score (1-5) by lens", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in by:
        out.add_column(_SHORT.get(name, name), no_wrap=True)
    for lens in table.columns:
        out.add_column(_SHORT.get(str(lens), str(lens)), justify="right", no_wrap=True)
    for key, row in table.iterrows():
        keys = [short_id(k) for k in (key if isinstance(key, tuple) else (key,))]
        out.add_row(*keys, *("-" if math.isnan(v) else f"{v:.1f}" for v in row))
    return out


def finish(outcome: RunOutcome, run_id: str, out: Path) -> None:
    print_outcome(outcome)
    if outcome.failed:
        say(f"{len(outcome.failed)} units failed; retry them with: personasim run --resume {run_id} --out {out}")
        raise typer.Exit(1)
