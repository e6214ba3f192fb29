"""compare.py: paired differences, cluster bootstrap intervals, sign-flip tests, flags, CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from personasim.analysis.compare import CompareError, Comparison, compare, compare_versions, pair_rows
from personasim.analysis.compare_stats import cluster_bootstrap_ci, paired_dz, sign_flip_test
from personasim.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from coverage_fixtures import write_seed_coverage  # noqa: E402
from run_fixtures import build_run  # noqa: E402

LENS_OF = {"gap-01": "gaps", "gap-02": "gaps", "lens-power": "power", "lens-inclusion": "inclusion", "fit-time": "fit"}


def frame(personas: int = 6, samples: int = 3, shift: float = 0.0, noise: float = 0.1, seed: int = 1,
          version: str = "v1", persona_effects: list[float] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per persona x sample x criterion; score_norm = 0.5 + shift (+ a persona effect) + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(personas):
        effect = persona_effects[p] if persona_effects else 0.0
        for s in range(samples):
            for cid, lens in LENS_OF.items():
                value = 0.5 + shift + effect + rng.normal(0, noise)
                rows.append({"persona_id": f"p{17 + p}", "persona_title": f"Persona {17 + p}", "sample": s,
                             "criterion_id": cid, "criterion_text": f"text of {cid}", "lens": lens,
                             "score_norm": float(np.clip(value, 0, 1)), "module_version": version})  # fmt: skip
    return pd.DataFrame(rows)


def test_clearly_better_b_excludes_zero_and_is_flagged_better() -> None:
    a = frame(seed=1)
    b = frame(seed=2, shift=0.3)
    result = compare(a, b, seed=0)
    o = result.overall
    assert o.delta == pytest.approx(0.3, abs=0.05)
    assert 0 < o.ci_low < o.delta < o.ci_high
    assert o.flag == "better" and result.flagged() == []
    assert o.p_exact and o.p_value == pytest.approx(2 / 64) and o.p_min == pytest.approx(2 / 64)
    assert o.effect_dz is not None and o.effect_dz > 2
    assert {c.flag for c in result.by("lens")} == {"better"}


def test_clearly_worse_b_is_flagged_at_every_level() -> None:
    result = compare(frame(seed=1), frame(seed=2, shift=-0.3), seed=0)
    assert result.overall.flag == "worse" and result.overall.ci_high < 0
    assert all(c.ci_high < 0 for c in result.by("lens"))
    flagged = result.flagged()
    assert result.overall in flagged and {c.key for c in flagged if c.level == "lens"} == set(LENS_OF.values())
    assert result.overall.effect_dz is not None and result.overall.effect_dz < 0


def test_identical_runs_have_zero_delta_an_interval_containing_zero_and_no_flag() -> None:
    a = frame(seed=3)
    result = compare(a, a.copy(), seed=0)
    for c in [result.overall, *result.rows]:
        assert c.delta == 0 and c.flag == ""
        if c.ci_low is not None:
            assert c.ci_low <= 0 <= c.ci_high
    assert result.overall.p_value == 1.0
    assert result.overall.effect_dz is None  # no spread: an effect size would divide by zero


def test_pairing_matches_persona_sample_and_criterion_whatever_the_row_order() -> None:
    a = frame(samples=2, seed=4)
    b = a.copy()
    b.loc[b["persona_id"] == "p19", "score_norm"] += 0.2
    b = b.sample(frac=1.0, random_state=0)  # shuffled rows must still pair up
    extra = b.iloc[:1].assign(sample=9)  # a sample A never had
    ungraded = b.iloc[1:2].assign(score_norm=np.nan)  # ungraded rows are left out, not paired
    b = pd.concat([b.drop(b.index[1]), extra, ungraded])
    pairs, unmatched_a, unmatched_b = pair_rows(a, b)
    assert len(pairs) == len(a) - 1 and unmatched_a == 1 and unmatched_b == 1
    result = compare(a, b)
    personas = {c.key: c for c in result.by("persona")}
    assert personas["p19"].delta == pytest.approx(0.2)
    assert all(c.delta == pytest.approx(0) for k, c in personas.items() if k != "p19")
    assert result.overall.delta == pytest.approx(0.2 / 6, rel=0.05)
    assert any("Unpaired" in w for w in result.warnings)


def test_a_criterion_graded_two_ways_pairs_by_grader_too() -> None:
    a = frame(samples=1).assign(grader="judge")
    both = pd.concat([a, a.assign(grader="time_fit", score_norm=0.0)])
    pairs, _, _ = pair_rows(both, both.assign(score_norm=both["score_norm"] + 0.1))
    assert len(pairs) == len(both) and pairs["diff"].round(6).eq(0.1).all()
    with pytest.raises(CompareError, match="more than one row"):
        pair_rows(both.drop(columns="grader"), both.drop(columns="grader"))


def test_cluster_bootstrap_keeps_a_personas_rows_together() -> None:
    # Persona effects dominate, and each persona has many rows: treating rows as independent
    # would give a falsely narrow interval; resampling personas must not.
    effects = [0.3, -0.25, 0.2, -0.15, 0.1, -0.05]
    values, clusters = [], []
    for p, e in enumerate(effects):
        values += [e] * 50
        clusters += [f"p{p}"] * 50
    values_arr, clusters_arr = np.array(values), np.array(clusters)
    low, high = cluster_bootstrap_ci(values_arr, clusters_arr, n_boot=2000, seed=0)
    naive_low, naive_high = cluster_bootstrap_ci(values_arr, np.arange(len(values)), n_boot=2000, seed=0)
    assert (high - low) > 3 * (naive_high - naive_low)
    assert min(effects) <= low < high <= max(effects)  # a resample's mean is a mix of persona means


def test_cluster_bootstrap_weights_clusters_or_rows() -> None:
    # One persona with 3 rows of 1.0, another with 1 row of 0.0. Row weighting: the pooled mean is
    # 0.75, and resamples give 1.0, 0.75 or 0.0; cluster weighting: resamples give 1.0, 0.5 or 0.0.
    values, clusters = np.array([1.0, 1.0, 1.0, 0.0]), np.array(["a", "a", "a", "b"])
    low, high = cluster_bootstrap_ci(values, clusters, seed=0, weighting="row")
    assert low == 0.0 and high == 1.0
    low, high = cluster_bootstrap_ci(values, clusters, seed=0, confidence=0.4)
    assert low == high == 0.5  # the middle 40% of resamples: half of them mix the two clusters
    assert cluster_bootstrap_ci(np.array([1.0, 2.0]), np.array(["a", "a"])) is None


def test_sign_flip_test_is_exact_for_few_clusters_and_monte_carlo_for_many() -> None:
    p, exact = sign_flip_test(np.array([1.0, 1.0, 1.0]), np.array(["a", "b", "c"]))
    assert exact and p == pytest.approx(2 / 8)
    p, exact = sign_flip_test(np.array([0.5, -0.5, 0.25, -0.25]), np.array(list("abcd")))
    assert exact and p == 1.0
    many = np.full(20, 0.1)
    p, exact = sign_flip_test(many, np.arange(20).astype(str), max_exact_clusters=16, n_perm=2000, seed=0)
    assert not exact and p < 0.01


def test_paired_dz_is_mean_over_sd_of_cluster_means() -> None:
    values = np.array([0.1, 0.1, 0.2, 0.3, 0.3, 0.3])
    clusters = np.array(["a", "a", "b", "c", "c", "c"])
    assert paired_dz(values, clusters) == pytest.approx(0.2 / 0.1)
    assert paired_dz(values[:3], clusters[:3]) is None  # two clusters: no sd worth the name


def test_same_seed_same_result_other_seed_other_interval() -> None:
    a, b = frame(seed=5, noise=0.2), frame(seed=6, noise=0.2, shift=0.05)
    first, again = compare(a, b, seed=11), compare(a, b, seed=11)
    assert first.model_dump() == again.model_dump()
    other = compare(a, b, seed=12)
    assert (other.overall.ci_low, other.overall.ci_high) != (first.overall.ci_low, first.overall.ci_high)
    assert other.overall.delta == first.overall.delta


def test_small_n_is_said_plainly() -> None:
    few = compare(frame(seed=1), frame(seed=2, shift=0.1))
    assert few.overall.small_n and "6 personas" in few.overall.note
    assert any("Only 6 personas" in w for w in few.warnings)
    many = compare(frame(personas=12, seed=1), frame(personas=12, seed=2, shift=0.1))
    assert not many.overall.small_n and many.overall.note == "" and not many.warnings
    one_sample = compare(frame(samples=1, seed=1), frame(samples=1, seed=2))
    persona = one_sample.by("persona")[0]
    assert persona.ci_low is None and persona.p_value is None and "no interval" in persona.note
    assert persona.cluster == "unit" and persona.n_clusters == 1


def test_compare_versions_picks_rows_by_module_version() -> None:
    both = pd.concat([frame(seed=1, version="v1"), frame(seed=2, shift=0.3, version="v2")])
    result = compare_versions(both, "v1", "v2")
    assert (result.label_a, result.label_b) == ("v1", "v2") and result.overall.flag == "better"
    with pytest.raises(CompareError, match="has: v1, v2"):
        compare_versions(both, "v1", "v3")
    with pytest.raises(CompareError, match="several module versions"):
        compare(both, both)


def test_no_common_rows_is_an_error() -> None:
    a = frame(seed=1)
    with pytest.raises(CompareError, match="no graded rows in common"):
        compare(a, a.assign(persona_id=a["persona_id"] + "-other"))
    with pytest.raises(CompareError, match="lacks column"):
        compare(a.drop(columns="lens"), a)


def test_json_and_markdown_outputs() -> None:
    a = frame(seed=1).assign(criterion_text="a | pipe")
    result = compare(a, frame(seed=2, shift=-0.3).assign(criterion_text="a | pipe"))
    again = Comparison.model_validate_json(result.to_json())
    assert again == result
    md = result.to_markdown("criterion")
    assert md.count("\n| criterion |") == 6 * len(LENS_OF)
    assert "| overall | all |" in md and "worse (small n)" in md and "Only 6 personas" in md
    assert "weighs each persona (overall, lens) or conversation (criterion, persona) the same" in md
    assert "flagged when the interval excludes 0 and p < 0.05" in md
    assert all(line.count(" | ") == 10 for line in md.splitlines() if line.startswith("| "))
    with pytest.raises(CompareError, match="unknown level"):
        result.by("sample")


def test_cli_compare_versions_in_one_run_as_json_and_table(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-x", samples=1)
    runner = CliRunner()
    out = runner.invoke(app, ["compare", str(run), "--json", "--n-boot", "500"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["label_a"], data["label_b"]) == ("v1", "v2")
    assert data["overall"]["n_clusters"] == 6 and not math.isnan(data["overall"]["delta"])
    table = runner.invoke(app, ["compare", "run-x", "--results-dir", str(tmp_path), "--by", "persona"])
    assert table.exit_code == 0 and "persona" in table.stdout and "p17-" in table.stdout and "p22-" in table.stdout
    md = runner.invoke(app, ["compare", str(run), "--markdown", "--a", "v2", "--b", "v1"])
    assert md.exit_code == 0 and md.stdout.startswith("**v1 vs v2**")


def test_cli_compare_two_runs_and_errors(tmp_path: Path) -> None:
    first = build_run(tmp_path, "run-a", versions=("v1",), samples=1, seed=1)
    second = build_run(tmp_path, "run-b", versions=("v2",), samples=1, seed=2)
    runner = CliRunner()
    out = runner.invoke(app, ["compare", str(first), str(second), "--json", "--n-boot", "200"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["label_b"] == "run-b"
    one = runner.invoke(app, ["compare", str(first)])
    assert one.exit_code == 1 and "holds one module version (v1)" in one.output
    missing = runner.invoke(app, ["compare", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "not a run folder" in missing.output


def test_cli_compare_on_a_run_of_one_version_says_so_in_one_line_and_how_to_get_two(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-one", versions=("v1",), samples=1, personas=2)
    runner = CliRunner()
    for args in (["compare", str(run)], ["compare", str(run), "--a", "v1", "--b", "v2"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1, result.stderr  # one line
        line = " ".join(result.stderr.split())  # rich may fold it on a narrow terminal
        assert "run-one: holds one module version (v1), so there is nothing to compare inside it" in line
        assert "--module v1.md --module v2.md" in line and "personasim compare RUN_A RUN_B" in line


def test_cli_compare_shows_what_coverage_b_gained_or_lost(tmp_path: Path) -> None:
    run = build_run(tmp_path, "run-c", samples=1)
    runner = CliRunner()
    bare = runner.invoke(app, ["compare", str(run), "--n-boot", "200"])
    assert bare.exit_code == 0 and "coverage before simulation: none for" in " ".join(bare.stdout.split())
    write_seed_coverage(run)
    data = json.loads(runner.invoke(app, ["compare", str(run), "--n-boot", "200", "--json"]).stdout)
    changes = {(c["persona_id"][:3], c["criterion_id"]): c["change"] for c in data["coverage_changes"]}
    assert changes[("p21", "fit-time")] == "lost" and changes[("p18", "fit-preferences")] == "gained"
    assert changes[("p17", "fit-abandonment")] == "undecided"
    table = runner.invoke(app, ["compare", str(run), "--n-boot", "200"])
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())  # the terminal's width folds the table
    assert "coverage before simulation (no model), v2 vs v1: 3 gained, 2 lost, 103 same, 12 need a run" in shown
    assert shown.count(" lost ") >= 2 and shown.count(" gained ") >= 3
    md = runner.invoke(app, ["compare", str(run), "--n-boot", "200", "--markdown"]).stdout
    assert "**Coverage before simulation**" in md and "| lost | p21-chief-allied-health-professional/fit-time |" in md
    # Two runs of one module version pair their coverage too: nothing gained or lost.
    other = build_run(tmp_path, "run-d", versions=("v1",), samples=1, seed=3)
    write_seed_coverage(other, ("v1",))
    across = runner.invoke(app, ["compare", str(run), str(other), "--a", "v1", "--n-boot", "200", "--json"])
    assert across.exit_code == 0, across.output
    kinds = {c["change"] for c in json.loads(across.stdout)["coverage_changes"]}
    assert kinds == {"same", "undecided"}


# --------------------------------------------------------------------------- issue 21: flag rule and weighting


def diffs(per_cluster: dict[str, list[float]], key: str = "persona") -> pd.DataFrame:
    """Paired-ready sides A and B: A scores 0.5 everywhere, B = 0.5 + the given differences.

    key="persona": one row per difference, persona by persona (one sample); key="unit": one
    persona (p17) whose samples are the clusters, one criterion per sample."""
    rows = []
    for cluster, values in per_cluster.items():
        for i, d in enumerate(values):
            persona, sample, cid = (
                (cluster, 0, f"gap-{i + 1:02d}") if key == "persona" else ("p17", int(cluster), "gap-01")
            )
            rows.append({"persona_id": persona, "persona_title": persona, "sample": sample, "criterion_id": cid,
                         "criterion_text": f"text of {cid}", "lens": "gaps", "score_norm": 0.5, "diff": d})  # fmt: skip
    a = pd.DataFrame(rows)
    return a.drop(columns="diff"), a.assign(score_norm=a["score_norm"] + a["diff"]).drop(columns="diff")


def test_two_conversations_both_lower_are_not_flagged_at_p_one_half() -> None:
    # Two conversations of one persona, both lower: the bootstrap interval is all below 0, but the
    # exact sign-flip p is 2/4 = 0.5. The old rule flagged this "worse".
    a, b = diffs({"0": [-0.25], "1": [-0.25]}, key="unit")
    persona = compare(a, b).by("persona")[0]
    assert persona.n_clusters == 2 and persona.ci_high < 0
    assert persona.p_value == pytest.approx(0.5) and persona.p_exact
    assert persona.flag == "" and persona.flag_label == ""
    assert "not flagged" in persona.note and "p = 0.5" in persona.note
    assert "nothing can be flagged at p < 0.05" in persona.note  # p >= 0.5 with two clusters


def test_six_personas_five_up_one_down_are_not_flagged_at_p_0_0625() -> None:
    # Five personas at +0.2 and one at -0.1: the interval excludes 0 but the exact p is 4/64.
    a, b = diffs({f"p{17 + i}": [0.2] for i in range(5)} | {"p22": [-0.1]})
    o = compare(a, b).overall
    assert o.ci_low > 0 and o.p_exact and o.p_value == pytest.approx(0.0625)
    assert o.flag == "" and "interval excludes 0 but p = 0.0625 is not below 0.05" in o.note


def test_a_flag_needs_interval_and_test_and_says_small_n() -> None:
    a, b = diffs({f"p{17 + i}": [0.2] for i in range(6)})
    result = compare(a, b)
    o = result.overall
    assert o.p_value == pytest.approx(2 / 64) and o.flag == "better" and o.flag_label == "better (small n)"
    assert result.alpha == pytest.approx(0.05)
    assert "better (small n)" in result.to_markdown()
    many_a, many_b = diffs({f"p{i:02d}": [0.2] for i in range(12)})
    many = compare(many_a, many_b).overall
    assert not many.small_n and many.flag_label == "better"
    loose = compare(a, b, confidence=0.9)  # p must be below 1 - confidence
    assert loose.alpha == pytest.approx(0.1) and loose.overall.flag == "better"


def test_delta_and_dz_share_one_weighting_and_agree_in_sign() -> None:
    # Personas with 20, 5 and 5 rows and differences +0.1, -0.2, -0.1. Row-weighted, delta is
    # (2 - 1 - 0.5)/30 = +0.017, while dz on unweighted persona means was -0.44: opposite signs.
    a, b = diffs({"p17": [0.1] * 20, "p18": [-0.2] * 5, "p19": [-0.1] * 5})
    o = compare(a, b).overall
    assert o.weighting == "persona-mean"
    assert o.delta == pytest.approx(-0.2 / 3) and o.mean_b - o.mean_a == pytest.approx(o.delta)
    assert o.effect_dz == pytest.approx(-0.436, abs=1e-3)
    row = compare(a, b, weighting="row").overall
    assert row.weighting == "row" and row.delta == pytest.approx(0.5 / 30)
    assert row.effect_dz is not None and row.effect_dz > 0  # same sign as its delta
    assert row.mean_b - row.mean_a == pytest.approx(row.delta)
    for result in (compare(a, b), compare(a, b, weighting="row")):
        for c in [result.overall, *result.rows]:
            if c.effect_dz is not None:
                assert math.copysign(1, c.effect_dz) == math.copysign(1, c.delta)
    assert {c.weighting for c in compare(a, b).by("persona")} == {"conversation-mean"}


def test_sign_flip_and_bootstrap_follow_the_weighting() -> None:
    values = np.array([0.1] * 20 + [-0.2] * 5 + [-0.1] * 5)
    clusters = np.array(["a"] * 20 + ["b"] * 5 + ["c"] * 5)
    # Persona means 0.1, -0.2, -0.1 (sum -0.2): signed sums of +-0.1 +-0.2 +-0.1 reach |0.2| in 6 of 8 patterns.
    assert sign_flip_test(values, clusters) == (pytest.approx(6 / 8), True)
    # Row weights: cluster sums 2.0, -1.0, -0.5 (sum 0.5): every one of the 8 patterns reaches |0.5|.
    assert sign_flip_test(values, clusters, weighting="row") == (pytest.approx(1.0), True)
    assert paired_dz(values, clusters) == pytest.approx(-0.436, abs=1e-3)
    with pytest.raises(ValueError, match="weighting"):
        paired_dz(values, clusters, weighting="persona")  # type: ignore[arg-type]
