"""A refused or unreachable endpoint fails fast: one attempt, no retries, the run stopped with
`cannot reach BASE_URL: ...; check --base-url` and no run folder left behind. Before a model's first
call, an endpoint that lists its models must list that one (else the error names those it lists);
no listing, or `--no-model-check`, skips the check quietly."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from module_files import three_seed_personas, write_module
from personasim.cli import app
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy, TransientFailure
from personasim.llm.openai_transport import OpenAITransport, unreachable
from personasim.llm.types import ChatOptions, ModelNotListed, RetriesExhausted, Unreachable
from scripted_answers import scripted_answer

REPO = Path(__file__).resolve().parents[1]
MSGS = [{"role": "user", "content": "hello"}]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sends(monkeypatch) -> list[str]:
    """Every chat request the OpenAI transport tries to send (its body, as JSON)."""
    seen: list[str] = []
    original = OpenAITransport.send

    async def counted(self: OpenAITransport, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        seen.append(json.dumps(body, sort_keys=True))
        return await original(self, body, timeout_s)

    monkeypatch.setattr(OpenAITransport, "send", counted)
    return seen


def run_args(tmp_path: Path, base_url: str, *extra: str) -> list[str]:
    personas = three_seed_personas(tmp_path / "personas")
    module = write_module(tmp_path / "modules", "v1", 2)
    return ["run", "--personas", str(personas), "--module", str(module), "--base-url", base_url, "--model",
            "fake-model", "--mode", "live", "--run-id", "r", "--out", str(tmp_path / "out"), *extra]  # fmt: skip


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("model_check", "sequential"), [(True, False), (False, True), (False, False)],
    ids=["model-check", "no-model-check-sequential", "no-model-check-concurrent"],
)  # fmt: skip
def test_a_refused_connection_stops_the_run_after_one_attempt(tmp_path, sends, model_check, sequential,
                                                              monkeypatch) -> None:  # fmt: skip
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    flags = ([] if model_check else ["--no-model-check"]) + (["--sequential"] if sequential else ["--concurrent"])
    result = CliRunner().invoke(app, run_args(tmp_path, base_url, "--concurrency", "8", *flags))
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result.output)
    assert line.startswith(f"error: cannot reach {base_url}: ") and line.endswith("; check --base-url"), line
    assert "ConnectionRefusedError" in line and "Traceback" not in result.output
    assert "retrying" not in result.output
    # The model check's GET is refused first; without it, the first unit's first call is (and, when
    # concurrent, those of the units already under way), each tried once, and nothing follows.
    if model_check:
        assert sends == []
    else:
        assert len(sends) == len(set(sends)) and (len(sends) == 1 if sequential else 1 <= len(sends) <= 3)
    assert not (tmp_path / "out" / "r").exists()


async def test_the_first_refusal_is_not_retried_but_a_later_one_is() -> None:
    class Flaky:
        where = "http://127.0.0.1:1/v1"

        def __init__(self, *outcomes: Any) -> None:
            self.outcomes, self.sent = list(outcomes), 0

        async def send(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
            self.sent += 1
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        def exhausted_hint(self, reason: str, structured_output: str) -> str:
            return ""

        async def aclose(self) -> None:
            pass

    refused = TransientFailure("connection error: ConnectionRefusedError: refused", unreachable=True)
    ok = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "model": "m"}
    policy = RetryPolicy(max_attempts=3, initial_wait_s=0.0, max_wait_s=0.0)
    never = Flaky(refused, ok)
    with pytest.raises(Unreachable, match=r"cannot reach http://127.0.0.1:1/v1: .*; check --judge-base-url") as info:
        await CallWrapper(never, retry=policy, flag_prefix="--judge-").complete(MSGS, ChatOptions(model="m"))
    assert never.sent == 1 and info.value.attempts == 1

    restarting = Flaky(ok, refused, refused, ok)  # answered once: a refusal is now a server restarting
    client = CallWrapper(restarting, retry=policy)
    await client.complete(MSGS, ChatOptions(model="m"))
    assert (await client.complete(MSGS, ChatOptions(model="m"))).attempts == 3 and restarting.sent == 4
    gone = Flaky(ok, refused, refused, refused)
    client = CallWrapper(gone, retry=policy)
    await client.complete(MSGS, ChatOptions(model="m"))
    with pytest.raises(RetriesExhausted):
        await client.complete(MSGS, ChatOptions(model="m"))


def test_refused_and_dns_failures_are_told_apart_from_timeouts() -> None:
    def chain(root: BaseException) -> BaseException:
        try:
            try:
                raise root
            except BaseException as inner:
                raise TimeoutError("connect timed out") from inner  # how the aiohttp transport wraps them
        except TimeoutError as outer:
            return outer

    assert unreachable(chain(ConnectionRefusedError(111, "Connect call failed")))
    assert unreachable(chain(socket.gaierror(-2, "Name or service not known")))
    assert not unreachable(TimeoutError("read timed out")) and not unreachable(chain(ConnectionResetError(104, "x")))


def test_a_model_the_server_does_not_list_is_an_error_naming_those_it_lists(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(models=("qwen2.5-7b", "llama-3.1-8b")) as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        result = CliRunner().invoke(app, run_args(tmp_path, server.base_url))
        assert result.exit_code == 1, result.output
        (line,) = error_lines(result.output)
        assert f"{server.base_url} does not serve model 'fake-model': it lists qwen2.5-7b, llama-3.1-8b" in line
        assert "check --model" in line and "--no-model-check" in line
        assert server.chat_requests == [] and not (tmp_path / "out" / "r").exists()
        assert [r.path for r in server.requests] == ["/v1/models"]  # one check for every unit's calls

        unchecked = CliRunner().invoke(app, run_args(tmp_path, server.base_url, "--no-model-check"))
        assert unchecked.exit_code == 0, unchecked.output
        assert all(r.method == "POST" for r in server.requests[1:])


@pytest.mark.parametrize(
    "models", [None, ("fake-model",), ("fake-model:latest",)], ids=["no-listing", "listed", "ollama"]
)
def test_a_listed_model_or_no_listing_runs_quietly(tmp_path, models, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(models=models) as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        result = CliRunner().invoke(app, run_args(tmp_path, server.base_url, "--concurrency", "8"))
        assert result.exit_code == 0, result.output
        assert [r.path for r in server.requests if r.method == "GET"] == ["/v1/models"]


async def test_the_model_check_is_one_request_per_model_and_its_verdict_is_kept(openai_server) -> None:
    from clients import openai_client

    openai_server.models = ("a",)
    client = openai_client(api_key="sk-test", base_url=openai_server.base_url)
    client.check_models = True
    async with client:
        await client.complete(MSGS, ChatOptions(model="a"))
        await client.complete(MSGS, ChatOptions(model="a"))
        for _ in range(2):
            with pytest.raises(ModelNotListed, match="it lists a;") as info:
                await client.complete(MSGS, ChatOptions(model="b"))
    assert info.value.listed == ["a"] and info.value.model == "b"
    assert [r.path for r in openai_server.requests if r.method == "GET"] == ["/v1/models", "/v1/models"]
    assert len(openai_server.chat_requests) == 2


def test_the_judges_endpoint_and_model_are_checked_before_the_learner_starts(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(models=("fake-model",)) as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
        unknown = CliRunner().invoke(app, run_args(tmp_path, server.base_url, "--judge-model", "gpt-judge"))
        assert unknown.exit_code == 1, unknown.output
        (line,) = error_lines(unknown.output)
        assert "does not serve model 'gpt-judge': it lists fake-model; check --judge-model" in line

        judge_url = f"http://127.0.0.1:{closed_port()}/v1"
        away = CliRunner().invoke(app, run_args(tmp_path, server.base_url, "--judge-base-url", judge_url))
        assert away.exit_code == 1, away.output
        (line,) = error_lines(away.output)
        assert line.startswith(f"error: cannot reach {judge_url}: ") and line.endswith("; check --judge-base-url")
        assert server.chat_requests == [] and not (tmp_path / "out" / "r").exists()


def test_in_auto_mode_the_first_live_call_checks_and_stops_the_run(tmp_path, monkeypatch) -> None:
    # Auto mode may need no live call (recordings answer), so the check waits for the first one.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recordings = tmp_path / "recordings"
    with FakeOpenAIServer(models=("other-model",)) as server:
        args = run_args(tmp_path, server.base_url, "--mode", "auto", "--recordings-dir", str(recordings))
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        (line,) = error_lines(result.output)
        assert "does not serve model 'fake-model': it lists other-model; check --model" in line
        assert server.chat_requests == [] and len(server.requests) == 1
    assert not (tmp_path / "out" / "r").exists() and not recordings.exists()


def test_eval_stops_at_an_unreachable_endpoint_named_by_the_flags(tmp_path, sends, monkeypatch) -> None:
    # Every suite would call the endpoint the flags name: the first refusal stops the rest.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    suites = []
    for name in ("first", "second", "third"):
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(f"name: {name}\npersonas: [{REPO / 'personas'}]\nmodules: [{REPO / 'modules/lotus/v1.md'}]\n",
                         encoding="utf-8")  # fmt: skip
        suites.append(str(suite))
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    result = CliRunner().invoke(app, ["eval", *suites, "--base-url", base_url, "--model", "fake-model", "--mode",
                                      "live", "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1
    assert len(error_lines(result.stderr)) == 1 and "cannot reach" in error_lines(result.stderr)[0]
    assert "the other 2 suites would call the same endpoint: not run" in result.stderr
    assert len(sends) <= 1
