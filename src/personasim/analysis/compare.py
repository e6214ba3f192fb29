"""Compare two runs, or two module versions inside one run, with honest uncertainty.

Rows are paired on (persona_id, sample, criterion_id): criterion ids are stable per persona, so
the same learner's answer to the same question is compared under A and under B. For every group
(all rows, each lens, each criterion, each persona) we report the difference in mean `score_norm`
(B - A) over the paired rows, and:

- a **cluster bootstrap** percentile interval: whole personas are resampled with replacement, each
  keeping all of its samples and criteria, because the answers of one simulated learner are not
  independent of each other. For one persona's own row the clusters are its conversations
  (persona x sample units) instead, and likewise for one persona's criterion (criterion ids are
  per persona: `gap-01` of one persona is not `gap-01` of another), so an interval there needs at
  least two samples per version.
- a **sign-flip permutation test** at the same cluster level: under "A and B are the same", the
  sign of each persona's differences is arbitrary. With up to `max_exact_clusters` clusters every
  sign pattern is enumerated (exact p); above that a seeded Monte Carlo sample is used. With six
  personas the smallest attainable two-sided p is 2/64 = 0.031: it is reported alongside.
- a paired effect size, Cohen's dz on the cluster mean differences (mean / sd, ddof=1).
- a flag: "worse" when the whole interval lies below 0, "better" when it lies above 0.

With few clusters the percentile bootstrap is too narrow (it ignores the (n-1)/n variance factor
and has only a few hundred distinct resamples for six personas); every contrast says so in
`note` and `small_n`. Every group is resampled with a fresh generator from `seed`, so a result
does not depend on which other groups were computed.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from personasim.errors import PersonasimError
from personasim.inputs.criteria import LENSES

KEYS = ["persona_id", "sample", "criterion_id"]  # plus "grader" when both sides have it
Level = Literal["overall", "lens", "criterion", "persona"]
LEVELS: tuple[str, ...] = ("overall", "lens", "criterion", "persona")
SMALL_N = 10  # fewer clusters than this: the interval is indicative only
EPS = 1e-9  # float noise in a difference of identical scores is not a flag


class CompareError(PersonasimError):
    """The two sides cannot be paired (missing columns, duplicate keys, nothing in common)."""


class Contrast(BaseModel):
    """B - A for one group of paired rows."""

    level: Level
    key: str = Field(description="'all', a lens, a criterion id or a persona id")
    label: str = Field(default="", description="criterion text or persona title")
    lens: str = ""
    cluster: Literal["persona", "unit"] = "persona"
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
    small_n: bool = False
    note: str = ""


class Comparison(BaseModel):
    label_a: str
    label_b: str
    n_boot: int
    seed: int
    confidence: float
    n_pairs: int
    unmatched_a: int
    unmatched_b: int
    personas: list[str]
    overall: Contrast
    rows: list[Contrast]
    warnings: list[str] = Field(default_factory=list)

    def by(self, level: str) -> list[Contrast]:
        if level == "overall":
            return [self.overall]
        if level not in LEVELS:
            raise CompareError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        return [c for c in self.rows if c.level == level]

    def flagged(self) -> list[Contrast]:
        return [c for c in [self.overall, *self.rows] if c.flag == "worse"]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_markdown(self, level: str = "lens") -> str:
        head = f"**{self.label_b} vs {self.label_a}** (delta = B - A in mean score_norm, 0-1)\n\n"
        ci = f"{self.confidence:.0%} CI"
        cols = ["level", "key", "n pairs", "clusters", "A", "B", "delta", ci, "p", "dz", "flag"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for c in [self.overall, *(self.by(level) if level != "overall" else [])]:
            lines.append("| " + " | ".join(_md(v) for v in markdown_cells(c)) + " |")
        notes = [f"- {w}" for w in self.warnings]
        return head + "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def cluster_count(c: Contrast) -> str:
    name = "conversation" if c.cluster == "unit" else c.cluster
    return f"{c.n_clusters} {name}{'' if c.n_clusters == 1 else 's'}"


def markdown_cells(c: Contrast) -> list[str]:
    return [c.level, c.key, str(c.n_pairs), cluster_count(c), fmt(c.mean_a), fmt(c.mean_b),
            fmt(c.delta, signed=True), fmt_ci(c), fmt_p(c), fmt(c.effect_dz, signed=True),
            c.flag + (" (small n)" if c.small_n else "")]  # fmt: skip


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


# --------------------------------------------------------------------------- statistics


def _cluster_sums(values: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sum of the differences and count of rows, in a stable cluster order."""
    _, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    return sums, counts


def cluster_bootstrap_ci(values: np.ndarray, clusters: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                         confidence: float = 0.95) -> tuple[float, float] | None:  # fmt: skip
    """Percentile interval of the row-weighted mean of `values`, resampling whole clusters.

    None with fewer than two clusters (there is nothing to resample)."""
    sums, counts = _cluster_sums(np.asarray(values, dtype=float), np.asarray(clusters))
    k = len(sums)
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(n_boot, k))
    offsets = (picks + k * np.arange(n_boot)[:, None]).ravel()
    weights = np.bincount(offsets, minlength=n_boot * k).reshape(n_boot, k).astype(float)  # times each cluster drawn
    means = (weights @ sums) / (weights @ counts)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def sign_flip_test(values: np.ndarray, clusters: np.ndarray, *, seed: int = 0, max_exact_clusters: int = 16,
                   n_perm: int = 10000) -> tuple[float, bool] | None:  # fmt: skip
    """Two-sided p for "mean difference is 0", flipping the sign of whole clusters.

    Returns (p, exact); None with fewer than two clusters."""
    sums, counts = _cluster_sums(np.asarray(values, dtype=float), np.asarray(clusters))
    k = len(sums)
    if k < 2:
        return None
    total = counts.sum()
    observed = abs(sums.sum() / total)
    if k <= max_exact_clusters:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
        exact = True
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_perm, k))
        exact = False
    stats = np.abs(signs @ sums / total)
    hits = int(np.sum(stats >= observed - 1e-12))
    p = hits / len(signs) if exact else (hits + 1) / (len(signs) + 1)
    return min(1.0, float(p)), exact


def paired_dz(values: np.ndarray, clusters: np.ndarray) -> float | None:
    """Cohen's dz on cluster mean differences; None with < 3 clusters (an sd of two is noise) or no spread."""
    sums, counts = _cluster_sums(np.asarray(values, dtype=float), np.asarray(clusters))
    if len(sums) < 3:
        return None
    means = sums / counts
    sd = float(np.std(means, ddof=1))
    if sd < 1e-12:
        return None
    return float(np.mean(means) / sd)


# --------------------------------------------------------------------------- pairing


def pair_rows(df_a: pd.DataFrame, df_b: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Inner join of the graded rows of A and B on persona, sample and criterion.

    Returns (pairs with score_a, score_b, diff, ...), rows of A unmatched, rows of B unmatched."""
    keys = [*KEYS, *(["grader"] if "grader" in df_a.columns and "grader" in df_b.columns else [])]
    a, b = _graded(df_a, "A", keys), _graded(df_b, "B", keys)
    keep = [*keys, "score_norm", "lens", "criterion_text", "persona_title"]
    pairs = a[keep].merge(b[[*keys, "score_norm"]], on=keys, how="inner", suffixes=("_a", "_b"))
    pairs["diff"] = pairs["score_norm_b"] - pairs["score_norm_a"]
    pairs["unit"] = pairs["persona_id"].astype(str) + "#" + pairs["sample"].astype(str)
    return pairs, len(a) - len(pairs), len(b) - len(pairs)


def _graded(df: pd.DataFrame, side: str, keys: list[str]) -> pd.DataFrame:
    missing = [c for c in [*KEYS, "score_norm", "lens"] if c not in df.columns]
    if missing:
        raise CompareError(f"side {side} lacks column(s) {', '.join(missing)}")
    out = df[df["score_norm"].notna()].copy()
    for column in ("criterion_text", "persona_title"):
        if column not in out.columns:
            out[column] = ""
    dupes = out.duplicated(keys)
    if dupes.any():
        first = "/".join(str(v) for v in out.loc[dupes, keys].iloc[0].tolist())
        raise CompareError(
            f"side {side} has more than one row for persona/sample/criterion {first}: "
            "does it hold several module versions? Pick one (compare_versions or --a/--b)"
        )
    out["score_norm"] = out["score_norm"].astype(float)
    return out


# --------------------------------------------------------------------------- contrasts


def _note(n_clusters: int, cluster: str) -> str:
    name = "conversation" if cluster == "unit" else cluster
    if n_clusters < 2:
        extra = " (needs 2+ samples per version)" if cluster == "unit" else ""
        return f"only {n_clusters} {name}: no interval or test{extra}"
    if n_clusters < SMALL_N:
        return f"only {n_clusters} {name}s: interval indicative only, p >= {2 / 2**n_clusters:.2g}"
    return ""


def contrast(group: pd.DataFrame, *, level: Level, key: str, label: str = "", lens: str = "",
             cluster: Literal["persona", "unit"] = "persona", n_boot: int = 2000, seed: int = 0,
             confidence: float = 0.95, max_exact_clusters: int = 16, n_perm: int = 10000) -> Contrast:  # fmt: skip
    values = group["diff"].to_numpy(dtype=float)
    clusters = group["persona_id" if cluster == "persona" else "unit"].astype(str).to_numpy()
    n_clusters = len(set(clusters))
    ci = cluster_bootstrap_ci(values, clusters, n_boot=n_boot, seed=seed, confidence=confidence)
    test = sign_flip_test(values, clusters, seed=seed, max_exact_clusters=max_exact_clusters, n_perm=n_perm)
    flag: Literal["worse", "better", ""] = ""
    if ci is not None and ci[1] < -EPS:
        flag = "worse"
    elif ci is not None and ci[0] > EPS:
        flag = "better"
    exact = bool(test and test[1])
    return Contrast(
        level=level, key=key, label=label, lens=lens, cluster=cluster,
        n_pairs=len(group), n_clusters=n_clusters,
        mean_a=float(group["score_norm_a"].mean()), mean_b=float(group["score_norm_b"].mean()),
        delta=float(values.mean()),
        ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
        p_value=test[0] if test else None, p_exact=exact,
        p_min=(2 / 2**n_clusters) if exact else None,
        effect_dz=paired_dz(values, clusters), flag=flag,
        small_n=n_clusters < SMALL_N, note=_note(n_clusters, cluster),
    )  # fmt: skip


def compare(df_a: pd.DataFrame, df_b: pd.DataFrame, *, label_a: str = "A", label_b: str = "B", n_boot: int = 2000,
            seed: int = 0, confidence: float = 0.95, max_exact_clusters: int = 16,
            n_perm: int = 10000) -> Comparison:  # fmt: skip
    """B - A per lens, criterion and persona (see the module docstring for the statistics)."""
    if not 0 < confidence < 1:
        raise CompareError(f"confidence must be between 0 and 1, not {confidence}")
    pairs, unmatched_a, unmatched_b = pair_rows(df_a, df_b)
    if pairs.empty:
        raise CompareError(f"{label_a} and {label_b} have no graded rows in common (persona, sample, criterion)")
    opts = {"n_boot": n_boot, "seed": seed, "confidence": confidence,
            "max_exact_clusters": max_exact_clusters, "n_perm": n_perm}  # fmt: skip
    overall = contrast(pairs, level="overall", key="all", **opts)
    lens_groups = sorted(pairs.groupby("lens"), key=lambda kg: _lens_order(str(kg[0])))
    rows = [contrast(g, level="lens", key=str(k), lens=str(k), **opts) for k, g in lens_groups]
    for (pid, cid), g in pairs.groupby(["persona_id", "criterion_id"], sort=True):
        first = g.iloc[0]
        rows.append(contrast(g, level="criterion", key=f"{pid}/{cid}", label=str(first["criterion_text"]),
                             lens=str(first["lens"]), cluster="unit", **opts))  # fmt: skip
    for pid, g in pairs.groupby("persona_id", sort=True):
        rows.append(contrast(g, level="persona", key=str(pid), label=str(g.iloc[0]["persona_title"]),
                             cluster="unit", **opts))  # fmt: skip
    return Comparison(
        label_a=label_a, label_b=label_b, n_boot=n_boot, seed=seed, confidence=confidence,
        n_pairs=len(pairs), unmatched_a=unmatched_a, unmatched_b=unmatched_b,
        personas=sorted(pairs["persona_id"].astype(str).unique()), overall=overall, rows=rows,
        warnings=_warnings(overall, unmatched_a, unmatched_b, label_a, label_b),
    )  # fmt: skip


def _lens_order(lens: str) -> tuple[int, str]:
    return (LENSES.index(lens) if lens in LENSES else len(LENSES), lens)


def _warnings(overall: Contrast, unmatched_a: int, unmatched_b: int, label_a: str, label_b: str) -> list[str]:
    out = []
    if overall.small_n:
        out.append(
            f"Only {overall.n_clusters} personas: bootstrap intervals are indicative only and tend to be too "
            f"narrow; a flag says 'look here', not 'proven'."
        )
    if unmatched_a or unmatched_b:
        out.append(
            f"Unpaired graded rows left out: {unmatched_a} in {label_a}, {unmatched_b} in {label_b} "
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
