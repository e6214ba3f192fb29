"""The report's coverage before simulation: persona x criterion grids, the judge against them, B's gains and losses."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pandas as pd

from personasim.analysis.compare import moved
from personasim.analysis.coverage_health import CoverageFlag, coverage_health
from personasim.analysis.gaps import coverage_between
from personasim.analysis.gaps_types import Coverage, CoverageChange, CriterionCoverage, PersonaCoverage, StepHit
from personasim.inputs.criteria import LENSES
from personasim.report.data import Slice

_NUMBERED = re.compile(r"-(\d+)$")
STATES = {True: ("addressed", "yes"), False: ("not addressed", "no"), None: ("needs a run", "run")}
FLAG_MARKS = {"credited_unaddressed": ("!", "credited"), "look_here": ("?", "look")}
CHANGE_ORDER = ("gained", "lost", "same", "undecided")


def criterion_columns(items: Iterable[PersonaCoverage]) -> list[tuple[str, str]]:
    """(criterion id, lens) of every persona's criteria, once each: lens by lens, numbered ids in order."""
    seen: dict[str, tuple[str, int]] = {}
    for item in items:
        for c in item.criteria:
            seen.setdefault(c.criterion_id, (c.lens, len(seen)))

    def key(entry: tuple[str, tuple[str, int]]) -> tuple[int, int, int, int]:
        cid, (lens, first) = entry
        number = _NUMBERED.search(cid)
        lens_at = LENSES.index(lens) if lens in LENSES else len(LENSES)
        return (lens_at, 0 if number else 1, int(number.group(1)) if number else 0, first)

    return [(cid, lens) for cid, (lens, _) in sorted(seen.items(), key=key)]


def _judge_scores(frame: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    if frame.empty or not {"grader", "score", "persona_id", "criterion_id"} <= set(frame.columns):
        return {}
    rows = frame[(frame["grader"] == "judge") & frame["score"].notna()]
    out: dict[tuple[str, str], list[float]] = {}
    for pid, cid, score in rows[["persona_id", "criterion_id", "score"]].itertuples(index=False, name=None):
        out.setdefault((str(pid), str(cid)), []).append(float(score))
    return out


def _scores(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _step(hit: StepHit) -> dict[str, Any]:
    best = hit.sentences[0] if hit.sentences else None
    return {
        "position": hit.position, "step_id": hit.step_id, "title": hit.step_title, "strength": hit.strength or "",
        "score": "" if hit.score is None else f"{hit.score:.2f}",
        "part": best.part if best else "", "sentence": best.text if best else "",
    }  # fmt: skip


def _criterion(c: CriterionCoverage, scores: list[float], flag: CoverageFlag | None) -> dict[str, Any]:
    state, cls = STATES[c.addressed]
    return {
        "id": c.criterion_id, "lens": c.lens, "text": c.text, "method": c.method, "state": state, "cls": cls,
        "summary": c.summary, "steps": [_step(s) for s in c.steps],
        "nearest": _step(c.nearest) if c.nearest and not c.addressed else None,
        "checks": [{"verdict": k.verdict, "item": k.item, "rule": k.rule, "evidence": k.evidence} for k in c.checks],
        "judge": _scores(scores), "judge_mean": f"{sum(scores) / len(scores):.1f}" if scores else "",
        "flag": FLAG_MARKS[flag.kind][1] if flag else "",
    }  # fmt: skip


def _cell(c: CriterionCoverage | None, scores: list[float], flag: CoverageFlag | None) -> dict[str, Any]:
    if c is None:
        return {"text": "", "cls": "none", "tip": "not a criterion of this persona"}
    state, cls = STATES[c.addressed]
    if c.addressed is None:
        text = "·"
    elif c.method in ("serves", "text"):
        text = str(len(c.steps))
    else:
        text = "✓" if c.addressed else "✗"
    if c.addressed and any(s.strength in ("strong", "declared") for s in c.steps):
        cls += " strong"
    tip = f"{c.criterion_id} ({c.lens}): {c.summary}"
    if scores:
        tip += f"; judge {_scores(scores)}"
    if flag:
        mark, kind = FLAG_MARKS[flag.kind]
        text, cls = text + mark, f"{cls} {kind}"
        tip += "; credited though no step addresses it" if kind == "credited" else "; steps address it, judge 1-2"
    return {"text": text, "cls": cls, "tip": tip}


def coverage_view(sl: Slice) -> dict[str, Any]:
    """This module version's coverage of every persona's criteria, and the judge's scores against it."""
    coverage = sl.run.coverage
    items = [i for i in coverage.items if i.module_ref == sl.module_ref] if coverage else []
    if coverage is None or not items:
        note = sl.run.coverage_note if coverage is None else f"the run's coverage has no {sl.module_ref}"
        return {"available": False, "note": note or "no coverage for this run"}
    health = coverage_health(sl.frame, coverage)
    flags = {(f.persona_id, f.criterion_id): f for f in health.flags if f.module_ref == sl.module_ref}
    scores = _judge_scores(sl.frame)
    columns = criterion_columns(items)
    rows = []
    for item in items:

        def at(cid: str, pid: str = item.persona_id) -> tuple[list[float], CoverageFlag | None]:
            return scores.get((pid, cid), []), flags.get((pid, cid))

        cells = [_cell(item.criterion(cid), *at(cid)) for cid, _ in columns]
        criteria = [_criterion(c, *at(c.criterion_id)) for c in item.criteria]
        counts = Counter(c["state"] for c in criteria)
        rows.append({"persona_id": item.persona_id, "title": item.persona_title, "cells": cells,
                     "criteria": criteria, "counts": [(s, counts[s]) for s, _ in STATES.values() if counts[s]],
                     "time": item.time.summary})  # fmt: skip
    flagged = [_flag_row(f, items) for f in health.flags if f.module_ref == sl.module_ref]
    return {
        "available": True, "note": sl.run.coverage_note, "columns": columns, "rows": rows,
        "threshold": coverage.settings.threshold, "strong": coverage.settings.strong_threshold,
        "checks": [{"name": c.name, "detail": c.detail, "value": c.value, "threshold": c.threshold,
                    "status": _status(c.ok, c.advisory)} for c in health.checks],
        "credited": [f for f in flagged if f["kind"] == "credited"],
        "look": [f for f in flagged if f["kind"] == "look"],
    }  # fmt: skip


def _status(ok: bool | None, advisory: bool) -> str:
    if ok is None:
        return "n/a"
    return "ok" if ok else ("warn" if advisory else "FAIL")


def _flag_row(flag: CoverageFlag, items: list[PersonaCoverage]) -> dict[str, Any]:
    item = next((i for i in items if i.persona_id == flag.persona_id), None)
    found = item.criterion(flag.criterion_id) if item else None
    return {
        "kind": FLAG_MARKS[flag.kind][1], "persona_id": flag.persona_id, "title": item.persona_title if item else "",
        "criterion_id": flag.criterion_id, "lens": flag.lens, "text": found.text if found else "",
        "scores": _scores(flag.scores), "coverage": flag.coverage, "steps": ", ".join(flag.steps),
    }  # fmt: skip


# --------------------------------------------------------------------------- comparison


def change_view(changes: list[CoverageChange], titles: dict[str, str], note: str = "") -> dict[str, Any]:
    """Counts of gained / lost / same / undecided, per persona, and every gained or lost criterion."""
    counts = Counter(c.change for c in changes)
    personas = []
    for pid in dict.fromkeys(c.persona_id for c in changes):
        mine = [c for c in changes if c.persona_id == pid]
        got = Counter(c.change for c in mine)
        personas.append({"persona_id": pid, "title": titles.get(pid, ""), "n": len(mine),
                         "a": sum(c.a is True for c in mine), "b": sum(c.b is True for c in mine),
                         "gained": got["gained"], "lost": got["lost"], "undecided": got["undecided"]})  # fmt: skip
    return {"available": bool(changes), "note": note, "counts": [(k, counts[k]) for k in CHANGE_ORDER],
            "personas": personas, "moved": moved(changes)}  # fmt: skip


def comparison_coverage(a: Slice, b: Slice) -> dict[str, Any]:
    """What version B's text gained or lost against A's, criterion by criterion (no model)."""
    cov_a, cov_b = a.run.coverage, b.run.coverage
    if cov_a is None or cov_b is None:
        missing = a if cov_a is None else b
        return {"available": False, "note": f"{missing.label}: {missing.run.coverage_note or 'no coverage'}"}
    changes = coverage_between(cov_a, a.module_ref, cov_b, b.module_ref)
    titles = {i.persona_id: i.persona_title for i in cov_a.items}
    return change_view(changes, titles, persona_note(cov_a, a.module_ref, cov_b, b.module_ref))


def persona_note(cov_a: Coverage, ref_a: str, cov_b: Coverage, ref_b: str) -> str:
    """Names the personas whose files differ between the sides (their criterion ids pair by position)."""
    differ = []
    for item in (i for i in cov_a.items if i.module_ref == ref_a):
        other = cov_b.find(item.persona_id, ref_b)
        if other is not None and other.persona_hash != item.persona_hash:
            differ.append(item.persona_id)
    if not differ:
        return ""
    return (f"persona files differ ({', '.join(differ)}): their criteria pair by id (position), which may name "
            "different items on each side")  # fmt: skip
