"""TEST DOUBLE: a fake OpenAI chat-completions server on 127.0.0.1, for tests and benchmarks.

It is a real HTTP server (stdlib `ThreadingHTTPServer` in a background thread, random free port)
speaking enough of the OpenAI protocol for the real `openai` client: `POST /v1/chat/completions`
and, given `models=(...)`, `GET /v1/models` (without, it answers 404 there, as a server with no
model listing does, so runs skip their model check). It never generates text: every answer is scripted with a `Reply`, and it
constrains nothing (it ignores `response_format`, like a server that accepts the field and does
not enforce it), unless told to reject some response formats as llama.cpp does.

Scripting, in order of precedence:
  1. `server.enqueue(reply, ...)`: replies served first-in first-out, one per chat request;
  2. `server.responder = fn`: `fn(request_json: dict) -> Reply`, called when the queue is empty;
  3. `server.default`: the `Reply` used otherwise (`Reply.ok("ok")`).

Every request is recorded (`server.requests`: method, path, headers, parsed JSON body), before
any scripted latency, so tests can count attempts (`server.chat_requests`) and check headers.
`server.max_in_flight` is the most chat requests it was handling at once.

Examples:

    with FakeOpenAIServer() as server:                 # or the `openai_server` pytest fixture
        server.enqueue(Reply.rate_limited(retry_after=0.2), Reply.ok("hello"))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        assert len(server.chat_requests) == 2

    server.responder = lambda req: Reply.ok(req["messages"][-1]["content"].upper())
    server.enqueue(Reply.quota_exceeded(), Reply.server_error(503), Reply.drop_connection())
    server.enqueue(Reply.ok("late", latency_s=5))      # a client timeout of 1 s times out
    server.enqueue(Reply.truncated('{"a": 1'), Reply.refused("I can't help with that."))
    server = FakeOpenAIServer(reject_response_formats={"json_schema"})  # llama.cpp's HTTP 500
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "RecordedHTTPRequest", "Reply"]


@dataclass
class Reply:
    """One scripted answer. `status != 200` sends an OpenAI-style error body; `drop` closes the
    socket without answering; `latency_s` sleeps first (longer than the client timeout = timeout).
    `model=None` echoes the requested model; `raw_body` sends exactly those bytes."""

    text: str | None = "ok"
    status: int = 200
    finish_reason: str = "stop"
    refusal: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int | None = 0
    latency_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    error_type: str | None = None
    error_code: str | None = None
    drop: bool = False
    model: str | None = None
    system_fingerprint: str | None = "fp_fake"
    raw_body: bytes | None = None

    @classmethod
    def ok(cls, text: str = "ok", **kw: Any) -> Reply:
        return cls(text=text, **kw)

    @classmethod
    def json(cls, value: Any, **kw: Any) -> Reply:
        return cls(text=json.dumps(value), **kw)

    @classmethod
    def truncated(cls, text: str = '{"partial": ', **kw: Any) -> Reply:
        return cls(text=text, finish_reason="length", **kw)

    @classmethod
    def refused(cls, refusal: str = "I'm sorry, I can't help with that.", **kw: Any) -> Reply:
        return cls(text=None, refusal=refusal, **kw)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "error",
        type: str = "invalid_request_error",
        code: str | None = None,
        **kw: Any,
    ) -> Reply:  # noqa: A002 - `type` mirrors the OpenAI error body field
        return cls(text=None, status=status, error_message=message, error_type=type, error_code=code, **kw)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = None, **kw: Any) -> Reply:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls.error(
            429, "Rate limit reached, please retry", "requests", "rate_limit_exceeded", headers=headers, **kw
        )

    @classmethod
    def quota_exceeded(cls, **kw: Any) -> Reply:
        return cls.error(429, "You exceeded your current quota, please check your plan and billing details.",
                         "insufficient_quota", "insufficient_quota", **kw)  # fmt: skip

    @classmethod
    def server_error(cls, status: int = 500, **kw: Any) -> Reply:
        return cls.error(status, "The server had an error while processing your request.", "server_error", **kw)

    @classmethod
    def drop_connection(cls) -> Reply:
        return cls(text=None, drop=True)

    @classmethod
    def timeout(cls, seconds: float = 30.0) -> Reply:
        """Answers only after `seconds`: use a shorter client timeout."""
        return cls(text="too late", latency_s=seconds)


@dataclass
class RecordedHTTPRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    received_at: float


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed by a test, or timed out) is no error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAIServer:
    """See the module docstring. `base_url` is `http://127.0.0.1:<port>/v1`."""

    def __init__(
        self,
        models: tuple[str, ...] | None = None,
        reject_response_formats: set[str] | frozenset[str] = frozenset(),
        reject_status: int = 500,
    ) -> None:
        self.models = models
        self.reject_response_formats = set(reject_response_formats)
        self.reject_status = reject_status
        self.default = Reply.ok("ok")
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[RecordedHTTPRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping through a scripted latency
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ scripting

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedHTTPRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def _next_reply(self, body: Any) -> Reply:
        fmt = body.get("response_format") if isinstance(body, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") in self.reject_response_formats:
            return Reply.error(self.reject_status, f"response_format type {fmt.get('type')!r} is not supported")
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default

    def _record(self, request: RecordedHTTPRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def completion_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if reply.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
    message = {"role": "assistant", "content": reply.text, "refusal": reply.refusal}
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request.get("model", "fake-model"),
        "system_fingerprint": reply.system_fingerprint,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": usage,
    }


def error_body(reply: Reply) -> dict[str, Any]:
    return {
        "error": {"message": reply.error_message, "type": reply.error_type, "param": None, "code": reply.error_code}
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes; no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:
        self.fake._record(self._recorded(b""))
        if self.path.rstrip("/").endswith("/models") and self.fake.models is not None:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.fake.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, error_body(Reply.error(404, f"no route {self.path}")))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        recorded = self._recorded(raw)
        self.fake._record(recorded)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, error_body(Reply.error(404, f"no route {self.path}")))
            return
        if not isinstance(recorded.body, dict):
            self._send(400, error_body(Reply.error(400, "request body is not a JSON object")))
            return
        self.fake._enter()
        try:
            self._answer(self.fake._next_reply(recorded.body), recorded.body)
        finally:
            self.fake._leave()

    def _answer(self, reply: Reply, request: dict[str, Any]) -> None:
        if reply.latency_s and self.fake._stopping.wait(reply.latency_s):
            return
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.raw_body is not None:
            self._send_bytes(reply.status, reply.raw_body, reply.headers)
        elif reply.status != 200:
            self._send(reply.status, error_body(reply), reply.headers)
        else:
            self._send(200, completion_body(reply, request), reply.headers)

    def _recorded(self, raw: bytes) -> RecordedHTTPRequest:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return RecordedHTTPRequest(self.command, self.path, dict(self.headers.items()), body, raw, time.monotonic())

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode("utf-8"), headers or {})

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test); nothing to do
