"""Batch files, in the format the OpenAI Batch API and `vllm run-batch` share: one input line per
request (`custom_id` = its replay key, `body` exactly what a live call would post) and the answers
read back from output and error files, matched by custom_id in whatever order they come."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
ENDPOINT = "/v1/chat/completions"


@dataclass(frozen=True)
class PendingRequest:
    """A call a unit waits for: its key, the body to post, and the endpoint group it goes to."""

    key: str
    body: dict[str, Any]
    group: str
    role: str


@dataclass(frozen=True)
class LineResult:
    """One answer line: the chat-completion body when it succeeded, else why it failed."""

    custom_id: str
    body: dict[str, Any] | None
    error: str | None


def request_line(key: str, body: dict[str, Any]) -> bytes:
    line = {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def split_lines(lines: list[bytes], max_requests: int, max_bytes: int) -> list[list[bytes]]:
    """Consecutive pieces of at most `max_requests` lines and `max_bytes` bytes each (a line longer
    than `max_bytes` goes alone)."""
    parts: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and (len(current) >= max_requests or size + len(line) > max_bytes):
            parts.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        parts.append(current)
    return parts


def shards_of(lines: list[bytes], shards: int) -> list[list[bytes]]:
    """`lines` dealt into `shards` pieces as even as can be, in order (empty pieces dropped)."""
    size, extra = divmod(len(lines), shards)
    pieces, start = [], 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        pieces.append(lines[start:end])
        start = end
    return [piece for piece in pieces if piece]


def custom_ids(path: Path) -> list[str]:
    """The custom_ids of an input file, in order."""
    return [json.loads(line)["custom_id"] for line in path.read_bytes().splitlines() if line.strip()]


def read_results(path: Path) -> Iterator[LineResult]:
    """The answer lines of an output or error file. A line that is not an answer line is skipped
    with a warning: its request counts as unanswered and goes into the next round."""
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            yield _result(line)
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("%s:%d: not a batch answer line; its request goes into the next round", path, number)


def _result(line: dict[str, Any]) -> LineResult:
    custom_id = line["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError("custom_id")
    response = line.get("response") or {}
    status, body = response.get("status_code"), response.get("body")
    if status == 200 and isinstance(body, dict) and not line.get("error"):
        return LineResult(custom_id, body, None)
    return LineResult(custom_id, None, _failure(status, body, line.get("error")))


def _failure(status: Any, body: Any, error: Any) -> str:
    """Why a line failed, in one short line (OpenAI's error objects and vLLM's strings alike)."""
    if isinstance(error, dict):
        error = error.get("message") or error.get("code")
    if not error and isinstance(body, dict):
        inner = body.get("error")
        error = inner.get("message") if isinstance(inner, dict) else inner
    text = " ".join(str(error or "no answer").split())[:300]
    return f"HTTP {status}: {text}" if status else text


def answers_of(results: Iterable[LineResult]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(answer body per custom_id, failure per custom_id); an answer wins over a failure."""
    answers: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for result in results:
        if result.body is not None:
            answers[result.custom_id] = result.body
        else:
            failures[result.custom_id] = result.error or "failed"
    for key in answers:
        failures.pop(key, None)
    return answers, failures
