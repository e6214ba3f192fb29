"""What run-like commands show on the terminal: the progress bars (units and LLM calls), the summary
table with its legend, the health verdict, both model roles, and what to do next (the report and
compare commands, or the resume command when units failed)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from personasim.cli.common import console, echo, err_console, plural
from personasim.cli.tables import Col, print_table
from personasim.inputs.module_loader import version_key

if TYPE_CHECKING:
    from personasim.run.runner import RunOutcome
    from personasim.run.session import OpenedRun
    from personasim.run.state import UnitRecord


def progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"))  # fmt: skip
    return Progress(*columns, console=err_console, transient=False)


class Bar:
    """RunProgress drawn as rich bars, one for units and one for LLM calls (and as plain lines when
    stderr is not a terminal: one per finished unit, and one a minute while calls go on)."""

    LOG_EVERY_S = 60.0

    def __init__(self, progress: Progress, now: Callable[[], float] = time.monotonic) -> None:
        self.progress, self.now = progress, now
        self.task = progress.add_task("units", total=None)
        self.calls_task = progress.add_task("calls", total=None, visible=False)  # shown once calls are planned
        self.calls = {"learner": 0, "judge": 0}
        self.per_unit: list[int] = []
        self.approximate = True
        self.started = self.logged = now()

    def expect_calls(self, per_unit: list[int]) -> None:
        """The calls each planned unit should take (re-asks add more; the total grows when they do)."""
        self.per_unit = per_unit

    def planned(self, todo: int, skipped: int) -> None:
        note = f" ({skipped} already finished)" if skipped else ""
        self.progress.update(self.task, total=todo, description=f"units{note}")
        if self.per_unit:
            exact = todo == len(self.per_unit)
            total = sum(self.per_unit) if exact else round(sum(self.per_unit) / len(self.per_unit) * todo)
            self.approximate = not exact
            self.progress.update(self.calls_task, total=total, visible=True)

    def call_done(self, role: str) -> None:
        self.calls[role] = self.calls.get(role, 0) + 1
        done, total = self.calls_done, self._calls_total()
        if total is not None and done > total:
            self.progress.update(self.calls_task, total=done)  # re-asks: more calls than planned
        self.progress.update(self.calls_task, completed=done, description=self._calls_label(), visible=True)
        if not self.progress.console.is_terminal and self.now() - self.logged >= self.LOG_EVERY_S:
            self.logged = self.now()
            self._say(f"{self.calls_text()}, {clock(self.now() - self.started)} elapsed{self._left()}")

    def unit_done(self, record: UnitRecord) -> None:
        self.progress.advance(self.task)
        if record.status == "failed":
            self._say(f"failed: {record.unit_id}: {record.error}")
        elif not self.progress.console.is_terminal:
            # A log file gets no live bar, and a unit on a CPU model can take half an hour.
            task = self._task(self.task)
            done, todo = int(task.completed), int(task.total or 0)
            calls = f"{self._count()} calls, " if self.calls_done else ""
            self._say(f"unit {done}/{todo} finished: {record.unit_id} ({calls}{clock(task.elapsed or 0.0)} elapsed)")

    def finished(self) -> None:
        """The run is over: the calls bar ends full, at the calls made."""
        self.progress.update(self.calls_task, total=self.calls_done, completed=self.calls_done)

    @property
    def calls_done(self) -> int:
        return sum(self.calls.values())

    def calls_text(self) -> str:
        """`calls 40/~470 (38 learner, 2 judge)`."""
        return f"calls {self._count()} ({self.calls['learner']} learner, {self.calls['judge']} judge)"

    def _count(self) -> str:
        """`40/~470` (`~`: an estimate, as on a resume), or `40` when nothing was planned."""
        total = self._calls_total()
        return str(self.calls_done) + ("" if total is None else f"/{'~' * self.approximate}{total}")

    def _calls_label(self) -> str:
        return f"calls ({self.calls['learner']} learner, {self.calls['judge']} judge)"

    def _calls_total(self) -> int | None:
        total = self._task(self.calls_task).total
        return None if total is None else int(total)

    def _left(self) -> str:
        total, done = self._calls_total(), self.calls_done
        if not total or not done or done >= total:
            return ""
        return f", about {clock((self.now() - self.started) / done * (total - done))} left"

    def _task(self, task_id: TaskID) -> Task:
        return next(task for task in self.progress.tasks if task.id == task_id)

    def _say(self, line: str) -> None:
        console = self.progress.console
        console.print(line, markup=False, highlight=False, soft_wrap=not console.is_terminal)


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def say(line: str, **style: Any) -> None:
    echo(line, err=True, **style)


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
    print_summary(summary(frame, by), by)
    statuses = list(manifest.units.values())
    usage = manifest.usage["total"]
    _plain(
        f"{plural(statuses.count('finished'), 'unit')} finished, {statuses.count('failed')} failed, "
        f"{outcome.skipped} reused; {plural(len(frame), 'row')}; "
        f"{usage['prompt_tokens']} prompt ({usage['cached_tokens']} cached) + {usage['completion_tokens']} "
        f"completion tokens; cost {format_cost(manifest.cost_usd)}"
    )
    flagged = int(frame["flags"].fillna("[]").ne("[]").sum()) if len(frame) else 0
    if flagged:
        csv = (Path(outcome.run_dir) / "results.csv").resolve()
        _plain(f"{plural(flagged, 'row')} flagged (high scores citing nothing, disagreeing judges, failed judge answers, ...): see the `flags` "
               f"column of {csv}")  # fmt: skip
    if manifest.batch:
        batch = manifest.batch
        _plain(f"batch: {batch['rounds']} rounds, {batch['requests']} requests ({batch['resent']} sent again), "
               f"{batch['engine']} engine; cost at batch prices {format_cost(manifest.cost_usd)}, "
               f"live {format_cost(batch.get('cost_live_usd'))}")  # fmt: skip
    print_health(manifest, outcome.run_dir.parent)


def print_health(manifest: Any, out_dir: Path | None = None) -> None:
    """The health verdict, loud when the simulations look degenerate: a weak model's table is no evidence."""
    health = manifest.health or {}
    source = "recordings" if manifest.settings.get("mode") == "replay" else manifest.settings.get("mode")
    judge = manifest.judge_model or manifest.model
    roles = f"learner {manifest.model}" + (f", judge {judge}" if judge != manifest.model else " (also the judge)")
    echo(f"answers by {roles} ({source})")
    verdict = health.get("verdict", "no health verdict")
    style = "green" if health.get("healthy") else "bold red"
    echo(f"health: {verdict}", style=style)
    print_scorecard(manifest, out_dir)


def print_scorecard(manifest: Any, out_dir: Path | None = None) -> None:
    """check-model's latest verdict for these model roles, where one exists beside the run."""
    from personasim.run.check_model import latest_scorecard, manifest_roles

    out_dir = out_dir or DEFAULT_OUT
    found = latest_scorecard(out_dir, manifest_roles(manifest), run_dir=out_dir / manifest.run_id)
    if found is None:
        echo("check-model: no scorecard for these model roles (personasim check-model tells whether they can stand in)")
        return
    path, card = found
    style = {"fit for module decisions": "green", "use with caution": "yellow"}.get(card.verdict, "bold red")
    echo(f"check-model: {card.verdict} ({path.resolve()})", style=style)


DEFAULT_OUT = Path("results")
_LONG = {"module_version": "module version"}
_PLAIN = ("persona_id", "module_id")  # their short headers need no legend
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


def print_summary(table: Any, by: tuple[str, ...]) -> None:
    """`table` is results.summary()'s DataFrame (pandas stays out of the CLI); the abbreviated
    headers are spelled out under it."""
    names = [*by, *map(str, table.columns)]
    columns = [Col(_SHORT.get(name, name), whole=True, justify="left" if name in by else "right") for name in names]
    rows = [
        [*(short_id(k) for k in (key if isinstance(key, tuple) else (key,))), *("-" if math.isnan(v) else f"{v:.1f}" for v in row)]
        for key, row in table.iterrows()
    ]  # fmt: skip
    legend = [f"{_SHORT[name]} = {_LONG.get(name, name)}" for name in names if name in _SHORT and name not in _PLAIN]
    caption = ", ".join(legend) if legend else None
    print_table(console, columns, rows, title="mean score (1-5) by lens", caption=caption, caption_justify="left")


def finish(outcome: RunOutcome, run_id: str, out: Path) -> None:
    print_outcome(outcome)
    run_dir = Path(outcome.run_dir).resolve()
    _plain(f"results: {run_dir}")
    if outcome.failed:
        say(
            f"{plural(len(outcome.failed), 'unit')} failed; retry them with: personasim run --resume {run_id} --out {out}"
        )
        raise typer.Exit(1)
    print_next(outcome, run_id, out)


def print_next(outcome: RunOutcome, run_id: str, out: Path) -> None:
    """The commands that come next, each runnable as printed from where the run was started."""
    ref = run_id if Path(out).resolve() == DEFAULT_OUT.resolve() else str(Path(outcome.run_dir).resolve())
    lines = [f"  personasim report {ref}    # the HTML report: heatmap, rationales, transcripts"]
    versions = sorted({str(v) for v in outcome.frame["module_version"].dropna()})  # as compare orders A and B
    if len(versions) == 2:
        lines.append(f"  personasim compare {ref}   # {versions[1]} - {versions[0]} per lens, with intervals")
    elif len(versions) > 2:
        a, b = sorted(versions, key=version_key)[-2:]
        lines.append(f"  personasim compare {ref} --a {a} --b {b}   # {b} - {a} per lens, with intervals")
    _plain("next:")
    for line in lines:
        _plain(line)


def _plain(line: str) -> None:
    echo(line)


def format_cost_line(live: float | None, batch: float | None, price_table: Any) -> str:
    """`estimated cost: live $X, batch $Y` (what is unknown says why)."""
    from personasim.llm.costs import format_cost

    if price_table is None:
        return "estimated cost: unknown (set price_table: in the --config file, with batch_* prices for batch)"
    batch_text = format_cost(batch) if batch is not None else "unknown (no batch_* prices in the price table)"
    return f"estimated cost: live {format_cost(live)}, batch {batch_text}"
