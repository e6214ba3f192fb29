"""`LocalServer` lifecycle against a fake server script standing in for `python -m llama_cpp.server`."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from personasim.llm import local_server
from personasim.llm.local import LocalServerError
from personasim.llm.local_server import LocalServer

FAKE_SERVER = r"""
import argparse, http.server, json, os, signal, sys, time

parser = argparse.ArgumentParser()
for flag in ("--model", "--host", "--n_ctx", "--n_threads", "--n_threads_batch", "--chat_format", "--model_alias",
             "--logits_all"):
    parser.add_argument(flag)
parser.add_argument("--port", type=int)
parser.add_argument("--mode", default="ok")
args = parser.parse_args()
print("fake server starting", flush=True)
if args.mode == "die":
    print("boom: cannot load model", flush=True)
    sys.exit(3)
if args.mode == "never":
    time.sleep(60)
if args.mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(0.3)  # like a model load: the port is not open at once

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": args.model_alias}], "argv": sys.argv[1:]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.HTTPServer((args.host, args.port), Handler).serve_forever()
"""


@pytest.fixture()
def fake(tmp_path: Path):
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def make(mode: str = "ok", **kwargs: object) -> LocalServer:
        kwargs.setdefault("startup_timeout_s", 20.0)
        return LocalServer(
            model,
            command=[sys.executable, str(script)],
            extra_args=["--mode", mode],
            log_path=tmp_path / "server.log",
            **kwargs,  # type: ignore[arg-type]
        )

    return make


def _get_models(server: LocalServer) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.base_url + "/models", timeout=5) as response:
        return json.loads(response.read())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); LocalServer reaps its child, so this means alive
    return False


def test_starts_answers_and_stops_on_exit(fake) -> None:
    with fake(n_ctx=1234, n_threads=3, model_alias="tiny") as server:
        assert server.running and server.startup_s is not None and server.startup_s > 0.2
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        body = _get_models(server)
        pid = server.pid
    assert body["data"] == [{"id": "tiny"}]
    argv = body["argv"]
    assert argv[argv.index("--n_ctx") + 1] == "1234" and argv[argv.index("--n_threads") + 1] == "3"
    assert argv[argv.index("--n_threads_batch") + 1] == "3"  # an explicit n_threads caps prompt reading too
    assert argv[argv.index("--logits_all") + 1] == "false"  # no per-token logits kept: memory and time
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == str(server.port)
    assert not server.running and pid is not None and _gone(pid)
    assert "fake server starting" in server.log_tail()


def test_stops_when_the_body_raises(fake) -> None:
    server = fake()
    with pytest.raises(ValueError), server:
        pid = server.pid
        raise ValueError("caller failed")
    assert pid is not None and _gone(pid)


def test_stops_on_keyboard_interrupt(fake) -> None:
    server = fake()
    with pytest.raises(KeyboardInterrupt), server:
        pid = server.pid
        raise KeyboardInterrupt
    assert pid is not None and _gone(pid)


def test_early_death_is_a_clear_error_with_the_log_tail(fake) -> None:
    server = fake("die")
    with pytest.raises(LocalServerError, match=r"(?s)exited with code 3 before it was ready.*boom: cannot load model"):
        server.start()
    assert not server.running


def test_startup_timeout_stops_the_process(fake) -> None:
    server = fake("never", startup_timeout_s=1.0)
    with (
        pytest.raises(LocalServerError, match=r"(?s)did not answer .*/v1/models within 1 s.*fake server starting"),
        server,
    ):
        pass
    assert not server.running


def test_a_server_ignoring_sigterm_is_killed(fake) -> None:
    server = fake("stubborn", stop_timeout_s=0.5).start()
    pid = server.pid
    server.stop()
    assert pid is not None and _gone(pid)
    server.stop()  # twice is harmless


async def test_async_context_manager(fake) -> None:
    async with fake(model_alias="async") as server:
        assert _get_models(server)["data"] == [{"id": "async"}]
        pid = server.pid
    assert pid is not None and _gone(pid)


def test_missing_model_file_is_reported_before_launch(fake, tmp_path: Path) -> None:
    server = fake()
    server.model_path = tmp_path / "nope.gguf"
    with pytest.raises(LocalServerError, match="model file not found.*personasim local pull"):
        server.start()


def test_missing_llama_cpp_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        local_server.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a),
    )
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(LocalServerError, match=r"needs llama_cpp.*pip install 'personasim\[local\]'"):
        LocalServer(tmp_path / "m.gguf").start()


def test_for_model_uses_the_registry_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_server, "pull", lambda spec, cache_dir, on_progress=None: tmp_path / spec.filename)
    server = LocalServer.for_model("smollm2-135m", cache_dir=tmp_path, command=["fake"])
    args = server.args()
    assert args[:1] == ["fake"] and args[args.index("--model") + 1] == str(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert args[args.index("--n_ctx") + 1] == "8192" and args[args.index("--model_alias") + 1] == "smollm2-135m"
    assert LocalServer.for_model("smollm2-135m", n_ctx=999, command=["fake"]).n_ctx == 999


def test_thread_defaults_follow_llama_cpp_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_server, "available_cores", lambda: 8)
    server = LocalServer(tmp_path / "m.gguf", port=1, command=["fake"])
    assert (server.n_threads, server.n_threads_batch) == (4, 8)
    monkeypatch.setattr(local_server, "available_cores", lambda: 1)
    assert LocalServer(tmp_path / "m.gguf", port=1, command=["fake"]).n_threads == 1


def test_threads_env_sets_both_thread_counts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_server, "available_cores", lambda: 8)
    monkeypatch.setenv(local_server.THREADS_ENV, "2")
    server = LocalServer(tmp_path / "m.gguf", port=1, command=["fake"])
    assert (server.n_threads, server.n_threads_batch) == (2, 2)
    assert LocalServer(tmp_path / "m.gguf", port=1, n_threads=3, command=["fake"]).n_threads == 3  # explicit wins
    monkeypatch.setenv(local_server.THREADS_ENV, "two")
    with pytest.raises(local_server.LocalServerError, match="PERSONASIM_LOCAL_THREADS='two'"):
        LocalServer(tmp_path / "m.gguf", port=1, command=["fake"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_server_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """A run killed with SIGKILL cannot run its cleanup; the server must not outlive it."""
    import signal
    import subprocess
    import time

    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    parent_code = (
        "import sys, time\n"
        "from personasim.llm.local_server import LocalServer\n"
        f"s = LocalServer({str(tmp_path / 'model.gguf')!r}, command=[sys.executable, {str(script)!r}],"
        f" log_path={str(tmp_path / 'server.log')!r}, startup_timeout_s=20)\n"
        "s.start()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("the server outlived its SIGKILLed parent")
