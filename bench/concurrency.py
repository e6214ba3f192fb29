"""How close a run gets to its critical path: the seed suite (every persona in personas/ x lotus
v1 and v2, judge_samples 1) through the real client stack (`build_client`, live mode, the openai
SDK over HTTP) against the loopback server answering every call after a fixed latency.

    .venv/bin/python bench/concurrency.py                      # concurrency 1, 8, 64; 100 ms
    .venv/bin/python bench/concurrency.py --concurrency 64 --latency 0.05

Critical path (a lower bound on wall time, in call latencies): the larger of the longest chain
of dependent calls (one unit's steps in order, its end reflection, then its judge calls, side by
side but at most `concurrency` at once) and all calls spread evenly over `concurrency` slots.
Efficiency = critical path x latency / wall time (1.0 = nothing but waiting on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import Plan, ServerProcess, live_settings, machine, plan_of, seed_suite

from personasim.llm import build_client
from personasim.prompts import Prompts
from personasim.runner import RunConfig, run


async def timed_run(base_url: str, concurrency: int, out_dir: Path) -> tuple[float, float, int]:
    personas, modules = seed_suite()
    settings = live_settings(base_url, concurrency)
    config = RunConfig(run_id=f"c{concurrency}", out_dir=out_dir, judge_samples=1)
    client, prompts = build_client(settings), Prompts()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        outcome = await run(client, personas, modules, settings=settings, prompts=prompts, config=config)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await client.aclose()
    if outcome.failed:
        raise SystemExit(f"units failed: {outcome.failed}")
    return wall, cpu, len(outcome.frame)


def measure(concurrency: int, latency: float, plan: Plan) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-conc-") as tmp, ServerProcess(latency) as server:
        wall, cpu, rows = asyncio.run(timed_run(server.base_url, concurrency, Path(tmp)))
    calls = server.stats["chat_requests"]
    if calls != plan.calls:
        raise SystemExit(f"the server saw {calls} calls; the plan has {plan.calls}")
    critical = plan.critical_path_calls(concurrency) * latency
    return {"concurrency": concurrency, "calls": calls, "rows": rows, "in_flight": server.stats["max_in_flight"],
            "critical_s": critical, "wall_s": wall, "efficiency": critical / wall, "cpu_s": cpu,
            "server_cpu_s": server.stats["cpu_s"]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per call at the server (default 0.1)")
    args = parser.parse_args()
    personas, modules = seed_suite()
    plan = plan_of(personas, modules)
    print(f"machine: {machine()}")
    print(f"suite: {len(personas)} personas x {len(modules)} module versions = {len(plan.units)} units, "
          f"{plan.calls} calls, longest unit chain {plan.chain(10**6)} calls; latency {args.latency * 1000:g} ms")  # fmt: skip
    print(f"{'conc':>5} {'calls':>6} {'in flight':>9} {'critical s':>10} {'wall s':>8} {'efficiency':>10} {'speed-up':>9} {'CPU s':>6} {'server CPU s':>12}")
    base_wall = None
    for concurrency in args.concurrency:
        r = measure(concurrency, args.latency, plan)
        base_wall = r["wall_s"] if concurrency == 1 else base_wall
        speedup = f"{base_wall / r['wall_s']:.1f}x" if base_wall else "-"
        print(f"{concurrency:>5} {r['calls']:>6} {r['in_flight']:>9} {r['critical_s']:>10.2f} {r['wall_s']:>8.2f} "
              f"{r['efficiency']:>10.2f} {speedup:>9} {r['cpu_s']:>6.2f} {r['server_cpu_s']:>12.2f}", flush=True)  # fmt: skip
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
