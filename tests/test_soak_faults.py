"""Fault soak: ~2,000 HTTP calls through the real client stack (`build_client`, the openai SDK)
and `runner.run`, with 20% of the attempts answered by a fault of every kind the LLM layer
handles. The run must end with every unit finished or failed with a typed reason, a results table
with exactly the planned rows of the finished units, and no logical call tried more often than
the retry policy allows.

A fault is chosen per attempt from a hash of (request body, attempt number), so a call's fate does
not depend on thread timing. Identical bodies are attempts of one logical call (a retry resends
the same body; a re-ask is a new body). PERSONASIM_SOAK_CALLS scales the run (default 2000).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from core_fixtures import make_module, make_persona
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.inputs.criteria import derive_criteria
from personasim.llm.clients import build_client
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.records.transcript import load_transcript
from personasim.run.config import RunConfig
from personasim.run.runner import run
from scripted_answers import scripted_answer

pytestmark = pytest.mark.slow

SOAK_CALLS = int(os.environ.get("PERSONASIM_SOAK_CALLS", "2000"))
TIME_LIMIT_S = 80.0
STEPS = 8
CALLS_PER_UNIT = STEPS + 1 + 13  # steps, reflection, one call per judge criterion
MAX_ATTEMPTS = 4
CLIENT_TIMEOUT_S = 0.5
# Share of attempts per fault (20% in all). Transient ones are retried; the others end the call.
FAULTS: dict[str, float] = {
    "rate_limited": 0.04, "server_error_500": 0.03, "server_error_503": 0.03, "dropped": 0.02, "timeout": 0.015,
    "invalid_json": 0.03, "truncated": 0.015, "refused": 0.015, "quota": 0.005,
}  # fmt: skip
TYPED_UNIT_ERRORS = ("QuotaExceeded", "TruncatedError", "RefusalError", "StructuredOutputError", "RetriesExhausted")
TYPED_GRADE_ERRORS = ("TruncatedError", "RefusalError", "StructuredOutputError")


def answer(body: dict) -> dict:
    """The scripted answer, marked with the request's seed: samples of one persona x module then
    differ, and so do their judge requests (one body = one logical call holds)."""
    good = scripted_answer(body["messages"])
    if "takeaway" in good:
        good["takeaway"] += f" (seed {body.get('seed')})"
    return good


def fault_reply(kind: str, body: dict) -> Reply:
    good = answer(body)
    return {
        "rate_limited": lambda: Reply.rate_limited(retry_after=0.01),
        "server_error_500": lambda: Reply.server_error(500),
        "server_error_503": lambda: Reply.server_error(503),
        "dropped": Reply.drop_connection,
        "timeout": lambda: Reply.timeout(CLIENT_TIMEOUT_S * 3),
        "invalid_json": lambda: Reply.ok('{"takeaway": "I think this is', finish_reason="stop"),
        "truncated": lambda: Reply.truncated('{"takeaway": "cut off'),
        "refused": lambda: Reply.refused("I can't help with that."),
        "quota": Reply.quota_exceeded,
    }.get(kind, lambda: Reply.json(good))()


class FaultInjector:
    """The server's responder: picks each attempt's fate and counts what it did."""

    def __init__(self, seed: str = "soak") -> None:
        self.seed = seed
        self.attempts: Counter[str] = Counter()  # body digest -> attempts seen
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    def fate(self, digest: str, attempt: int) -> str:
        draw = int.from_bytes(hashlib.sha256(f"{self.seed}|{digest}|{attempt}".encode()).digest()[:8], "big") / 2**64
        for kind, share in FAULTS.items():
            if draw < share:
                return kind
            draw -= share
        return "ok"

    def __call__(self, body: dict) -> Reply:
        digest = hashlib.sha256(repr(body).encode()).hexdigest()
        with self.lock:
            self.attempts[digest] += 1
            kind = self.fate(digest, self.attempts[digest])
            self.injected[kind] += 1
        return fault_reply(kind, body)


def soak_settings(server: FakeOpenAIServer) -> LLMSettings:
    return LLMSettings(
        base_url=server.base_url, model="fake-model", api_key_env="PERSONASIM_SOAK_NO_KEY", mode="live",
        concurrency=16, timeout_s=CLIENT_TIMEOUT_S, max_attempts=MAX_ATTEMPTS, backoff_initial_s=0.005,
        max_wait_s=0.05, total_timeout_s=20.0, max_reasks=2,
    )  # fmt: skip


def soak_inputs() -> tuple[list, list, int]:
    titles = {
        17: "Assistant Director of Finance",
        18: "Primary Care Practice Manager",
        19: "Information Governance Lead",
        21: "Chief Allied Health Professional",
    }
    personas = [make_persona(number, title) for number, title in titles.items()]
    modules = [make_module("v1", steps=STEPS), make_module("v2", steps=STEPS)]
    # Faults add attempts (retries, re-asks) and remove more (failed units stop early): ~0.9x.
    samples = max(1, round(SOAK_CALLS / 0.9 / CALLS_PER_UNIT / (len(personas) * len(modules))))
    return personas, modules, samples


async def soak_run(server: FakeOpenAIServer, out: Path):  # type: ignore[no-untyped-def]
    personas, modules, samples = soak_inputs()
    settings = soak_settings(server)
    client = build_client(settings)
    config = RunConfig(run_id="soak", out_dir=out, samples=samples)
    try:
        run_call = run(
            RoleClients(client, client),
            personas,
            modules,
            roles=ModelRoles.of(settings),
            prompts=Prompts(),
            config=config,
        )
        return await asyncio.wait_for(run_call, TIME_LIMIT_S), personas, modules, samples
    finally:
        await client.aclose()


def planned_rows(personas: list, modules: list, samples: int) -> dict[str, set[str]]:
    from personasim.records.identity import unit_id_for

    return {
        unit_id_for(p, m, s): {c.id for c in derive_criteria(p, m)} for p in personas for m in modules
        for s in range(samples)
    }  # fmt: skip


async def test_two_thousand_calls_with_one_in_five_failing(tmp_path: Path) -> None:
    injector = FaultInjector()
    started = time.monotonic()
    with FakeOpenAIServer() as server:
        server.responder = injector
        outcome, personas, modules, samples = await soak_run(server, tmp_path)
        seen = len(server.chat_requests)
    elapsed = time.monotonic() - started
    plan = planned_rows(personas, modules, samples)

    # The soak really soaked: the planned volume, 20% faults of every kind, within the time bound.
    assert seen >= 0.8 * SOAK_CALLS and elapsed < TIME_LIMIT_S + 5, (seen, elapsed)
    faulty = sum(n for kind, n in injector.injected.items() if kind != "ok")
    assert 0.15 < faulty / seen < 0.25, injector.injected
    if SOAK_CALLS >= 1500:
        assert set(FAULTS) <= set(injector.injected), injector.injected

    # Every unit ended, finished or failed with a typed reason.
    statuses = outcome.manifest.units
    assert set(statuses) == set(plan) and set(statuses.values()) <= {"finished", "failed"}
    for unit_id, error in outcome.failed.items():
        assert statuses[unit_id] == "failed" and error.startswith(TYPED_UNIT_ERRORS), (unit_id, error)
    assert set(outcome.failed) == {u for u, s in statuses.items() if s == "failed"}
    finished = {u for u, s in statuses.items() if s == "finished"}
    assert finished, "no unit survived: the faults are not being handled"

    # The table: exactly the planned rows of the finished units, none twice, none of the failed.
    frame = outcome.frame
    keys = list(zip(frame["unit_id"], frame["criterion_id"]))
    assert len(keys) == len(set(keys)), "duplicate rows"
    assert set(keys) == {(u, c) for u in finished for c in plan[u]}
    graded_errors = frame["error"].dropna()
    assert all(e.startswith(TYPED_GRADE_ERRORS) for e in graded_errors), set(graded_errors)
    if SOAK_CALLS >= 1500:  # invalid answers were re-asked and then used, not failed
        turns = [t for u in finished for t in load_transcript(tmp_path / "soak" / "transcripts" / f"{u}.json").turns]
        assert any(t.reasks for t in turns)

    # Retries stayed within the policy: no logical call (one request body) tried more than allowed,
    # and the transient faults were in fact retried.
    assert max(injector.attempts.values()) <= MAX_ATTEMPTS
    assert any(n > 1 for n in injector.attempts.values())
