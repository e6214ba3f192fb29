"""Batch rounds: what the harness itself spends on a round, apart from the engine.

    .venv/bin/python bench/batch_rounds.py                  # 10,000 requests; seed suite x 4 samples
    .venv/bin/python bench/batch_rounds.py --requests 50000 --samples 8

1. One round of `--requests` requests (each a real first-step request of a seed persona, ~6 KB,
   made distinct by its sample index): building it (`write_round`: JSONL lines, files, state),
   ingesting its answers (`collect_round`: output files read once, matched by custom_id, failures
   counted) and the next pass's use of them (`RoundClient` answering each
   request, the call store keeping it as a live call), each timed, with the time per request.
2. A whole batch run (the seed suite x `--samples`) against the Batch API test double answering
   instantly (in this process, at its completing poll): each round's wall time split into the
   harness's part (the pass over the call store, writing the round, collecting it) and the
   engine's (uploads, polls, downloads; here also the double's own answering).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import NO_KEY_ENV, machine, seed_suite
from batch_answers import responder
from doubles.batch_server import FakeBatchServer
from personasim.llm.batch import rounds as rounds_module
from personasim.llm.batch.lines import PendingRequest
from personasim.llm.batch.round_client import RoundClient, group_of
from personasim.llm.batch.types import BatchSettings, BatchState
from personasim.llm.call_store import CallStore
from personasim.llm.chat_format import chat_request
from personasim.llm.replay import fast_request_key
from personasim.llm.settings import LLMSettings, sample_options
from personasim.prompts import Prompts
from personasim.records.transcript import StepReaction
from personasim.run import batch_run
from personasim.run.config import RunConfig
from personasim.run.session import open_run
from scripted_answers import scripted_text

SETTINGS = LLMSettings(model="fake-model", base_url="http://127.0.0.1:9/v1", api_key_env=NO_KEY_ENV)


def requests_for(count: int) -> list[tuple[list[dict], object]]:
    """`count` distinct first-step requests (messages, options) of the seed personas."""
    personas, modules = seed_suite()
    prompts = Prompts()
    made = []
    for n in range(count):
        persona, module = personas[n % len(personas)], modules[n % len(modules)]
        messages = [{"role": "system", "content": prompts.persona_system(persona)},
                    {"role": "user", "content": prompts.step_turn(persona, module, 1)}]  # fmt: skip
        made.append((messages, sample_options(SETTINGS, n)))
    return made


def answer_line(n: int, key: str, messages: list[dict]) -> bytes:
    body = {"id": f"c{n}", "object": "chat.completion", "model": "fake-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": scripted_text(messages)}}],
            "usage": {"prompt_tokens": 1500, "completion_tokens": 200}}  # fmt: skip
    line = {"id": f"r{n}", "custom_id": key, "response": {"status_code": 200, "request_id": f"q{n}", "body": body},
            "error": None}  # fmt: skip
    return (json.dumps(line) + "\n").encode()


async def one_round(count: int, root: Path) -> dict[str, float]:
    made = requests_for(count)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pending = {}
    for messages, options in made:
        key = fast_request_key(messages, options, StepReaction)
        pending[key] = PendingRequest(key, chat_request(messages, options, StepReaction), group_of(SETTINGS), "learner")
    timings["note requests (keys, bodies)"] = time.perf_counter() - started

    state = BatchState(engine="command")
    started = time.perf_counter()
    round_ = rounds_module.write_round(root, state, pending, BatchSettings(engine="command", command="x {input} {output}"),
                                       {"learner": SETTINGS, "judge": SETTINGS})  # fmt: skip
    timings["write round (JSONL, files, state)"] = time.perf_counter() - started
    folder = rounds_module.batch_dir(root) / round_.folder
    for submission in round_.submissions:  # the engine's part, not timed: answers in shuffled order
        keys = [json.loads(line)["custom_id"] for line in (folder / submission.input_file).read_bytes().splitlines()]
        by_key = {fast_request_key(m, o, StepReaction): m for m, o in made}
        lines = [answer_line(n, key, by_key[key]) for n, key in enumerate(keys)]
        random.Random(0).shuffle(lines)
        name = submission.input_file.removesuffix(".jsonl") + ".output.jsonl"
        (folder / name).write_bytes(b"".join(lines))
        submission.output_file, submission.state = name, "completed"

    started = time.perf_counter()
    answers, _ = rounds_module.collect_round(root, state, round_)
    timings["collect (read outputs, match custom_ids)"] = time.perf_counter() - started

    started = time.perf_counter()
    client = CallStore(RoundClient("learner", SETTINGS, answers, state, {}), root / "calls", replay_all=True)
    for messages, options in made:
        await client.complete(messages, options, StepReaction)
    timings["next pass: answer + keep each call"] = time.perf_counter() - started
    return timings


class Phases:
    """Wall time per phase of a batch run, by wrapping the driver's steps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.rounds = 0

    def wrap(self, owner: object, name: str, phase: str) -> None:
        inner = getattr(owner, name)
        if asyncio.iscoroutinefunction(inner):

            async def timed_async(*args, **kwargs):  # type: ignore[no-untyped-def]
                started = time.perf_counter()
                try:
                    return await inner(*args, **kwargs)
                finally:
                    self.seconds[phase] += time.perf_counter() - started

            setattr(owner, name, timed_async)
        else:

            def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
                started = time.perf_counter()
                try:
                    return inner(*args, **kwargs)
                finally:
                    self.seconds[phase] += time.perf_counter() - started

            setattr(owner, name, timed)


def whole_run(samples: int, root: Path) -> tuple[dict[str, float], float, int, int]:
    phases = Phases()
    phases.wrap(batch_run, "run_pass", "harness: pass over the call store")
    phases.wrap(batch_run, "write_round", "harness: write round")
    phases.wrap(batch_run, "collect_round", "harness: collect round")
    phases.wrap(batch_run, "_finish", "harness: table and manifest")
    personas, modules = seed_suite()
    with FakeBatchServer(models=("fake-model",), polls_to_complete=1) as server:
        server.responder = responder
        learner = dict(base_url=server.base_url, model="fake-model", api_key_env=NO_KEY_ENV)
        config = RunConfig(run_id="bench", out_dir=root, samples=samples, learner=learner,
                           batch={"engine": "openai", "poll_s": 0.001})  # fmt: skip
        started = time.perf_counter()
        with open_run(config, personas, modules) as opened:
            outcome = asyncio.run(batch_run.execute_batch(opened))
        wall = time.perf_counter() - started
    return dict(phases.seconds), wall, outcome.manifest.batch["rounds"], outcome.manifest.batch["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        timings = asyncio.run(one_round(args.requests, Path(tmp) / "round"))
        print(f"\none round of {args.requests:,} requests:")
        for phase, seconds in timings.items():
            print(f"  {phase:<44} {seconds:7.2f} s  {seconds / args.requests * 1e3:6.3f} ms/request")
        total = sum(timings.values())
        print(f"  {'in all':<44} {total:7.2f} s  {total / args.requests * 1e3:6.3f} ms/request")

        phases, wall, rounds, requests = whole_run(args.samples, Path(tmp) / "run")
        harness = sum(phases.values())
        print(f"\nseed suite x {args.samples} samples as a batch run: {requests:,} requests in {rounds} rounds, "
              f"{wall:.1f} s wall ({wall / rounds:.2f} s a round)")  # fmt: skip
        for phase, seconds in sorted(phases.items()):
            print(f"  {phase:<36} {seconds:7.2f} s  {seconds / wall:6.1%} of wall")
        print(
            f"  {'harness in all':<36} {harness:7.2f} s  {harness / wall:6.1%} of wall; the rest, "
            f"{wall - harness:.2f} s, is the engine (HTTP to the double, which answers in this process)"
        )


if __name__ == "__main__":
    main()
