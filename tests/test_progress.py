"""The progress display counts LLM calls against the plan's estimate, growing it when re-asks add
calls, and a log (not a terminal) gets a line per finished unit and one a minute while calls go on.
The clock is a test double: nothing here depends on timing."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from personasim.cli.output import Bar, progress_bar
from personasim.run.state import UnitRecord


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _bar(clock: Clock) -> tuple[Bar, io.StringIO]:
    log = io.StringIO()
    progress = Progress(console=Console(file=log, force_terminal=False, width=200), get_time=clock)
    return Bar(progress, now=clock), log


def _record(unit: str) -> UnitRecord:
    return UnitRecord(unit_id=unit, status="finished", config_hash="h", error=None, at="2026-01-01T00:00:00+00:00")


def test_calls_count_against_the_plan_and_the_total_grows_with_re_asks() -> None:
    bar, log = _bar(Clock())
    bar.expect_calls([3, 4])
    bar.planned(2, 0)
    for role in ("learner", "learner", "judge"):
        bar.call_done(role)
    bar.unit_done(_record("u1"))
    assert bar.calls_text() == "calls 3/7 (2 learner, 1 judge)"
    for _ in range(5):  # one more than planned: a re-ask
        bar.call_done("judge")
    assert bar.calls_text() == "calls 8/8 (2 learner, 6 judge)"
    bar.unit_done(_record("u2"))
    assert [line.split(" (")[1] for line in log.getvalue().splitlines()] == [
        "3/7 calls, 0s elapsed)",
        "8/8 calls, 0s elapsed)",
    ]


def test_a_resumed_run_estimates_the_calls_left() -> None:
    bar, _ = _bar(Clock())
    bar.expect_calls([4, 6, 8])
    bar.planned(1, 2)  # two of three units already finished: their calls are not made again
    bar.call_done("learner")
    assert bar.calls_text() == "calls 1/~6 (1 learner, 0 judge)"


def test_a_log_gets_a_calls_line_a_minute_with_the_time_left() -> None:
    clock = Clock()
    bar, log = _bar(clock)
    bar.expect_calls([10])
    bar.planned(1, 0)
    clock.t += 30
    bar.call_done("learner")
    assert log.getvalue() == ""  # under a minute since the start: no line yet
    clock.t += 30
    bar.call_done("learner")
    assert log.getvalue().splitlines() == ["calls 2/10 (2 learner, 0 judge), 1m 00s elapsed, about 4m 00s left"]


def test_the_terminal_bar_shows_calls_and_time_left() -> None:
    progress = progress_bar()
    bar = Bar(progress)
    bar.expect_calls([2])
    bar.planned(1, 0)
    bar.call_done("learner")
    calls = next(task for task in progress.tasks if task.id == bar.calls_task)
    assert (calls.completed, calls.total, calls.description) == (1, 2, "calls (1 learner, 0 judge)")
    assert any("Remaining" in type(column).__name__ for column in progress.columns)
    bar.finished()
    assert (calls.completed, calls.total) == (1, 1)
