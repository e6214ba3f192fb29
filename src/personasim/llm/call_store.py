"""The run's own call store: every call that completes live is kept in the run folder (`calls/`, one
JSON file per request key, in the recordings' format: `personasim recordings list RUN/calls` reads
it), whatever the mode, so a resumed unit replays what it already asked and goes on live from the
first call it lacks. Nothing is kept of a call that failed.

    client = CallStore(CallWrapper(...), run_dir / "calls")   # under any suite recordings client

Keys are the recordings' content keys (`llm/replay.py`): a unit whose persona, module, templates or
generation settings changed asks other requests, so it starts over. A kept answer that could not be
used (a refusal, one cut off at max_tokens, one that does not validate) is kept for reading but not
replayed: it is asked again, so that resuming a unit that failed on it can get past it. A batch run
replays those too (`replay_all`): its structured layer re-asks them in the next round.

A kept call is replayed as what it was, this run's own live call (`from_recording` false, its
latency as measured; `attempts` 1, since the file does not say how many HTTP attempts it took), so
a resumed run's transcripts equal an uninterrupted run's. Files are
written whole (a temporary file renamed into place, off the event loop; a cancelled caller waits
for the write to end) but not fsynced: they outlive a killed process, and a file left unreadable by
a power cut is called again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from personasim.errors import InputError
from personasim.fileio import atomic_write_bytes
from personasim.llm.replay import (
    Recording,
    completion_from,
    fast_request_key,
    load_recording,
    recording_path,
    request_fields,
    response_of,
)
from personasim.llm.types import ChatClient, ChatOptions, Completion

logger = logging.getLogger(__name__)
CALLS_DIR = "calls"  # under the run folder


class CallStore:
    """A ChatClient that keeps every completed call of `inner` in `directory` and answers from there
    what it already holds (`replay=False`: keep only; `replay_all`: unusable answers too). `kept`
    and `replayed` count this process's."""

    def __init__(
        self,
        inner: ChatClient,
        directory: str | Path,
        *,
        replay: bool = True,
        replay_all: bool = False,
        memo: dict[str, Recording] | None = None,
    ) -> None:
        self.inner = inner
        self.replay_all = replay_all
        # A batch run passes over the same kept calls once a round: `memo` keeps them read.
        self.memo = memo
        self.directory = Path(directory)
        # A new run has no folder yet: nothing to look up until it has one.
        self.replay = replay and self.directory.is_dir()
        self.kept = 0
        self.replayed = 0

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        key = fast_request_key(messages, options, response_model)
        if self.replay:
            stored = self._stored(key, response_model)
            if stored is not None:
                self.replayed += 1
                return stored
        completion = await self.inner.complete(messages, options, response_model)
        recording = Recording(key=key, request=request_fields(messages, options, response_model),
                              response=response_of(completion))  # fmt: skip
        await _written(recording_path(self.directory, key), recording)
        if self.memo is not None:
            self.memo[key] = recording
        self.kept += 1
        return completion

    def _stored(self, key: str, response_model: type[BaseModel] | None) -> Completion | None:
        recording = self.memo.get(key) if self.memo is not None else None
        if recording is None:
            recording = _read(recording_path(self.directory, key))
            if recording is not None and self.memo is not None:
                self.memo[key] = recording
        return None if recording is None else _kept(recording, response_model, self.replay_all)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _file_text(recording: Recording) -> bytes:
    """Byte for byte what `replay.save_recording` writes."""
    text = json.dumps(recording.model_dump(mode="json"), indent=2, ensure_ascii=False, sort_keys=True)
    return (text + "\n").encode("utf-8")


def _write(path: Path, recording: Recording) -> None:
    atomic_write_bytes(path, _file_text(recording), fsync=False)


async def _written(path: Path, recording: Recording) -> None:
    """Encode and write in a thread; a cancelled caller (Ctrl-C, a failing sibling unit) still waits
    for the write to end, so every call that completed is kept whole."""
    done = asyncio.ensure_future(asyncio.to_thread(_write, path, recording))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        raise


def _read(path: Path) -> Recording | None:
    """The kept call at `path`; None when there is none or it is unreadable."""
    if not path.is_file():
        return None
    try:
        return load_recording(path)
    except InputError:
        logger.warning("%s: unreadable kept call; calling again", path)
        return None


def _kept(recording: Recording, response_model: type[BaseModel] | None, replay_all: bool) -> Completion | None:
    """A kept answer as a Completion, or None when it could not be used (refused, cut off, invalid
    for `response_model`) and not `replay_all`."""
    completion = completion_from(recording, response_model, own_call=True)
    if not replay_all and (
        completion.refusal
        or completion.finish_reason == "length"
        or (response_model is not None and completion.parsed is None)
    ):
        return None
    return completion
