"""What the HTML report shows, as plain data: one `Slice` per run x module version, and the
views built from it (heatmap, engagement charts, rationales; step by step views are in `steps.py`).

Nothing here produces HTML except the SVG charts from `svg.py`; the template escapes the rest.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.analysis.compare import pair_rows
from personasim.analysis.compare_pairing import Pairing
from personasim.analysis.gaps_types import COVERAGE_FILE, Coverage, read_coverage
from personasim.analysis.results import Manifest, RunPaths, read_manifest, read_results
from personasim.errors import InputError
from personasim.inputs.criteria import LENSES
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.records.transcript import Transcript, load_transcript
from personasim.report.svg import Series, delta_colors, legend, line_chart, score_colors


@dataclass
class RunData:
    path: Path
    manifest: Manifest
    results: pd.DataFrame
    transcripts: dict[str, Transcript]
    coverage: Coverage | None = None
    coverage_note: str = ""
    personas: list[Persona] = field(default_factory=list)  # from inputs.json, when the run has one
    modules: list[LearningModule] = field(default_factory=list)

    def module(self, ref: str) -> LearningModule | None:
        return next((m for m in self.modules if m.ref == ref), None)


def load_inputs(run_dir: str | Path) -> tuple[list[Persona], list[LearningModule]]:
    """The personas and modules the run was made from (its `inputs.json`); empty when it has none."""
    paths = RunPaths(run_dir)
    if not paths.inputs.is_file():
        return [], []
    from personasim.run.state import read_inputs

    try:
        return read_inputs(paths)
    except InputError:
        return [], []


def load_run(run_dir: str | Path) -> RunData:
    """Manifest, results table, every transcript file the manifest names (via results.py), coverage,
    and the personas and modules of its inputs snapshot."""
    paths = RunPaths(run_dir)
    manifest = read_manifest(run_dir)
    results = read_results(run_dir)
    transcripts = {}
    for unit_id in manifest.units:
        path = paths.transcript(unit_id)
        if path.is_file():
            transcripts[unit_id] = load_transcript(path)
    coverage, note = load_coverage(paths.root)
    personas, modules = load_inputs(paths.root)
    return RunData(paths.root, manifest, results, transcripts, coverage, note, personas, modules)


def load_coverage(run_dir: str | Path) -> tuple[Coverage | None, str]:
    """The run's coverage before simulation: its `coverage.json`, or (a run older than that file)
    computed now from its `inputs.json`; None with the reason when neither can be read."""
    paths = RunPaths(run_dir)
    saved = paths.root / COVERAGE_FILE
    problem = ""
    if saved.is_file():
        try:
            return read_coverage(saved), ""
        except InputError as exc:
            problem = f"{exc}; "
    if not paths.inputs.is_file():
        return None, f"{problem}no {COVERAGE_FILE} or inputs.json in this run folder"
    from personasim.analysis.gaps import coverage_for_run
    from personasim.run.state import read_inputs

    try:
        personas, modules = read_inputs(paths)
    except InputError as exc:
        return None, f"{problem}{exc}"
    note = f"{problem}computed now from inputs.json" + ("" if problem else f" (the run has no {COVERAGE_FILE})")
    return coverage_for_run(personas, modules), note


@dataclass
class Slice:
    """One module version of one run: what a heatmap, a chart and a comparison side are made of."""

    anchor: str
    label: str
    run: RunData
    module_ref: str
    frame: pd.DataFrame
    transcripts: list[Transcript] = field(default_factory=list)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "slice"


def slug(text: object) -> str:
    """An id-safe form of a persona or criterion id, for anchors."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).casefold()).strip("-") or "x"


def grade_anchor(slice_anchor: str, persona_id: str, criterion_id: str, sample: Any) -> str:
    """The id of one grade in the report's rationales (the ranked steps link to it)."""
    return f"{slice_anchor}-g-{slug(persona_id)}-{slug(criterion_id)}-s{sample}"


def slices_of(runs: list[RunData]) -> list[Slice]:
    """Each run's module versions in sorted order; labels name the run only when there are several."""
    out = []
    for run in runs:
        refs = {(t.module_id, t.module_version) for t in run.transcripts.values()}
        frame = run.results
        refs |= set(zip(frame["module_id"].astype(str), frame["module_version"].astype(str), strict=True))
        for module_id, version in sorted(refs):
            ref = f"{module_id}@{version}"
            label = ref if len(runs) == 1 else f"{run.manifest.run_id} · {ref}"
            rows = frame[(frame["module_id"] == module_id) & (frame["module_version"] == version)]
            units = [t for t in run.transcripts.values() if (t.module_id, t.module_version) == (module_id, version)]
            units.sort(key=lambda t: (t.persona_id, t.sample))
            out.append(Slice(_anchor(label), label, run, ref, rows.reset_index(drop=True), units))
    return out


# --------------------------------------------------------------------------- small helpers


def _num(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _citations(value: Any) -> list[dict[str, str]]:
    """The `evidence` column: the learner statements a grade cites, as {id, text}."""
    if not isinstance(value, str) or not value:
        return []
    try:
        items = json.loads(value)
    except ValueError:
        return []
    return [{"id": str(i.get("id", "")), "text": str(i.get("text", ""))} for i in items if isinstance(i, dict)]


def _no_citation(value: Any) -> bool:
    return not _citations(value)


def _json_list(value: Any) -> list[str]:
    if value is None or value is pd.NA or value == "":
        return []
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    return [str(i) for i in items] if isinstance(items, list) else [str(items)]


def _personas(frame: pd.DataFrame, transcripts: list[Transcript]) -> list[tuple[str, str]]:
    titles = {t.persona_id: t.persona_title for t in transcripts}
    titles |= dict(zip(frame["persona_id"].astype(str), frame["persona_title"].fillna("").astype(str), strict=True))
    return sorted(titles.items())


def _cell(score: float | None, norm: float | None, tip: str) -> dict[str, Any]:
    bg, fg = score_colors(norm)
    return {"text": "–" if score is None else f"{score:.1f}", "bg": bg, "fg": fg, "tip": tip}


# --------------------------------------------------------------------------- heatmap


def heatmap(sl: Slice) -> dict[str, Any]:
    """Persona x lens mean score (1-5), coloured by mean score_norm, with a per-criterion drill-down."""
    frame = sl.frame[["persona_id", "lens", "criterion_id", "criterion_text", "grader", "score", "score_norm",
                      "passed", "evidence"]].astype({"score": float, "score_norm": float})  # fmt: skip
    frame["passed"] = frame["passed"].fillna(False).astype(bool)
    frame["uncited"] = (
        (frame["grader"] == "judge") & (frame["score"] >= 4) & frame["evidence"].map(_no_citation)
    ).astype(int)
    cells = frame.groupby(["persona_id", "lens"]).agg(
        score=("score", "mean"), norm=("score_norm", "mean"), n=("score", "count"), passed=("passed", "sum")
    )
    lenses = [lens for lens in LENSES if lens in set(frame["lens"].astype(str))]
    criteria = _criteria(frame)
    rows = []
    for pid, title in _personas(sl.frame, sl.transcripts):
        row = []
        for lens in lenses:
            got = cells.loc[(pid, lens)] if (pid, lens) in cells.index else None
            score = None if got is None else _num(got["score"])
            tip = f"{title or pid} · {lens}: no grades"
            if got is not None and score is not None:
                counts = f"{int(got['n'])} grades, {int(got['passed'])} passed"
                tip = f"{title or pid} · {lens}: mean {score:.2f} over {counts}"
            row.append(_cell(score, None if got is None else _num(got["norm"]), tip))
        rows.append({"persona_id": pid, "title": title, "cells": row, "criteria": criteria.get(pid, [])})
    return {"lenses": lenses, "rows": rows}


def _criteria(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per persona, one line per criterion x grader: mean score over samples, passes, high scores citing nothing."""
    out: dict[str, list[dict[str, Any]]] = {}
    groups = frame.groupby(["persona_id", "criterion_id", "grader"], sort=False)
    table = groups.agg(lens=("lens", "first"), text=("criterion_text", "first"), score=("score", "mean"),
                       graded=("score", "count"), n=("score", "size"), passed=("passed", "sum"),
                       uncited=("uncited", "sum"))  # fmt: skip
    for (pid, cid, grader), r in table.iterrows():
        score = _num(r["score"])
        norm = None if score is None else (score - 1) / 4
        out.setdefault(str(pid), []).append({
            "id": cid, "lens": r["lens"], "text": r["text"], "grader": grader,
            "cell": _cell(score, norm, f"{cid}: {int(r['graded'])} of {int(r['n'])} samples graded"),
            "passed": int(r["passed"]), "n": int(r["n"]), "uncited": int(r["uncited"]),
        })  # fmt: skip
    return out


def delta_heatmap(a: Slice, b: Slice, pairing: Pairing = "content") -> dict[str, Any]:
    """Persona x lens mean difference B - A (score_norm) over paired rows."""
    pairs, _, _ = pair_rows(a.frame, b.frame, pairing)
    lenses = [lens for lens in LENSES if lens in set(pairs["lens"].astype(str))]
    rows = []
    for pid, title in _personas(pd.concat([a.frame, b.frame]), []):
        mine = pairs[pairs["persona_id"] == pid]
        cells = []
        for lens in lenses:
            diff = _num(mine.loc[mine["lens"] == lens, "diff"].mean())
            bg, fg = delta_colors(diff)
            text = "–" if diff is None else f"{diff:+.2f}"
            cells.append({"text": text, "bg": bg, "fg": fg, "tip": f"{title or pid} · {lens}: {text}"})
        rows.append({"persona_id": pid, "title": title, "cells": cells})
    return {"lenses": lenses, "rows": rows}


# --------------------------------------------------------------------------- transcripts


def step_labels(transcripts: list[Transcript]) -> list[str]:
    labels: dict[int, str] = {}
    for t in transcripts:
        for turn in t.turns:
            labels.setdefault(turn.step_index, turn.step_id)
    return [labels.get(i, "") for i in range(1, max(labels, default=0) + 1)]


def step_chart(sl: Slice, field_name: str, y_label: str) -> dict[str, Any]:
    """Mean of one 1-5 reaction field per persona per step (over samples)."""
    series = []
    for pid, title in _personas(sl.frame, sl.transcripts):
        units = [t for t in sl.transcripts if t.persona_id == pid]
        by_step: dict[int, list[float]] = {}
        stops = set()
        for t in units:
            for turn in t.turns:
                by_step.setdefault(turn.step_index, []).append(float(getattr(turn.reaction, field_name)))
                if not turn.reaction.would_continue:
                    stops.add(turn.step_index)
        if by_step:
            points = [(i, sum(v) / len(v)) for i, v in sorted(by_step.items())]
            series.append(Series(title or pid, points, sorted(stops)))
    n_steps = len(step_labels(sl.transcripts))
    svg = line_chart(series, n_steps, y_label=y_label, label=f"{y_label} per step, {sl.label}")
    return {"svg": svg, "legend": legend([s.name for s in series]), "empty": not series}


# --------------------------------------------------------------------------- grader output


def rationales(sl: Slice) -> list[dict[str, Any]]:
    """Per persona: every grade with its verdict, rationale and the learner statements it cites."""
    by_persona: dict[str, list[dict[str, Any]]] = {}
    for row in sl.frame.to_dict("records"):
        by_persona.setdefault(str(row["persona_id"]), []).append(row)
    out = []
    for pid, title in _personas(sl.frame, sl.transcripts):
        rows = by_persona.get(pid, [])
        order = {cid: i for i, cid in reversed(list(enumerate(r["criterion_id"] for r in rows)))}
        rows.sort(key=lambda r: (order[r["criterion_id"]], r["sample"]))  # a criterion's samples side by side
        grades = [
            _grade_view(row) | {"anchor": grade_anchor(sl.anchor, pid, row["criterion_id"], row["sample"])}
            for row in rows
        ]
        uncited = sum(1 for g in grades if g["uncited"])
        out.append({"persona_id": pid, "title": title, "grades": grades, "uncited": uncited})
    return out


def _grade_view(row: dict[str, Any]) -> dict[str, Any]:
    evidence = _citations(row.get("evidence"))
    score = _num(row.get("score"))
    return {
        "criterion_id": row["criterion_id"], "lens": row["lens"], "text": row["criterion_text"],
        "grader": row["grader"], "sample": row["sample"], "rationale": row.get("rationale") or "",
        "cell": _cell(score, _num(row.get("score_norm")), f"threshold {row.get('threshold')}"),
        "evidence": evidence, "flags": _json_list(row.get("flags")), "error": row.get("error") or "",
        "verdict": row.get("verdict") if isinstance(row.get("verdict"), str) else "",
        "uncited": row["grader"] == "judge" and score is not None and score >= 4 and not evidence,
        "spread": _spread(row),
    }  # fmt: skip


def _spread(row: dict[str, Any]) -> str:
    low, high, n = _num(row.get("score_min")), _num(row.get("score_max")), _num(row.get("judge_samples"))
    if low is None or high is None or not n or n < 2:
        return ""
    return f"{int(n)} judge samples, {low:g}-{high:g}"
