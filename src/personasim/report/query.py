"""`personasim query "SQL"`: SQL over many runs' results tables, in the standard library's SQLite.

Every run under the folders (as `personasim view` finds them) is read into an in-memory database
with two tables: `results` (every results row, with `run` naming its run) and `runs` (one row per
run: models, dates, cost, health and check-model verdicts). Nothing is written: the database lives in
memory, and once it is loaded an authorizer allows only reading (no ATTACH, so no file can be made).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.analysis.results import read_results
from personasim.errors import InputError
from personasim.report.viewer_data import Catalog

READ_ONLY = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _authorize(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in READ_ONLY else sqlite3.SQLITE_DENY


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    if hasattr(value, "tolist"):  # numpy arrays (judge_scores read from Parquet)
        return json.dumps(value.tolist())
    return value


def database(folders: Sequence[Path]) -> sqlite3.Connection:
    """An in-memory, read-only database of every run under `folders`."""
    entries = Catalog([Path(f) for f in folders]).runs()
    if not entries:
        raise InputError(", ".join(str(f) for f in folders), None, "no run folders here (a run holds manifest.json)")
    con = sqlite3.connect(":memory:")
    frames = []
    for e in entries:
        frame = read_results(e.path)
        frames.append(frame.assign(run=e.key))
    results = pd.concat(frames, ignore_index=True)
    for column in results.columns:
        if pd.api.types.is_object_dtype(results[column].dtype):  # lists (judge_scores) -> JSON text
            results[column] = results[column].map(_cell)
    results.to_sql("results", con, index=False)
    runs = pd.DataFrame([{
        "run": e.key, "run_id": e.manifest.run_id, "path": str(e.path), "learner_model": e.manifest.model,
        "judge_model": e.judge_model, "modules": ", ".join(e.refs), "started_at": e.manifest.started_at,
        "finished_at": e.manifest.finished_at, "cost_usd": e.manifest.cost_usd, "rows": e.manifest.rows,
        "samples": e.manifest.samples, "judge_samples": e.manifest.judge_samples, "health": e.health[0],
        "healthy": e.health[1], "check_model": e.check or None,
    } for e in entries])  # fmt: skip
    runs.to_sql("runs", con, index=False)
    con.set_authorizer(_authorize)
    return con


def run_query(con: sqlite3.Connection, sql: str) -> pd.DataFrame:
    """The query's rows; a statement that is not a read is refused with SQLite's own message."""
    try:
        cursor = con.execute(sql)
    except sqlite3.Error as exc:
        raise InputError("query", None, f"{exc} (the tables: results, runs; reading only)") from exc
    columns = [c[0] for c in cursor.description or []]
    return pd.DataFrame(cursor.fetchall(), columns=columns)
