"""Fault soak: over 2,000 calls through the whole run path (`session.open_run` / `execute`: the
model check, the run's call store, `build_role_clients`, the openai SDK over HTTP, `runner.run`),
with 20% of the HTTP attempts answered by a fault: rate limits (429 with Retry-After), HTTP 500 and
503, dropped connections, timeouts, invalid JSON and answers cut off at max_tokens. Transient faults
are retried, invalid and truncated answers re-asked, so every unit must finish: no row lost or
duplicated, no grade failed, every completed call kept in `RUN/calls/`, and the table equal to a
fault-free run of the same inputs and seeds (but for the token columns: a re-ask is billed).

A fault is chosen per attempt from a hash of (request body, attempt number), so a call's fate does
not depend on thread timing. Identical bodies are attempts of one logical call (a retry resends
the same body; a re-ask is a new body). PERSONASIM_SOAK_CALLS scales the run (default 2000); the
test prints the figures `bench/README.md` quotes (run it with `-s`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from core_fixtures import make_module, make_persona
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.inputs.criteria import derive_criteria
from personasim.llm.replay import recording_files
from personasim.records.transcript import load_transcript
from personasim.run.config import RunConfig
from personasim.run.session import execute, open_run
from scripted_answers import scripted_answer

pytestmark = pytest.mark.slow

SOAK_CALLS = int(os.environ.get("PERSONASIM_SOAK_CALLS", "2000"))
HANG_GUARD_S = 900.0  # a hang guard only: nothing below depends on how long anything takes
STEPS = 8
CALLS_PER_UNIT = STEPS + 1 + 13  # steps, reflection, one call per judge criterion
MAX_ATTEMPTS = 6
MAX_REASKS = 3
CLIENT_TIMEOUT_S = 5.0  # a timeout fault answers after 30 s, and the server wakes it when it stops
# Share of attempts per fault (20% in all). The first five are retried; the last two re-asked.
FAULTS: dict[str, float] = {
    "rate_limited": 0.04, "server_error_500": 0.03, "server_error_503": 0.03, "dropped": 0.02, "timeout": 0.015,
    "invalid_json": 0.035, "truncated": 0.03,
}  # fmt: skip
REASK_MARK = "That answer could not be used"
USAGE_COLUMNS = ["prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd"]


def answer(body: dict) -> dict:
    """The scripted answer, marked with the request's seed: samples of one persona x module then
    differ, and so do their judge requests (one body = one logical call holds)."""
    good = scripted_answer(body["messages"])
    if "takeaway" in good:
        good["takeaway"] += f" (seed {body.get('seed')})"
    return good


def fault_reply(kind: str, body: dict) -> Reply:
    return {
        "rate_limited": lambda: Reply.rate_limited(retry_after=0.01),
        "server_error_500": lambda: Reply.server_error(500),
        "server_error_503": lambda: Reply.server_error(503),
        "dropped": Reply.drop_connection,
        "timeout": lambda: Reply.timeout(30.0),
        "invalid_json": lambda: Reply.ok('{"takeaway": "I think this is', finish_reason="stop"),
        "truncated": lambda: Reply.truncated('{"takeaway": "cut off'),
    }.get(kind, lambda: Reply.json(answer(body)))()


class FaultInjector:
    """The server's responder: picks each attempt's fate and counts what it did."""

    def __init__(self, faults: dict[str, float], seed: str = "soak") -> None:
        self.faults, self.seed = faults, seed
        self.attempts: Counter[str] = Counter()  # body digest -> attempts seen
        self.injected: Counter[str] = Counter()
        self.reasks = 0  # logical calls that are re-asks (a feedback message last)
        self.lock = threading.Lock()

    def fate(self, digest: str, attempt: int) -> str:
        draw = int.from_bytes(hashlib.sha256(f"{self.seed}|{digest}|{attempt}".encode()).digest()[:8], "big") / 2**64
        for kind, share in self.faults.items():
            if draw < share:
                return kind
            draw -= share
        return "ok"

    def __call__(self, body: dict) -> Reply:
        digest = hashlib.sha256(repr(body).encode()).hexdigest()
        with self.lock:
            self.attempts[digest] += 1
            if self.attempts[digest] == 1 and body["messages"][-1]["content"].startswith(REASK_MARK):
                self.reasks += 1
            kind = self.fate(digest, self.attempts[digest])
            self.injected[kind] += 1
        return fault_reply(kind, body)


def soak_inputs() -> tuple[list, list, int]:
    titles = {
        17: "Assistant Director of Finance",
        18: "Primary Care Practice Manager",
        19: "Information Governance Lead",
        21: "Chief Allied Health Professional",
    }
    personas = [make_persona(number, title) for number, title in titles.items()]
    modules = [make_module("v1", steps=STEPS), make_module("v2", steps=STEPS)]
    samples = max(1, math.ceil(SOAK_CALLS / CALLS_PER_UNIT / (len(personas) * len(modules))))
    return personas, modules, samples


def soak_config(server: FakeOpenAIServer, out: Path, run_id: str, samples: int) -> RunConfig:
    learner = dict(
        base_url=server.base_url, model="fake-model", api_key_env="PERSONASIM_SOAK_NO_KEY", mode="live",
        concurrency=16, timeout_s=CLIENT_TIMEOUT_S, max_attempts=MAX_ATTEMPTS, backoff_initial_s=0.005,
        max_wait_s=0.05, total_timeout_s=300.0, max_reasks=MAX_REASKS,
    )  # fmt: skip
    return RunConfig(run_id=run_id, out_dir=out, samples=samples, learner=learner)


async def soak_run(injector: FaultInjector, out: Path, run_id: str):  # type: ignore[no-untyped-def]
    personas, modules, samples = soak_inputs()
    with FakeOpenAIServer(models=("fake-model",)) as server:
        server.responder = injector
        started = time.monotonic()
        with open_run(soak_config(server, out, run_id, samples), personas, modules) as opened:
            outcome = await asyncio.wait_for(execute(opened), HANG_GUARD_S)
        elapsed = time.monotonic() - started
        seen = len(server.chat_requests)
    return outcome, seen, elapsed, (personas, modules, samples)


def planned_rows(personas: list, modules: list, samples: int) -> dict[str, set[str]]:
    from personasim.records.identity import unit_id_for

    return {
        unit_id_for(p, m, s): {c.id for c in derive_criteria(p, m)} for p in personas for m in modules
        for s in range(samples)
    }  # fmt: skip


async def test_two_thousand_calls_with_one_in_five_failing_all_finish_as_without_faults(tmp_path: Path) -> None:
    injector = FaultInjector(FAULTS)
    outcome, seen, elapsed, (personas, modules, samples) = await soak_run(injector, tmp_path, "soak")
    clean_injector = FaultInjector({})
    clean, clean_seen, clean_elapsed, _ = await soak_run(clean_injector, tmp_path, "clean")
    plan = planned_rows(personas, modules, samples)
    logical = len(injector.attempts)
    faulty = sum(n for kind, n in injector.injected.items() if kind != "ok")
    turns = [t for u in plan for t in load_transcript(tmp_path / "soak" / "transcripts" / f"{u}.json").turns]
    print(
        f"\nfault soak: {len(plan)} units, {logical} calls ({injector.reasks} re-asks: {sum(t.reasks for t in turns)} "
        f"learner, {injector.reasks - sum(t.reasks for t in turns)} judge), {seen} HTTP attempts, {faulty} faults "
        f"({faulty / seen:.1%}): {dict(sorted(injector.injected.items()))}; {elapsed:.1f} s "
        f"(fault-free: {len(clean_injector.attempts)} calls, {clean_elapsed:.1f} s)"
    )

    # The soak really soaked: the planned volume, 20% faults of every kind.
    assert clean_seen == len(clean_injector.attempts) >= SOAK_CALLS
    assert logical >= SOAK_CALLS and 0.15 < faulty / seen < 0.25, injector.injected
    if SOAK_CALLS >= 1500:
        assert set(FAULTS) <= set(injector.injected), injector.injected
        assert any(t.reasks for t in turns) and injector.reasks > sum(t.reasks for t in turns)  # both roles

    # Every unit finished and every grade holds a score: nothing failed.
    assert set(outcome.manifest.units) == set(plan) and set(outcome.manifest.units.values()) == {"finished"}
    assert not outcome.failed and outcome.frame["error"].isna().all()

    # The table: exactly the planned rows, none twice, equal to the fault-free run's.
    frame = outcome.frame
    keys = list(zip(frame["unit_id"], frame["criterion_id"]))
    assert len(keys) == len(set(keys)), "duplicate rows"
    assert set(keys) == {(u, c) for u in plan for c in plan[u]}
    pd.testing.assert_frame_equal(
        frame.drop(columns=["run_id", *USAGE_COLUMNS]), clean.frame.drop(columns=["run_id", *USAGE_COLUMNS])
    )

    # Every completed call was kept (one file per logical call: each eventually completed).
    assert len(recording_files(tmp_path / "soak" / "calls")) == logical

    # Retries stayed within the policy: no logical call (one request body) tried more than allowed,
    # and the transient faults were in fact retried.
    assert max(injector.attempts.values()) <= MAX_ATTEMPTS
    assert any(n > 1 for n in injector.attempts.values())
