"""Reusable typer options for commands that call a model, and their conversion to LLMSettings.

    from personasim.cli import llm_options as lo

    @app.command()
    @guarded
    def run(
        ...,
        config: lo.ConfigOpt = None, base_url: lo.BaseUrlOpt = None, model: lo.ModelOpt = None,
        mode: lo.ModeOpt = None, concurrency: lo.ConcurrencyOpt = None, temperature: lo.TemperatureOpt = None,
        seed: lo.SeedOpt = None, max_tokens: lo.MaxTokensOpt = None, recordings_dir: lo.RecordingsDirOpt = None,
    ) -> None:
        settings = lo.llm_settings(config=config, base_url=base_url, model=model, mode=mode,
                                   concurrency=concurrency, temperature=temperature, seed=seed,
                                   max_tokens=max_tokens, recordings_dir=recordings_dir)

Flags left at None fall back to the config file, then to the LLMSettings defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from personasim.llm.settings import MODES, LLMSettings, resolve_settings

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="LLM settings file (YAML); flags override it.", dir_okay=False)
]
BaseUrlOpt = Annotated[
    Optional[str], typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1.")
]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Model name sent to the server.")]
ModeOpt = Annotated[
    Optional[str],
    typer.Option("--mode", help=f"LLM call mode: {', '.join(MODES)} (replay needs no key and makes no call)."),
]
ConcurrencyOpt = Annotated[Optional[int], typer.Option("--concurrency", min=1, help="Most LLM calls in flight.")]
TemperatureOpt = Annotated[
    Optional[float], typer.Option("--temperature", min=0.0, max=2.0, help="Sampling temperature.")
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Sampling seed sent to the server.")]
MaxTokensOpt = Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Most tokens per answer.")]
RecordingsDirOpt = Annotated[
    Optional[Path], typer.Option("--recordings-dir", help="Directory of recorded calls (record/replay/auto modes).")
]


def llm_settings(
    *,
    config: Path | None = None,
    base_url: str | None = None,
    model: str | None = None,
    mode: str | None = None,
    concurrency: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    recordings_dir: Path | None = None,
) -> LLMSettings:
    """The settings a command's flags describe (raises InputError, which `guarded` prints)."""
    return resolve_settings(
        config,
        base_url=base_url,
        model=model,
        mode=mode,
        concurrency=concurrency,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        recordings_dir=recordings_dir,
    )
