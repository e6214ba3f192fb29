"""`personasim recordings list|prune` end to end with typer's CliRunner (no network)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from personasim.cli import app
from personasim.llm.replay import RecordedResponse, Recording, request_fields, request_key, save_recording
from personasim.llm.types import ChatOptions
from personasim.records.usage import Usage

runner = CliRunner()


def make_recordings(directory: Path) -> list[str]:
    keys = []
    for i, model in enumerate(["gpt-4o-mini", "gpt-4o-mini", "qwen"]):
        messages = [{"role": "user", "content": f"question {i}"}]
        options = ChatOptions(model=model)
        key = request_key(messages, options)
        response = RecordedResponse(
            text=f"answer {i}", usage=Usage(prompt_tokens=3), finish_reason="stop", model=model,
            system_fingerprint=None, latency_s=0.1, created_at="2025-01-01T00:00:00+00:00",
        )  # fmt: skip
        save_recording(
            directory, Recording(key=key, request=request_fields(messages, options, None), response=response)
        )
        keys.append(key)
    return keys


def test_list_shows_count_models_and_size(tmp_path: Path) -> None:
    make_recordings(tmp_path)
    result = runner.invoke(app, ["recordings", "list", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 recordings" in result.output and "gpt-4o-mini: 2" in result.output and "qwen: 1" in result.output
    data = json.loads(runner.invoke(app, ["recordings", "list", str(tmp_path), "--json"]).output)
    assert data["count"] == 3 and data["models"] == {"gpt-4o-mini": 2, "qwen": 1} and data["size_bytes"] > 0


def test_prune_lists_unused_and_deletes_only_with_flag(tmp_path: Path) -> None:
    recordings = tmp_path / "rec"
    keys = make_recordings(recordings)
    used = tmp_path / "used.txt"
    used.write_text(f"{keys[0]}\n\n{keys[2]}\n")
    listed = runner.invoke(app, ["recordings", "prune", str(recordings), "--used", str(used)])
    assert listed.exit_code == 0, listed.output
    assert keys[1] in listed.output and keys[0] not in listed.output and "1 recordings unused" in listed.output
    assert len(list(recordings.glob("*.json"))) == 3
    deleted = runner.invoke(app, ["recordings", "prune", str(recordings), "--used", str(used), "--delete"])
    assert deleted.exit_code == 0 and "1 recordings deleted" in deleted.output
    assert sorted(p.stem for p in recordings.glob("*.json")) == sorted([keys[0], keys[2]])


def test_missing_directory_or_keys_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recordings", "list", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "not a recordings directory" in result.output
    result = runner.invoke(app, ["recordings", "prune", str(tmp_path), "--used", str(tmp_path / "none.txt")])
    assert result.exit_code == 1 and "cannot read used keys" in result.output
