"""Stopping a whole run: an endpoint that can serve no call (`EndpointError`: refused, not found,
not serving the model) ends every unit, where other LLM errors fail only their own.

A conversation ends on any LLM error and records it as the unit's failure, so the runner's clients
are watched: the first `EndpointError` is noted here, and each unit checks for it between its
steps and raises it, which cancels the others.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from personasim.llm.roles import RoleClients
from personasim.llm.types import ChatClient, EndpointError


class RunStop:
    """The first endpoint error any unit met (None: none yet)."""

    def __init__(self) -> None:
        self.error: EndpointError | None = None

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def watch(self, clients: RoleClients) -> RoleClients:
        learner = _Watched(clients.learner, self)
        judge = learner if clients.judge is clients.learner else _Watched(clients.judge, self)
        return RoleClients(learner, judge)


class _Watched:
    def __init__(self, inner: ChatClient, stop: RunStop) -> None:
        self.inner, self.stop = inner, stop

    async def complete(self, messages: list[dict[str, Any]], options: Any, response_model: Any = None) -> Any:
        try:
            return await self.inner.complete(messages, options, response_model)
        except EndpointError as exc:
            self.stop.error = self.stop.error or exc
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


def remove_if_untouched(root: Path, keep: Path) -> None:
    """Remove a new run folder that holds nothing but `keep` (its inputs snapshot): no unit record,
    no transcript, no kept call. A run that never reached its endpoint leaves no folder behind."""
    if all(path == keep for path in root.rglob("*") if not path.is_dir()):
        shutil.rmtree(root, ignore_errors=True)
