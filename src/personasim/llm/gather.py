"""Calls side by side: a gather that cancels the rest when one fails, and lets a batch run's waiting
calls (`CallPending`) all be noted before the wait is raised."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from personasim.llm.types import CallPending

T = TypeVar("T")


async def gather_cancelling(coros: list[Coroutine[Any, Any, T]] | list[Awaitable[T]]) -> list[T]:
    """asyncio.gather that cancels the others when one fails (plain gather leaves them running).
    A call waiting for its batch round (`CallPending`) is no failure: the others go on to ask
    theirs (so one round holds all of a transcript's judge calls), then the first wait is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    waiting: CallPending | None = None
    try:
        remaining: set[asyncio.Future[T]] = set(tasks)
        while remaining:
            done, remaining = await asyncio.wait(remaining, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                failure = task.exception()
                if isinstance(failure, CallPending):
                    waiting = waiting or failure
                elif failure is not None:
                    raise failure
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if waiting is not None:
        raise waiting
    return [task.result() for task in tasks]
