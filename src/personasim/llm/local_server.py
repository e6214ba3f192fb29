"""The local llama.cpp server: `python -m llama_cpp.server` run as a subprocess for one model.

Needs the `local` extra (`llama-cpp-python[server]`); without it `LocalServer` says how to install it.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from personasim.llm.local import LOCAL_EXTRA_HINT, LocalServerError, get_model, pull

_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


THREADS_ENV = "PERSONASIM_LOCAL_THREADS"


def threads_from_env() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise LocalServerError(
            f"{THREADS_ENV}={raw!r} is not a positive whole number of CPU threads; unset it or use e.g. {THREADS_ENV}=2"
        )
    return int(raw)


def llama_server_command() -> list[str]:
    """`python -m llama_cpp.server`, or a clear error when the `local` extra is not installed."""
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalServerError(
            f"the local llama.cpp server needs {', '.join(missing)} (not installed in {sys.executable}); "
            f"install it with: {LOCAL_EXTRA_HINT}"
        )
    return [sys.executable, "-m", "llama_cpp.server"]


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGKILL when the parent dies (even by SIGKILL),
    so a killed run never leaves a llama.cpp server holding the cores. SIGKILL, not SIGTERM: the
    server has nothing to save, and on SIGTERM it first finishes the answer it is writing, which on
    a busy CPU takes minutes. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(log is empty)"


class LocalServer:
    """`python -m llama_cpp.server` as a subprocess; `with` / `async with` it, then point a client at `base_url`.

    The process stays in our process group (a terminal's Ctrl-C or hang-up reaches it too), logs to
    `log_path`, and is stopped (terminate, then kill) on exit, on errors and on KeyboardInterrupt,
    startup included. A SIGKILLed parent cannot stop it: callers that may get SIGTERM should turn it
    into an exception (the `serve` command does).
    `command` replaces the `python -m llama_cpp.server` prefix (tests pass a fake server script).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        chat_format: str | None = None,
        model_alias: str | None = None,
        log_path: str | Path | None = None,
        startup_timeout_s: float = 180.0,
        stop_timeout_s: float = 10.0,
        command: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        # llama-cpp-python's own rule (half the cores for generation, all for prompt reading), but
        # counted from the affinity mask; an explicit n_threads (or PERSONASIM_LOCAL_THREADS, which
        # reaches servers that runs start) also caps prompt reading.
        n_threads = n_threads or threads_from_env()
        self.n_threads = n_threads or max(1, available_cores() // 2)
        self.n_threads_batch = n_threads_batch or n_threads or available_cores()
        self.host = host
        self.port = port or _free_port(host)
        self.chat_format = chat_format
        self.model_alias = model_alias
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"personasim-llama-{self.port}.log"
        )
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.command = list(command) if command is not None else None
        self.extra_args = list(extra_args)
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    @classmethod
    def for_model(
        cls,
        model_name: str | None = None,
        *,
        cache_dir: str | Path | None = None,
        n_ctx: int | None = None,
        on_progress: Callable[[str], None] | None = None,
        **kwargs: object,
    ) -> LocalServer:
        """A server for a registry model with its recommended n_ctx and chat format; pulls the model if needed."""
        spec = get_model(model_name)
        path = pull(spec, cache_dir, on_progress=on_progress)
        kwargs.setdefault("model_alias", spec.name)
        return cls(path, n_ctx=n_ctx or spec.n_ctx, chat_format=spec.chat_format, **kwargs)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url` (ends in /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def args(self) -> list[str]:
        prefix = self.command if self.command is not None else llama_server_command()
        args = [*prefix, "--model", str(self.model_path), "--host", self.host, "--port", str(self.port)]
        args += [
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads_batch),
        ]
        # The server's default (true) keeps every prompt token's logits: n_ctx x vocabulary floats
        # (~10 GB for a 152k-token vocabulary at n_ctx 16384) and a copy of each prompt's, which
        # measured ~20% slower calls here. Only logprobs need them; the harness asks for none.
        args += ["--logits_all", "false"]
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
        if self.model_alias:
            args += ["--model_alias", self.model_alias]
        return args + self.extra_args

    def _launch(self) -> None:
        if self._proc is not None:
            raise LocalServerError("this LocalServer is already started")
        if not self.model_path.is_file():
            raise LocalServerError(f"model file not found: {self.model_path} (run `personasim local pull`)")
        args = self.args()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own handle
            log.write(f"$ {' '.join(args)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent,
            )
        self._started_at = time.monotonic()

    def _ready(self) -> bool:
        """True once `GET /v1/models` answers; raises if the process died or the deadline passed."""
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise LocalServerError(
                f"the llama.cpp server exited with code {self._proc.returncode} before it was ready "
                f"(log {self.log_path}):\n{_log_tail(self.log_path)}"
            )
        if _answers(self.base_url + "/models"):
            self.startup_s = time.monotonic() - self._started_at
            return True
        if time.monotonic() - self._started_at > self.startup_timeout_s:
            raise LocalServerError(
                f"the llama.cpp server did not answer {self.base_url}/models within {self.startup_timeout_s:.0f} s "
                f"(log {self.log_path}):\n{_log_tail(self.log_path)}"
            )
        return False

    def start(self) -> LocalServer:
        try:
            self._launch()
            while not self._ready():
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    async def astart(self) -> LocalServer:
        try:
            self._launch()
            while not await asyncio.to_thread(self._ready):
                await asyncio.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def wait(self) -> int:
        """Block until the server exits on its own (an error: it should run until stopped)."""
        assert self._proc is not None, "not started"
        code = self._proc.wait()
        raise LocalServerError(
            f"the llama.cpp server exited with code {code} (log {self.log_path}):\n{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Terminate, then kill after `stop_timeout_s`; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        return _log_tail(self.log_path, lines)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()
