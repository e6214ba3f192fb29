"""The state a run folder keeps besides results: `units.jsonl` (one record per finished or
failed unit, appended as each ends) and `inputs.json` (the personas, modules, run parameters and
LLM settings as run, so a resume or a re-grade needs no repeating).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from personasim.analysis.results import RunPaths
from personasim.errors import InputError
from personasim.fileio import atomic_write_text, current_umask
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.roles import ModelRoles
from personasim.records.transcript import load_transcript, save_transcript
from personasim.run.config import RunConfig

logger = logging.getLogger("personasim.run.state")
INPUTS_VERSION = 2  # 2: the whole RunConfig (both model roles, history, prompts, backend)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class UnitRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: str
    status: Literal["finished", "failed", "pending"]  # pending: waits for a batch round; never written
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


def write_inputs(
    paths: RunPaths, personas: list[Persona], modules: list[LearningModule], config: RunConfig, roles: ModelRoles
) -> None:
    """What a resume or a re-grade needs to repeat this run without being told again: the whole
    run configuration, the roles as they ran (for reading only: a resume re-resolves them), and
    the inputs themselves."""
    data = {
        "version": INPUTS_VERSION,
        "config": config.model_dump(mode="json"),
        "roles": {role: getattr(roles, role).model_dump(mode="json") for role in ("learner", "judge")},
        "personas": [p.model_dump(mode="json") for p in personas],
        "modules": [m.model_dump(mode="json") for m in modules],
    }
    atomic_write_text(paths.inputs, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def update_run_config(paths: RunPaths, config: RunConfig, roles: ModelRoles) -> None:
    """After a re-grade: the run's configuration now names the judge (and judge samples) it was
    graded with; the inputs and anything else in the snapshot (`forked_from`) stay."""
    data = _read_inputs_file(paths)
    data |= {
        "version": INPUTS_VERSION,
        "config": config.model_dump(mode="json"),
        "roles": {role: getattr(roles, role).model_dump(mode="json") for role in ("learner", "judge")},
    }
    data.pop("run", None), data.pop("settings", None)  # a version 1 snapshot's settings are now in config
    atomic_write_text(paths.inputs, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _read_inputs_file(paths: RunPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.inputs.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(paths.inputs, None, "no inputs snapshot: not a run folder") from exc
    except ValueError as exc:
        raise InputError(paths.inputs, None, f"unreadable inputs snapshot: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") not in (1, INPUTS_VERSION):
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


def inputs_or_snapshot(
    run_dir: Path, personas: list[Persona], modules: list[LearningModule]
) -> tuple[list[Persona], list[LearningModule]]:
    """The personas and modules given, each empty list filled from the run's snapshot when it has one
    (a resumed run named without its inputs)."""
    paths = RunPaths(run_dir)
    if (personas and modules) or not paths.inputs.is_file():
        return personas, modules
    snapshot = read_inputs(paths)
    return personas or snapshot[0], modules or snapshot[1]


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The configuration the run was made with (version 1 folders: samples, judge_samples,
    sequential and one settings block, which both roles then share)."""
    paths = RunPaths(run_dir)
    data = _read_inputs_file(paths)
    if data["version"] == 1:
        old = data.get("run", {})
        raw = {"run_id": paths.root.name, "out_dir": str(paths.root.parent), **old, "learner": data.get("settings", {})}
    else:
        raw = {**data.get("config", {}), "run_id": paths.root.name, "out_dir": str(paths.root.parent)}
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise InputError(paths.inputs, None, f"unreadable run configuration: {exc.errors()[0]['msg']}") from exc


# --------------------------------------------------------------------------- forks


def check_run_id(run_id: str) -> None:
    if not RUN_ID_RE.match(run_id):
        raise InputError(None, None, f"run id {run_id!r}: use letters, digits, '.', '_' and '-'")


def fork_run(source_dir: str | Path, run_id: str) -> Path:
    """A new run folder beside `source_dir` holding its inputs (plus `forked_from`), unit log and
    transcripts (under the new run id), but no grades, table or manifest: re-grading the fork
    grades the same transcripts again and leaves the source run as it was (for comparing judges
    or criteria). Staged under a hidden name and renamed into place: whole or absent."""
    check_run_id(run_id)
    source = RunPaths(source_dir)
    if not source.inputs.is_file() or not source.units.is_file():
        raise InputError(source.root, None, "not a run folder with saved transcripts (no inputs.json or units.jsonl)")
    target = source.root.parent / run_id
    if target.exists():
        raise InputError(target, None, "already exists: choose another run id for the re-graded copy")
    staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=source.root.parent))
    try:
        inputs = _read_inputs_file(source) | {"forked_from": source.root.name}
        atomic_write_text(staging / source.inputs.name, json.dumps(inputs, indent=2, ensure_ascii=False) + "\n")
        shutil.copy2(source.units, staging / source.units.name)
        for path in sorted((source.root / "transcripts").glob("*.json")):
            # The copy's rows carry its own run id; inputs.json says where the transcripts came from.
            transcript = load_transcript(path).model_copy(update={"run_id": run_id})
            save_transcript(transcript, staging / "transcripts" / path.name)
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
