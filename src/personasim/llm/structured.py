"""Structured outputs: schemas per backend capability, tolerant parsing, and the re-ask loop.

Backends differ in what they enforce (see docs/DESIGN notes): OpenAI honours a strict
`json_schema`; llama.cpp rejects `json_schema` with HTTP 500 but accepts
`{"type": "json_object", "schema": ...}` (structure enforced, numeric ranges not); others honour
only `json_object` or nothing. Whatever the backend claims, every answer is validated here with
pydantic, and an invalid one is re-asked with the error appended (instructor's loop, ~60 lines).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from personasim.llm.types import (
    ChatClient,
    ChatOptions,
    Completion,
    RefusalError,
    StructuredOutputError,
    TruncatedError,
)
from personasim.records.usage import Usage

logger = logging.getLogger("personasim.llm.structured")

StructuredMode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
STRUCTURED_MODES: tuple[str, ...] = ("json_schema", "json_object_schema", "json_object", "prompt")

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_MAX_ERROR_CHARS = 1500


class OutputInvalid(ValueError):
    """The text is not valid JSON for the response model; `message` is what the model is told."""


# --------------------------------------------------------------------------- schemas


def copy_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy safe to mutate: text-only messages get a new dict each (their values are immutable);
    any other message is deep-copied. Deep-copying a long history on every call cost ~1 ms."""
    return [
        dict(m) if all(v is None or isinstance(v, (str, int, float)) for v in m.values()) else copy.deepcopy(m)
        for m in messages
    ]


def response_schema(response_model: type[BaseModel]) -> dict[str, Any]:
    """The plain pydantic JSON schema (what the replay key and the instructions use)."""
    return json.loads(_plain_schema_text(response_model))  # a fresh copy, cheaper than deepcopy


def strict_schema(response_model: type[BaseModel]) -> dict[str, Any]:
    """OpenAI strict schema: every object closed (`additionalProperties: false`) with every
    property required; `$ref`s with siblings inlined; `default: null` dropped."""
    return copy.deepcopy(_strict_schema(response_model))


# Building a schema takes milliseconds and every call needs one: build each once per model class
# (callers get copies, so the cached ones never change).
@functools.lru_cache(maxsize=64)
def _plain_schema(response_model: type[BaseModel]) -> dict[str, Any]:
    return response_model.model_json_schema()


@functools.lru_cache(maxsize=64)
def _plain_schema_text(response_model: type[BaseModel]) -> str:
    return json.dumps(_plain_schema(response_model))


@functools.lru_cache(maxsize=64)
def _strict_schema(response_model: type[BaseModel]) -> dict[str, Any]:
    schema = copy.deepcopy(response_model.model_json_schema())
    return _make_strict(schema, root=schema)


def _make_strict(node: Any, root: dict[str, Any]) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node and len(node) > 1:
        merged = {**_resolve_ref(root, node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}}
        return _make_strict(copy.deepcopy(merged), root)
    out = {key: value for key, value in node.items() if key != "default" or value is not None}
    for key in ("properties", "$defs", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _make_strict(sub, root) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _make_strict(out[key], root)
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_make_strict(sub, root) for sub in out[key]]
    if out.get("type") == "object":
        out.setdefault("additionalProperties", False)
    if isinstance(out.get("properties"), dict):
        out["required"] = list(out["properties"])
    return out


def _resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"unsupported $ref {ref!r} in response schema")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def schema_name(response_model: type[BaseModel]) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", response_model.__name__)
    return name[:64] or "response"


def response_format(response_model: type[BaseModel], mode: StructuredMode) -> dict[str, Any] | None:
    """The `response_format` request field for a backend's capability (None for `prompt`)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": schema_name(response_model),
                "schema": _strict_schema(response_model),  # read-only: serialised, never changed
                "strict": True,
            },
        }
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": _plain_schema(response_model)}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def schema_instructions(response_model: type[BaseModel]) -> str:
    schema = json.dumps(response_schema(response_model), ensure_ascii=False)
    return (
        "Answer with a single JSON object, and nothing else (no prose, no code fence), "
        f"that matches this JSON schema:\n{schema}"
    )


def with_instructions(messages: list[dict[str, Any]], response_model: type[BaseModel]) -> list[dict[str, Any]]:
    """A deep copy of `messages` with the schema instructions appended to the last user message
    (the end of the prompt, so a shared prefix stays cacheable)."""
    out = copy_messages(messages)
    text = schema_instructions(response_model)
    if out and out[-1].get("role") == "user" and isinstance(out[-1].get("content"), str):
        out[-1]["content"] = f"{out[-1]['content']}\n\n{text}"
    else:
        out.append({"role": "user", "content": text})
    return out


def needs_instructions(mode: StructuredMode) -> bool:
    """`json_object` (OpenAI requires the word JSON in the prompt) and `prompt` carry the schema
    in the prompt; the schema-bearing modes send it in `response_format`."""
    return mode in ("json_object", "prompt")


# --------------------------------------------------------------------------- parsing


def strip_fences(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text.strip()


def parse_structured(text: str, response_model: type[BaseModel]) -> BaseModel:
    """Validate `text` as `response_model`: tolerates ```json fences, raw newlines inside
    strings (`strict=False`) and prose around one JSON object. Raises OutputInvalid."""
    body = strip_fences(text)
    try:
        data = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        data = _embedded_object(body, exc)
    try:
        return response_model.model_validate(data)
    except ValidationError as exc:
        raise OutputInvalid(_describe_validation(exc)) from exc


def try_parse(text: str, response_model: type[BaseModel] | None) -> BaseModel | None:
    if response_model is None:
        return None
    try:
        return parse_structured(text, response_model)
    except OutputInvalid:
        return None


def _embedded_object(body: str, error: json.JSONDecodeError) -> Any:
    start, end = body.find("{"), body.rfind("}")
    if 0 <= start < end and (start > 0 or end < len(body) - 1):
        try:
            return json.loads(body[start : end + 1], strict=False)
        except json.JSONDecodeError:
            pass
    raise OutputInvalid(f"the answer is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")


def _describe_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(root)"
        got = json.dumps(err.get("input"), ensure_ascii=False, default=str)[:120]
        lines.append(f"- {where}: {err['msg']} (got {got})")
    return "the JSON does not match the schema:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- re-ask loop


TRUNCATED_NOTE = (
    "the answer was cut off at the length limit before the JSON object was complete. Keep every field "
    "short (a sentence or two each) so that the whole object fits"
)


def check_refusal(completion: Completion) -> None:
    """A refusal cannot be fixed by a re-ask: raise at once."""
    if completion.refusal:
        raise RefusalError(completion.refusal)


def reask_messages(messages: list[dict[str, Any]], answer: str, error: str) -> list[dict[str, Any]]:
    feedback = error if len(error) <= _MAX_ERROR_CHARS else error[:_MAX_ERROR_CHARS] + " ..."
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": f"That answer could not be used: {feedback}\nReply again with only the corrected JSON object.",
        },
    ]


async def complete_structured(
    client: ChatClient,
    messages: list[dict[str, Any]],
    options: ChatOptions,
    response_model: type[BaseModel],
    max_reasks: int = 2,
) -> Completion:
    """Ask for `response_model`; on invalid JSON or a ValidationError re-ask (at most
    `max_reasks` times) with the error appended. The returned Completion's `parsed` is a
    validated instance, its `usage` and `attempts` the totals over all asks. An answer cut off at
    max_tokens is re-asked the same way, with a note to keep every field short. Raises
    StructuredOutputError (or TruncatedError, when the last ask was cut off) on exhaustion, and
    RefusalError at once."""
    conversation = copy_messages(messages)
    total, attempts = Usage(), 0
    last_error, last_text = "", ""
    for ask in range(max_reasks + 1):
        completion = await client.complete(conversation, options, response_model)
        total, attempts = total + completion.usage, attempts + completion.attempts
        check_refusal(completion)
        if completion.finish_reason == "length":  # cut off: re-asked like an invalid answer, within the budget
            last_error, last_text = TRUNCATED_NOTE, completion.text
            if ask == max_reasks:
                raise TruncatedError(options.max_tokens, total, completion.text)
            logger.info("structured answer cut off at max_tokens (ask %d/%d)", ask + 1, max_reasks + 1)
            conversation = reask_messages(conversation, completion.text, TRUNCATED_NOTE)
            continue
        try:
            parsed = completion.parsed  # clients parse the answer already; parse again only if they did not
            if not isinstance(parsed, response_model):
                parsed = parse_structured(completion.text, response_model)
        except OutputInvalid as exc:
            last_error, last_text = str(exc), completion.text
            logger.info("structured answer invalid (ask %d/%d): %s", ask + 1, max_reasks + 1, last_error)
            conversation = reask_messages(conversation, completion.text, last_error)
            continue
        return completion.model_copy(update={"parsed": parsed, "usage": total, "attempts": attempts, "reasks": ask})
    raise StructuredOutputError(
        f"no valid {response_model.__name__} from {options.model} after {max_reasks + 1} asks; "
        f"last error: {last_error}",
        attempts=max_reasks + 1,
        usage=total,
        last_error=last_error,
        last_text=last_text,
    )
