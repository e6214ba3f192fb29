"""The `openai` batch engine: a round's files through an OpenAI-compatible Batch API with the
`openai` SDK: upload (`files.create`, purpose `batch`), create (`batches.create`, window 24h), poll
(`batches.retrieve`), download the output and error files (`files.content`). Every SDK call goes
through the same bounded retries as chat calls (tenacity; 429 / 408 / 409 / 5xx / dropped
connections are retried, the rest stops the run with what to do). With openai_transport, the only
modules that import `openai`."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_random_exponential

from personasim.fileio import atomic_write_bytes
from personasim.llm.batch.engine import Save
from personasim.llm.batch.lines import ENDPOINT
from personasim.llm.batch.types import TERMINAL, Submission
from personasim.llm.openai_transport import KEYLESS_PLACEHOLDER, redact
from personasim.llm.settings import LLMSettings
from personasim.llm.types import BatchEngineError

T = TypeVar("T")
COMPLETION_WINDOW = "24h"
_RETRYABLE = frozenset({408, 409, 429})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        quota = exc.status_code == 429 and (exc.code == "insufficient_quota")
        return not quota and (exc.status_code in _RETRYABLE or exc.status_code >= 500)
    return False


class OpenAIBatchEngine:
    name = "openai"
    detachable = True

    def __init__(self, roles: dict[str, LLMSettings]) -> None:
        self.roles = roles
        self._clients: dict[tuple[str | None, str], openai.AsyncOpenAI] = {}

    def _settings(self, submission: Submission) -> LLMSettings:
        same = [s for s in self.roles.values() if (s.base_url, s.api_key_env) == (submission.base_url,
                                                                                  submission.api_key_env)]  # fmt: skip
        return same[0] if same else next(iter(self.roles.values()))

    def _client(self, submission: Submission) -> openai.AsyncOpenAI:
        where = (submission.base_url, submission.api_key_env)
        if where not in self._clients:
            key = os.environ.get(submission.api_key_env)
            if not key and submission.base_url is None:
                raise BatchEngineError(f"no API key: set the environment variable {submission.api_key_env}")
            timeout = self._settings(submission).timeout_s
            self._clients[where] = openai.AsyncOpenAI(
                api_key=key or KEYLESS_PLACEHOLDER, base_url=submission.base_url, max_retries=0, timeout=timeout
            )
        return self._clients[where]

    async def _call(self, submission: Submission, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One SDK call with bounded retries; what cannot be retried stops the run in one line."""
        policy = self._settings(submission)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.total_timeout_s),
            wait=wait_random_exponential(multiplier=policy.backoff_initial_s, max=policy.max_wait_s),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        where = submission.base_url or "api.openai.com"
        try:
            async for attempt in retrying:
                with attempt:
                    return await call()
        except openai.APIStatusError as exc:
            raise BatchEngineError(f"{where}: {what} failed (HTTP {exc.status_code}: {redact(str(exc.message))[:300]}); "
                                   f"check {submission.api_key_env} and that this endpoint has a Batch API "
                                   "(/v1/files, /v1/batches)") from exc  # fmt: skip
        except openai.APIError as exc:
            raise BatchEngineError(f"{where}: {what} failed ({redact(str(exc))[:300]}); check --base-url") from exc
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def submit(self, round_dir: Path, submission: Submission, metadata: dict[str, str], save: Save) -> None:
        client = self._client(submission)
        if submission.input_file_id is None:
            data = (round_dir / submission.input_file).read_bytes()
            uploaded = await self._call(submission, "uploading a batch file", lambda: client.files.create(
                file=(submission.input_file, data, "application/jsonl"), purpose="batch"))  # fmt: skip
            submission.input_file_id = uploaded.id
            save()
        input_id = submission.input_file_id
        batch = await self._call(submission, "creating a batch", lambda: client.batches.create(
            input_file_id=input_id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW, metadata=metadata))  # fmt: skip
        submission.batch_id, submission.state, submission.submitted_at = batch.id, batch.status, _now()
        save()

    async def refresh(self, round_dir: Path, submission: Submission) -> None:
        if not submission.under_way:
            return
        client, batch_id = self._client(submission), submission.batch_id
        batch = await self._call(submission, f"polling batch {batch_id}", lambda: client.batches.retrieve(batch_id))
        counts = batch.request_counts
        submission.completed, submission.failed = (counts.completed, counts.failed) if counts else (0, 0)
        if batch.status not in TERMINAL:
            submission.state = batch.status
            return
        stem = submission.input_file.removesuffix(".jsonl")
        submission.output_file = await self._download(
            round_dir, submission, batch.output_file_id, f"{stem}.output.jsonl"
        )
        submission.error_file = await self._download(round_dir, submission, batch.error_file_id, f"{stem}.errors.jsonl")
        submission.error = _batch_problem(batch)
        submission.state, submission.finished_at = batch.status, _now()

    async def cancel(self, submission: Submission) -> None:
        if not submission.under_way:
            return
        client, batch_id = self._client(submission), submission.batch_id
        batch = await self._call(submission, f"cancelling batch {batch_id}", lambda: client.batches.cancel(batch_id))
        submission.state = batch.status

    async def _download(self, round_dir: Path, submission: Submission, file_id: str | None, name: str) -> str | None:
        if not file_id:
            return None
        client = self._client(submission)
        content = await self._call(submission, f"downloading file {file_id}", lambda: client.files.content(file_id))
        atomic_write_bytes(round_dir / name, content.read())
        return name

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()


def _batch_problem(batch: Any) -> str | None:
    """Why a batch ended without answering everything, in one line (None when it completed)."""
    if batch.status == "completed":
        return None
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    detail = "; ".join(str(getattr(e, "message", "") or getattr(e, "code", "")) for e in errors[:3])
    return f"batch {batch.id} {batch.status}" + (f": {redact(detail)[:300]}" if detail else "")
