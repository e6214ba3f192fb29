"""How a walkthrough's prompt tokens grow with the module's length.

One persona (p17) walks through a generated module of 5, 10, 20 and 40 steps (each step about as
long as a lotus step) through the real client stack and the loopback server. The server reports
scripted usage, so the figures are computed from what the client actually sent: the characters
of every message of every request the server received, / 4 (about 4 characters a token for
English). Every step's request carries the whole conversation so far, so a walkthrough's prompt
tokens grow with the square of its steps; the judge calls carry the transcript once each, so
grading grows linearly. Both history modes are measured: `full` (every step's text stays) and
`recap` (an answered step's text shrinks to one line; the answers stay).

    .venv/bin/python bench/cost_growth.py
    .venv/bin/python bench/cost_growth.py --steps 5 10 20 40 80
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np

from _common import REPO, ServerProcess, live_settings, machine, write_module
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona_parser import load_personas
from personasim.llm.clients import build_client
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.prompts import Prompts
from personasim.run.config import RunConfig
from personasim.run.runner import run

CHARS_PER_TOKEN = 4


async def one_walkthrough(base_url: str, steps: int, history: str, work: Path) -> None:
    persona = [p for p in load_personas([REPO / "personas"]) if p.number == 17]
    module = load_modules([write_module(work / f"m{steps}", steps)])
    settings = live_settings(base_url, concurrency=8, max_tokens=4096)
    config = RunConfig(run_id=f"s{steps}-{history}", out_dir=work / "results", history=history)
    client = build_client(settings)
    try:
        outcome = await run(
            RoleClients(client, client),
            persona,
            module,
            roles=ModelRoles.of(settings),
            prompts=Prompts(),
            config=config,
        )
    finally:
        await client.aclose()
    if outcome.failed:
        raise SystemExit(f"walkthrough failed: {outcome.failed}")


def measure(steps: int, history: str, work: Path) -> dict[str, int]:
    with ServerProcess(0.0) as server:
        asyncio.run(one_walkthrough(server.base_url, steps, history, work))
    chars, kinds = server.stats["prompt_chars"], server.stats["kinds"]
    tokens = {k: sum(c for c, kk in zip(chars, kinds) if kk in k) // CHARS_PER_TOKEN
              for k in (("step", "reflection"), ("judge",))}  # fmt: skip
    step_chars = [c for c, k in zip(chars, kinds) if k == "step"]
    return {
        "steps": steps, "sim_calls": kinds.count("step") + kinds.count("reflection"),
        "judge_calls": kinds.count("judge"), "sim_tokens": tokens[("step", "reflection")],
        "judge_tokens": tokens[("judge",)], "last_step_tokens": step_chars[-1] // CHARS_PER_TOKEN,
        "first_step_tokens": step_chars[0] // CHARS_PER_TOKEN,
    }  # fmt: skip


def print_table(history: str, rows: list[dict[str, int]]) -> None:
    print(f"\nhistory={history}  (prompt tokens ~ characters sent / {CHARS_PER_TOKEN})")
    print(f"{'steps':>5} {'sim calls':>9} {'sim tokens':>10} {'x prev':>6} {'per step':>8} {'1st step':>8} "
          f"{'last step':>9} {'judge calls':>11} {'judge tokens':>12} {'x prev':>6} {'total':>9}")  # fmt: skip
    prev = None
    for r in rows:
        grow = f"{r['sim_tokens'] / prev['sim_tokens']:.2f}" if prev else "-"
        jgrow = f"{r['judge_tokens'] / prev['judge_tokens']:.2f}" if prev else "-"
        print(f"{r['steps']:>5} {r['sim_calls']:>9} {r['sim_tokens']:>10} {grow:>6} "
              f"{r['sim_tokens'] // r['sim_calls']:>8} {r['first_step_tokens']:>8} {r['last_step_tokens']:>9} "
              f"{r['judge_calls']:>11} {r['judge_tokens']:>12} {jgrow:>6} "
              f"{r['sim_tokens'] + r['judge_tokens']:>9}")  # fmt: skip
        prev = r
    if len(rows) >= 3:
        c2, c1, c0 = np.polyfit([r["steps"] for r in rows], [r["sim_tokens"] for r in rows], 2)
        print(f"fit: simulation prompt tokens ~ {c0:.0f} + {c1:.0f} n + {c2:.0f} n^2 (n = steps)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--history", nargs="+", default=["full", "recap"], choices=["full", "recap"])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        for history in args.history:
            print_table(history, [measure(n, history, Path(tmp)) for n in args.steps])
    print("\nx prev: growth over the previous row; doubling the steps about quadruples the simulation's "
          "prompt tokens (quadratic) and doubles the judge's (linear).")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
