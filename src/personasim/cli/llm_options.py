"""The model-role options every command that calls a model shares, added by one decorator.

    @app.command()
    @guarded
    @llm_options
    def run(..., llm: LLMFlags) -> None:
        config = resolve_run(Given(learner=llm.learner, judge=llm.judge, config_file=llm.config, ...), ...)

The learner's flags are `--model`, `--base-url`, ...; the judge's the same names after `--judge-`.
A flag left out is None, so the config file, the suite or the resumed run decides. `--no-model-check`
turns off, for the whole command, the check that the endpoint lists each model before its first call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from personasim.cli.common import default

MODES = ("live", "record", "replay", "auto")
STRUCTURED = "json_schema, json_object_schema, json_object or prompt"

# name -> (type, help, default); each becomes --name and, for the judge, --judge-name (default: the learner's).
# A flag left out leaves the value to a config file, the suite or the resumed run; the default is what applies
# when none of them sets it.
ROLE_OPTIONS: dict[str, tuple[Any, str, str]] = {
    "base_url": (str, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1", "api.openai.com"),
    "model": (str, "Model name sent to the server", "the config file's or suite's; needed without them"),
    "api_key_env": (str, "Environment variable that holds the API key", "OPENAI_API_KEY"),
    "temperature": (float, "Sampling temperature", "0"),
    "seed": (int, "Sampling seed sent to the server", "0"),
    "max_tokens": (int, "Most tokens per answer", "1024"),
    "structured_output": (str, f"How structured answers are asked for: {STRUCTURED}", "json_schema"),
    "concurrency": (int, "Most calls in flight", "4"),
}
RUN_OPTIONS: dict[str, tuple[Any, str, str]] = {
    "mode": (
        str,
        f"Call mode for both roles: {', '.join(MODES)} (replay needs no key and makes no call)",
        "live; replay for a suite",
    ),
    "recordings_dir": (Path, "Folder of recorded calls (record, replay and auto modes)", "the suite's recordings"),
}


@dataclass
class LLMFlags:
    """The model-role flags one command was given (None: not given)."""

    config: Path | None = None
    learner: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    model_check: bool = True


def _option(name: str, kind: Any, help_text: str, default_text: str, prefix: str = "") -> inspect.Parameter:
    flag = "--" + (prefix + name).replace("_", "-")
    help_text = f"The judge's: {help_text}" + default("the learner's") if prefix else help_text + default(default_text)
    annotation = Annotated[Optional[kind], typer.Option(flag, help=help_text, show_default=False)]
    return inspect.Parameter(prefix + name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _parameters() -> list[inspect.Parameter]:
    config = inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Optional[Path],
            typer.Option(
                "--config",
                dir_okay=False,
                help="LLM settings file (YAML: the learner's settings, and a `judge:` block); flags override it"
                + default("none"),
            ),
        ],
    )
    no_check = inspect.Parameter(
        "no_model_check",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--no-model-check",
                help="Skip asking the endpoint which models it lists (GET /models) before a model's first call "
                "(for servers that accept names they do not list)" + default("check, where the endpoint lists models"),
                show_default=False,
            ),
        ],
    )
    learner = [_option(n, k, h, d) for n, (k, h, d) in {**ROLE_OPTIONS, **RUN_OPTIONS}.items()]
    judge = [_option(n, k, h, d, prefix="judge_") for n, (k, h, d) in ROLE_OPTIONS.items()]
    return [config, *learner, *judge, no_check]


def llm_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the role options to `command`'s signature and hand them to it as `llm: LLMFlags`."""
    added = _parameters()
    names = [p.name for p in added]
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "llm"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from personasim.llm.clients import model_checks  # the LLM layer loads only when a command runs

        given = {name: kwargs.pop(name, None) for name in names}
        if given["mode"] is not None and given["mode"] not in MODES:
            raise typer.BadParameter(f"--mode is one of {', '.join(MODES)}, not {given['mode']!r}")
        check = not given.pop("no_model_check")
        flags = LLMFlags(
            config=given.pop("config"),
            learner={k: v for k, v in given.items() if not k.startswith("judge_") and v is not None},
            judge={k.removeprefix("judge_"): v for k, v in given.items() if k.startswith("judge_") and v is not None},
            model_check=check,
        )
        with model_checks(check):
            return command(*args, llm=flags, **kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    return wrapper
