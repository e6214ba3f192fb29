"""A batch run's rounds on disk (`RUN/batch/`): the state file, each round's input files (one per
endpoint and model, split at the file limits or into shards) and the answers read back from them.

    state = load_state(run_dir, "openai")
    round_ = write_round(run_dir, state, pending, settings, roles)   # then an engine answers it
    answers, failed = collect_round(run_dir, state, round_)          # failures counted per request
    answers = round_answers(run_dir, state.last_collected())         # in a later process
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personasim.errors import InputError
from personasim.fileio import atomic_write_bytes, atomic_write_text
from personasim.llm.batch.lines import (
    PendingRequest,
    answers_of,
    custom_ids,
    read_results,
    request_line,
    shards_of,
    split_lines,
)
from personasim.llm.batch.types import BatchSettings, BatchState, EngineName, Round, Submission
from personasim.llm.settings import LLMSettings

BATCH_DIR = "batch"  # under the run folder
STATE_FILE = "state.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def batch_dir(run_dir: Path) -> Path:
    return Path(run_dir) / BATCH_DIR


def load_state(run_dir: Path, engine: EngineName) -> BatchState:
    """The run's batch state, or a new one."""
    path = batch_dir(run_dir) / STATE_FILE
    if not path.is_file():
        return BatchState(engine=engine)
    try:
        return BatchState.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise InputError(
            path,
            None,
            f"unreadable batch state ({exc.__class__.__name__}); it is written whole, so "
            "this file was changed by hand: restore it or start the run again",
        ) from exc


def save_state(run_dir: Path, state: BatchState) -> None:
    atomic_write_text(batch_dir(run_dir) / STATE_FILE, state.model_dump_json(indent=2) + "\n")


def write_round(
    run_dir: Path,
    state: BatchState,
    pending: dict[str, PendingRequest],
    settings: BatchSettings,
    roles: dict[str, LLMSettings],
) -> Round:
    """The next round's input files, one per endpoint and model (split at the file limits, then into
    shards), noted in the state as written, not yet sent."""
    round_ = Round(index=len(state.rounds) + 1, started_at=now(), requests=len(pending),
                   by_role=dict(Counter(r.role for r in pending.values())))  # fmt: skip
    folder = batch_dir(run_dir) / round_.folder
    grouped: dict[str, list[PendingRequest]] = defaultdict(list)
    for request in pending.values():
        grouped[request.group].append(request)
    for group, requests in sorted(grouped.items()):
        role = roles[requests[0].role]
        lines = [request_line(r.key, r.body) for r in requests]
        pieces = [shard for part in split_lines(lines, settings.max_requests, settings.max_bytes)
                  for shard in shards_of(part, settings.shards)]  # fmt: skip
        for number, piece in enumerate(pieces):
            name = f"{group}.{number:03d}.jsonl"
            data = b"".join(piece)
            atomic_write_bytes(folder / name, data, fsync=False)
            round_.submissions.append(Submission(
                group=group, model=role.model, base_url=role.base_url, api_key_env=role.api_key_env,
                part=number, input_file=name, requests=len(piece), bytes=len(data),
            ))  # fmt: skip
    state.rounds.append(round_)
    save_state(run_dir, state)
    return round_


def _results(folder: Path, round_: Round) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    results = [
        result
        for submission in round_.submissions
        for name in (submission.output_file, submission.error_file)
        if name is not None and (folder / name).is_file()
        for result in read_results(folder / name)
    ]
    return answers_of(results)


def collect_round(run_dir: Path, state: BatchState, round_: Round) -> tuple[dict[str, dict[str, Any]], int]:
    """Count every request of the round that got no answer (a failed line, an expired, failed or
    cancelled batch, a line missing from the output) as one more attempt; mark the round collected.
    Returns (the answer bodies by custom_id, how many failed)."""
    folder = batch_dir(run_dir) / round_.folder
    answers, failures = _results(folder, round_)
    failed = 0
    for submission in round_.submissions:
        why_missing = submission.error or f"no answer line in the output of {submission.input_file}"
        for key in custom_ids(folder / submission.input_file):
            if key in answers:
                continue
            failed += 1
            state.attempts[key] = state.attempts.get(key, 0) + 1
            state.last_error[key] = failures.get(key, why_missing)
    round_.collected_at = now()
    save_state(run_dir, state)
    return answers, failed


def round_answers(run_dir: Path, round_: Round | None) -> dict[str, dict[str, Any]]:
    """The answer bodies of a collected round, by custom_id (the replay key): what `collect_round`
    returned, for a process that did not collect it."""
    if round_ is None:
        return {}
    return _results(batch_dir(run_dir) / round_.folder, round_)[0]


def describe(state: BatchState) -> list[dict[str, Any]]:
    """One row per submission of every round (for `personasim batch status`)."""
    return [
        {"round": r.index, "file": s.input_file, "part": s.part, "requests": s.requests, "batch_id": s.batch_id or "",
         "state": "collected" if r.collected_at and s.finished else s.state, "completed": s.completed,
         "failed": s.failed, "error": s.error or ""}
        for r in state.rounds for s in r.submissions
    ]  # fmt: skip
