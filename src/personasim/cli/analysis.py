"""`personasim compare` and `personasim report`: thin wrappers over compare.py and report.py."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from personasim.cli.common import console, err_console, guarded, print_json
from personasim.errors import InputError

if TYPE_CHECKING:  # pandas, numpy and jinja2 load only when a comparison or report is made
    import pandas as pd

    from personasim.analysis.compare import Comparison, Contrast

DEFAULT_RESULTS = Path("results")


class By(str, Enum):
    lens = "lens"
    criterion = "criterion"
    persona = "persona"


RunArg = Annotated[str, typer.Argument(help="A run folder, or a run id under --results-dir", show_default=False)]
RunBArg = Annotated[str | None, typer.Argument(help="A second run (B) [default: none: two module versions of RUN_A]")]
ResultsOpt = Annotated[Path, typer.Option("--results-dir", help="Where run ids are looked up")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and permutation draws")]
BootOpt = Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples")]
ByIdOpt = Annotated[bool, typer.Option("--by-id", help="Pair rows on criterion id even where persona files or "
                                                     "criterion texts differ (each is named in a note).")]  # fmt: skip


def resolve_run(ref: str, results_dir: Path = DEFAULT_RESULTS) -> Path:
    """A run folder given as a path, or as a run id under `results_dir`."""
    for candidate in (Path(ref), results_dir / ref):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise InputError(ref, None, f"not a run folder (no manifest.json here or under {results_dir}/)")


def one_version(run_dir: Path, present: list[str]) -> InputError:
    """The run holds a single module version: say so, and how to get two."""
    held = f"one module version ({present[0]})" if present else "no graded module version"
    return InputError(run_dir, None, f"holds {held}, so there is nothing to compare inside it: run two versions "
                                     "together (`personasim run --module v1.md --module v2.md ...`) or compare two runs "
                                     "(`personasim compare RUN_A RUN_B`)")  # fmt: skip


def _refs(frame: pd.DataFrame) -> list[str]:
    pairs = zip(frame["module_id"].astype(str), frame["module_version"].astype(str), strict=True)
    return sorted({f"{module_id}@{version}" for module_id, version in pairs})


def with_coverage(result: Comparison, run_a: Path, frame_a: pd.DataFrame, run_b: Path,
                  frame_b: pd.DataFrame) -> Comparison:  # fmt: skip
    """The comparison with what B's text gained or lost in coverage before simulation (one module
    version a side; two runs of the same version pair too)."""
    from personasim.analysis.gaps import coverage_between
    from personasim.report.coverage import persona_note
    from personasim.report.data import load_coverage

    refs_a, refs_b = _refs(frame_a), _refs(frame_b)
    if len(refs_a) != 1 or len(refs_b) != 1:
        note = "no changes shown: they need one module version a side (name them with --a and --b)"
        return result.model_copy(update={"coverage_note": note})
    cov_a, note_a = load_coverage(run_a)
    cov_b, note_b = (cov_a, note_a) if run_b == run_a else load_coverage(run_b)
    if cov_a is None or cov_b is None:
        return result.model_copy(update={"coverage_note": f"none for {run_a if cov_a is None else run_b}: "
                                                          f"{note_a if cov_a is None else note_b}"})  # fmt: skip
    changes = coverage_between(cov_a, refs_a[0], cov_b, refs_b[0])
    note = persona_note(cov_a, refs_a[0], cov_b, refs_b[0])
    return result.model_copy(update={"coverage_changes": changes, "coverage_note": note})


def build_comparison(run_a: Path, run_b: Path | None, version_a: str | None, version_b: str | None, *,
                     seed: int, n_boot: int, by_id: bool = False) -> Comparison:  # fmt: skip
    """Two runs (each optionally narrowed to one module version), or two versions of one run. Rows
    pair on persona file and criterion text, or on criterion id with `by_id`."""
    from personasim.analysis.compare import compare, compare_versions
    from personasim.analysis.results import read_results

    pairing = "id" if by_id else "content"
    frame_a = read_results(run_a)
    if run_b is None:
        present = sorted(frame_a["module_version"].dropna().astype(str).unique())
        if len(present) < 2:
            raise one_version(run_a, present)
        if version_a is None and version_b is None:
            if len(present) != 2:
                raise InputError(run_a, None, f"holds module versions {', '.join(present)}: name two with "
                                              "--a and --b, or give a second run")  # fmt: skip
            version_a, version_b = present
        if version_a is None or version_b is None:
            raise InputError(run_a, None, "name both module versions (--a and --b) to compare within one run")
        result = compare_versions(frame_a, version_a, version_b, seed=seed, n_boot=n_boot, pairing=pairing)
        versions = frame_a["module_version"].astype(str)
        return with_coverage(result, run_a, frame_a[versions == version_a], run_a, frame_a[versions == version_b])
    frame_b = read_results(run_b)
    if version_a is not None:
        frame_a = frame_a[frame_a["module_version"] == version_a]
    if version_b is not None:
        frame_b = frame_b[frame_b["module_version"] == version_b]
    label_a = run_a.name + (f"@{version_a}" if version_a else "")
    label_b = run_b.name + (f"@{version_b}" if version_b else "")
    result = compare(frame_a, frame_b, label_a=label_a, label_b=label_b, seed=seed, n_boot=n_boot, pairing=pairing)
    return with_coverage(result, run_a, frame_a, run_b, frame_b)


def _ci(c: Contrast) -> str:
    return "-" if c.ci_low is None or c.ci_high is None else f"{c.ci_low:+.2f}..{c.ci_high:+.2f}"


def _table(result: Comparison, by: str) -> Table:
    from personasim.analysis.compare import fmt, fmt_p

    table = Table(title=f"{result.label_b} vs {result.label_a}: delta = B - A in mean score (0-1)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column(by, overflow="fold", min_width=12, ratio=1)
    for name in ("pairs", "n", "A", "B", "delta", f"{result.confidence:.0%} CI", "p", "dz"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("flag", no_wrap=True)
    styles = {"worse": "bold red", "better": "bold blue", "": ""}
    for c in [result.overall, *result.by(by)]:
        dz = "-" if c.effect_dz is None else f"{c.effect_dz:+.2f}"
        cells = [
            "all" if c.level == "overall" else c.key,
            str(c.n_pairs),
            str(c.n_clusters),
            f"{c.mean_a:.2f}",
            f"{c.mean_b:.2f}",
            fmt(c.delta, signed=True),
            _ci(c),
            fmt_p(c),
            dz,
        ]
        table.add_row(*(Text(v) for v in cells), Text(c.flag_label, style=styles[c.flag]))
    table.caption = ("n: personas (overall, lens) or conversations (criterion, persona), each weighing the same in "
                     f"every figure; flag: interval excludes 0 and p < {result.alpha:g}; small n: indicative only; "
                     "p~ = Monte Carlo")  # fmt: skip
    return table


def compare_command(
    run_a: RunArg,
    run_b: RunBArg = None,
    a: Annotated[
        str | None, typer.Option("--a", help="Module version on side A [default: the run's first of two]")
    ] = None,
    b: Annotated[
        str | None, typer.Option("--b", help="Module version on side B [default: the run's second of two]")
    ] = None,
    by: Annotated[By, typer.Option("--by", help="Rows per lens, criterion or persona")] = By.lens,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole comparison as JSON")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a markdown table")] = False,
    results_dir: ResultsOpt = DEFAULT_RESULTS,
    seed: SeedOpt = 0,
    n_boot: BootOpt = 2000,
    by_id: ByIdOpt = False,
) -> None:
    """B - A per lens, criterion or persona, with cluster-bootstrap intervals and a paired sign-flip test."""
    first = resolve_run(run_a, results_dir)
    second = resolve_run(run_b, results_dir) if run_b else None
    result = build_comparison(first, second, a, b, seed=seed, n_boot=n_boot, by_id=by_id)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if markdown:
        sys.stdout.write(result.to_markdown(by.value))
        return
    console.print(_table(result, by.value))
    for warning in result.warnings:
        err_console.print(Text(f"note: {warning}"))
    coverage = _coverage_table(result)
    if coverage is not None:
        console.print(coverage)
    elif result.coverage_note:
        console.print(Text(f"coverage before simulation: {result.coverage_note}"))


def _coverage_table(result: Comparison) -> Table | None:
    """What B's text gained or lost in coverage before simulation, criteria lost first."""
    from personasim.analysis.compare import coverage_counts, moved

    if not result.coverage_changes:
        return None
    table = Table(title=f"coverage before simulation (no model), {result.label_b} vs {result.label_a}: "
                        f"{coverage_counts(result.coverage_changes)}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fmt: skip
    for name, ratio in (("change", None), ("persona/criterion", 2), ("A", 3), ("B", 3)):
        table.add_column(name, overflow="fold", ratio=ratio, no_wrap=ratio is None)
    styles = {"lost": "bold red", "gained": "bold blue"}
    for c in moved(result.coverage_changes):
        table.add_row(Text(c.change, style=styles[c.change]), Text(f"{c.persona_id}/{c.criterion_id}"),
                      Text(c.summary_a), Text(c.summary_b))  # fmt: skip
    if result.coverage_note:
        table.caption = result.coverage_note
    return table


def report_command(
    run: RunArg,
    run_b: RunBArg = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file [default: RUN/report.html]")] = None,
    results_dir: ResultsOpt = DEFAULT_RESULTS,
    seed: SeedOpt = 0,
    n_boot: BootOpt = 2000,
    by_id: ByIdOpt = False,
) -> None:
    """One self-contained HTML report (no network needed to view it)."""
    from personasim.fileio import check_writable

    runs = [resolve_run(run, results_dir)] + ([resolve_run(run_b, results_dir)] if run_b else [])
    target = out or runs[0] / "report.html"
    check_writable(target, folder=False)  # before the report is built, not after
    from personasim.report.html import write_report

    pairing = "id" if by_id else "content"
    path = write_report(runs, target, seed=seed, n_boot=n_boot, pairing=pairing)
    console.print(Text(f"wrote {path.resolve().as_uri()}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `compare` and `report` to the root app."""
    app.command("compare")(guarded(compare_command))
    app.command("report")(guarded(report_command))
