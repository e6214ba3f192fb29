"""How close a run gets to its critical path: the seed suite (every persona in personas/ x lotus
v1 and v2, judge_samples 1) through the real client stack (`build_client`, live mode, the openai
SDK over HTTP) against the loopback server answering every call after a fixed latency.

    .venv/bin/python bench/concurrency.py                      # concurrency 1, 8, 64; 100 ms
    .venv/bin/python bench/concurrency.py --concurrency 64 --latency 0.05

Critical path (a lower bound on wall time, in call latencies, computed from the plan and the
concurrency limit): the calls that cannot start before tick s (a call's earliest tick is its
depth in its unit: steps in order, then the reflection, then the judge calls side by side) need
ceil(count / concurrency) more ticks, so wall >= max over s of s + that. At s = 0 it is all calls
spread evenly over the slots, at the deepest tick the longest chain (steps + 1 + 1), and between
them it counts the judge fan-outs that overlap at the end. `sched s` is the harness's own
first-come-first-served scheduling of that plan at zero overhead (what it could reach here).
Efficiency = critical path x latency / wall time (1.0 = nothing but waiting on the server).
`CPU s` is this process's CPU time during the run, `server CPU s` the loopback server's (it runs
in its own process, as a real server would, so it does not compete for this one's GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import Plan, ServerProcess, live_settings, machine, plan_of, seed_suite
from personasim.llm.clients import build_client
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.prompts import Prompts
from personasim.run.config import RunConfig
from personasim.run.runner import run


async def timed_run(base_url: str, concurrency: int, out_dir: Path) -> tuple[float, float, int]:
    personas, modules = seed_suite()
    settings = live_settings(base_url, concurrency)
    config = RunConfig(run_id=f"c{concurrency}", out_dir=out_dir, judge_samples=1)
    client, prompts = build_client(settings), Prompts()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        outcome = await run(
            RoleClients(client, client),
            personas,
            modules,
            roles=ModelRoles.of(settings),
            prompts=prompts,
            config=config,
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await client.aclose()
    if outcome.failed:
        raise SystemExit(f"units failed: {outcome.failed}")
    return wall, cpu, len(outcome.frame)


COLUMNS = (("conc", 5, "d"), ("calls", 6, "d"), ("in flight", 9, "d"), ("critical s", 10, ".2f"),
           ("sched s", 7, ".2f"), ("wall s", 8, ".2f"), ("efficiency", 10, ".2f"), ("speed-up", 9, "s"),
           ("CPU s", 6, ".2f"), ("server CPU s", 12, ".2f"))  # fmt: skip


def measure(concurrency: int, latency: float, plan: Plan) -> list[object]:
    """One table row: the values of COLUMNS, speed-up left for the caller."""
    with tempfile.TemporaryDirectory(prefix="bench-conc-") as tmp, ServerProcess(latency) as server:
        wall, cpu, _ = asyncio.run(timed_run(server.base_url, concurrency, Path(tmp)))
    calls = server.stats["chat_requests"]
    if calls != plan.calls:
        raise SystemExit(f"the server saw {calls} calls; the plan has {plan.calls}")
    critical = plan.critical_path_calls(concurrency) * latency
    scheduled = plan.fifo_schedule_calls(concurrency) * latency
    efficiency = critical / wall if critical else float("nan")
    return [concurrency, calls, server.stats["max_in_flight"], critical, scheduled, wall, efficiency, "-", cpu,
            server.stats["cpu_s"]]  # fmt: skip


def row(values: list[object]) -> str:
    return " ".join(f"{v:>{width}{fmt}}" for v, (_, width, fmt) in zip(values, COLUMNS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per call at the server (default 0.1)")
    args = parser.parse_args()
    personas, modules = seed_suite()
    plan = plan_of(personas, modules)
    print(f"machine: {machine()}")
    print(
        f"suite: {len(personas)} personas x {len(modules)} module versions = {len(plan.units)} units, "
        f"{plan.calls} calls, longest unit chain {plan.chain(10**6)} calls; latency {args.latency * 1000:g} ms"
    )
    print(" ".join(f"{name:>{width}}" for name, width, _ in COLUMNS))
    base_wall = None
    for concurrency in args.concurrency:
        values = measure(concurrency, args.latency, plan)
        wall = float(values[5])  # type: ignore[arg-type]
        base_wall = wall if concurrency == 1 else base_wall
        values[7] = f"{base_wall / wall:.1f}x" if base_wall else "-"
        print(row(values), flush=True)
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
