"""A suite's verdict as named checks: every threshold per module version and every `require:` entry,
passed or not, each with a name unique within the suite (`lotus@v1::min_lens_mean[power]`,
`lotus::require.health`) so CI shows one test case per check.

Scores are stored normalised (`score_norm` = (score - 1) / 4: 1 -> 0, 3 -> 0.5, 5 -> 1) and the
thresholds are on that 0-1 scale; every message also gives the 1-5 mean the summary table shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from personasim.run.suite import Requirements, Thresholds

SCORECARD = "check.json"  # what `personasim check-model` writes
SCORECARD_VERDICTS = {"fit": ("fit for module decisions",), "caution": ("fit for module decisions", "use with caution")}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


def on_both_scales(norm: float) -> str:
    """`0.50 (3.0 on 1-5)`."""
    return f"{norm:.2f} ({1 + 4 * norm:.1f} on 1-5)"


def threshold_checks(df: pd.DataFrame, t: Thresholds, failed_units: int = 0, suite: str = "suite") -> list[Check]:
    """Every threshold the suite sets: run-wide ones, then per module version in order."""
    checks = [
        Check(f"{suite}::max_failed_units", failed_units <= t.max_failed_units,
              f"max_failed_units: {failed_units} unit{'s' * (failed_units != 1)} failed (allowed {t.max_failed_units})")
    ]  # fmt: skip
    keys = ["module_id", "module_version"] if "module_id" in df.columns else ["module_version"]
    for key, rows in df.groupby(keys, sort=True):
        ref = "@".join(map(str, key if isinstance(key, tuple) else (key,)))  # lotus@v1 (or v1 alone)
        checks += [Check(f"{ref}::{name}", ok, f"[{ref}] {message}") for name, ok, message in _version_checks(rows, t)]
    return checks


def _floor(name: str, what: str, value: float, floor: float) -> tuple[str, bool, str]:
    ok = value >= floor
    return name, ok, f"{what} mean {on_both_scales(value)} {'>=' if ok else '<'} {on_both_scales(floor)}"


def _version_checks(rows: pd.DataFrame, t: Thresholds) -> list[tuple[str, bool, str]]:
    out = []
    lens_means = rows.groupby("lens")["score_norm"].mean()
    for lens, mean in lens_means.items():
        per_lens = lens in t.min_lens_means
        floor = t.min_lens_means[lens] if per_lens else t.min_lens_mean
        if floor is not None:
            name = f"min_lens_mean{'s' * per_lens}[{lens}]"
            out.append(_floor(name, f"min_lens_mean: lens {lens!r}", mean, floor))
    out += [(f"min_lens_means[{lens}]", False, f"min_lens_means: lens {lens!r} has no scores")
            for lens in t.min_lens_means if lens not in lens_means.index]  # fmt: skip
    if t.min_persona_mean is not None:
        means = rows.groupby("persona_id")["score_norm"].mean()
        out += [_floor(f"min_persona_mean[{persona}]", f"min_persona_mean: {persona}", mean, t.min_persona_mean)
                for persona, mean in means.items()]  # fmt: skip
    if t.max_unaddressed_misunderstandings is not None:
        most = t.max_unaddressed_misunderstandings
        unaddressed = int((~rows.loc[rows["lens"] == "misunderstandings", "passed"].astype(bool)).sum())
        ok = unaddressed <= most
        out.append(("max_unaddressed_misunderstandings", ok,
                    f"max_unaddressed_misunderstandings: {unaddressed} {'<=' if ok else '>'} {most}"))  # fmt: skip
    if t.max_uncited_high_scores is not None:
        high = rows[(rows["grader"] == "judge") & (rows["score"] >= 4)]
        uncited = high["evidence"].fillna("[]").isin(["[]", ""])
        rate, most = (float(uncited.mean()) if len(high) else 0.0), t.max_uncited_high_scores
        ok = rate <= most
        out.append(("max_uncited_high_scores", ok,
                    f"max_uncited_high_scores: {rate:.2f} {'<=' if ok else '>'} {most:.2f}"))  # fmt: skip
    return out


def requirement_checks(require: Requirements, manifest: Any, run_dir: str | Path, suite: str = "suite") -> list[Check]:
    """The `require:` entries: the run's health verdict, and the check-model scorecard's."""
    checks = []
    if require.health is not None:
        health = getattr(manifest, "health", None) or {}
        verdict = health.get("verdict") or "no health verdict in the run"
        passed = bool(health.get("healthy"))
        message = f"require.health: ok, but the health verdict is: {verdict}" if not passed else f"health: {verdict}"
        checks.append(Check(f"{suite}::require.health", passed, message))
    if require.check_model is not None:
        checks.append(Check(f"{suite}::require.check_model", *_scorecard_check(require.check_model, manifest, run_dir)))
    return checks


def _scorecard_check(wanted: str, manifest: Any, run_dir: str | Path) -> tuple[bool, str]:
    path = find_scorecard(run_dir, manifest)
    roles = f"learner {getattr(manifest, 'model', '?')}, judge {getattr(manifest, 'judge_model', None) or '?'}"
    if path is None:
        return False, (f"require.check_model: {wanted}, but no check-model scorecard exists for these model roles "
                       f"({roles}; looked for {Path(run_dir) / SCORECARD})")  # fmt: skip
    try:
        verdict = str(json.loads(path.read_text(encoding="utf-8")).get("verdict", ""))
    except (OSError, ValueError, AttributeError) as exc:
        return False, f"require.check_model: {wanted}, but the scorecard {path} cannot be read: {exc}"
    if verdict in SCORECARD_VERDICTS[wanted]:
        return True, f"check_model: {verdict} ({path})"
    return False, f"require.check_model: {wanted}, but the scorecard says {verdict or 'nothing'!r} ({path})"


def find_scorecard(run_dir: str | Path, manifest: Any = None) -> Path | None:
    """The check-model scorecard for the run's model roles: `check.json` in the run folder, else the
    newest one beside it (`personasim check-model --out` the same folder) made with the same roles."""
    path = Path(run_dir) / SCORECARD
    if path.is_file():
        return path
    if manifest is None:
        return None
    from personasim.run.check_model import latest_scorecard, manifest_roles

    found = latest_scorecard(Path(run_dir).parent, manifest_roles(manifest), run_dir=Path(run_dir))
    return found[0] if found else None


def unique_names(checks: list[Check]) -> list[Check]:
    """The same checks, a name used twice getting ` (2)`, ` (3)`: JUnit case names must differ."""
    seen: dict[str, int] = {}
    out = []
    for check in checks:
        seen[check.name] = seen.get(check.name, 0) + 1
        count = seen[check.name]
        out.append(check if count == 1 else Check(f"{check.name} ({count})", check.passed, check.message))
    return out
