"""JUnit from suite checks: one case per threshold per module version and per requirement, named
uniquely (`lotus@v1::min_lens_mean[power]`), passing cases included."""

from __future__ import annotations

from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pandas as pd

from personasim.report.junit import junit_xml
from personasim.run.suite import Requirements, Thresholds
from personasim.run.suite_checks import Check, requirement_checks, threshold_checks, unique_names


def _frame() -> pd.DataFrame:
    rows = []
    for version, level in (("v1", 0.4), ("v2", 0.8)):
        for persona in ("p17-a", "p18-b"):
            for lens in ("power", "inclusion", "misunderstandings"):
                rows.append({"module_id": "lotus", "module_version": version, "persona_id": persona, "lens": lens,
                             "score_norm": level, "passed": level > 0.5, "grader": "judge", "score": 3.0, "evidence": "[]"})  # fmt: skip
    return pd.DataFrame(rows)


def test_every_threshold_is_a_case_per_module_version_with_a_unique_name() -> None:
    thresholds = Thresholds(min_lens_mean=0.5, min_lens_means={"power": 0.3}, min_persona_mean=0.5,
                            max_unaddressed_misunderstandings=0, max_uncited_high_scores=0.9)  # fmt: skip
    checks = threshold_checks(_frame(), thresholds, suite="lotus")
    names = [check.name for check in checks]
    assert len(names) == len(set(names))
    assert names[:9] == [
        "lotus::max_failed_units",
        "lotus@v1::min_lens_mean[inclusion]",
        "lotus@v1::min_lens_mean[misunderstandings]",
        "lotus@v1::min_lens_means[power]",
        "lotus@v1::min_persona_mean[p17-a]",
        "lotus@v1::min_persona_mean[p18-b]",
        "lotus@v1::max_unaddressed_misunderstandings",
        "lotus@v1::max_uncited_high_scores",
        "lotus@v2::min_lens_mean[inclusion]",
    ]
    failed = {check.name for check in checks if not check.passed}
    assert "lotus@v1::min_lens_mean[inclusion]" in failed and "lotus@v1::min_lens_means[power]" not in failed
    assert not any(name.startswith("lotus@v2") for name in failed)
    by_name = {check.name: check for check in checks}
    assert by_name["lotus@v1::min_lens_mean[inclusion]"].message == (
        "[lotus@v1] min_lens_mean: lens 'inclusion' mean 0.40 (2.6 on 1-5) < 0.50 (3.0 on 1-5)"
    )
    assert by_name["lotus@v2::min_lens_mean[inclusion]"].message.endswith("0.80 (4.2 on 1-5) >= 0.50 (3.0 on 1-5)")


def test_junit_has_a_case_per_check_also_when_all_pass() -> None:
    checks = threshold_checks(_frame(), Thresholds(min_lens_mean=0.1), suite="lotus")
    root = ET.fromstring(junit_xml([("lotus", checks)]))
    (suite,) = root.iter("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == (str(len(checks)), "0")
    names = [case.get("name") for case in suite.iter("testcase")]
    assert "lotus@v1::min_lens_mean[power]" in names and "lotus@v2::min_lens_mean[power]" in names
    assert len(names) == len(set(names)) == 7  # max_failed_units + 3 lenses x 2 versions
    assert all(case.find("failure") is None and case.find("system-out") is not None for case in suite)


def test_requirements_are_cases_and_a_missing_scorecard_fails(tmp_path) -> None:
    manifest = SimpleNamespace(health={"healthy": True, "verdict": "ok"}, model="small", judge_model="big")
    checks = requirement_checks(Requirements(health="ok", check_model="fit"), manifest, tmp_path, suite="s")
    assert [(c.name, c.passed) for c in checks] == [("s::require.health", True), ("s::require.check_model", False)]
    assert "no check-model scorecard exists for these model roles (learner small, judge big" in checks[1].message
    (tmp_path / "check.json").write_text('{"verdict": "use with caution"}')
    caution = requirement_checks(Requirements(check_model="caution"), manifest, tmp_path, suite="s")
    fit = requirement_checks(Requirements(check_model="fit"), manifest, tmp_path, suite="s")
    assert caution[0].passed and not fit[0].passed
    assert "the scorecard says 'use with caution'" in fit[0].message


def test_a_name_used_twice_is_made_unique() -> None:
    twice = unique_names([Check("a", True, "x"), Check("a", False, "y")])
    assert [check.name for check in twice] == ["a", "a (2)"]
