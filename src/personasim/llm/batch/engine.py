"""Batch engines: what answers a round's input files. `command` runs a program that maps an input
JSONL to an output JSONL (`vllm run-batch -i {input} -o {output} --model {model}`), here and now;
`openai` sends them to an OpenAI-compatible Batch API (`llm/openai_batch.py`) and may be left to run
(`--detach`). Each engine moves a `Submission` along (submit, refresh) and leaves its answers in
files beside the input, named in `output_file` / `error_file`."""

from __future__ import annotations

import asyncio
import os
import shlex
import string
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from personasim.errors import InputError
from personasim.llm.batch.types import BatchSettings, Submission
from personasim.llm.settings import LLMSettings
from personasim.llm.types import BatchEngineError

TEMPLATE_FIELDS = frozenset({"input", "output", "shard", "model"})
_STDERR_TAIL = 400

Save = Callable[[], None]


class Engine(Protocol):
    name: str
    detachable: bool  # whether a submitted round goes on while no process of ours runs

    async def submit(self, round_dir: Path, submission: Submission, metadata: dict[str, str], save: Save) -> None:
        """Send one input file (`save()` after each step that must survive a crash)."""

    async def refresh(self, round_dir: Path, submission: Submission) -> None:
        """Ask where a submitted file stands; once finished, fetch its output and error files."""

    async def cancel(self, submission: Submission) -> None:
        """Ask the engine to stop a submitted file (what it answered by then is still collected)."""

    async def aclose(self) -> None: ...


def check_command(template: str | None, source: str = "--batch-command") -> str:
    """A command template naming {input} and {output} and no field but {input} {output} {shard} {model}."""
    if not template or not template.strip():
        raise InputError(
            None, None, f"{source}: --batch command needs a command template with {{input}} and {{output}}"
        )
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise InputError(
            None, None, f"{source}: {exc} in {template!r} (write a literal brace as {{{{ or }}}})"
        ) from exc
    unknown, missing = fields - TEMPLATE_FIELDS, {"input", "output"} - fields
    if unknown or missing:
        problem = f"unknown field {{{sorted(unknown)[0]}}}" if unknown else f"no {{{sorted(missing)[0]}}}"
        raise InputError(None, None, f"{source}: {problem} in {template!r}; it may name {{input}} {{output}} "
                                     "{shard} {model}")  # fmt: skip
    return template


class CommandEngine:
    """Runs the command once per submission (a round's shards run side by side)."""

    name = "command"
    detachable = False

    def __init__(self, template: str) -> None:
        self.template = check_command(template)

    async def submit(self, round_dir: Path, submission: Submission, metadata: dict[str, str], save: Save) -> None:
        source = round_dir / submission.input_file
        output = source.with_name(source.name.removesuffix(".jsonl") + ".output.jsonl")
        output.unlink(missing_ok=True)
        command = self.template.format(
            input=shlex.quote(str(source)), output=shlex.quote(str(output)),
            shard=submission.part, model=shlex.quote(submission.model),
        )  # fmt: skip
        where = f"round {metadata.get('round', '?')}, {submission.input_file}"
        process = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PERSONASIM_SHARD": str(submission.part)},
        )  # fmt: skip
        _, stderr = await process.communicate()
        if process.returncode != 0:
            tail = " ".join(stderr.decode("utf-8", "replace").split())[-_STDERR_TAIL:]
            raise BatchEngineError(f"batch command exited {process.returncode} ({where}): {command}"
                                   + (f"; it said: {tail}" if tail else ""))  # fmt: skip
        answered = _line_count(output)
        if answered < submission.requests:
            found = "wrote no output file" if answered < 0 else f"wrote {answered} of {submission.requests} lines"
            raise BatchEngineError(f"batch command {found} ({where}): {command}")
        submission.output_file, submission.state = output.name, "completed"
        submission.completed = submission.requests

    async def refresh(self, round_dir: Path, submission: Submission) -> None:
        return None  # it finished when submit returned

    async def cancel(self, submission: Submission) -> None:
        return None  # nothing of it runs once submit returned

    async def aclose(self) -> None:
        return None


def _line_count(path: Path) -> int:
    """Non-empty lines in `path`; -1 when there is no such file."""
    if not path.is_file():
        return -1
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def make_engine(settings: BatchSettings, roles: dict[str, LLMSettings]) -> Engine:
    if settings.engine == "command":
        return CommandEngine(settings.command or "")
    from personasim.llm.openai_batch import OpenAIBatchEngine  # openai loads only for this engine

    return OpenAIBatchEngine(roles)
