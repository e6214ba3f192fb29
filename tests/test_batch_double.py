"""The Batch API test double (tests/doubles/batch_server.py) driven by the real `openai` SDK, and the
`vllm run-batch` stand-in (tests/doubles/run_batch.py) run as a script."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch

from doubles.batch_server import TERMINAL, FakeBatchServer
from doubles.openai_server import Reply
from doubles.run_batch import map_batch, parse_input, scripted_responder
from scripted_answers import scripted_text

RUN_BATCH = Path(__file__).parent / "doubles" / "run_batch.py"


def request_line(i: int, total: int = 6, model: str = "fake-model") -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are a ward manager."},
                {"role": "user", "content": f"Step {i} of {total}: Part {i}"}]  # fmt: skip
    body = {"model": model, "messages": messages, "temperature": 0.7}
    return {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}


def request_lines(total: int = 6) -> list[dict[str, Any]]:
    return [request_line(i, total) for i in range(1, total + 1)]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


def client_for(server: FakeBatchServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def submit(client: openai.OpenAI, data: bytes) -> Batch:
    file = client.files.create(file=("in.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                 completion_window="24h", metadata={"run": "test"})  # fmt: skip


def poll(client: openai.OpenAI, batch: Batch) -> tuple[Batch, list[str]]:
    """Retrieves until a terminal status (bounded: the double moves one step per retrieve)."""
    statuses = [batch.status]
    for _ in range(10):
        if batch.status in TERMINAL:
            break
        batch = client.batches.retrieve(batch.id)
        statuses.append(batch.status)
    return batch, statuses


def download(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).content.decode("utf-8").splitlines()]


def run(server: FakeBatchServer, lines: list[dict[str, Any]]) -> tuple[Batch, list[dict], list[dict]]:
    client = client_for(server)
    batch, _ = poll(client, submit(client, jsonl(lines)))
    return batch, download(client, batch.output_file_id), download(client, batch.error_file_id)


def test_round_trip_answers_every_line_once_and_sends_no_chat_request() -> None:
    lines = request_lines()
    with FakeBatchServer() as server:
        client = client_for(server)
        batch = submit(client, jsonl(lines))
        assert (batch.status, batch.request_counts.total, batch.metadata) == ("validating", 6, {"run": "test"})
        batch, statuses = poll(client, batch)
        assert statuses == ["validating", "in_progress", "in_progress", "completed"]
        out = download(client, batch.output_file_id)
        assert batch.error_file_id is None and batch.completed_at is not None and batch.model == "fake-model"
        assert (batch.request_counts.completed, batch.request_counts.failed) == (6, 0)
        assert sorted(o["custom_id"] for o in out) == sorted(line["custom_id"] for line in lines)
        by_id = {o["custom_id"]: o for o in out}
        for line in lines:
            response = by_id[line["custom_id"]]["response"]
            assert response["status_code"] == 200 and by_id[line["custom_id"]]["error"] is None
            content = response["body"]["choices"][0]["message"]["content"]
            assert content == scripted_text(line["body"]["messages"])
            assert response["request_id"].startswith("req_") and by_id[line["custom_id"]]["id"].startswith("batch_req_")
        assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"
        assert server.chat_requests == [] and server.batch_requests_total == 6
        assert server.uploads[0].data == jsonl(lines) and server.batches[batch.id].lines == lines
        assert ("POST", "/v1/files") in server.request_log


def test_output_is_shuffled_by_default_and_kept_in_order_without_a_seed() -> None:
    lines = request_lines()
    with FakeBatchServer() as server:
        _, out, _ = run(server, lines)
    with FakeBatchServer(shuffle_seed=None) as server:
        _, in_order, _ = run(server, lines)
    ids = [line["custom_id"] for line in lines]
    assert [o["custom_id"] for o in out] != ids and sorted(o["custom_id"] for o in out) == sorted(ids)
    assert [o["custom_id"] for o in in_order] == ids


def test_fail_lines_sends_exactly_n_lines_to_the_error_file_and_the_retry_succeeds() -> None:
    lines = request_lines()
    with FakeBatchServer(fail_lines=2) as server:
        batch, out, errors = run(server, lines)
        assert (batch.request_counts.completed, batch.request_counts.failed) == (4, 2)
        assert len(errors) == 2 and len(out) == 4
        assert sorted(o["custom_id"] for o in out + errors) == sorted(line["custom_id"] for line in lines)
        for error in errors:
            assert error["error"] is None and error["response"]["status_code"] == 500
            assert error["response"]["body"]["error"]["type"] == "server_error"
        failed = {e["custom_id"] for e in errors}
        retry, retried, still_failing = run(server, [line for line in lines if line["custom_id"] in failed])
        assert still_failing == [] and {o["custom_id"] for o in retried} == failed
        assert retry.request_counts.completed == 2 and server.batch_requests_total == 8


def test_vllm_error_style_and_errors_in_the_output_file() -> None:
    with FakeBatchServer(fail_lines=1, error_style="vllm", errors_in_output=True, shuffle_seed=None) as server:
        batch, out, errors = run(server, request_lines(3))
    assert errors == [] and batch.error_file_id is None and len(out) == 3
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
    assert out[0]["response"]["status_code"] == 400 and out[0]["response"]["body"] is None
    assert isinstance(out[0]["error"], str) and out[1]["error"] is None


def test_a_responder_error_reply_becomes_an_error_line() -> None:
    with FakeBatchServer() as server:
        server.responder = lambda body: Reply.server_error(503) if "Step 2 " in str(body) else scripted_responder(body)
        batch, out, errors = run(server, request_lines(3))
    assert [e["custom_id"] for e in errors] == ["req-2"] and errors[0]["response"]["status_code"] == 503
    assert len(out) == 2 and batch.request_counts.failed == 1


def test_expire_batches_expires_the_first_batch_only() -> None:
    lines = request_lines(3)
    with FakeBatchServer(expire_batches=1) as server:
        first, out, errors = run(server, lines)
        assert (first.status, first.output_file_id, first.error_file_id, out, errors) == ("expired", None, None, [], [])
        assert first.expired_at is not None and first.request_counts.failed == 3
        second, out, _ = run(server, lines)
        assert second.status == "completed" and len(out) == 3


def test_fail_batches_and_malformed_input_fail_with_errors() -> None:
    with FakeBatchServer(fail_batches=1) as server:
        client = client_for(server)
        failed, statuses = poll(client, submit(client, jsonl(request_lines(2))))
        assert statuses == ["validating", "failed"] and failed.errors and failed.errors.data
        assert poll(client, submit(client, jsonl(request_lines(2))))[0].status == "completed"
        bad = [request_line(1), {**request_line(2), "url": "/v1/embeddings"}, {"method": "POST"}]
        data = jsonl(bad) + b"not json\n" + json.dumps({**request_line(1), "custom_id": "req-9"}).encode()
        malformed, _ = poll(client, submit(client, data))
        assert malformed.status == "failed" and malformed.failed_at is not None
        assert [e.line for e in malformed.errors.data] == [2, 3, 4]
        assert server.batch_requests_total == 2


def test_cancel_ends_cancelled_without_output_and_a_finished_batch_cannot_be_cancelled() -> None:
    with FakeBatchServer() as server:
        client = client_for(server)
        batch = submit(client, jsonl(request_lines(2)))
        assert client.batches.cancel(batch.id).status == "cancelling"
        cancelled = client.batches.retrieve(batch.id)
        assert (cancelled.status, cancelled.output_file_id) == ("cancelled", None) and cancelled.cancelled_at
        with pytest.raises(openai.ConflictError):
            client.batches.cancel(batch.id)
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
        assert server.batch_requests_total == 0


def test_finalizing_step_and_file_calls() -> None:
    with FakeBatchServer(polls_to_complete=1, show_finalizing=True) as server:
        client = client_for(server)
        batch, statuses = poll(client, submit(client, jsonl(request_lines(2))))
        assert statuses == ["validating", "in_progress", "finalizing", "completed"]
        data = b'{"a": 1}\r\n{"b": "\xc3\xa9"}\n'
        file = client.files.create(file=("x.jsonl", io.BytesIO(data)), purpose="batch")
        assert client.files.retrieve(file.id).bytes == len(data) and client.files.content(file.id).read() == data
        assert client.files.delete(file.id).deleted
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file.id)


async def test_async_client_round_trip() -> None:
    with FakeBatchServer() as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        file = await client.files.create(file=("in.jsonl", io.BytesIO(jsonl(request_lines(2)))), purpose="batch")
        batch = await client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                            completion_window="24h")  # fmt: skip
        for _ in range(3):
            batch = await client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.output_file_id
        content = await client.files.content(batch.output_file_id)
        assert len(content.content.decode().splitlines()) == 2
        await client.close()


def test_chat_completions_are_answered_and_recorded() -> None:
    line = request_line(1)
    with FakeBatchServer(models=("fake-model",)) as server:
        client = client_for(server)
        reply = client.chat.completions.create(model="fake-model", messages=line["body"]["messages"])
        assert reply.choices[0].message.content == scripted_text(line["body"]["messages"])
        assert len(server.chat_requests) == 1 and server.chat_requests[0].body["messages"] == line["body"]["messages"]
        assert [m.id for m in client.models.list()] == ["fake-model"]
    with FakeBatchServer() as server, pytest.raises(openai.NotFoundError):
        client_for(server).models.list()


def test_parse_input_reports_each_bad_line() -> None:
    lines, errors = parse_input(jsonl([request_line(1), request_line(1), request_line(2, model="other")]))
    assert len(lines) == 1 and [(e["line"], e["code"]) for e in errors] == [
        (2, "invalid_request"),
        (3, "invalid_request"),
    ]
    assert parse_input(b"\n")[1][0]["code"] == "empty_file"


def run_script(tmp_path: Path, lines: list[dict[str, Any]], *args: str) -> tuple[int, list[dict[str, Any]]]:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(lines))
    done = subprocess.run([sys.executable, str(RUN_BATCH), "-i", str(source), "-o", str(target), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    out = [json.loads(line) for line in target.read_text().splitlines()] if target.exists() else []
    return done.returncode, out


def test_run_batch_script_maps_a_file_in_input_order(tmp_path: Path) -> None:
    lines = request_lines(4)
    code, out = run_script(tmp_path, lines, "--model", "fake-model", "--max-model-len", "4096")
    assert code == 0 and [o["custom_id"] for o in out] == [line["custom_id"] for line in lines]
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in out)
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == scripted_text(lines[0]["body"]["messages"])

    def answers(outputs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(o["custom_id"], o["response"]["body"]["choices"][0]["message"]["content"]) for o in outputs]

    assert answers(out) == answers(map_batch(lines, model="fake-model"))


def test_run_batch_script_faults(tmp_path: Path) -> None:
    lines = request_lines(4)
    code, out = run_script(tmp_path, lines, "--fail-custom-id", "req-2", "--fail-custom-id", "req-4")
    assert code == 0 and [o["response"]["status_code"] for o in out] == [200, 400, 200, 400]
    assert out[1]["response"]["body"] is None and isinstance(out[1]["error"], str)
    assert run_script(tmp_path, lines, "--exit-code", "3")[0] == 3
    code, out = run_script(tmp_path, lines, "--short")
    assert code == 0 and [o["custom_id"] for o in out] == ["req-1", "req-2"]
    code, out = run_script(tmp_path, lines, "--model", "another-model")
    assert {o["response"]["status_code"] for o in out} == {404} and out[0]["error"]["error"]["code"] == 404


def test_run_batch_script_rejects_a_malformed_file(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").unlink(missing_ok=True)
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a"}\n')
    done = subprocess.run([sys.executable, str(RUN_BATCH), "-i", str(source), "-o", str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "line 1" in done.stderr and not (tmp_path / "out.jsonl").exists()


def test_map_batch_turns_error_replies_and_exceptions_into_lines() -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if "Step 1 " in body["messages"][-1]["content"]:
            raise RuntimeError("boom")
        return Reply.server_error(503)

    out = map_batch(request_lines(2), responder)
    assert out[0]["error"] == "boom" and out[0]["response"]["status_code"] == 400
    assert out[1]["response"]["status_code"] == 503 and out[1]["error"]["error"]["code"] == 503
