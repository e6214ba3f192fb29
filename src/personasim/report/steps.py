"""The report's views of a module version step by step, as plain data for `templates/steps.html.j2`:
where the module loses whom (the step x persona grid), what goes wrong at each step (grouped issues
and every answer), what to change first (ranked steps; with two versions, step by step B vs A) and
whom the module fails (personas ranked, with their characteristics and group means).

The computations are `analysis/step_issues.py` and `analysis/priorities.py`; this module only joins
them to a `Slice` and names the anchors that link them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from personasim.analysis.priorities import (
    WEIGHTS,
    Citation,
    GroupComparison,
    StepChange,
    StepPriority,
    compare_groups,
    compare_steps,
    persona_profile,
    step_citations,
    step_pairs,
    step_priorities,
)
from personasim.analysis.step_issues import (
    MERGE_SIMILARITY,
    IssueGroup,
    first_stop,
    recurring,
    step_grid,
    step_ids,
    step_issues,
)
from personasim.inputs.criteria import SIMULATION_LENS
from personasim.inputs.module_diff import diff_modules
from personasim.report.data import Slice, _citations, _num, _personas, grade_anchor, slug
from personasim.report.svg import score_colors

GradeHref = Callable[[Citation], str]
TOP = 8  # ranked steps shown before "the rest"
KIND_LABELS = {"misunderstanding": "Misunderstandings", "question": "Questions", "barrier": "Barriers"}


def answer_anchor(sl: Slice, step: int, persona_id: str, sample: int) -> str:
    return f"{sl.anchor}-step-{step}-{slug(persona_id)}-s{sample}"


def step_anchor(sl: Slice, step: int) -> str:
    return f"{sl.anchor}-step-{step}"


def _titles(sl: Slice) -> dict[str, str]:
    return {pid: title or pid for pid, title in _personas(sl.frame, sl.transcripts)}


def _chip(value: float | None) -> dict[str, str]:
    bg, fg = score_colors(None if value is None else (value - 1) / 4)
    return {"text": "–" if value is None else f"{value:.1f}".removesuffix(".0"), "bg": bg, "fg": fg}


def _range(values: list[int]) -> str:
    return f"{min(values)}–{max(values)}" if values and min(values) != max(values) else ""


# --------------------------------------------------------------------------- 1. the grid


def grid_view(sl: Slice, prefix: str = "") -> dict[str, Any]:
    """One row per persona, one column per step: engagement and relevance (mean over samples, with
    the range when they differ), a stop mark, the first stop outlined, counts of misunderstandings
    and barriers, each cell a link to that persona's answers at that step (on this page, or on the
    page `prefix` names)."""
    steps = step_ids(sl.transcripts)
    cells = step_grid(sl.transcripts)
    first_sample = {}
    for t in sorted(sl.transcripts, key=lambda t: t.sample, reverse=True):
        first_sample[t.persona_id] = t.sample
    samples = max((sum(1 for t in sl.transcripts if t.persona_id == p) for p in first_sample), default=0)
    rows = []
    for pid, title in _titles(sl).items():
        row = []
        for index, step_id in steps.items():
            c = cells.get((pid, index))
            if c is None:
                row.append({"empty": True, "tip": f"{title} did not reach step {index}"})
                continue
            stop = f"stop {c.stops}/{c.n}" if c.n > 1 and c.stops else ("stop" if c.stops else "")
            stop = f"1st {stop}" if c.first_stops else stop
            tip = (f"{title} · step {index} {step_id}: engagement {_chip(c.engagement_mean)['text']}, relevance "
                   f"{_chip(c.relevance_mean)['text']}, {c.misunderstandings} misunderstandings, {c.barriers} barriers"
                   + (", would not carry on" if c.stops else "") + (" (first stop)" if c.first_stops else ""))  # fmt: skip
            row.append({
                "empty": False, "e": _chip(c.engagement_mean), "r": _chip(c.relevance_mean),
                "e_range": _range(c.engagement), "r_range": _range(c.relevance), "stop": stop,
                "first": c.first_stops > 0, "m": c.misunderstandings, "b": c.barriers, "n": c.n, "tip": tip,
                "href": prefix + "#" + answer_anchor(sl, index, pid, first_sample[pid]),
            })  # fmt: skip
        rows.append({"persona_id": pid, "title": title, "cells": row})
    return {"id": f"grid-{sl.anchor}", "steps": [{"index": i, "id": s} for i, s in steps.items()], "rows": rows,
            "samples": samples}  # fmt: skip


# --------------------------------------------------------------------------- 2. what goes wrong at each step


def _group(g: IssueGroup, titles: dict[str, str], sl: Slice) -> dict[str, Any]:
    first = {}
    for m in g.mentions:
        first.setdefault(m.persona_id, m)
    return {
        "text": g.text, "count": g.count, "barrier_kind": g.barrier_kind, "variants": g.variants[:3],
        "more_variants": max(0, len(g.variants) - 3),
        "personas": [{"id": p, "title": titles.get(p, p), "href": "#" + answer_anchor(sl, m.step_index, p, m.sample)}
                     for p, m in sorted(first.items())],
    }  # fmt: skip


def issues_view(sl: Slice) -> dict[str, Any]:
    """Per step: the distinct misunderstandings, questions and barriers (near-duplicates merged, with
    their count and personas), then every persona's answers at that step (the grid links here)."""
    titles = _titles(sl)
    by_step: dict[int, list[dict[str, Any]]] = {}
    for t in sorted(sl.transcripts, key=lambda t: (t.persona_id, t.sample)):
        for turn in t.turns:
            r = turn.reaction
            by_step.setdefault(turn.step_index, []).append({
                "id": answer_anchor(sl, turn.step_index, t.persona_id, t.sample), "persona_id": t.persona_id,
                "title": titles.get(t.persona_id, t.persona_id), "sample": t.sample, "e": _chip(r.engagement),
                "r": _chip(r.relevance), "minutes": r.minutes_spent, "carry_on": r.would_continue,
                "reason": r.continue_reason, "takeaway": r.takeaway,
            })  # fmt: skip
    module = sl.run.module(sl.module_ref)
    titles_by_step = {s.id: s.title for s in module.steps} if module else {}
    standing_groups = recurring(sl.transcripts)
    steps_of = {m: len(g.steps) for g in standing_groups for m in g.mentions}
    steps = []
    for s in step_issues(sl.transcripts):
        groups, repeated = [], []
        for kind, label in KIND_LABELS.items():  # a group everyone here raises at 3+ steps goes apart
            here = [g for g in s.groups[kind] if not all(m in steps_of for m in g.mentions)]
            groups.append((label, [_group(g, titles, sl) for g in here]))
            repeated += [{**_group(g, titles, sl), "kind": kind, "at": max(steps_of[m] for m in g.mentions)}
                         for g in s.groups[kind] if all(m in steps_of for m in g.mentions)]  # fmt: skip
        steps.append({"index": s.index, "step_id": s.step_id, "title": titles_by_step.get(s.step_id, ""),
                      "anchor": step_anchor(sl, s.index), "groups": groups, "repeated": repeated, "raised": s.raised,
                      "distinct": sum(len(g) for _, g in groups),
                      "answers": by_step.get(s.index, [])})  # fmt: skip
    standing = [{**_group(g, titles, sl), "kind": g.kind, "steps": g.steps} for g in standing_groups]
    return {"steps": steps, "recurring": standing, "threshold": MERGE_SIMILARITY, "shown": TOP}


# --------------------------------------------------------------------------- 3. what to change first


def _citations_of(sl: Slice) -> list:
    frame = sl.frame
    if frame.empty:
        return []
    judged = frame[frame["grader"] == "judge"]
    rows = [(str(r["persona_id"]), int(r["sample"]), str(r["criterion_id"]), _num(r["score"]),
             [c["id"] for c in _citations(r["evidence"])]) for r in judged.to_dict("records")]  # fmt: skip
    return step_citations(rows)


def priorities_of(sl: Slice) -> list[StepPriority]:
    module = sl.run.module(sl.module_ref)
    budgets = {s.id: s.minutes for s in module.steps if s.minutes} if module else {}
    return step_priorities(sl.transcripts, budgets, _citations_of(sl))


def _grade_link(sl: Slice) -> GradeHref:
    return lambda c: "#" + grade_anchor(sl.anchor, c.persona_id, c.criterion_id, c.sample)


def _priority(p: StepPriority, titles: dict[str, str], sl: Slice, grade_href: GradeHref, prefix: str) -> dict[str, Any]:
    low = sorted(
        (c for c in p.citations if c.score is not None and c.score <= 2), key=lambda c: (c.score, c.persona_id)
    )
    return {
        "index": p.index, "step_id": p.step_id, "score": p.score, "reasons": p.reasons(),
        "parts": [(k, v) for k, v in p.parts.items() if v > 0],
        "affected": [{"id": x, "title": titles.get(x, x)} for x in p.affected],
        "raisers": len(p.issue_personas), "href": prefix + "#" + step_anchor(sl, p.index),
        "cited": len(p.citations), "low": [{"label": f"{c.persona_id.split('-')[0]}/{c.criterion_id} s{c.sample}: {c.score:g}",
                                            "statement": c.statement_id,
                                            "href": grade_href(c)}
                                           for c in low[:6]],
        "more_low": max(0, len(low) - 6), "budget": p.budget is not None,
    }  # fmt: skip


def priorities_view(sl: Slice, grade_href: GradeHref | None = None, prefix: str = "") -> dict[str, Any]:
    """The steps ranked; `grade_href` makes the link to a citing grade (the report's own anchors by
    default), `prefix` the page holding the step sections (this one by default)."""
    titles = _titles(sl)
    link = grade_href or _grade_link(sl)
    ranked = [_priority(p, titles, sl, link, prefix) for p in priorities_of(sl)]
    module = sl.run.module(sl.module_ref)
    return {"id": f"priorities-{sl.anchor}", "top": ranked[:TOP], "rest": ranked[TOP:], "weights": WEIGHTS,
            "budgets": module is not None and any(s.minutes for s in module.steps)}  # fmt: skip


def _delta(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:+.{digits}f}"


def _change(c: StepChange) -> dict[str, Any]:
    def pair(name: str, digits: int = 1) -> str:
        va = None if c.a is None else getattr(c.a, name)
        vb = None if c.b is None else getattr(c.b, name)
        show = lambda v: "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))  # noqa: E731
        return f"{show(va)} → {show(vb)}"

    return {
        "label": c.label, "status": c.status, "matched_by": c.matched_by, "verdict": c.verdict,
        "priority": pair("score", 2), "d_priority": _delta(c.delta("score"), 2),
        "engagement": pair("engagement"), "d_engagement": _delta(c.delta("engagement")),
        "relevance": pair("relevance"), "d_relevance": _delta(c.delta("relevance")),
        "stops": pair("first_stops"), "misunderstandings": pair("misunderstandings"),
        "index_a": c.a.index if c.a else None, "index_b": c.b.index if c.b else None,
    }  # fmt: skip


def step_changes_view(a: Slice, b: Slice) -> dict[str, Any]:
    """Step by step, B against A: steps paired as `personasim modules diff` pairs them (ids, then
    renames) when the run holds both modules, else on step ids."""
    ma, mb = a.run.module(a.module_ref), b.run.module(b.module_ref)
    diff = diff_modules(ma, mb) if ma and mb else None
    pairs = step_pairs(list(step_ids(a.transcripts).values()), list(step_ids(b.transcripts).values()), diff)
    changes = [_change(c) for c in compare_steps(priorities_of(a), priorities_of(b), pairs)]
    counts = {k: sum(1 for c in changes if c["verdict"] == k) for k in ("better", "worse", "about the same", "added",
                                                                        "removed")}  # fmt: skip
    return {"rows": changes, "counts": counts, "matching": "modules diff" if diff else "step ids"}


# --------------------------------------------------------------------------- 4. whom the module fails


def persona_scores(frame: pd.DataFrame) -> dict[str, float]:
    """Each persona's mean normalised score (0-1) over the module's criteria (the simulation lens aside)."""
    if frame.empty:
        return {}
    rows = frame[(frame["lens"] != SIMULATION_LENS) & frame["score_norm"].notna()]
    means = rows.astype({"score_norm": float}).groupby("persona_id")["score_norm"].mean()
    return {str(k): float(v) for k, v in means.items()}


def _weakest_lens(frame: pd.DataFrame, pid: str) -> str:
    rows = frame[(frame["persona_id"] == pid) & (frame["lens"] != SIMULATION_LENS) & frame["score_norm"].notna()]
    if rows.empty:
        return ""
    means = rows.astype({"score_norm": float}).groupby("lens")["score_norm"].mean()
    return f"{means.idxmin()} {means.min():.2f}"


def _group_view(g: GroupComparison) -> dict[str, Any]:
    return {
        "characteristic": g.characteristic, "rule": g.rule, "comparable": g.comparable, "note": g.note,
        "groups": [{"label": r.label, "n": len(r.personas), "mean": f"{r.mean:.2f}", "personas": r.personas,
                    "interval": "" if r.interval is None else f"[{r.interval[0]:.2f}, {r.interval[1]:.2f}]"}
                   for r in g.groups],
    }  # fmt: skip


def personas_view(sl: Slice) -> dict[str, Any]:
    """Personas ranked by score (lowest first: whom the module fails), with their characteristics."""
    titles = _titles(sl)
    scores = persona_scores(sl.frame)
    profiles = {p.id: persona_profile(p) for p in sl.run.personas}
    grid = step_grid(sl.transcripts)
    rows = []
    for pid in sorted(titles, key=lambda p: (scores.get(p, 2.0), p)):
        units = [t for t in sl.transcripts if t.persona_id == pid]
        eng = [e for (p, _), c in grid.items() if p == pid for e in c.engagement]
        stops = [
            f"{i}. " + next(x.step_id for x in t.turns if x.step_index == i) for t in units if (i := first_stop(t))
        ]
        rec = [t.reflection.reflection.would_recommend for t in units if t.reflection]
        prof = profiles.get(pid)
        score = scores.get(pid)
        rows.append({
            "persona_id": pid, "title": titles[pid], "score": "–" if score is None else f"{score:.2f}",
            "cell": _chip(None if score is None else 1 + 4 * score), "weakest": _weakest_lens(sl.frame, pid),
            "engagement": f"{sum(eng) / len(eng):.1f}" if eng else "–",
            "stops": f"{len(stops)} of {len(units)}" if len(units) > 1 and stops else (stops[0] if stops else "–"),
            "recommend": f"{sum(rec)} of {len(rec)}" if rec else "–", "profile": prof,
        })  # fmt: skip
    groups = [_group_view(g) for g in compare_groups(scores, profiles)] if profiles else []
    return {"id": f"personas-{sl.anchor}", "rows": rows, "groups": groups, "has_profiles": bool(profiles),
            "n": len(rows)}  # fmt: skip
