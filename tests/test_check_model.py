"""check-model end to end against scripted learner/judge doubles on a loopback server: the scorecard
discriminates (a faithful double is fit; alike personas fail fidelity; a learner blind to content
and a judge that always scores 5 fail sensitivity and specificity), and repeats at temperature 0
are flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from check_model_doubles import responder
from module_files import three_seed_personas
from personasim.analysis.model_checks import binomial_tail
from personasim.analysis.results import read_manifest
from personasim.cli import app
from personasim.records.scorecard import Scorecard

MODULE = """---
id: fairness
title: "Fair and inclusive investigations"
version: v1
learning_outcomes:
  - "LO1: Explain fairness in investigations."
  - "LO4: Read workforce race equality (WRES) data."
delivery_format: webinar
---

## Fairness
<!-- id: fairness; minutes: 3; serves: LO1 -->
A fair process treats every practitioner the same way, with consistent triage.

## Compassion
<!-- id: compassion; minutes: 3; serves: LO1 -->
Compassion means attending to the person, understanding, empathising and helping.
Leadership is never purely technical: finance leadership, change management and information governance
are service improvement too. Collaboration does not compromise rigour, and part-time does not mean less
capability.

## Race equality data
<!-- id: wres; minutes: 3; serves: LO4 -->
WRES data show inequity in disciplinary referrals; anti-racism work starts from them.

## An anti-racist charter
<!-- id: charter; minutes: 3; serves: LO4 -->
Inclusive recruitment and an anti-racist charter make equity visible.
"""


def check(tmp_path: Path, server, kind: str, *extra: str) -> tuple[Scorecard, object]:  # type: ignore[no-untyped-def]
    server.responder = responder(kind)
    module = tmp_path / "module.md"
    module.write_text(MODULE)
    args = ["check-model", "--personas", str(three_seed_personas(tmp_path / "p")), "--module", str(module),
            "--base-url", server.base_url, "--model", "m", "--out", str(tmp_path / "out"), "--run-id", kind,
            "--json", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = Scorecard.model_validate_json((tmp_path / "out" / kind / "check.json").read_text())
    assert json.loads(result.stdout)["verdict"] == card.verdict
    return card, result


ABLATE = ("--ablate", "LO4", "--expect-lenses", "power,inclusion,difference")


def test_a_faithful_double_is_fit_for_module_decisions(openai_server, tmp_path) -> None:
    card, _ = check(tmp_path, openai_server, "faithful", *ABLATE)
    passed = {c.name: c.passed for c in card.checks}
    assert passed == {
        "persona_fidelity": True, "style_baseline": None, "sensitivity": True, "specificity": True,
        "stability": True, "judge_reliability": True, "misunderstanding_surfacing": True,
        "instruction_following": True,
    }, [(c.name, c.detail) for c in card.checks]  # fmt: skip
    assert card.verdict == "fit for module decisions"
    assert (
        card.check("persona_fidelity").value == 1.0
        and "6 of 6 named right (chance 33%)" in card.check("persona_fidelity").detail
    )
    assert card.config["samples"] == 2 and card.config["judge_samples"] == 3
    assert set(card.roles) == {"learner", "judge"} and card.hashes["prompts"]
    manifest = read_manifest(tmp_path / "out" / "faithful" / "original")
    assert manifest.settings["temperature"] == 0.7 and manifest.judge_settings["temperature"] == 0.5


def test_personas_that_answer_alike_fail_fidelity_at_chance(openai_server, tmp_path) -> None:
    card, _ = check(tmp_path, openai_server, "alike", *ABLATE)
    fidelity = card.check("persona_fidelity")
    assert fidelity.passed is False and fidelity.value == pytest.approx(1 / 3, abs=1e-3)
    assert card.verdict == "not fit"


def test_a_learner_blind_to_the_content_fails_sensitivity(openai_server, tmp_path) -> None:
    card, _ = check(tmp_path, openai_server, "blind", *ABLATE)
    assert card.check("sensitivity").passed is False and card.check("persona_fidelity").passed is True
    assert card.verdict == "not fit"


def test_a_judge_that_always_scores_5_fails_sensitivity_and_specificity(openai_server, tmp_path) -> None:
    card, _ = check(tmp_path, openai_server, "lenient", *ABLATE)
    assert card.check("sensitivity").passed is False and card.check("specificity").passed is False
    assert card.verdict == "not fit"


def test_without_an_ablation_the_verdict_is_at_best_caution(openai_server, tmp_path) -> None:
    card, result = check(tmp_path, openai_server, "faithful")
    assert card.check("sensitivity").passed is None and card.check("specificity").passed is None
    assert card.verdict == "use with caution"


def test_repeats_at_temperature_0_are_flagged(openai_server, tmp_path) -> None:
    card, _ = check(tmp_path, openai_server, "faithful", *ABLATE, "--temperature", "0", "--judge-temperature", "0")
    reliability = card.check("judge_reliability")
    assert reliability.passed is False and "copies" in reliability.detail
    health = read_manifest(tmp_path / "out" / "faithful" / "original").health
    repeats = next(c for c in health["checks"] if c["name"] == "identical_repeats")
    assert repeats["ok"] is False and repeats["detail"] == "3 of 3 repeated conversations are near-copies"
    assert card.verdict == "use with caution"


def test_run_shows_the_latest_scorecard_for_the_same_model_roles(openai_server, tmp_path) -> None:
    check(tmp_path, openai_server, "faithful", *ABLATE)
    args = ["run", "--personas", str(three_seed_personas(tmp_path / "p")), "--module", str(tmp_path / "module.md"),
            "--base-url", openai_server.base_url, "--out", str(tmp_path / "out"), "--run-id", "after"]  # fmt: skip
    same = CliRunner().invoke(app, [*args, "--model", "m"])
    assert same.exit_code == 0, same.output
    assert "check-model: fit for module decisions (" in same.output and "faithful/check.json" in same.output
    other = CliRunner().invoke(app, [*args, "--model", "m", "--judge-model", "other", "--run-id", "other"])
    assert "check-model: no scorecard for these model roles" in other.output
    report = CliRunner().invoke(app, ["report", str(tmp_path / "out" / "after")])
    assert report.exit_code == 0, report.output and "file://" in report.output
    html = (tmp_path / "out" / "after" / "report.html").read_text()
    assert "check-model: fit for module decisions" in html and "persona_fidelity" in html


def test_fail_under_makes_ci_exit_1(openai_server, tmp_path) -> None:
    openai_server.responder = responder("alike")
    module = tmp_path / "module.md"
    module.write_text(MODULE)
    args = ["check-model", "--personas", str(three_seed_personas(tmp_path / "p")), "--module", str(module),
            "--base-url", openai_server.base_url, "--model", "m", "--out", str(tmp_path / "out"),
            "--fail-under", "caution", *ABLATE]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "verdict: not fit" in result.output


def test_the_binomial_tail_is_exact() -> None:
    assert binomial_tail(6, 6, 1 / 3) == pytest.approx((1 / 3) ** 6)
    assert binomial_tail(0, 5, 0.2) == pytest.approx(1.0)
    assert binomial_tail(2, 6, 1 / 3) == pytest.approx(1 - (2 / 3) ** 6 - 6 * (1 / 3) * (2 / 3) ** 5)
