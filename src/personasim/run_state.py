"""The state a run folder keeps besides results: `units.jsonl` (one record per finished or
failed unit, appended as each ends) and `inputs.json` (the personas, modules, run parameters and
LLM settings as run, so a resume or a re-grade needs no repeating).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from personasim.errors import InputError
from personasim.fileio import atomic_write_text
from personasim.llm import LLMSettings
from personasim.module import LearningModule
from personasim.persona import Persona
from personasim.results import RunPaths

logger = logging.getLogger("personasim.run_state")
INPUTS_VERSION = 1
RUN_PARAMS = ("samples", "judge_samples", "sequential")


class UnitRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: str
    status: Literal["finished", "failed"]
    config_hash: str
    error: str | None = None
    at: str = ""


# --------------------------------------------------------------------------- units.jsonl


def read_unit_records(path: str | Path) -> dict[str, UnitRecord]:
    """Latest record per unit. A torn last line (a crash mid-write) is ignored."""
    path = Path(path)
    if not path.is_file():
        return {}
    records: dict[str, UnitRecord] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = UnitRecord.model_validate_json(line)
        except ValidationError:
            logger.warning("%s:%d: unreadable unit record ignored (its unit will be redone)", path, number)
            continue
        records[record.unit_id] = record
    return records


def append_unit_record(path: str | Path, record: UnitRecord) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = b""
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                prefix = b"\n"  # a torn last line must not swallow this record
    with path.open("ab") as handle:
        handle.write(prefix + record.model_dump_json().encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- inputs snapshot


def write_inputs(paths: RunPaths, personas: list[Persona], modules: list[LearningModule], run_params: dict[str, Any],
                 settings: LLMSettings) -> None:  # fmt: skip
    """What a resume or a re-grade needs to repeat this run without being told again."""
    data = {
        "version": INPUTS_VERSION,
        "run": {k: run_params[k] for k in RUN_PARAMS},
        "settings": settings.model_dump(mode="json"),
        "personas": [p.model_dump(mode="json") for p in personas],
        "modules": [m.model_dump(mode="json") for m in modules],
    }
    atomic_write_text(paths.inputs, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _read_inputs_file(paths: RunPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.inputs.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(paths.inputs, None, "no inputs snapshot: not a run folder") from exc
    except ValueError as exc:
        raise InputError(paths.inputs, None, f"unreadable inputs snapshot: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != INPUTS_VERSION:
        raise InputError(paths.inputs, None, "not an inputs snapshot this personasim reads")
    return data


def read_inputs(paths: RunPaths) -> tuple[list[Persona], list[LearningModule]]:
    data = _read_inputs_file(paths)
    try:
        return (
            [Persona.model_validate(p) for p in data["personas"]],
            [LearningModule.model_validate(m) for m in data["modules"]],
        )
    except (KeyError, ValidationError) as exc:
        raise InputError(paths.inputs, None, f"unreadable inputs snapshot: {exc}") from exc


def run_defaults(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's parameters (samples, judge_samples, sequential) and LLM settings, as run."""
    data = _read_inputs_file(RunPaths(run_dir))
    return dict(data.get("run", {})), dict(data.get("settings", {}))
