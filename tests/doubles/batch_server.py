"""TEST DOUBLE: a fake OpenAI Batch API (files + batches) on 127.0.0.1, for tests and benchmarks.

A `FakeOpenAIServer` (same lifecycle, `base_url` ending in /v1, recording, `enqueue`, `responder`,
`models=(...)`) that also serves, for the real `openai` SDK (sync and async), POST /v1/files
(multipart), GET /v1/files/{id}[/content], DELETE /v1/files/{id}, POST /v1/batches, GET
/v1/batches/{id}, POST /v1/batches/{id}/cancel; POST /v1/chat/completions stays the live endpoint
(recorded in `server.chat_requests`: a batch run sends none).

Batches move on the client's polls, never on a clock: each retrieve advances one step: validating
-> in_progress (answered `polls_to_complete` times, at least once) -> [finalizing, given
`show_finalizing`] -> completed. The completing retrieve answers each input line with
`server.responder(body) -> Reply` (default: `scripted_answers.scripted_text` of the messages) and
writes the output file (shuffled unless `shuffle_seed=None`, never left in input order) and, if a
line failed, the error file. A `Reply` with status != 200 (or `drop`) makes an error line; latency
and headers are ignored. Cancel: cancelling, then cancelled at the next retrieve, no output. A
malformed input (`run_batch.parse_input`) fails the batch at its first retrieve, with `errors`.

Faults (deterministic, counted from server start, off by default): `fail_lines=N`: the first N
answered lines whose custom_id never failed go to the error file (status 500), so a resubmission
succeeds; `fail_batches=N`: the first N well-formed batches end "failed"; `expire_batches=N`: the
next N end "expired", with no output or error file and failed = total (in our model an expired
batch returns no partial output); `error_style="vllm"`: error lines in vLLM's form (status 400,
body null, `error` a string); `errors_in_output=True`: error lines in the output file, as `vllm
run-batch` writes them. Introspection: `server.batches` (id -> `BatchState`, parsed `lines`
included), `server.files` (id -> `StoredFile`, outputs too), `server.uploads`,
`server.batch_requests_total` (lines answered), `server.request_log` ((method, path) pairs).
A `run_batch.py` beside this file stands in for `vllm run-batch`.

Examples:

    with FakeBatchServer(fail_lines=1, shuffle_seed=None) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        file = client.files.create(file=("in.jsonl", jsonl_bytes), purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            batch = client.batches.retrieve(batch.id)
        out = client.files.content(batch.output_file_id).content      # JSONL bytes
        assert server.chat_requests == [] and server.batch_requests_total == batch.request_counts.total

    server = FakeBatchServer(expire_batches=1)   # the first batch expires, the resubmission completes
    server.responder = lambda body: Reply.server_error(503)   # every line to the error file
    server = FakeBatchServer(error_style="vllm", errors_in_output=True)   # errors as vLLM writes them
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any, Literal
from urllib.parse import urlsplit

from doubles.openai_server import FakeOpenAIServer, Reply, _Handler, _QuietServer, completion_body, error_body
from doubles.run_batch import CHAT_ENDPOINT, batch_error, error_line, ok_line, parse_input, scripted_responder

__all__ = ["BatchState", "FakeBatchServer", "StoredFile", "parse_multipart"]

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_STAMPED = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
Outcome = Literal["completed", "failed", "expired"]
Answer = tuple[int, Any]  # HTTP status, JSON payload (or bytes: a file's content)


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def object(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed",
                "status_details": None, "expires_at": None}  # fmt: skip


@dataclass
class BatchState:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    lines: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    outcome: Outcome
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    polls: int = 0
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0

    def set_status(self, status: str) -> None:
        self.status = status
        self.times[status] = int(time.time())

    def object(self) -> dict[str, Any]:
        failed = self.status == "failed"
        counts = {"total": 0 if failed else len(self.lines), "completed": self.completed, "failed": self.failed}
        return {"id": self.id, "object": "batch", "endpoint": self.endpoint, "input_file_id": self.input_file_id,
                "errors": {"object": "list", "data": self.errors} if failed else None,
                "completion_window": self.completion_window, "status": self.status,
                "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
                "created_at": self.created_at, "expires_at": self.created_at + 24 * 3600,
                **{f"{name}_at": self.times.get(name) for name in _STAMPED},
                "request_counts": counts, "metadata": self.metadata,
                "model": self.lines[0]["body"].get("model") if self.lines else None}  # fmt: skip


@dataclass
class ApiCall:
    raw: bytes
    content_type: str
    ids: tuple[str, ...]


class ApiError(ValueError):
    """Answered as an OpenAI error body with this status (any other ValueError: 400)."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body as {field name: (filename, bytes)}, with the stdlib email parser."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError(f"expected multipart/form-data, got {content_type or 'no content type'!r}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class FakeBatchServer(FakeOpenAIServer):
    """See the module docstring."""

    def __init__(
        self,
        models: tuple[str, ...] | None = None,
        *,
        polls_to_complete: int = 2,
        shuffle_seed: int | None = 0,
        fail_lines: int = 0,
        expire_batches: int = 0,
        fail_batches: int = 0,
        error_style: Literal["openai", "vllm"] = "openai",
        errors_in_output: bool = False,
        show_finalizing: bool = False,
    ) -> None:
        super().__init__(models=models)
        self.responder = scripted_responder
        self.polls_to_complete = polls_to_complete
        self.shuffle_seed = shuffle_seed
        self.error_style = error_style
        self.errors_in_output = errors_in_output
        self.show_finalizing = show_finalizing
        self.files: dict[str, StoredFile] = {}
        self.uploads: list[StoredFile] = []
        self.batches: dict[str, BatchState] = {}
        self.batch_requests_total = 0
        self._faults = {"lines": fail_lines, "expired": expire_batches, "failed": fail_batches}
        self._failed_ids: set[str] = set()
        self._state = threading.RLock()  # apart from the request log's lock: a responder may look at the log
        self._file_ids, self._batch_ids, self._line_ids = itertools.count(1), itertools.count(1), itertools.count(1)

    def start(self) -> FakeBatchServer:
        handler = type("BatchHandler", (_BatchHandler,), {"fake": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> FakeBatchServer:
        return self.start()

    @property
    def request_log(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.method, r.path) for r in self.requests]

    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._state:
            stored = StoredFile(f"file-{next(self._file_ids)}", filename, purpose, data, int(time.time()))
            self.files[stored.id] = stored
            return stored

    def _file(self, call: ApiCall) -> StoredFile:
        if call.ids[0] not in self.files:
            raise ApiError(404, f"No such File object: {call.ids[0]}", "id")
        return self.files[call.ids[0]]

    def _batch(self, call: ApiCall) -> BatchState:
        if call.ids[0] not in self.batches:
            raise ApiError(404, f"No batch found with id '{call.ids[0]}'.", "batch_id")
        return self.batches[call.ids[0]]

    def upload(self, call: ApiCall) -> Answer:
        fields = parse_multipart(call.content_type, call.raw)
        if "file" not in fields or "purpose" not in fields:
            raise ApiError(400, "Missing required parameter: 'file' and 'purpose' are required.")
        filename, data = fields["file"]
        stored = self._store(filename or "upload", fields["purpose"][1].decode("utf-8"), data)
        with self._state:
            self.uploads.append(stored)
        return 200, stored.object()

    def file_object(self, call: ApiCall) -> Answer:
        return 200, self._file(call).object()

    def file_content(self, call: ApiCall) -> Answer:
        return 200, self._file(call).data

    def delete_file(self, call: ApiCall) -> Answer:
        with self._state:
            del self.files[self._file(call).id]
        return 200, {"id": call.ids[0], "object": "file", "deleted": True}

    def create_batch(self, call: ApiCall) -> Answer:
        body = json.loads(call.raw)
        body = body if isinstance(body, dict) else {}
        source = self.files.get(str(body.get("input_file_id")))
        checks = ((source is not None, "input_file_id", "Invalid 'input_file_id'."),
                  (body.get("endpoint") == CHAT_ENDPOINT, "endpoint", f"Only {CHAT_ENDPOINT} is supported here."),
                  (body.get("completion_window") == "24h", "completion_window", "completion_window must be '24h'."))  # fmt: skip
        for ok, param, message in checks:
            if not ok or source is None:
                raise ApiError(400, message, param)
        lines, errors = parse_input(source.data, CHAT_ENDPOINT)
        with self._state:
            outcome = self._outcome(errors)
            batch = BatchState(f"batch_{next(self._batch_ids)}", source.id, CHAT_ENDPOINT, "24h",
                               body.get("metadata"), lines, errors, outcome)  # fmt: skip
            self.batches[batch.id] = batch
            return 200, batch.object()

    def _outcome(self, errors: list[dict[str, Any]]) -> Outcome:
        if not errors and self._faults["failed"] > 0:
            self._faults["failed"] -= 1
            errors.append(batch_error("fake_failure", "The batch failed validation (fail_batches fault)."))
        if errors:
            return "failed"
        if self._faults["expired"] > 0:
            self._faults["expired"] -= 1
            return "expired"
        return "completed"

    def retrieve_batch(self, call: ApiCall) -> Answer:
        with self._state:
            batch = self._batch(call)
            self._advance(batch)
            return 200, batch.object()

    def cancel_batch(self, call: ApiCall) -> Answer:
        with self._state:
            batch = self._batch(call)
            if batch.status in TERMINAL:
                raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
            if batch.status != "cancelling":
                batch.set_status("cancelling")
            return 200, batch.object()

    def _advance(self, batch: BatchState) -> None:
        if batch.status == "validating":
            batch.set_status("failed" if batch.outcome == "failed" else "in_progress")
            batch.polls = 1
        elif batch.status == "in_progress" and batch.polls < self.polls_to_complete:
            batch.polls += 1
        elif batch.status == "in_progress" and self.show_finalizing and batch.outcome == "completed":
            batch.set_status("finalizing")
        elif batch.status in ("in_progress", "finalizing"):
            self._finish(batch)
        elif batch.status == "cancelling":
            batch.set_status("cancelled")

    def _finish(self, batch: BatchState) -> None:
        if batch.outcome == "expired":
            batch.failed = len(batch.lines)
            batch.set_status("expired")
            return
        answered = [self._answer_line(line) for line in batch.lines]
        good = [out for ok, out in answered if ok]
        bad = [out for ok, out in answered if not ok]
        batch.completed, batch.failed = len(good), len(bad)
        if self.errors_in_output:
            good, bad = [out for _, out in answered], []  # in input order, as vLLM writes them
        batch.output_file_id = self._write_output(batch, "output", good)
        batch.error_file_id = self._write_output(batch, "error", bad)
        batch.set_status("completed")

    def _write_output(self, batch: BatchState, kind: str, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in self._shuffled(lines)).encode("utf-8")
        return self._store(f"{batch.id}_{kind}.jsonl", "batch_output", data).id

    def _shuffled(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Shuffled with Random(shuffle_seed); never left in input order (rotated if the shuffle was a no-op)."""
        if self.shuffle_seed is None or len(lines) < 2:
            return lines
        out = list(lines)
        random.Random(self.shuffle_seed).shuffle(out)
        return out[1:] + out[:1] if out == lines else out

    def _answer_line(self, line: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        n, custom_id, body = next(self._line_ids), line["custom_id"], line["body"]
        self.batch_requests_total += 1
        reply = self._fault_reply(custom_id) or self._reply_for(body)
        if reply.status == 200:
            return True, ok_line(n, custom_id, completion_body(reply, body))
        if self.error_style == "vllm":
            return False, error_line(n, custom_id, 400, reply.error_message or f"HTTP {reply.status}")
        return False, error_line(n, custom_id, reply.status, None, error_body(reply))

    def _fault_reply(self, custom_id: str) -> Reply | None:
        if self._faults["lines"] <= 0 or custom_id in self._failed_ids:
            return None
        self._faults["lines"] -= 1
        self._failed_ids.add(custom_id)
        return Reply.server_error(500)

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        try:
            reply = self.responder(body) if self.responder is not None else self.default
        except Exception as exc:  # a responder bug shows as an error line naming it
            return Reply.error(500, f"the responder raised {exc!r}", "server_error")
        return Reply.server_error(500) if reply.drop else reply


_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/v1/files"), "upload"),
    ("GET", re.compile(r"/v1/files/([^/]+)"), "file_object"),
    ("DELETE", re.compile(r"/v1/files/([^/]+)"), "delete_file"),
    ("GET", re.compile(r"/v1/files/([^/]+)/content"), "file_content"),
    ("POST", re.compile(r"/v1/batches"), "create_batch"),
    ("GET", re.compile(r"/v1/batches/([^/]+)"), "retrieve_batch"),
    ("POST", re.compile(r"/v1/batches/([^/]+)/cancel"), "cancel_batch"),
)


class _BatchHandler(_Handler):
    fake: FakeBatchServer

    def do_GET(self) -> None:
        if not self._serve_api():
            super().do_GET()

    def do_POST(self) -> None:
        if not self._serve_api():
            super().do_POST()

    do_DELETE = do_GET  # DELETE /v1/files/{id}; other paths answer as a GET would (404)

    def _serve_api(self) -> bool:
        path = urlsplit(self.path).path.rstrip("/")
        for method, pattern, action in _ROUTES:
            found = pattern.fullmatch(path)
            if found and method == self.command:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))  # the SDK sends one
                self.fake._record(self._recorded(raw))
                call = ApiCall(raw, self.headers.get("Content-Type", ""), found.groups())
                try:
                    status, payload = getattr(self.fake, action)(call)
                except ValueError as exc:  # an ApiError, or a malformed body (JSON, multipart)
                    status, param = (exc.status, exc.param) if isinstance(exc, ApiError) else (400, None)
                    payload = error_body(Reply.error(status, str(exc), "invalid_request_error"))
                    payload["error"]["param"] = param
                if isinstance(payload, bytes):
                    self._send_raw(status, payload, "application/octet-stream")
                else:
                    self._send(status, payload)
                return True
        return False

    def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
