"""Read learning modules from hand-written markdown files (format: `modules/README.md`).

One file holds one module version: YAML front matter, then one `## ` heading per step. Step bodies
are parsed in `module_steps.py`; this file reads files and front matter and finds modules by ref.
Every problem is an `InputError` naming the file and line, so a designer can jump straight to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from personasim.errors import InputError
from personasim.hashing import content_hash
from personasim.inputs.module import LearningModule, Step
from personasim.inputs.module_steps import StepContext, estimate_minutes, parse_steps
from personasim.yaml_errors import yaml_input_error

FRONT_MATTER_KEYS = (
    "id",
    "title",
    "version",
    "audience",
    "stage",
    "target_competencies",
    "learning_outcomes",
    "estimated_minutes",
    "delivery_format",
    "source",
)
REQUIRED_KEYS = ("id", "title", "version")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LO_LABEL_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.-]*)\s*:")
_FENCE = "---"
# Stands in for the steps while the front matter alone is validated against LearningModule.
_PROBE_STEP = Step(id="probe", title="probe", content="probe")


def load_module(path: str | Path) -> LearningModule:
    """Parse and validate one module file; raise `InputError(path, line, message)` on the first problem."""
    path_str = str(path)
    text = _read_text(Path(path))
    lines = text.split("\n")
    fm_lines, body_start = _split_front_matter(path_str, lines)
    data, key_lines = _parse_front_matter(path_str, fm_lines)
    header = _validate_front_matter(path_str, data, key_lines)
    context = StepContext(path=path_str, known_serves=_known_serves(header))
    steps = parse_steps(lines, body_start, context)
    return header.model_copy(update={"steps": steps, "path": path_str, "content_hash": content_hash(text)})


def module_files(paths: Iterable[str | Path]) -> list[Path]:
    """Module files named by `paths`: files as given, folders searched recursively for `*.md`.

    README.md files and hidden folders are skipped inside folders; a file named explicitly is always read.
    The same file named twice is listed once.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(path, None, "no such file or folder")
        candidates = [path] if path.is_file() else _markdown_under(path)
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def check_modules(paths: Iterable[str | Path]) -> tuple[list[LearningModule], list[InputError]]:
    """Load every module under `paths`, collecting one error per broken file instead of stopping.

    Two files declaring the same `id@version` is an error on the second file.
    """
    modules: list[LearningModule] = []
    errors: list[InputError] = []
    first_path: dict[str, str] = {}
    for path in module_files(paths):
        try:
            module = load_module(path)
        except InputError as exc:
            errors.append(exc)
            continue
        if module.ref in first_path:
            errors.append(InputError(path, 1, f"module {module.ref} is also defined in {first_path[module.ref]}"))
            continue
        first_path[module.ref] = module.path
        modules.append(module)
    return modules, errors


def load_modules(paths: Iterable[str | Path]) -> list[LearningModule]:
    """Load every module under `paths` (files or folders); raise the first error found."""
    modules, errors = check_modules(paths)
    if errors:
        raise errors[0]
    return modules


def module_warnings(module: LearningModule) -> list[str]:
    """`file:line: message` for what loads but misleads: steps without minutes, and an
    `estimated_minutes` other than the sum of the steps' minutes (which is what runs use)."""
    warnings = [
        str(InputError(module.path, step.line, f"step {step.id!r} has no minutes: add 'minutes: {n}' to its "
                       f"metadata line, e.g. '<!-- minutes: {n} -->' ({n} by the reading rule of modules/README.md)"))
        for step in module.steps
        if step.minutes is None and (n := estimate_minutes(step))
    ]  # fmt: skip
    given = [step.minutes for step in module.steps if step.minutes is not None]
    if module.estimated_minutes is not None and given and abs(sum(given) - module.estimated_minutes) > 1e-9:
        warnings.append(
            str(InputError(module.path, _front_matter_line(module.path, "estimated_minutes"),
                           f"estimated_minutes is {module.estimated_minutes:g} but the steps' minutes add up to "
                           f"{sum(given):g}: make them agree (runs use the steps' sum)"))
        )  # fmt: skip
    return warnings


def _front_matter_line(path: str, key: str) -> int | None:
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except OSError:
        return None
    return next((number for number, line in enumerate(lines, start=1) if line.startswith(f"{key}:")), None)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`"lotus@v2"` -> `("lotus", "v2")`; `"lotus"` -> `("lotus", None)` (meaning: the latest version)."""
    module_id, sep, version = ref.strip().partition("@")
    if not module_id or (sep and not version) or "@" in version:
        raise InputError(None, None, f"bad module reference {ref!r}: write ID or ID@VERSION, e.g. lotus@v2")
    return module_id, (version or None)


def version_key(version: str) -> tuple[Any, ...]:
    """Natural sort key, so v2 < v10 and 1.9 < 1.10."""
    parts = re.split(r"(\d+)", version)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def find_module(paths: Sequence[str | Path], ref: str) -> LearningModule:
    """The module named `ref` (`id@version`, or `id` for its latest version) among the modules under `paths`."""
    module_id, version = parse_ref(ref)
    modules = load_modules(paths)
    same_id = [m for m in modules if m.id == module_id]
    if version is not None:
        same_id = [m for m in same_id if m.version == version]
    if not same_id:
        available = ", ".join(sorted(m.ref for m in modules)) or "none"
        where = ", ".join(str(p) for p in paths)
        raise InputError(None, None, f"no module {ref!r} in {where} (available: {available})")
    return max(same_id, key=lambda m: version_key(m.version))


def _markdown_under(folder: Path) -> list[Path]:
    files = []
    for candidate in sorted(folder.rglob("*.md")):
        relative = candidate.relative_to(folder)
        if candidate.name.lower() == "readme.md" or any(part.startswith(".") for part in relative.parts):
            continue
        if candidate.is_file():
            files.append(candidate)
    return files


def _read_text(path: Path) -> str:
    """File text with line endings normalised to `\\n` (so CRLF and LF copies hash the same)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, line, "file is not valid UTF-8 text") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_front_matter(path: str, lines: list[str]) -> tuple[list[str], int]:
    """Front-matter lines (file lines 2..n) and the index of the first body line."""
    if not lines or lines[0].rstrip() != _FENCE:
        raise InputError(path, 1, "missing YAML front matter: the file must start with a '---' line")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == _FENCE:
            return lines[1:index], index + 1
    raise InputError(path, 1, "front matter is not closed: add a '---' line after the last key")


def _parse_front_matter(path: str, fm_lines: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """YAML mapping and the file line of each key; duplicate and unknown keys are errors."""
    fm_text = "\n".join(fm_lines)
    try:
        node = yaml.compose(fm_text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(fm_text)
    except yaml.YAMLError as exc:
        raise yaml_input_error(exc, path, fm_text, "invalid YAML in front matter", first_line=2) from exc
    if data is None:
        raise InputError(path, 1, "front matter is empty: it needs at least id, title and version")
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise InputError(path, 2, "front matter must be 'key: value' lines (a YAML mapping)")
    key_lines = _key_lines(path, node)
    for key, line in key_lines.items():
        if key not in FRONT_MATTER_KEYS:
            known = ", ".join(FRONT_MATTER_KEYS)
            raise InputError(path, line, f"unknown front-matter key {key!r} (known keys: {known})")
    missing = [key for key in REQUIRED_KEYS if data.get(key) in (None, "")]
    if missing:
        raise InputError(path, 1, f"front matter is missing required key(s): {', '.join(missing)}")
    return data, key_lines


def _key_lines(path: str, node: yaml.MappingNode) -> dict[str, int]:
    key_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        key = str(key_node.value)
        line = 2 + key_node.start_mark.line
        if key in key_lines:
            raise InputError(path, line, f"front-matter key {key!r} is given twice (first at line {key_lines[key]})")
        key_lines[key] = line
    return key_lines


def _validate_front_matter(path: str, data: dict[str, Any], key_lines: dict[str, int]) -> LearningModule:
    try:
        header = LearningModule.model_validate({**data, "steps": [_PROBE_STEP]})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        key = str(loc[0])
        where = key + "".join(f"[{part}]" for part in loc[1:])
        raise InputError(path, key_lines.get(key, 1), f"front matter {where}: {error['msg']}") from exc
    for key in ("id", "version"):
        value = getattr(header, key)
        if not NAME_RE.match(value):
            raise InputError(
                path, key_lines[key], f"front matter {key} {value!r}: use letters, digits, '.', '_' or '-' only"
            )
    return header


def _known_serves(header: LearningModule) -> set[str]:
    """What a step may say it serves: a target competency or a learning-outcome label (`LO2` of `LO2: ...`)."""
    known = set(header.target_competencies)
    for outcome in header.learning_outcomes:
        match = LO_LABEL_RE.match(outcome)
        if match:
            known.add(match.group(1))
    return known
