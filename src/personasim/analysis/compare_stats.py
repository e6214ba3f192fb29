"""Cluster statistics of `compare`: weighted mean, cluster bootstrap, sign-flip test and dz, on one weighting."""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np

# "cluster": every cluster (persona or conversation) weighs the same, whatever its number of rows;
# "row": every paired row weighs the same, so a cluster with more rows counts for more.
Weighting = Literal["cluster", "row"]
WEIGHTINGS: tuple[str, ...] = ("cluster", "row")


def cluster_means(values: np.ndarray, clusters: np.ndarray, weighting: Weighting = "cluster") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(mean of `values` per cluster, weight per cluster), in a stable cluster order.

    Every figure of `compare` is the weighted mean of these cluster means, so the estimate, its
    interval, its test and its effect size all describe the same quantity."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(values, dtype=float))
    counts = np.bincount(inverse).astype(float)
    return sums / counts, (counts if weighting == "row" else np.ones_like(counts))


def weighted_mean(values: np.ndarray, clusters: np.ndarray, weighting: Weighting = "cluster") -> float:
    means, weights = cluster_means(values, clusters, weighting)
    return float(weights @ means / weights.sum())


def cluster_bootstrap_ci(values: np.ndarray, clusters: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                         confidence: float = 0.95, weighting: Weighting = "cluster") -> tuple[float, float] | None:  # fmt: skip
    """Percentile interval of the weighted mean, resampling whole clusters with replacement.

    None with fewer than two clusters (there is nothing to resample)."""
    means, weights = cluster_means(values, clusters, weighting)
    k = len(means)
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(n_boot, k))
    offsets = (picks + k * np.arange(n_boot)[:, None]).ravel()
    drawn = np.bincount(offsets, minlength=n_boot * k).reshape(n_boot, k).astype(float)  # times each cluster drawn
    estimates = (drawn @ (weights * means)) / (drawn @ weights)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(estimates, [alpha, 1 - alpha])
    return float(low), float(high)


def sign_flip_test(values: np.ndarray, clusters: np.ndarray, *, seed: int = 0, max_exact_clusters: int = 16,
                   n_perm: int = 10000, weighting: Weighting = "cluster") -> tuple[float, bool] | None:  # fmt: skip
    """Two-sided p for "the weighted mean difference is 0", flipping the sign of whole clusters.

    Returns (p, exact); None with fewer than two clusters."""
    means, weights = cluster_means(values, clusters, weighting)
    k = len(means)
    if k < 2:
        return None
    terms = weights * means / weights.sum()
    observed = abs(terms.sum())
    if k <= max_exact_clusters:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
        exact = True
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_perm, k))
        exact = False
    stats = np.abs(signs @ terms)
    hits = int(np.sum(stats >= observed - 1e-12))
    p = hits / len(signs) if exact else (hits + 1) / (len(signs) + 1)
    return min(1.0, float(p)), exact


def paired_dz(values: np.ndarray, clusters: np.ndarray, weighting: Weighting = "cluster") -> float | None:
    """Cohen's dz: weighted mean of the cluster mean differences over their weighted sd.

    With equal weights this is mean / sd (ddof=1) of the cluster means; with row weights the sd uses
    reliability weights (sum w (m - mean)^2 / (V1 - V2 / V1)), which is ddof=1 again when all weights
    are equal. Its sign is always the sign of the weighted mean. None with < 3 clusters (an sd of two
    is noise) or no spread."""
    means, weights = cluster_means(values, clusters, weighting)
    if len(means) < 3:
        return None
    v1, v2 = weights.sum(), (weights**2).sum()
    centre = float(weights @ means / v1)
    sd = float(np.sqrt(weights @ (means - centre) ** 2 / (v1 - v2 / v1)))
    if sd < 1e-12:
        return None
    return centre / sd
