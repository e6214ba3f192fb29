"""Coverage in the run: every run writes coverage.json, and its health sets the judge's scores beside it."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pandas as pd

from personasim.analysis.coverage_health import coverage_health
from personasim.analysis.gaps import coverage_between, coverage_changes
from personasim.analysis.gaps_types import read_coverage
from personasim.analysis.health import assess_health, health_table, health_to_dict
from personasim.llm.roles import ModelRoles, RoleClients
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.run.config import RunConfig
from personasim.run.runner import run

sys.path.insert(0, str(Path(__file__).parent))
from core_fixtures import make_module, make_persona  # noqa: E402
from coverage_fixtures import seed_coverage  # noqa: E402
from doubles.scripted_client import ScriptedClient  # noqa: E402
from run_fixtures import PERSONAS, make_transcript  # noqa: E402
from scripted_answers import scripted_text  # noqa: E402

P17, P18 = "p17-assistant-director-of-finance", "p18-primary-care-practice-manager"
RNG = random.Random(3)
LIVELY = [make_transcript("r", persona, "v1", 0, base=3.0 + n * 0.4, rng=RNG) for n, persona in enumerate(PERSONAS)]


def judge_rows(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"persona_id": p, "module_id": "lotus", "module_version": v, "criterion_id": c, "grader": "judge",
          "score": s, "score_norm": (s - 1) / 4} for p, v, c, s in rows]
    )  # fmt: skip


async def test_a_run_writes_its_coverage_and_its_health_judges_against_it(tmp_path: Path) -> None:
    personas = [make_persona(17), make_persona(21, "Chief Allied Health Professional", hours=(2, 3))]
    modules = [make_module("v1", steps=2), make_module("v2", steps=2)]
    client = ScriptedClient(lambda call: scripted_text(call.messages))
    config = RunConfig(run_id="cov", out_dir=tmp_path, sequential=True)
    outcome = await run(RoleClients(client, client), personas, modules, roles=ModelRoles.of(LLMSettings(model="m")),
                        prompts=Prompts(), config=config)  # fmt: skip
    coverage = read_coverage(tmp_path / "cov" / "coverage.json")
    assert [(i.persona_id, i.module_ref) for i in coverage.items] == [
        (p.id, m.ref) for m in modules for p in personas
    ]  # every persona x module version, in plan order
    item = coverage.find("p17-test", "lotus@v1")
    assert item is not None and item.criterion("competency-01").addressed is False  # no step serves it
    health = outcome.manifest.health
    names = [c["name"] for c in health["checks"]]
    assert names[-2:] == ["credited_unaddressed", "look_here"]
    expected = coverage_health(outcome.frame, coverage)
    assert health["coverage_flags"] == [f.model_dump(mode="json") for f in expected.flags]
    assert [c for c in health["checks"] if c["name"] == "look_here"][0]["advisory"] is True


def test_a_judge_5_on_an_unaddressed_criterion_is_flagged() -> None:
    coverage = seed_coverage()
    assert coverage.lookup(P18, "lotus@v1", "competency-01").addressed is False
    assert coverage.lookup(P17, "lotus@v1", "competency-01").addressed is True
    frame = judge_rows([(P18, "v1", "competency-01", 5.0), (P17, "v1", "competency-01", 4.0)])
    report = assess_health(LIVELY, frame, coverage=coverage)
    check = report.check("credited_unaddressed")
    assert (check.value, check.ok, check.advisory) == (0.5, False, False)
    assert check.detail == "1 of 2 judge scores of 4+ are on criteria no step addresses"
    assert [(f.kind, f.persona_id, f.module_ref, f.criterion_id, f.scores) for f in report.coverage_flags] == [
        ("credited_unaddressed", P18, "lotus@v1", "competency-01", [5.0])
    ]
    assert not report.healthy and check.detail in report.verdict
    assert health_to_dict(report)["coverage_flags"][0]["criterion_id"] == "competency-01"


def test_look_here_is_advisory_it_warns_and_never_makes_the_verdict_degenerate() -> None:
    coverage = seed_coverage()
    frame = judge_rows([(P17, "v1", "competency-01", 1.0), (P17, "v1", "gap-01", 2.0)])  # both addressed
    report = assess_health(LIVELY, frame, coverage=coverage)
    look = report.check("look_here")
    assert (look.value, look.ok, look.advisory) == (1.0, False, True)
    failing, _, noted = report.verdict.partition("; note: ")
    assert look.detail not in failing and look.detail in noted
    assert ("look_here", "1.00", "<= 0.5", "warn", look.detail) in health_table(report)
    assert {f.kind for f in report.coverage_flags} == {"look_here"}


def test_health_without_coverage_adds_no_coverage_checks() -> None:
    frame = judge_rows([(P18, "v1", "competency-01", 5.0)])
    report = assess_health(LIVELY, frame)
    assert "credited_unaddressed" not in {c.name for c in report.checks} and report.coverage_flags == []
    assert "coverage_flags" in health_to_dict(report)


def test_two_runs_of_one_module_version_pair_their_coverage() -> None:
    coverage = seed_coverage()
    same = coverage_between(coverage, "lotus@v1", coverage.model_copy(), "lotus@v1")
    assert same and {c.change for c in same} == {"same", "undecided"}
    across = coverage_between(coverage, "lotus@v1", coverage.model_copy(), "lotus@v2")
    assert [c.model_dump() for c in across] == [c.model_dump() for c in coverage_changes(coverage, "lotus@v1",
                                                                                         "lotus@v2")]  # fmt: skip
    assert json.loads(across[0].model_dump_json())["change"] in ("gained", "lost", "same", "undecided")
