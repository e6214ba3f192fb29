"""TEST DOUBLE: a stand-in for `vllm run-batch`, for tests that must not load a model.

    python tests/doubles/run_batch.py -i IN.jsonl -o OUT.jsonl [--model M] [--fail-custom-id ID ...]
        [--exit-code N] [--short]

It reads batch input lines (`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`,
blank lines skipped), answers each with a responder (default: `scripted_answers.scripted_text` of the
body's messages) and writes one output line per input line, in input order, errors in the same file,
as vLLM does:

    {"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "request_id": "req_1",
     "body": <chat completion>}, "error": null}
    {"id": "batch_req_2", "custom_id": "b", "response": {"status_code": 400, "request_id": "req_2",
     "body": null}, "error": "message"}

Like vLLM, `error` is a string for a failure outside the model server (`--fail-custom-id`, a
streaming request, an unsupported url, a responder that raised) and an error object
`{"error": {"message", "type", "param", "code"}}` with that status for an error response (a model
name other than `--model`: 404, or a responder `Reply` with status != 200). A malformed input line
makes it exit 1 with no output file (vLLM stops on its validation error). `--exit-code N` exits with
N after writing; `--short` writes only the first half of the lines. Flags it does not know (vLLM's
engine arguments such as `--max-model-len 4096`) are ignored. The output-line builders and
`parse_input` (the Batch API's stricter check of an input file) serve batch_server.py too.

Examples:

    subprocess.run([sys.executable, "tests/doubles/run_batch.py", "-i", inp, "-o", out, "--model", "m"])
    outputs = map_batch(lines, scripted_responder)            # the same mapping, in process
    outputs = map_batch(lines, lambda body: Reply.server_error(503), fail_custom_ids={"a"})
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from doubles.openai_server import Reply, completion_body  # noqa: E402
from scripted_answers import scripted_text  # noqa: E402

__all__ = ["CHAT_ENDPOINT", "Responder", "batch_error", "error_line", "map_batch", "ok_line", "parse_input", "parse_lines",
           "scripted_responder"]  # fmt: skip

CHAT_ENDPOINT = "/v1/chat/completions"
Responder = Callable[[dict[str, Any]], Reply]


def scripted_responder(body: dict[str, Any]) -> Reply:
    """The default answer: the scripted learner / judge answer for the request's messages."""
    return Reply.ok(scripted_text(body["messages"]))


def ok_line(n: int, custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = {"status_code": 200, "request_id": f"req_{n}", "body": body}
    return {"id": f"batch_req_{n}", "custom_id": custom_id, "response": response, "error": None}


def error_line(n: int, custom_id: str, status: int, error: Any, body: Any = None) -> dict[str, Any]:
    """A failed request: vLLM's form puts the cause in `error` (body null), OpenAI's in the body."""
    response = {"status_code": status, "request_id": f"req_{n}", "body": body}
    return {"id": f"batch_req_{n}", "custom_id": custom_id, "response": response, "error": error}


def vllm_error(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The input's request lines; ValueError names the first malformed one."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"line {number}: not JSON ({exc})") from exc
        missing = [k for k in ("custom_id", "method", "url", "body") if not isinstance(line, dict) or k not in line]
        if missing or not isinstance(line["body"], dict):
            raise ValueError(
                f"line {number}: " + (f"missing {', '.join(missing)}" if missing else "body is not an object")
            )
        lines.append(line)
    return lines


def batch_error(code: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _line_problem(line: Any, endpoint: str) -> str:
    if not isinstance(line, dict):
        return "The line is not a JSON object."
    checks = (
        (isinstance(line.get("custom_id"), str), "custom_id must be a string."),
        (line.get("method") == "POST", "method must be POST."),
        (line.get("url") == endpoint, f"url must be {endpoint}, the batch's endpoint."),
        (isinstance(line.get("body"), dict), "body must be a JSON object."),
    )
    problem = next((message for ok, message in checks if not ok), "")
    if not problem and line["body"].get("stream"):
        problem = "Streaming is not supported in a batch."
    return problem


def parse_input(data: bytes, endpoint: str = CHAT_ENDPOINT) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Batch API's check of an input file (used by batch_server): its request lines, and its
    validation errors in OpenAI's BatchError shape (`{"code", "message", "param", "line"}`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [batch_error("invalid_file", "The input file is not UTF-8 text.")]
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        problem = _line_problem(line, endpoint) if line is not None else "The line is not valid JSON."
        if not problem and line["custom_id"] in seen:
            problem = f"The custom_id {line['custom_id']!r} is not unique in the batch."
        if not problem and lines and line["body"].get("model") != lines[0]["body"].get("model"):
            problem = "All requests in a batch must use the same model."
        if problem:
            errors.append(batch_error("invalid_request", problem, number))
        else:
            seen.add(line["custom_id"])
            lines.append(line)
    if not lines and not errors:
        errors.append(batch_error("empty_file", "The input file has no requests."))
    return lines, errors


def _answer(
    n: int, line: dict[str, Any], responder: Responder, model: str | None, fail: Collection[str]
) -> dict[str, Any]:
    custom_id, body = line["custom_id"], line["body"]
    if custom_id in fail:
        return error_line(n, custom_id, 400, f"scripted failure of {custom_id} (--fail-custom-id)")
    if line["url"] != CHAT_ENDPOINT:
        return error_line(n, custom_id, 400, f"URL {line['url']} was used. Supported endpoints: {CHAT_ENDPOINT}.")
    if body.get("stream"):
        return error_line(n, custom_id, 400, "Request must not be sent in stream mode")
    if model is not None and body.get("model") != model:
        return error_line(n, custom_id, 404, vllm_error(404, f"The model `{body.get('model')}` does not exist.",
                                                        "NotFoundError"))  # fmt: skip
    try:
        reply = responder(body)
    except Exception as exc:  # vLLM turns any exception into an error line
        return error_line(n, custom_id, 400, str(exc))
    if reply.drop:
        return error_line(n, custom_id, 400, "connection dropped")
    if reply.status != 200:
        return error_line(n, custom_id, reply.status, vllm_error(reply.status, reply.error_message, "BadRequestError"))
    return ok_line(n, custom_id, completion_body(reply, body))


def map_batch(
    lines: Sequence[dict[str, Any]],
    responder: Responder = scripted_responder,
    *,
    model: str | None = None,
    fail_custom_ids: Collection[str] = (),
) -> list[dict[str, Any]]:
    """One output line per input line, in input order (vLLM's run-batch output)."""
    return [_answer(n, line, responder, model, set(fail_custom_ids)) for n, line in enumerate(lines, 1)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="TEST DOUBLE of `vllm run-batch` (scripted answers).")
    parser.add_argument("-i", "--input-file", required=True)
    parser.add_argument("-o", "--output-file", required=True)
    parser.add_argument("--model", default=None, help="answer only requests for this model (others: 404 lines)")
    parser.add_argument("--fail-custom-id", action="append", default=[], help="make this line an error line")
    parser.add_argument("--exit-code", type=int, default=0, help="exit status after writing the output")
    parser.add_argument("--short", action="store_true", help="write only the first half of the output lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    if unknown:
        print(f"run_batch double: ignoring {' '.join(unknown)}", file=sys.stderr)
    try:
        lines = parse_lines(Path(args.input_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"run_batch double: {exc}", file=sys.stderr)
        return 1
    outputs = map_batch(lines, model=args.model, fail_custom_ids=args.fail_custom_id)
    if args.short:
        outputs = outputs[: len(outputs) // 2]
    text = "".join(json.dumps(o) + "\n" for o in outputs)
    Path(args.output_file).write_text(text, encoding="utf-8")
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
