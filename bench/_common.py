"""Helpers shared by the bench/ scripts: the out-of-process loopback server, the suites, the plan
arithmetic and the machine's load. Not a library: plain functions for three scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona import Persona
from personasim.inputs.persona_parser import load_personas
from personasim.llm.settings import LLMSettings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

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

    def earliest_starts(self) -> list[int]:
        """For every call, the earliest tick (in call latencies) it can start: its depth in its unit."""
        starts: list[int] = []
        for u in self.units:
            starts += range(u.simulation_calls)
            starts += [u.simulation_calls + k for k in range(u.judge_samples) for _ in range(u.judged_criteria)]
        return starts

    def critical_path_calls(self, concurrency: int) -> int:
        """A lower bound on the makespan, in call latencies. The calls that cannot start before
        tick s need ceil(count / concurrency) ticks after s, so T >= s + that for every s: at s = 0
        it is all calls spread evenly over the slots, at the last depth the longest chain, and in
        between it counts fan-outs of judge calls that overlap at the end of the run."""
        starts = sorted(self.earliest_starts(), reverse=True)
        best = 0
        for later, s in enumerate(starts, start=1):  # `later` calls start at s or after
            best = max(best, s + -(-later // concurrency))
        return max(best, self.chain(concurrency))

    def fifo_schedule_calls(self, concurrency: int) -> int:
        """Makespan, in call latencies, of the harness's own scheduling with zero overhead: units
        start together, calls take the free slots first come first served (the client's
        semaphore), a unit's judge calls are queued together after its reflection."""
        ready = [(0, i) for i in range(len(self.units))]  # (unit position in its chain, unit)
        tick, left = 0, self.calls
        while left:
            running, ready = ready[:concurrency], ready[concurrency:]
            tick, left = tick + 1, left - len(running)
            ready += [nxt for pos, i in running for nxt in self._after(pos, i)]
            if tick > 10 * self.calls + 10:
                raise RuntimeError("schedule did not converge")
        return tick

    def _after(self, pos: int, unit: int) -> list[tuple[int, int]]:
        u = self.units[unit]
        if pos < u.simulation_calls - 1:
            return [(pos + 1, unit)]
        if pos == u.simulation_calls - 1:
            return [(u.simulation_calls, unit)] * u.judged_criteria  # one per criterion (repeats follow)
        depth = pos - u.simulation_calls  # this criterion's repeat number
        return [(pos + 1, unit)] if depth + 1 < u.judge_samples else []


def plan_of(personas: list[Persona], modules: list[LearningModule], samples: int = 1, judge_samples: int = 1) -> Plan:
    plan = Plan()
    for persona in personas:
        for module in modules:
            judged = sum(c.grader == "judge" for c in derive_criteria(persona, module))
            plan.units += [UnitPlan(len(module.steps), judged, judge_samples) for _ in range(samples)]
    return plan


# --------------------------------------------------------------------------- generated suites

_STEP = """
## {title}
<!-- id: {id}; minutes: {minutes} -->

{content}

### Activity
Map how a concern about a colleague is triaged in your service, and who decides at each point.
Time: 3 minutes

### Reflection questions
- Who decides whether a concern becomes a formal investigation?
- What would a fair process look like to the person being investigated?
"""
_PARAGRAPH = (
    "Fair and compassionate investigations depend on a consistent, documented triage of every concern: "
    "who raised it, what risk it carries, and whether an informal route would serve the people involved "
    "better than a formal one. Staff from ethnic minorities are referred to formal processes more often, "
    "and long investigations harm everyone involved, so the decision should be visible and reviewable. "
)


def write_module(folder: Path, steps: int, version: str = "v1", paragraphs: int = 3) -> Path:
    """A module version file in the real format (front matter + one `##` section per step),
    each step about as long as a lotus step (~1,300 characters with paragraphs=3)."""
    body = "".join(
        _STEP.format(
            title=f"Part {i}: triage and risk rating",
            id=f"part-{i}",
            minutes=3 + i % 5,
            content=f"Part {i} of {steps}. " + _PARAGRAPH * paragraphs,
        )  # fmt: skip
        for i in range(1, steps + 1)
    )
    front = (
        f'---\nid: generated\ntitle: "Fair investigations ({steps} steps)"\nversion: {version}\n'
        "target_competencies:\n  - Build relationships (Stage 3)\ndelivery_format: webinar\n---\n"
    )
    path = folder / f"generated-{steps}-{version}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(front + body, encoding="utf-8")
    return path


def write_personas(folder: Path, count: int) -> Path:
    """`count` personas in the real document format: the seed personas' sections (17-22) reused in
    turn under new numbers and titles, so each has its own system prompt and answers."""
    text = (REPO / "personas" / "stage3-personas.md").read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r"^## Persona \d+: .*$", text, re.MULTILINE)]
    sections = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]
    out = [text[: starts[0]]]
    for i in range(count):
        seed = sections[i % len(sections)]
        title = seed.splitlines()[0].split(": ", 1)[1]
        out.append(seed.replace(seed.splitlines()[0], f"## Persona {100 + i}: {title} {i}", 1))
    path = folder / "personas.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(out), encoding="utf-8")
    return path
