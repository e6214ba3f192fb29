"""YAML parse errors in plain words: `file:line: invalid YAML: what is wrong there and what to do`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from personasim.errors import InputError

_TOKEN = re.compile(r"<[^>]*>")
_CANNOT_START = re.compile(r"found character '(.+)' that cannot start any token")


def load_yaml(text: str, path: str | Path | None, what: str = "invalid YAML", first_line: int = 1) -> Any:
    """`yaml.safe_load(text)`, raising a plain `InputError` (`first_line`: the file line of the text's first line)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_input_error(exc, path, text, what, first_line) from None


def yaml_input_error(
    exc: yaml.YAMLError, path: str | Path | None, text: str = "", what: str = "invalid YAML", first_line: int = 1
) -> InputError:
    """The InputError for a PyYAML error: the file line of the problem, the line's text, and plain advice."""
    mark = _culprit_mark(exc)
    if mark is None:
        return InputError(path, None, f"{what}: {plain_problem(exc, first_line)}")
    lines = text.split("\n")
    shown = lines[mark.line].strip() if 0 <= mark.line < len(lines) else ""
    quoted = f" at {_clip(shown)!r}" if shown else ""
    return InputError(path, first_line + mark.line, f"{what}{quoted}: {plain_problem(exc, first_line)}")


def _culprit_mark(exc: yaml.YAMLError) -> Any:
    """Where the mistake is: the problem's mark, or the context's where the parser only noticed later
    (an unclosed quote noticed at the end of the file, a line without ': ' noticed on the next one)."""
    problem = str(getattr(exc, "problem", "") or "")
    later = "end of stream" in problem or "could not find expected ':'" in problem
    context_mark = getattr(exc, "context_mark", None)
    return context_mark if later and context_mark is not None else getattr(exc, "problem_mark", None)


def plain_problem(exc: yaml.YAMLError, first_line: int = 1) -> str:
    """What a PyYAML error means, without parser jargon ("expected <block end>")."""
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    context_mark = getattr(exc, "context_mark", None)
    opened = f"line {first_line + context_mark.line}" if context_mark is not None else "an earlier line"
    if "expected <block end>" in problem:
        return _block_end(problem, context)
    if "mapping values are not allowed" in problem:
        return "a second ': ' on one line: put a value that contains ': ' in quotes (\"...\")"
    if match := _CANNOT_START.search(problem):
        char = match.group(1)
        if char == "\\t":
            return "a tab character: YAML indents with spaces only"
        return f"a value cannot start with {char!r}: put the value in quotes"
    if "quoted scalar" in context and "end of stream" in problem:
        return "the quote opened on this line is never closed: add the closing quote"
    if "unknown escape character" in problem:
        return "an unknown backslash escape in a double-quoted value: use single quotes, or write the backslash twice"
    if "expected ',' or ']'" in problem:
        return f"the '[' list opened at {opened} is not closed: add ']' at its end, with commas between items"
    if "expected ',' or '}'" in problem:
        return f"the '{{' mapping opened at {opened} is not closed: add '}}' at its end, with commas between items"
    if "could not find expected ':'" in problem:
        return (
            "this line is neither 'key: value' nor a '- ' list item: add ': ' after the key, or indent it to "
            "continue the line above"
        )
    if "undefined alias" in problem:
        return "a value that starts with '*' is read as a reference to an anchor: put the value in quotes"
    if "duplicate anchor" in context:
        return f"an anchor ('&name') defined twice (first at {opened}): rename one"
    if "unhashable key" in problem:
        return "a key that is a list or a mapping: keys are plain names"
    if "single document" in context:
        return "a second document (a '---' line): the file holds one YAML document; remove the '---'"
    return _fallback(problem)


def _block_end(problem: str, context: str) -> str:
    if "found '-'" in problem:
        return "a '- ' list item among 'key: value' lines: put the list under its key ('key:' on the line above)"
    if "block collection" in context:
        return "this line breaks the '- ' list above it: start it with '- ', or indent it like the keys it belongs to"
    return (
        "the indentation does not line up with the keys above: keys of one mapping start in the same column, "
        "and a key that has a value on its line cannot have keys under it"
    )


def _fallback(problem: str) -> str:
    detail = " ".join(_TOKEN.sub("", problem).split())
    advice = "not valid YAML here: check the indentation (spaces only), the quotes, and ': ' inside values"
    return f"{advice} ({detail})" if detail and "<" not in problem else advice


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
