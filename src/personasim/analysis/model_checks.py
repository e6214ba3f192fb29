"""The checks of `personasim check-model`: can this model stand in for these learners, and judge them?

Each check is a pure function of saved results (the results tables and transcripts of the original
and the ablated run, and the judge's persona guesses) and returns a `CheckResult`. `THRESHOLDS` is
the one place their pass marks live (a suite may override them); `verdict()` turns the checks into
"fit for module decisions", "use with caution" or "not fit". The README's "Can this model stand in
for these learners?" section says what each check means and why its threshold is where it is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from statistics import fmean
from typing import Any

import numpy as np
import pandas as pd

from personasim.analysis.compare import Comparison
from personasim.analysis.health_text import ai_phrase
from personasim.analysis.reliability import krippendorff_alpha, repeat_scores
from personasim.inputs.criteria import LENSES
from personasim.records.scorecard import CAUTION, FIT, NOT_FIT, CheckResult
from personasim.records.transcript import Transcript

THRESHOLDS: dict[str, float] = {
    # Persona fidelity: the judge names the persona behind an anonymised transcript more often than
    # chance, by an exact one-sided binomial test at this level.
    "fidelity_p": 0.05,
    # Sensitivity: each lens the ablation should move drops, normalised (0-1 scale), by at least this
    # much, with the paired interval below zero.
    "sensitivity_drop": 0.05,
    # Specificity: lenses the ablation should not move stay within this (normalised) ...
    "specificity_tolerance": 0.1,
    # ... and after the ablation the judge gives 4+ on at most this share of the criteria of the
    # lenses whose content was removed (a judge that credits what is not there fails).
    "specificity_credit": 0.5,
    # Stability: the share of score variance due to the persona (ICC(1) over personas x samples).
    "stability_icc": 0.2,
    # Judge reliability: Krippendorff's alpha over independent judge repeats (Krippendorff's own
    # lowest bound for tentative conclusions is 0.667).
    "judge_alpha": 0.667,
    # Misunderstanding surfacing: share of the persona's potential misunderstandings, at steps whose
    # text touches them, that the learner voices.
    "surfacing": 0.3,
    # Instruction following: first-try valid answers; character breaks.
    "first_try_valid": 0.8,
    "ai_phrases": 0.05,
}
CRITICAL = frozenset({"persona_fidelity", "sensitivity", "specificity", "instruction_following"})


def _result(
    name: str, value: float | None, threshold: str, passed: bool | None, detail: str, meaning: str
) -> CheckResult:
    return CheckResult(name=name, value=None if value is None else round(value, 4), threshold=threshold,
                       passed=passed, critical=name in CRITICAL, detail=detail, meaning=meaning)  # fmt: skip


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly."""
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def persona_fidelity(guesses: list[tuple[str, str]], n_profiles: int, t: Mapping[str, float]) -> CheckResult:
    """`guesses`: (the persona behind each anonymised transcript, the one the judge named)."""
    meaning = "the simulated learners differ the way these people do: a judge can tell who wrote what"
    if not guesses or n_profiles < 2:
        return _result("persona_fidelity", None, f"p < {t['fidelity_p']}", None, "needs 2+ personas", meaning)
    right = sum(truth == guess for truth, guess in guesses)
    chance = 1 / n_profiles
    p = binomial_tail(right, len(guesses), chance)
    detail = f"{right} of {len(guesses)} named right (chance {chance:.0%}); exact binomial p = {p:.3g}"
    return _result(
        "persona_fidelity", right / len(guesses), f"p < {t['fidelity_p']}", p < t["fidelity_p"], detail, meaning
    )


def style_baseline(texts: list[tuple[str, str]]) -> CheckResult:
    """Model-free: a nearest-persona classifier over the learner's own words (TF-IDF, cosine),
    leave-one-out. High accuracy with no content in common says the personas differ in style alone."""
    from personasim.text_similarity import tokenize

    meaning = "how far the learner's words alone tell personas apart (a reference for the judge, not a pass mark)"
    personas = sorted({p for p, _ in texts})
    if len(personas) < 2 or len(texts) <= len(personas):
        return _result("style_baseline", None, "reference", None, "needs 2+ samples per persona", meaning)
    docs = [tokenize(text) for _, text in texts]
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    counts = np.zeros((len(docs), len(vocab)))
    for row, doc in enumerate(docs):
        for word in doc:
            counts[row, vocab[word]] += 1
    idf = np.log((1 + len(docs)) / (1 + (counts > 0).sum(axis=0))) + 1
    vectors = counts * idf
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    labels = [p for p, _ in texts]
    right = 0
    for i, truth in enumerate(labels):
        scores = {}
        for persona in personas:
            others = [j for j, lab in enumerate(labels) if lab == persona and j != i]
            if others:
                centroid = vectors[others].mean(axis=0)
                scores[persona] = float(vectors[i] @ centroid / (np.linalg.norm(centroid) + 1e-12))
        right += max(scores, key=scores.get) == truth
    detail = f"{right} of {len(texts)} nearest-persona right, leave-one-out (chance {1 / len(personas):.0%})"
    return _result("style_baseline", right / len(texts), "reference", None, detail, meaning)


def _lens_contrasts(comparison: Comparison) -> dict[str, Any]:
    return {c.key: c for c in comparison.by("lens")}


def sensitivity(comparison: Comparison | None, expect: list[str], t: Mapping[str, float]) -> CheckResult:
    """The lenses the ablation should lower drop (ablated - original), with the interval below 0."""
    meaning = "removing the content that serves a learning outcome lowers the scores that outcome should move"
    threshold = f"each of {', '.join(expect) or '-'} drops by {t['sensitivity_drop']}+, interval below 0"
    if comparison is None or not expect:
        return _result(
            "sensitivity", None, threshold, None, "not run: no ablation given (--ablate, or a suite's)", meaning
        )
    by_lens = _lens_contrasts(comparison)
    parts, ok, drops = [], True, []
    for lens in expect:
        c = by_lens.get(lens)
        if c is None:
            parts.append(f"{lens}: no paired scores")
            ok = False
            continue
        drops.append(-c.delta)
        low_enough = c.delta <= -t["sensitivity_drop"] and c.ci_high is not None and c.ci_high < 0
        ok = ok and low_enough
        parts.append(f"{lens} {c.delta:+.2f} [{_ci(c)}]")
    return _result("sensitivity", min(drops) if drops else None, threshold, ok, "; ".join(parts), meaning)


def specificity(comparison: Comparison | None, ablated: pd.DataFrame | None, expect: list[str],
                t: Mapping[str, float]) -> CheckResult:  # fmt: skip
    """Lenses the ablation should not move stay within the tolerance, and after the ablation the
    judge does not credit the removed content (few 4+ scores on the expected lenses)."""
    meaning = "the judge does not credit what is not there, and leaves alone what the ablation did not touch"
    threshold = f"others within ±{t['specificity_tolerance']}; 4+ on removed content <= {t['specificity_credit']:.0%}"
    if comparison is None or ablated is None or not expect:
        return _result(
            "specificity", None, threshold, None, "not run: no ablation given (--ablate, or a suite's)", meaning
        )
    others = [c for c in comparison.by("lens") if c.key in LENSES and c.key not in expect]
    moved = [c for c in others if abs(c.delta) > t["specificity_tolerance"]]
    judged = ablated[(ablated["grader"] == "judge") & ablated["lens"].isin(expect) & ablated["score"].notna()]
    credit = float((judged["score"] >= 4).mean()) if len(judged) else 0.0
    ok = not moved and credit <= t["specificity_credit"]
    detail = (
        f"{len(moved)} of {len(others)} other lenses moved beyond ±{t['specificity_tolerance']}"
        + (f" ({', '.join(f'{c.key} {c.delta:+.2f}' for c in moved)})" if moved else "")
        + f"; {credit:.0%} of {len(judged)} scores on the removed content's lenses are 4+ after removal"
    )
    return _result("specificity", credit, threshold, ok, detail, meaning)


def _ci(c: Any) -> str:
    return "-" if c.ci_low is None else f"{c.ci_low:+.2f}..{c.ci_high:+.2f}"


def stability(results: pd.DataFrame, t: Mapping[str, float]) -> CheckResult:
    """ICC(1) per lens over persona x sample lens means, averaged over lenses: the share of the
    variance that is between personas rather than between a persona's own repeats."""
    meaning = "personas differ more than one persona's repeats do: the table describes learners, not noise"
    threshold = f">= {t['stability_icc']}"
    judged = results[results["lens"].isin(LENSES) & results["score_norm"].notna()]
    cells = judged.groupby(["lens", "persona_id", "sample"])["score_norm"].mean()
    iccs = []
    for lens in sorted(set(cells.index.get_level_values(0))):
        groups = [g.to_numpy(dtype=float) for _, g in cells[lens].groupby(level=0)]
        icc = _icc1(groups)
        if icc is not None:
            iccs.append(icc)
    if not iccs:
        return _result("stability", None, threshold, None, "needs 2+ personas with 2+ samples each", meaning)
    value = fmean(iccs)
    detail = f"share of variance due to persona (ICC(1)) {value:.2f}, mean over {len(iccs)} lenses"
    return _result("stability", value, threshold, value >= t["stability_icc"], detail, meaning)


def _icc1(groups: list[np.ndarray]) -> float | None:
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return None
    k = min(len(g) for g in groups)
    groups = [g[:k] for g in groups]
    grand = fmean(float(v) for g in groups for v in g)
    msb = k * sum((g.mean() - grand) ** 2 for g in groups) / (len(groups) - 1)
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (len(groups) * (k - 1))
    if msb + (k - 1) * msw == 0:
        return 0.0  # no variation at all: nothing tells the personas apart
    return float((msb - msw) / (msb + (k - 1) * msw))


def judge_reliability(results: pd.DataFrame, t: Mapping[str, float], judge_temperature: float = 0.5) -> CheckResult:
    """Agreement of independent repeats; at temperature 0 the repeats are copies and no alpha over
    them means anything, so the check says so instead of printing a number."""
    meaning = "the judge's independent repeats agree: one reading of a transcript is not luck"
    threshold = f"alpha >= {t['judge_alpha']}"
    judged = results[results["grader"] == "judge"]
    units = [s for s in (repeat_scores(r) for r in judged.to_dict("records")) if s]
    if not units or max(len(u) for u in units) < 3:
        return _result(
            "judge_reliability", None, threshold, None, "needs 3+ judge samples (--judge-samples 3)", meaning
        )
    if judge_temperature == 0:
        detail = "the judge ran at temperature 0: its repeats are copies, not independent draws, so no alpha is given"
        return _result("judge_reliability", None, threshold, False, detail, meaning)
    agreement = krippendorff_alpha(units)
    if agreement.alpha is None:
        detail = agreement.note + ": the repeats are copies, not independent draws"
        return _result("judge_reliability", None, threshold, False, detail, meaning)
    detail = f"Krippendorff's alpha {agreement.alpha:.2f} over {agreement.n_units} criteria x transcripts"
    return _result(
        "judge_reliability", agreement.alpha, threshold, agreement.alpha >= t["judge_alpha"], detail, meaning
    )


def surfacing(voiced: Mapping[str, tuple[int, int]], t: Mapping[str, float]) -> CheckResult:
    """`voiced`: persona id -> (misunderstandings voiced, misunderstandings the module's text touches)."""
    meaning = "the learners raise the misconceptions these people are known to hold, where the module touches them"
    threshold = f">= {t['surfacing']:.0%}"
    shares = [said / touched for said, touched in voiced.values() if touched]
    if not shares:
        return _result(
            "misunderstanding_surfacing", None, threshold, None, "no potential misunderstanding is touched", meaning
        )
    value = fmean(shares)
    said, touched = (sum(v[i] for v in voiced.values()) for i in (0, 1))
    detail = f"{said} of {touched} touched misunderstandings voiced ({value:.0%} per persona on average)"
    return _result("misunderstanding_surfacing", value, threshold, value >= t["surfacing"], detail, meaning)


def instruction_following(transcripts: list[Transcript], results: pd.DataFrame, t: Mapping[str, float]) -> CheckResult:
    meaning = "the model answers in role, in the format asked, without re-asks: its answers can be read at all"
    threshold = f"first-try valid >= {t['first_try_valid']:.0%}, AI phrases <= {t['ai_phrases']:.0%}"
    calls = [c for tr in transcripts for c in tr.calls()]
    if not calls:
        return _result("instruction_following", None, threshold, None, "no answers", meaning)
    first_try = sum(c.reasks == 0 and c.finish_reason != "length" for c in calls) / len(calls)
    truncated = sum(c.finish_reason == "length" for c in calls)
    texts = [t_ for tr in transcripts for t_ in tr.learner_texts()]
    breaks = sum(ai_phrase(x) is not None for x in texts)
    ai_share = breaks / len(texts) if texts else 0.0
    judged = results[results["grader"] == "judge"]
    failed = int(judged["score"].isna().sum()) if len(judged) else 0
    ok = first_try >= t["first_try_valid"] and ai_share <= t["ai_phrases"]
    detail = (
        f"{first_try:.0%} of {len(calls)} learner answers valid first time ({truncated} cut off); "
        f"{breaks} of {len(texts)} statements break character; {failed} of {len(judged)} judge grades failed"
    )
    return _result("instruction_following", first_try, threshold, ok, detail, meaning)


def verdict(checks: list[CheckResult]) -> str:
    """not fit: a critical check failed; use with caution: any other failed, or a check did not run;
    fit for module decisions: every check passed."""
    scored = [c for c in checks if c.threshold != "reference"]
    if any(c.critical and c.passed is False for c in scored):
        return NOT_FIT
    if any(c.passed is not True for c in scored):
        return CAUTION
    return FIT


def voiced_counts(per_persona: Mapping[str, list[tuple[str, bool, bool]]]) -> dict[str, tuple[int, int]]:
    """persona -> (voiced, touched) from (item, touched by the module's text, voiced by the learner)."""
    out: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for persona, items in per_persona.items():
        touched = [voiced for _, touches, voiced in items if touches]
        out[persona] = (sum(touched), len(touched))
    return dict(out)
