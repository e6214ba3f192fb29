"""The chat-completions wire format: the request body personasim sends and the Completion read from
an answer body. Shared by every transport (a live server, a batch file's lines)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from personasim.llm.structured import (
    StructuredMode,
    copy_messages,
    needs_instructions,
    response_format,
    try_parse,
    with_instructions,
)
from personasim.llm.types import ChatOptions, Completion, LLMError
from personasim.records.usage import Usage


def chat_request(
    messages: list[dict[str, Any]],
    options: ChatOptions,
    response_model: type[BaseModel] | None,
    structured_output: StructuredMode = "json_schema",
    max_tokens_param: str = "max_tokens",
) -> dict[str, Any]:
    """The JSON body of one `POST /v1/chat/completions` (plain JSON: no SDK transform needed)."""
    request: dict[str, Any] = {
        "model": options.model,
        "messages": copy_messages(messages),
        "temperature": options.temperature,
        max_tokens_param: options.max_tokens,
    }
    if options.seed is not None:
        request["seed"] = options.seed
    if response_model is not None:
        if needs_instructions(structured_output):
            request["messages"] = with_instructions(messages, response_model)
        fmt = response_format(response_model, structured_output)
        if fmt is not None:
            request["response_format"] = fmt
    return request


def parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=raw.get("prompt_tokens") or 0,
        completion_tokens=raw.get("completion_tokens") or 0,
        cached_tokens=cached or 0,
    )


def parse_completion(
    body: dict[str, Any], response_model: type[BaseModel] | None, latency: float, attempts: int
) -> Completion:
    """A chat-completion answer body as a Completion (`parsed` set when it validates)."""
    choices = body.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise LLMError("the server answered with no choices; check that base_url points at a chat-completions API")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise LLMError(
            f"the server's message content is {type(content).__name__}, not text; is this a chat-completions API?"
        )
    text = content or ""
    return Completion(
        text=text,
        parsed=try_parse(text, response_model),
        usage=parse_usage(body.get("usage")),
        finish_reason=choice.get("finish_reason"),
        model=body.get("model") or "",
        system_fingerprint=body.get("system_fingerprint"),
        latency_s=latency,
        attempts=attempts,
        refusal=message.get("refusal"),
    )
