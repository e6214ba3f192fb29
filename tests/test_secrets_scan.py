"""Record with a real-looking API key set, then scan everything written: no key, no auth header."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel

from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.llm.clients import build_client
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings
from personasim.llm.structured import complete_structured

SECRET = "sk-proj-SECRETsecret0123456789abcdefXYZ"


class Verdict(BaseModel):
    ok: bool


async def test_recordings_hold_no_key_and_no_auth_header(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("PERSONASIM_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    recordings = tmp_path / "recordings"
    settings = LLMSettings(
        base_url=openai_server.base_url, model="fake-model", api_key_env="PERSONASIM_TEST_KEY", mode="record",
        recordings_dir=recordings, backoff_initial_s=0.001, max_wait_s=0.01,
    )  # fmt: skip
    openai_server.enqueue(Reply.rate_limited(), Reply.ok("plain"), Reply.ok("bad"), Reply.json({"ok": True}))
    client = build_client(settings)
    assert isinstance(client, RecordingClient)
    async with client:
        await client.complete([{"role": "user", "content": "hello"}], settings.chat_options())
        await complete_structured(client, [{"role": "user", "content": "judge"}], settings.chat_options(), Verdict)
    (tmp_path / "used.txt").write_text("".join(f"{key}\n" for key in sorted(client.used_keys)))

    # The key did reach the server, and only in the Authorization header.
    for request in openai_server.chat_requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["authorization"] == f"Bearer {SECRET}"
        assert not [k for k, v in headers.items() if SECRET in v and k != "authorization"]
        assert SECRET.encode() not in request.raw

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 4  # three recordings + the used-keys file
    for path in written:
        text = path.read_text(encoding="utf-8")
        lowered = text.lower()
        assert SECRET not in text and SECRET[8:24] not in text, path
        assert "authorization" not in lowered and "bearer" not in lowered, path
        assert "personasim_test_key" not in lowered, path  # not even the variable's name
    assert SECRET not in caplog.text and "bearer" not in caplog.text.lower()
    assert (
        SECRET not in repr(settings) and SECRET not in repr(client.__dict__) and SECRET not in repr(vars(client.inner))
    )


def test_the_run_folder_and_its_kept_calls_hold_no_key(openai_server: FakeOpenAIServer, tmp_path: Path,
                                                       monkeypatch) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from module_files import three_seed_personas, write_module
    from personasim.cli import app
    from scripted_answers import scripted_answer

    monkeypatch.setenv("PERSONASIM_TEST_KEY", SECRET)
    openai_server.responder = lambda body: Reply.json(scripted_answer(body["messages"]))
    out = tmp_path / "out"
    args = ["run", "--personas", str(three_seed_personas(tmp_path / "personas")), "--persona", "p17",
            "--module", str(write_module(tmp_path / "modules", "v1", 2)), "--base-url", openai_server.base_url,
            "--model", "fake-model", "--api-key-env", "PERSONASIM_TEST_KEY", "--mode", "live", "--run-id", "r",
            "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    headers = {k.lower(): v for k, v in openai_server.chat_requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {SECRET}"  # the key did reach the server

    calls = sorted((out / "r" / "calls").glob("*.json"))
    assert len(calls) == len(openai_server.chat_requests)  # every live call kept, and scanned below
    for path in (p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        lowered = data.lower()
        assert SECRET.encode() not in data and SECRET[8:24].encode() not in data, path
        assert b"authorization" not in lowered and b"bearer" not in lowered, path
        if path.parent.name == "calls":  # settings files name the variable; a kept call not even that
            assert b"personasim_test_key" not in lowered, path
