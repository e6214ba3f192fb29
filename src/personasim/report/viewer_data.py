"""What `personasim view` reads: the runs under its folders (manifests cached by modification time), each
run's results table (filtered, sorted and cut to one page before anything is rendered), one module
version's transcripts as a report `Slice`, and one transcript with the statements the judge cited.

Nothing here writes: the viewer is read-only. Run ids from a URL are looked up in the catalogue,
never joined into a path; a unit id must be one the run's manifest names.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.analysis.results import Manifest, RunPaths, read_manifest, read_results
from personasim.errors import InputError
from personasim.records.scorecard import Scorecard
from personasim.records.transcript import Transcript, load_transcript
from personasim.report.data import RunData, Slice, _anchor, load_inputs

PAGE_SIZE = 50
FILTERS = ("version", "persona", "lens", "criterion", "grader", "step", "flag")
FLAGS = {
    "low": "score 1-2",
    "high": "score 4-5",
    "uncited": "judge 4+ citing nothing",
    "not-passed": "did not pass",
    "no-evidence": "verdict: no evidence",
    "error": "grading error",
}
COLUMNS = ("persona_id", "module_version", "sample", "criterion_id", "lens", "grader", "score", "verdict", "evidence",
           "rationale")  # fmt: skip
SORTABLE = ("persona_id", "module_version", "sample", "criterion_id", "lens", "grader", "score", "verdict")
CHECK_FILE = "check.json"  # run/check_model.py's; read here without importing the run package


@dataclass
class RunEntry:
    """One run folder as the run list shows it."""

    key: str  # unique in the catalogue: the run id, or run id @ parent folder on a clash
    path: Path
    manifest: Manifest
    mtime: float
    check: str = ""  # the latest check-model verdict for its learner and judge models

    @property
    def health(self) -> tuple[str, bool | None]:
        h = self.manifest.health or {}
        verdict = str(h.get("verdict", "")).partition(":")[0]
        return verdict or "not assessed", h.get("healthy")

    @property
    def judge_model(self) -> str:
        return self.manifest.judge_model or self.manifest.model

    @property
    def refs(self) -> list[str]:
        return sorted(self.manifest.modules)


def _run_folders(folder: Path) -> list[Path]:
    if (folder / "manifest.json").is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "manifest.json").is_file())


class LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


@dataclass
class Catalog:
    """Every run under `folders` (each a run folder, or a folder of run folders, like results/)."""

    folders: list[Path]
    _manifests: dict[Path, tuple[float, Manifest]] = field(default_factory=dict)
    _cards: dict[Path, tuple[float, Scorecard | None]] = field(default_factory=dict)
    _frames: LRU = field(default_factory=lambda: LRU(4))
    _slices: LRU = field(default_factory=lambda: LRU(8))
    _options: LRU = field(default_factory=lambda: LRU(16))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def runs(self) -> list[RunEntry]:
        with self._lock:
            entries, seen = [], set()
            for folder in self.folders:
                for path in _run_folders(Path(folder)):
                    entry = self._entry(path)
                    if entry is None:
                        continue
                    if entry.key in seen:
                        entry.key = f"{entry.key}@{path.parent.name}"
                    seen.add(entry.key)
                    entries.append(entry)
            self._add_checks(entries)
            return entries

    def get(self, key: str) -> RunEntry | None:
        return next((e for e in self.runs() if e.key == key), None)

    def _entry(self, path: Path) -> RunEntry | None:
        file = path / "manifest.json"
        try:
            mtime = file.stat().st_mtime
            cached = self._manifests.get(path)
            if cached is None or cached[0] != mtime:
                cached = (mtime, read_manifest(path))
                self._manifests[path] = cached
        except (OSError, InputError, ValueError):
            return None
        return RunEntry(cached[1].run_id, path, cached[1], mtime)

    def _card(self, path: Path) -> Scorecard | None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._cards.get(path)
        if cached is None or cached[0] != mtime:
            try:
                card = Scorecard.model_validate_json(path.read_bytes())
            except (OSError, ValueError):
                card = None
            cached = self._cards[path] = (mtime, card)
        return cached[1]

    def _add_checks(self, entries: list[RunEntry]) -> None:
        """Each run's newest check-model scorecard (beside it, under the same parent) for the same
        learner and judge models, as the report finds it."""
        cards: dict[Path, list[Scorecard]] = {}
        for parent in {e.path.parent for e in entries}:
            found = [self._card(p) for p in sorted(parent.glob(f"*/{CHECK_FILE}"))]
            cards[parent] = sorted((c for c in found if c is not None), key=lambda c: c.created_at)
        for e in entries:
            models = (e.manifest.model, e.judge_model)
            same = [c for c in cards[e.path.parent]
                    if (c.roles.get("learner", {}).get("model"), c.roles.get("judge", {}).get("model")) == models]  # fmt: skip
            e.check = same[-1].verdict if same else ""

    # ----------------------------------------------------------------------- one run

    def results(self, entry: RunEntry) -> pd.DataFrame:
        paths = RunPaths(entry.path)
        file = paths.root / "results.parquet"
        stamp = (entry.path, file.stat().st_mtime if file.is_file() else 0.0)
        with self._lock:
            if stamp in self._frames:
                return self._frames[stamp]
        frame = read_results(entry.path)
        with self._lock:
            return self._frames.put(stamp, frame)

    def options(self, entry: RunEntry) -> dict[str, list[str]]:
        """The values each filter can take in this run (computed once per results file)."""
        frame = self.results(entry)
        with self._lock:
            if id(frame) in self._options:
                return self._options[id(frame)][1]
        found = options(frame)
        with self._lock:
            self._options.put(id(frame), (frame, found))  # the frame kept with it: its id stays its own
        return found

    def transcript(self, entry: RunEntry, unit_id: str) -> Transcript | None:
        if unit_id not in entry.manifest.units:
            return None
        path = RunPaths(entry.path).transcript(unit_id)
        return load_transcript(path) if path.is_file() else None

    def slice(self, entry: RunEntry, ref: str) -> Slice | None:
        """One module version of the run, as the report builds its sections from it."""
        if ref not in entry.manifest.modules:
            return None
        key = (entry.path, entry.mtime, ref)
        with self._lock:
            if key in self._slices:
                return self._slices[key]
        frame = self.results(entry)
        module_id, _, version = ref.partition("@")
        rows = frame[(frame["module_id"] == module_id) & (frame["module_version"] == version)].reset_index(drop=True)
        units = [u for u in entry.manifest.units if f"__{ref}__" in u]
        transcripts = [t for t in (self.transcript(entry, u) for u in units) if t is not None]
        transcripts.sort(key=lambda t: (t.persona_id, t.sample))
        personas, modules = load_inputs(entry.path)
        run = RunData(entry.path, entry.manifest, frame, {t.unit_id: t for t in transcripts}, None, "", personas,
                      modules)  # fmt: skip
        sl = Slice(_anchor(f"{entry.key} {ref}"), f"{entry.key} · {ref}", run, ref, rows, transcripts)
        with self._lock:
            return self._slices.put(key, sl)


# --------------------------------------------------------------------------- filters


def _cites_nothing(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype(str).isin(["", "[]", "null"])


def filter_rows(frame: pd.DataFrame, query: dict[str, str]) -> pd.DataFrame:
    """The rows that every given filter keeps (exact values; `step` keeps grades citing that step)."""
    keep = pd.Series(True, index=frame.index)
    for name, column in (("version", "module_version"), ("persona", "persona_id"), ("lens", "lens"),
                         ("criterion", "criterion_id"), ("grader", "grader")):  # fmt: skip
        if query.get(name):
            keep &= frame[column].astype(str) == query[name]
    step = query.get("step", "")
    if step.isdigit():
        keep &= frame["evidence"].astype(str).str.contains(f'"S{int(step)}\\.', regex=True)
    flag = query.get("flag", "")
    score = pd.to_numeric(frame["score"], errors="coerce")
    if flag == "low":
        keep &= score <= 2
    elif flag == "high":
        keep &= score >= 4
    elif flag == "uncited":
        keep &= (frame["grader"] == "judge") & (score >= 4) & _cites_nothing(frame["evidence"])
    elif flag == "not-passed":
        keep &= frame["passed"].astype("boolean").fillna(False) == False  # noqa: E712
    elif flag == "no-evidence":
        keep &= frame["verdict"].astype(str) == "no evidence"
    elif flag == "error":
        keep &= frame["error"].fillna("").astype(str) != ""
    return frame[keep]


def sort_rows(frame: pd.DataFrame, key: str, descending: bool) -> pd.DataFrame:
    if key not in SORTABLE:
        return frame
    return frame.sort_values(key, ascending=not descending, kind="stable", na_position="last")


def options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter can take in this run."""

    def values(column: str) -> list[str]:
        return sorted({str(v) for v in frame[column].dropna().unique()})

    steps = sorted(
        {int(m) for m in re.findall(r'"S(\d+)\.', " ".join(frame["evidence"].dropna().astype(str).unique()))}
    )
    return {"version": values("module_version"), "persona": values("persona_id"), "lens": values("lens"),
            "criterion": values("criterion_id"), "grader": values("grader"), "step": [str(s) for s in steps],
            "flag": list(FLAGS)}  # fmt: skip


def page_of(frame: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
    """One page of rows as plain dicts (the cited statements parsed), and the number of pages."""
    pages = max(1, math.ceil(len(frame) / size))
    page = min(max(1, page), pages)
    part = frame.iloc[(page - 1) * size : page * size]
    rows = []
    for r in part.to_dict("records"):
        cited = []
        try:
            cited = [c for c in json.loads(r.get("evidence") or "[]") if isinstance(c, dict)]
        except (TypeError, ValueError):
            pass
        score = r.get("score")
        rows.append({**{k: r.get(k) for k in COLUMNS}, "unit_id": r.get("unit_id"), "cited": cited,
                     "score": None if score is None or pd.isna(score) else float(score)})  # fmt: skip
    return rows, pages
