"""One self-contained HTML report for one run, two runs, or one run holding several module versions.

The page needs no network: CSS is inline, charts are inline SVG, there is no script at all, and a
Content-Security-Policy meta tag forbids loading anything but inline styles and data: images.
Every string that comes from personas, modules or a model is escaped by jinja2's autoescape; the
only markup inserted as-is is the SVG built (and escaped) in `svg.py`.

With two or more module versions the first is the baseline (A) and each other is compared with it
(B - A, see `compare.py`). The simulation-health verdict (health.py) heads the page; each module
version's section shows its coverage before simulation (`coverage.py`: which steps address each
persona criterion, and the judge's scores against it); judge agreement (reliability.py) closes it.
The templates live in `templates/` (package data), so jinja2 is imported here as well as in prompts.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from personasim.analysis.compare import SMALL_N, CompareError, compare, fmt, fmt_ci, fmt_p
from personasim.analysis.compare_pairing import Pairing
from personasim.analysis.health import HEALTH_TABLE_COLUMNS, assess_health, health_table
from personasim.analysis.reliability import judge_agreement
from personasim.analysis.results import utc_now
from personasim.analysis.step_issues import first_stop
from personasim.fileio import atomic_write_text
from personasim.records.transcript import Transcript
from personasim.report.coverage import comparison_coverage, coverage_view
from personasim.report.data import (
    RunData,
    Slice,
    delta_heatmap,
    heatmap,
    load_run,
    rationales,
    slices_of,
    step_chart,
    step_labels,
)
from personasim.report.steps import (
    grid_view,
    issues_view,
    personas_view,
    priorities_view,
    step_changes_view,
)
from personasim.report.svg import Interval, forest_plot, score_colors

TEMPLATE = "report.html.j2"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SETTINGS_SHOWN = ("base_url", "mode", "temperature", "seed", "max_tokens", "structured_output", "concurrency",
                  "timeout_s")  # fmt: skip


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, fmt_ci=fmt_ci, fmt_p=fmt_p)
    return env


# --------------------------------------------------------------------------- health and reliability


def health_view(run: RunData) -> dict[str, Any]:
    """The simulation-health verdict (health.py) over every transcript and grade of the run, with the
    judge-against-coverage checks when the run has coverage."""
    report = assess_health(list(run.transcripts.values()), run.results, coverage=run.coverage)
    headline, _, summary = report.verdict.partition(": ")  # "simulations look degenerate: <why>"
    return {"headline": headline, "summary": summary, "healthy": report.healthy, "columns": HEALTH_TABLE_COLUMNS,
            "checks": health_table(report)}  # fmt: skip


def scorecard_view(run: RunData) -> dict[str, Any] | None:
    """check-model's latest scorecard for the run's learner and judge models, beside the run."""
    from personasim.run.check_model import latest_scorecard, manifest_roles

    found = latest_scorecard(run.path.parent, manifest_roles(run.manifest), run_dir=run.path)
    if found is None:
        return None
    path, card = found
    rows = [(c.name, "-" if c.value is None else f"{c.value:.2f}", c.threshold,
             "reference" if c.threshold == "reference" else {True: "pass", False: "FAIL", None: "not run"}[c.passed],
             c.detail) for c in card.checks]  # fmt: skip
    return {"verdict": card.verdict, "fit": card.verdict == "fit for module decisions", "path": str(path),
            "created_at": card.created_at, "rows": rows}  # fmt: skip


def _alpha_class(alpha: float | None) -> str:
    """Krippendorff's rule of thumb: >= 0.8 reliable, >= 0.667 tentative, below that not."""
    if alpha is None:
        return ""
    return "ok" if alpha >= 0.8 else ("warn" if alpha >= 0.667 else "no")


def reliability_view(sl: Slice) -> dict[str, Any]:
    """Agreement of the judge's repeats per criterion id, then overall (reliability.py); one line
    instead of a table when every criterion had one judge sample (k = 1: nothing to compare)."""
    if sl.frame.empty:
        return {"rows": [], "single": ""}
    table = judge_agreement(sl.frame, sl.run.path)
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    ks = [int(r["judge_samples"]) for r in rows if r.get("judge_samples") is not None]
    if rows and max(ks, default=0) <= 1:
        return {"rows": [], "single": f"not measured: one judge sample per criterion (k = 1) for all {len(rows) - 1} "
                                      "criteria; grade with --judge-samples 3 or more to measure agreement"}  # fmt: skip
    return {"rows": [{**row, "alpha_class": _alpha_class(row["alpha"])} for row in rows], "single": ""}


def outcome(t: Transcript) -> tuple[str, str]:
    """One statement of how the conversation ended (stop and recommend together), and its pill class."""
    index = first_stop(t)
    stop = next((turn.step_id for turn in t.turns if turn.step_index == index), None) if index else None
    rec = t.reflection.reflection.would_recommend if t.reflection else None
    where = f"would stop at {index}. {stop}" if stop else "would finish"
    if rec is None:
        return where, "no" if stop else "ok"
    if stop:
        return (f"{where}, but would recommend", "warn") if rec else (f"{where} and would not recommend", "no")
    return ("would finish and recommend", "ok") if rec else ("would finish, but would not recommend", "warn")


# --------------------------------------------------------------------------- views


def _when(stamp: str) -> str:
    """'2025-11-20T10:00:00+00:00' -> '2025-11-20 10:00:00 UTC'; anything else as it is."""
    return stamp.replace("T", " ", 1).removesuffix("+00:00") + (" UTC" if stamp.endswith("+00:00") else "")


def run_meta(run: RunData) -> dict[str, Any]:
    m = run.manifest
    frame = run.results
    statuses = Counter(m.units.values())
    return {
        "run_id": m.run_id, "path": str(run.path), "model": m.model, "seed": m.seed,
        "samples": m.samples, "judge_samples": m.judge_samples, "sequential": m.sequential,
        "package_version": m.package_version, "started_at": _when(m.started_at), "finished_at": _when(m.finished_at),
        "duration_s": m.duration_s, "regraded_at": m.regraded_at, "rows": m.rows,
        "personas": m.personas, "modules": m.modules, "prompt_hashes": m.prompt_hashes,
        "statuses": dict(sorted(statuses.items())), "unit_errors": m.unit_errors,
        "usage": m.usage, "cost_usd": m.cost_usd,
        "settings": {k: m.settings[k] for k in SETTINGS_SHOWN if k in m.settings},
        "judge_model": m.judge_model or m.model,
        "judge_settings": {k: m.judge_settings[k] for k in SETTINGS_SHOWN if k in m.judge_settings},
        "distinct_prompt_hashes": int(frame["prompt_hash"].nunique()),
        "health": health_view(run),
        "scorecard": scorecard_view(run),
    }  # fmt: skip


def slice_view(sl: Slice) -> dict[str, Any]:
    return {
        "anchor": sl.anchor, "label": sl.label, "module_ref": sl.module_ref, "run_id": sl.run.manifest.run_id,
        "units": len(sl.transcripts), "grades": len(sl.frame),
        "heatmap": heatmap(sl),
        "engagement": step_chart(sl, "engagement", "engagement (1-5)"),
        "relevance": step_chart(sl, "relevance", "relevance (1-5)"),
        "steps": step_labels(sl.transcripts),
        "rationales": rationales(sl),
        "transcripts": sl.transcripts, "outcomes": {t.unit_id: outcome(t) for t in sl.transcripts},
        "grid": grid_view(sl), "issues": issues_view(sl), "priorities": priorities_view(sl),
        "personas": personas_view(sl),
        "reliability": reliability_view(sl),
        "coverage": coverage_view(sl),
    }  # fmt: skip


def comparison_view(a: Slice, b: Slice, *, seed: int, n_boot: int, pairing: Pairing = "content") -> dict[str, Any]:
    coverage = comparison_coverage(a, b)
    try:
        result = compare(a.frame, b.frame, label_a=a.label, label_b=b.label, seed=seed, n_boot=n_boot,
                         pairing=pairing)  # fmt: skip
    except CompareError as exc:
        return {"a": a.label, "b": b.label, "error": str(exc), "coverage": coverage, "steps": step_changes_view(a, b)}
    worse = [c for c in result.by("criterion") if c.flag == "worse"]
    return {
        "a": a.label, "b": b.label, "error": "", "result": result, "coverage": coverage, "small_n": SMALL_N,
        "steps": step_changes_view(a, b),
        "lenses": result.by("lens"), "personas": result.by("persona"), "worse_criteria": worse,
        "criteria": result.by("criterion"), "delta": delta_heatmap(a, b, pairing),
        "forest": forest_plot([Interval("all criteria" if c.level == "overall" else c.key, c.delta, c.ci_low,
                                        c.ci_high, c.flag) for c in [result.overall, *result.by("lens")]]),
    }  # fmt: skip


def score_scale() -> list[dict[str, str]]:
    """The heatmap's colour key, score 1 to 5."""
    return [dict(zip(("bg", "fg"), score_colors((s - 1) / 4), strict=True), text=str(s)) for s in range(1, 6)]


def render_report(runs: Sequence[RunData], *, seed: int = 0, n_boot: int = 2000, pairing: Pairing = "content") -> str:
    """The page; `pairing="id"` pairs compared rows on criterion id even where persona files differ."""
    if not runs:
        raise ValueError("render_report needs at least one run")
    parts = slices_of(list(runs))
    comparisons = [
        comparison_view(parts[0], b, seed=seed, n_boot=n_boot, pairing=pairing)
        | {"suffix": "" if i == 0 else f"-{i + 1}"}
        for i, b in enumerate(parts[1:])
    ]
    template = _environment().get_template(TEMPLATE)
    return template.render(
        csp=CSP, generated_at=utc_now(), runs=[run_meta(r) for r in runs], slices=[slice_view(s) for s in parts],
        comparisons=comparisons, title=" vs ".join(s.label for s in parts), scale=score_scale(),
    )  # fmt: skip


def write_report(run_dirs: Sequence[str | Path], out_path: str | Path, *, seed: int = 0, n_boot: int = 2000,
                 pairing: Pairing = "content") -> Path:  # fmt: skip
    """Read each run folder and write one self-contained HTML file to `out_path`."""
    html = render_report([load_run(d) for d in run_dirs], seed=seed, n_boot=n_boot, pairing=pairing)
    atomic_write_text(out_path, html)  # makes the parent folder too
    return Path(out_path)
