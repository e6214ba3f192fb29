"""Helpers shared by the bench/ scripts: the out-of-process loopback server, the suites, the plan
arithmetic and the machine's load. Not a library: plain functions for three scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from personasim.criteria import derive_criteria  # noqa: E402
from personasim.llm import LLMSettings  # noqa: E402
from personasim.module import LearningModule  # noqa: E402
from personasim.module_loader import load_modules  # noqa: E402
from personasim.persona import Persona  # noqa: E402
from personasim.persona_parser import load_personas  # noqa: E402

NO_KEY_ENV = "PERSONASIM_BENCH_NO_KEY"  # never set: the client sends a placeholder key to 127.0.0.1


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}"


class ServerProcess:
    """`with ServerProcess(latency) as server:` -> `server.base_url`; `server.stats` after exit."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.base_url = ""
        self.stats: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, str(REPO / "bench" / "_server.py"), "--latency", str(self.latency_s)]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the loopback server process did not start")
        self.base_url = json.loads(line)["base_url"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._proc is not None
        out, _ = self._proc.communicate(input="", timeout=60)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.stats = json.loads(lines[-1]) if lines else {}


def live_settings(base_url: str, concurrency: int, **extra: Any) -> LLMSettings:
    return LLMSettings(
        base_url=base_url, model="fake-model", api_key_env=NO_KEY_ENV, mode="live", concurrency=concurrency,
        timeout_s=30.0, backoff_initial_s=0.05, max_wait_s=0.5, **extra,
    )  # fmt: skip


def seed_suite() -> tuple[list[Persona], list[LearningModule]]:
    modules = load_modules([REPO / "modules" / "lotus" / "v1.md", REPO / "modules" / "lotus" / "v2.md"])
    return load_personas([REPO / "personas"]), modules


# --------------------------------------------------------------------------- plan arithmetic


@dataclass
class UnitPlan:
    steps: int
    judged_criteria: int
    judge_samples: int = 1

    @property
    def judge_calls(self) -> int:
        return self.judged_criteria * self.judge_samples

    @property
    def simulation_calls(self) -> int:
        return self.steps + 1  # every step, then the end reflection

    @property
    def calls(self) -> int:
        return self.simulation_calls + self.judge_calls


@dataclass
class Plan:
    units: list[UnitPlan] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(u.calls for u in self.units)

    def chain(self, concurrency: int) -> int:
        """Longest chain of dependent calls: a unit's steps and reflection in order, then its judge
        calls: criteria side by side (at most `concurrency` at once), a criterion's repeats in order."""
        return max(u.simulation_calls + max(u.judge_samples, -(-u.judge_calls // concurrency)) for u in self.units)

    def critical_path_calls(self, concurrency: int) -> int:
        """A lower bound on the makespan, in call latencies: no faster than the longest chain,
        and no faster than all calls spread evenly over `concurrency` slots."""
        return max(self.chain(concurrency), -(-self.calls // concurrency))


def plan_of(personas: list[Persona], modules: list[LearningModule], samples: int = 1, judge_samples: int = 1) -> Plan:
    plan = Plan()
    for persona in personas:
        for module in modules:
            judged = sum(c.grader == "judge" for c in derive_criteria(persona, module))
            plan.units += [UnitPlan(len(module.steps), judged, judge_samples) for _ in range(samples)]
    return plan
