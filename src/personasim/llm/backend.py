"""Where the model runs: any OpenAI-compatible endpoint, or a local llama.cpp server started for a run.

`open_backend("local:qwen2.5-coder-1.5b", settings)` pulls the model if needed, starts the server on
loopback, waits until it answers, yields settings pointing at it (llama.cpp's structured-output
flavour, the model's registry name as the model) and stops the server afterwards, also on errors.
In replay mode nothing is started: recordings answer, and the settings only need the model name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from personasim.errors import InputError
from personasim.llm.local import get_model, model_path
from personasim.llm.settings import LLMSettings

# A CPU model reads a long judge prompt at tens of tokens a second: one call can take minutes, and
# a client that gives up at the hosted-API default (120 s) only makes the server start over.
LOCAL_TIMEOUTS = {"timeout_s": 1800.0, "total_timeout_s": 3600.0}

BACKENDS_HELP = "'openai' (any OpenAI-compatible endpoint: --base-url, key from an env var) or 'local[:MODEL]'"


@dataclass
class Backend:
    settings: LLMSettings
    sequential: bool = False
    description: dict[str, Any] = field(default_factory=dict)


def parse_backend(spec: str | None) -> tuple[str, str | None]:
    """'openai' -> ('openai', None); 'local' -> ('local', None); 'local:smollm2-135m' -> ('local', 'smollm2-135m')."""
    kind, _, name = (spec or "openai").partition(":")
    if kind not in ("openai", "local") or (kind == "openai" and name):
        raise InputError(None, None, f"unknown backend {spec!r}: use {BACKENDS_HELP}")
    return kind, name or None


@contextmanager
def open_backend(spec: str | None, settings: LLMSettings, *, n_ctx: int | None = None) -> Iterator[Backend]:
    kind, name = parse_backend(spec)
    if kind == "openai":
        yield Backend(settings, description={"backend": "openai", "base_url": settings.base_url})
        return
    model = get_model(name)
    unset_timeouts = {k: v for k, v in LOCAL_TIMEOUTS.items() if k not in settings.model_fields_set}
    local_settings = settings.with_overrides(model=model.name, structured_output="json_object_schema", **unset_timeouts)
    description = {"backend": f"local:{model.name}", "model_file": model.filename, "model_sha256": model.sha256}
    if settings.mode == "replay":  # recordings answer; no server, no model file needed
        yield Backend(local_settings, sequential=True, description=description)
        return
    from personasim.llm.local_server import LocalServer  # the llama.cpp process code, only when one starts

    with LocalServer.for_model(model.name, n_ctx=n_ctx) as server:
        description |= {"model_path": str(model_path(model)), "n_ctx": server.n_ctx, "startup_s": server.startup_s}
        yield Backend(local_settings.with_overrides(base_url=server.base_url), sequential=True, description=description)
