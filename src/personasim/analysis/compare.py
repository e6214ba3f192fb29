"""Compare two runs, or two module versions inside one run, with honest uncertainty.

Rows are paired on the same learner's answer to the same question under A and under B: by default
on (persona_id, sample, criterion text), after checking that each persona's file (`persona_hash`)
is the same on both sides; criterion ids are positions (`gap-02` is a persona's second gap), so an
edited persona would pair two different questions by id. `pairing="id"` (`--by-id`) pairs on
(persona_id, sample, criterion_id) anyway and warns about every persona file and criterion text
that differs. For every group (all rows, each lens, each criterion, each persona) we report B - A
in mean `score_norm`, with every figure of a row on one weighting (`weighting`): by default each
cluster (persona, or conversation for one persona's rows) weighs the same, whatever its number of
rows; `weighting="row"` weighs every paired row the same instead. On that weighting:

- mean_a, mean_b and delta = mean_b - mean_a: weighted means of the per-cluster means;
- a **cluster bootstrap** percentile interval: whole clusters are resampled with replacement,
  because the answers of one simulated learner are not independent of each other. For one
  persona's own row, and for one persona's criterion, the clusters are its conversations
  (persona x sample units), so an interval there needs at least two samples per version;
- a **sign-flip permutation test** at the same cluster level: under "A and B are the same", the
  sign of each cluster's difference is arbitrary. With up to `max_exact_clusters` clusters every
  sign pattern is enumerated (exact p); above that a seeded Monte Carlo sample is used. With six
  personas the smallest attainable two-sided p is 2/64 = 0.031 (`p_min`);
- Cohen's dz: the weighted mean of the cluster differences over their weighted sd, so its sign is
  always the sign of delta;
- a flag, "worse" or "better", only when the interval excludes 0 **and** p is below
  1 - confidence (0.05 by default); with fewer than `SMALL_N` clusters it always reads
  "(small n)" (`flag_label`). With few clusters the percentile bootstrap is too narrow (it ignores
  the (n-1)/n variance factor and has only a few hundred distinct resamples for six personas), so
  the test must agree before anything is flagged.

Every group is resampled with a fresh generator from `seed`, so a result does not depend on which
other groups were computed. A comparison can carry what B's text gained or lost in coverage before
simulation (`coverage_changes`, from `analysis.gaps`; set by whoever has the runs' coverage).
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from personasim.analysis.compare_pairing import CompareError, Paired, Pairing, pair
from personasim.analysis.compare_stats import (
    Weighting,
    cluster_bootstrap_ci,
    paired_dz,
    sign_flip_test,
    weighted_mean,
)
from personasim.analysis.gaps_types import CoverageChange
from personasim.inputs.criteria import LENSES

Level = Literal["overall", "lens", "criterion", "persona"]
LEVELS: tuple[str, ...] = ("overall", "lens", "criterion", "persona")
SMALL_N = 10  # fewer clusters than this: the interval is indicative only
EPS = 1e-9  # float noise in a difference of identical scores is not a flag


class Contrast(BaseModel):
    """B - A for one group of paired rows."""

    level: Level
    key: str = Field(description="'all', a lens, '<persona>/<criterion id>' or a persona id")
    label: str = Field(default="", description="criterion text or persona title")
    lens: str = ""
    cluster: Literal["persona", "unit"] = "persona"
    weighting: str = Field(default="persona-mean", description="persona-mean, conversation-mean or row")
    n_pairs: int
    n_clusters: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_exact: bool = False
    p_min: float | None = Field(default=None, description="smallest p the test can give with these clusters")
    effect_dz: float | None = None
    flag: Literal["worse", "better", ""] = ""
    flag_label: str = Field(default="", description="the flag with its '(small n)' qualifier when n is small")
    small_n: bool = False
    note: str = ""


class Comparison(BaseModel):
    label_a: str
    label_b: str
    n_boot: int
    seed: int
    confidence: float
    alpha: float = Field(default=0.05, description="a flag needs p below this (1 - confidence)")
    weighting: str = Field(default="cluster", description="cluster (each persona/conversation the same) or row")
    pairing: str = Field(default="content", description="content (persona file + criterion text) or id")
    n_pairs: int
    unmatched_a: int
    unmatched_b: int
    personas: list[str]
    overall: Contrast
    rows: list[Contrast]
    warnings: list[str] = Field(default_factory=list)
    coverage_changes: list[CoverageChange] = Field(
        default_factory=list, description="per persona criterion: did B's text gain or lose a step addressing it"
    )
    coverage_note: str = Field(default="", description="why there are no coverage changes, or what to read them with")

    def by(self, level: str) -> list[Contrast]:
        if level == "overall":
            return [self.overall]
        if level not in LEVELS:
            raise CompareError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        return [c for c in self.rows if c.level == level]

    def flagged(self) -> list[Contrast]:
        """Groups flagged "worse": interval below 0 and p below `alpha`."""
        return [c for c in [self.overall, *self.rows] if c.flag == "worse"]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_markdown(self, level: str = "lens") -> str:
        head = (
            f"**{self.label_b} vs {self.label_a}** (delta = B - A in mean score_norm, 0-1; {weighting_text(self)}; "
            f"flagged when the interval excludes 0 and p < {self.alpha:g})\n\n"
        )
        ci = f"{self.confidence:.0%} CI"
        cols = ["level", "key", "n pairs", "clusters", "A", "B", "delta", ci, "p", "dz", "flag"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for c in [self.overall, *(self.by(level) if level != "overall" else [])]:
            lines.append("| " + " | ".join(_md(v) for v in markdown_cells(c)) + " |")
        notes = [f"- {w}" for w in self.warnings]
        body = head + "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"
        return body + self._coverage_markdown()

    def _coverage_markdown(self) -> str:
        if not self.coverage_changes:
            return f"\nCoverage before simulation: {self.coverage_note}\n" if self.coverage_note else ""
        lines = [f"\n**Coverage before simulation** (steps addressing each persona criterion, no model): "
                 f"{coverage_counts(self.coverage_changes)}" + (f"; {self.coverage_note}" if self.coverage_note else ""),
                 "", "| change | persona/criterion | lens | A | B |", "|---|---|---|---|---|"]  # fmt: skip
        for c in moved(self.coverage_changes):
            cells = [c.change, f"{c.persona_id}/{c.criterion_id}", c.lens, c.summary_a, c.summary_b]
            lines.append("| " + " | ".join(_md(v) for v in cells) + " |")
        return "\n".join(lines) + "\n"


def moved(changes: list[CoverageChange]) -> list[CoverageChange]:
    """The criteria B lost, then those it gained (persona order within each)."""
    return sorted(
        (c for c in changes if c.change in ("lost", "gained")), key=lambda c: (c.change != "lost", c.persona_id)
    )


def coverage_counts(changes: list[CoverageChange]) -> str:
    """`"3 gained, 2 lost, 103 same, 12 need a run"`."""
    names = {"gained": "gained", "lost": "lost", "same": "same", "undecided": "need a run"}
    return ", ".join(f"{sum(c.change == k for c in changes)} {name}" for k, name in names.items())


def weighting_text(result: Comparison) -> str:
    if result.weighting == "row":
        return "every figure weighs each paired row the same"
    return "every figure weighs each persona (overall, lens) or conversation (criterion, persona) the same"


def cluster_count(c: Contrast) -> str:
    name = "conversation" if c.cluster == "unit" else c.cluster
    return f"{c.n_clusters} {name}{'' if c.n_clusters == 1 else 's'}"


def markdown_cells(c: Contrast) -> list[str]:
    return [c.level, c.key, str(c.n_pairs), cluster_count(c), fmt(c.mean_a), fmt(c.mean_b),
            fmt(c.delta, signed=True), fmt_ci(c), fmt_p(c), fmt(c.effect_dz, signed=True), c.flag_label]  # fmt: skip


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def fmt_ci(c: Contrast) -> str:
    if c.ci_low is None or c.ci_high is None:
        return "-"
    return f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]"


def fmt_p(c: Contrast) -> str:
    if c.p_value is None:
        return "-"
    return f"{c.p_value:.3f}" + ("" if c.p_exact else "~")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- pairing


def pair_rows(df_a: pd.DataFrame, df_b: pd.DataFrame, pairing: Pairing = "content") -> tuple[pd.DataFrame, int, int]:
    """The graded rows of A and B paired (see the module docstring for how).

    Returns (pairs with score_norm_a, score_norm_b, diff, ...), rows of A unmatched, rows of B unmatched."""
    paired = pair(df_a, df_b, pairing)
    return paired.pairs, paired.unmatched_a, paired.unmatched_b


# --------------------------------------------------------------------------- contrasts


def _weighting_label(weighting: Weighting, cluster: str) -> str:
    if weighting == "row":
        return "row"
    return "persona-mean" if cluster == "persona" else "conversation-mean"


def _note(n_clusters: int, cluster: str, alpha: float) -> str:
    name = "conversation" if cluster == "unit" else cluster
    if n_clusters < 2:
        extra = " (needs 2+ samples per version)" if cluster == "unit" else ""
        return f"only {n_clusters} {name}: no interval or test{extra}"
    if n_clusters < SMALL_N:
        p_min = 2 / 2**n_clusters
        never = f", so nothing can be flagged at p < {alpha:g}" if p_min >= alpha else ""
        return f"only {n_clusters} {name}s: interval indicative only, p >= {p_min:.2g}{never}"
    return ""


def contrast(group: pd.DataFrame, *, level: Level, key: str, label: str = "", lens: str = "",
             cluster: Literal["persona", "unit"] = "persona", weighting: Weighting = "cluster", n_boot: int = 2000,
             seed: int = 0, confidence: float = 0.95, max_exact_clusters: int = 16,
             n_perm: int = 10000) -> Contrast:  # fmt: skip
    values = group["diff"].to_numpy(dtype=float)
    clusters = group["persona_id" if cluster == "persona" else "unit"].astype(str).to_numpy()
    n_clusters = len(set(clusters))
    alpha = 1 - confidence
    ci = cluster_bootstrap_ci(values, clusters, n_boot=n_boot, seed=seed, confidence=confidence, weighting=weighting)
    test = sign_flip_test(values, clusters, seed=seed, max_exact_clusters=max_exact_clusters, n_perm=n_perm,
                          weighting=weighting)  # fmt: skip
    side: Literal["worse", "better", ""] = ""
    if ci is not None and ci[1] < -EPS:
        side = "worse"
    elif ci is not None and ci[0] > EPS:
        side = "better"
    significant = test is not None and test[0] < alpha
    flag = side if significant else ""
    small_n = n_clusters < SMALL_N
    note = _note(n_clusters, cluster, alpha)
    if side and not significant and test is not None:
        why = f"interval excludes 0 but p = {test[0]:.3g} is not below {alpha:g}: not flagged"
        note = f"{note}; {why}" if note else why
    exact = bool(test and test[1])
    return Contrast(
        level=level, key=key, label=label, lens=lens, cluster=cluster,
        weighting=_weighting_label(weighting, cluster), n_pairs=len(group), n_clusters=n_clusters,
        mean_a=weighted_mean(group["score_norm_a"].to_numpy(dtype=float), clusters, weighting),
        mean_b=weighted_mean(group["score_norm_b"].to_numpy(dtype=float), clusters, weighting),
        delta=weighted_mean(values, clusters, weighting),
        ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
        p_value=test[0] if test else None, p_exact=exact,
        p_min=(2 / 2**n_clusters) if exact else None,
        effect_dz=paired_dz(values, clusters, weighting), flag=flag,
        flag_label=flag + (" (small n)" if flag and small_n else ""),
        small_n=small_n, note=note,
    )  # fmt: skip


def compare(df_a: pd.DataFrame, df_b: pd.DataFrame, *, label_a: str = "A", label_b: str = "B", n_boot: int = 2000,
            seed: int = 0, confidence: float = 0.95, max_exact_clusters: int = 16, n_perm: int = 10000,
            pairing: Pairing = "content", weighting: Weighting = "cluster") -> Comparison:  # fmt: skip
    """B - A per lens, criterion and persona (see the module docstring for the statistics)."""
    if not 0 < confidence < 1:
        raise CompareError(f"confidence must be between 0 and 1, not {confidence}")
    if weighting not in ("cluster", "row"):
        raise CompareError(f"weighting must be cluster or row, not {weighting!r}")
    paired = pair(df_a, df_b, pairing, label_a, label_b)
    pairs = paired.pairs
    if pairs.empty:
        raise CompareError(f"{label_a} and {label_b} have no graded rows in common (persona, sample, criterion)")
    opts = {"n_boot": n_boot, "seed": seed, "confidence": confidence, "weighting": weighting,
            "max_exact_clusters": max_exact_clusters, "n_perm": n_perm}  # fmt: skip
    overall = contrast(pairs, level="overall", key="all", **opts)
    lens_groups = sorted(pairs.groupby("lens"), key=lambda kg: _lens_order(str(kg[0])))
    rows = [contrast(g, level="lens", key=str(k), lens=str(k), **opts) for k, g in lens_groups]
    for (pid, ckey), g in pairs.groupby(["persona_id", "criterion_key"], sort=True):
        first = g.iloc[0]
        rows.append(contrast(g, level="criterion", key=f"{pid}/{ckey}", label=str(first["criterion_text"]),
                             lens=str(first["lens"]), cluster="unit", **opts))  # fmt: skip
    for pid, g in pairs.groupby("persona_id", sort=True):
        rows.append(contrast(g, level="persona", key=str(pid), label=str(g.iloc[0]["persona_title"]),
                             cluster="unit", **opts))  # fmt: skip
    return Comparison(
        label_a=label_a, label_b=label_b, n_boot=n_boot, seed=seed, confidence=confidence,
        alpha=round(1 - confidence, 10), weighting=weighting, pairing=paired.pairing,
        n_pairs=len(pairs), unmatched_a=paired.unmatched_a, unmatched_b=paired.unmatched_b,
        personas=sorted(pairs["persona_id"].astype(str).unique()), overall=overall, rows=rows,
        warnings=[*paired.warnings, *_warnings(overall, paired, label_a, label_b)],
    )  # fmt: skip


def _lens_order(lens: str) -> tuple[int, str]:
    return (LENSES.index(lens) if lens in LENSES else len(LENSES), lens)


def _warnings(overall: Contrast, paired: Paired, label_a: str, label_b: str) -> list[str]:
    out = []
    if overall.small_n:
        out.append(
            f"Only {overall.n_clusters} personas: bootstrap intervals are indicative only and tend to be too "
            f"narrow; a flag (interval and test agree) says 'look here', not 'proven'."
        )
    if paired.unmatched_a or paired.unmatched_b:
        out.append(
            f"Unpaired graded rows left out: {paired.unmatched_a} in {label_a}, {paired.unmatched_b} in {label_b} "
            "(different samples, criteria or personas)."
        )
    return out


def compare_versions(df: pd.DataFrame, version_a: str, version_b: str, **kwargs: object) -> Comparison:
    """Compare two module versions held in one results table."""
    if "module_version" not in df.columns:
        raise CompareError("the results table has no module_version column")
    present = sorted(df["module_version"].astype(str).unique())
    for version in (version_a, version_b):
        if version not in present:
            raise CompareError(f"module version {version!r} is not in this run (it has: {', '.join(present)})")
    versions = df["module_version"].astype(str)
    kwargs.setdefault("label_a", version_a)
    kwargs.setdefault("label_b", version_b)
    return compare(df[versions == version_a], df[versions == version_b], **kwargs)  # type: ignore[arg-type]
