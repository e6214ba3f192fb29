"""Record and replay LLM calls: one readable JSON file per request key, no HTTP cassettes.

Key = sha256 of canonical JSON of {key_version, model, messages, response_schema, temperature,
seed, max_tokens, sample_index}: what determines the answer, never headers or secrets.
Modes: `live` (pass through), `record` (call and store), `replay` (stored only; a miss raises
ReplayMiss and makes no network call), `auto` (replay hits, call and record misses).
Error responses are never recorded (the inner client raises; nothing is written).
"""

from __future__ import annotations

import functools
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from personasim.errors import InputError
from personasim.fileio import atomic_write_text
from personasim.hashing import canonical_json, sha256_text
from personasim.llm.settings import MODES, Mode
from personasim.llm.structured import response_schema, try_parse
from personasim.llm.types import ChatClient, ChatOptions, Completion, ReplayMiss
from personasim.records.usage import Usage

KEY_VERSION = 1
_SNIPPET_CHARS = 80


class RecordedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_version: int
    model: str
    messages: list[dict[str, Any]]
    response_schema: dict[str, Any] | None
    temperature: float
    seed: int | None
    max_tokens: int
    sample_index: int


class RecordedResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    refusal: str | None = None
    usage: Usage
    finish_reason: str | None
    model: str
    system_fingerprint: str | None
    latency_s: float
    created_at: str


class Recording(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    request: RecordedRequest
    response: RecordedResponse


def request_fields(
    messages: list[dict[str, Any]], options: ChatOptions, response_model: type[BaseModel] | None
) -> RecordedRequest:
    return RecordedRequest(
        key_version=KEY_VERSION,
        model=options.model,
        messages=messages,
        response_schema=response_schema(response_model) if response_model is not None else None,
        temperature=options.temperature,
        seed=options.seed,
        max_tokens=options.max_tokens,
        sample_index=options.sample_index,
    )


def request_key(
    messages: list[dict[str, Any]], options: ChatOptions, response_model: type[BaseModel] | None = None
) -> str:
    """The replay key of a request (64 hex characters)."""
    return _key_of(request_fields(messages, options, response_model))


def _key_of(request: RecordedRequest) -> str:
    return sha256_text(canonical_json(request.model_dump(mode="json")))


_MESSAGES, _SCHEMA = "\x00messages", "\x00schema"


def fast_request_key(
    messages: list[dict[str, Any]], options: ChatOptions, response_model: type[BaseModel] | None = None
) -> str:
    """`request_key`, without re-encoding the whole history on every call (a walkthrough's
    requests share a growing prefix): each message's canonical JSON is cached, and the request's
    other fields are encoded around placeholders. The same key, byte for byte."""
    if "\x00" in options.model or not all(isinstance(v, str) for m in messages for v in m.values()):
        return request_key(messages, options, response_model)
    head = canonical_json({
        "key_version": KEY_VERSION, "model": options.model, "messages": _MESSAGES,
        "response_schema": None if response_model is None else _SCHEMA, "temperature": float(options.temperature),
        "seed": options.seed, "max_tokens": options.max_tokens, "sample_index": options.sample_index,
    })  # fmt: skip
    if response_model is not None:
        head = head.replace(canonical_json(_SCHEMA), _schema_json(response_model), 1)
    body = "[" + ",".join(_message_json(tuple(m.items())) for m in messages) + "]"
    return sha256_text(head.replace(canonical_json(_MESSAGES), body, 1))


@functools.lru_cache(maxsize=4096)
def _message_json(items: tuple[tuple[str, str], ...]) -> str:
    return canonical_json(dict(items))


@functools.lru_cache(maxsize=64)
def _schema_json(response_model: type[BaseModel]) -> str:
    return canonical_json(response_schema(response_model))


def recording_path(directory: str | Path, key: str) -> Path:
    return Path(directory) / f"{key}.json"


def load_recording(path: str | Path) -> Recording:
    path = Path(path)
    try:
        return Recording.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        problem = f"unreadable recording ({exc.__class__.__name__}); delete it and record again"
        raise InputError(path, None, problem) from exc


def save_recording(directory: str | Path, recording: Recording) -> Path:
    path = recording_path(directory, recording.key)
    text = json.dumps(recording.model_dump(mode="json"), indent=2, ensure_ascii=False, sort_keys=True)
    atomic_write_text(path, text + "\n")
    return path


class RecordingClient:
    """Wraps a ChatClient with record/replay. `inner` may be None only in replay mode.
    `used_keys` collects every key this client served (for `personasim recordings prune`).
    `recorded`: keys recorded earlier in the same run, which record mode replays instead of asking
    again (a batch run passes over its calls once a round); both may be shared between clients."""

    def __init__(
        self,
        inner: ChatClient | None,
        directory: str | Path,
        mode: Mode,
        *,
        used_keys: set[str] | None = None,
        recorded: set[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if inner is None and mode != "replay":
            raise ValueError(f"mode {mode!r} needs an inner client; only replay works without one")
        self.inner = inner
        self.directory = Path(directory)
        self.mode = mode
        self.used_keys: set[str] = set() if used_keys is None else used_keys
        self.recorded = recorded

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        if self.mode == "live":
            return await self._inner().complete(messages, options, response_model)
        key = fast_request_key(messages, options, response_model)
        self.used_keys.add(key)
        path = recording_path(self.directory, key)
        replays = self.mode in ("replay", "auto") or (self.recorded is not None and key in self.recorded)
        if replays and path.exists():
            return completion_from(load_recording(path), response_model)
        request = request_fields(messages, options, response_model)
        if self.mode == "replay":
            raise _miss(request, key, self.directory)
        completion = await self._inner().complete(messages, options, response_model)
        save_recording(self.directory, Recording(key=key, request=request, response=response_of(completion)))
        if self.recorded is not None:
            self.recorded.add(key)
        return completion

    def _inner(self) -> ChatClient:
        assert self.inner is not None  # guaranteed by __init__ for every mode but replay
        return self.inner

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()

    async def __aenter__(self) -> RecordingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def response_of(completion: Completion) -> RecordedResponse:
    """What a recording (or a run's kept call) stores of an answer."""
    return RecordedResponse(
        text=completion.text,
        refusal=completion.refusal,
        usage=completion.usage,
        finish_reason=completion.finish_reason,
        model=completion.model,
        system_fingerprint=completion.system_fingerprint,
        latency_s=round(completion.latency_s, 3),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def completion_from(recording: Recording, response_model: type[BaseModel] | None, own_call: bool = False) -> Completion:
    """The stored answer as a Completion. `own_call`: a call this run made itself (its call store),
    replayed as its own live call (`from_recording` false, the latency as measured, one attempt)."""
    started = time.perf_counter()
    r = recording.response
    return Completion(
        text=r.text,
        parsed=try_parse(r.text, response_model),
        usage=r.usage,
        finish_reason=r.finish_reason,
        model=r.model,
        system_fingerprint=r.system_fingerprint,
        latency_s=r.latency_s if own_call else time.perf_counter() - started,
        from_recording=not own_call,
        attempts=1 if own_call else 0,
        refusal=r.refusal,
    )


def _miss(request: RecordedRequest, key: str, directory: Path) -> ReplayMiss:
    last = request.messages[-1].get("content", "") if request.messages else ""
    snippet = " ".join(str(last).split())[:_SNIPPET_CHARS]
    return ReplayMiss(
        f"no recording in {directory} for a request to model {request.model!r} "
        f"(sample {request.sample_index}, last message {snippet!r}, key {key}); "
        "record it by running the same command with `--mode auto` (records only missing calls) "
        "or `--mode record` (calls the model for every request)",
        key=key,
    )


# --------------------------------------------------------------------------- maintenance


_KEY_STEM = re.compile(r"[0-9a-f]{64}")  # other JSON files (e.g. recorded_with.json) are not recordings


def recording_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "not a recordings directory")
    return sorted(p for p in directory.glob("*.json") if p.is_file() and _KEY_STEM.fullmatch(p.stem))


def read_used_keys(path: str | Path) -> set[str]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(path, None, f"cannot read used keys: {exc.strerror}") from exc
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def unused_recordings(directory: str | Path, used_keys: set[str]) -> list[Path]:
    """Recording files whose key is not in `used_keys`."""
    return [p for p in recording_files(directory) if p.stem not in used_keys]


class RecordingsSummary(BaseModel):
    count: int
    size_bytes: int
    models: dict[str, int]


def summarize(directory: str | Path) -> RecordingsSummary:
    files = recording_files(directory)
    models: dict[str, int] = {}
    for path in files:
        model = load_recording(path).request.model
        models[model] = models.get(model, 0) + 1
    return RecordingsSummary(
        count=len(files), size_bytes=sum(p.stat().st_size for p in files), models=dict(sorted(models.items()))
    )
