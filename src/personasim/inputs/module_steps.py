"""Parse the body of a module file (everything after the front matter) into `Step`s.

- `## Title` starts a step; its id is the slug of the title unless the metadata line gives `id:`.
- `### Activity` and `### Reflection questions` start those parts of the step; any other heading
  belongs to the part it is in. Reflection questions are a bullet list.
- One metadata line per step: `<!-- minutes: 6; serves: Build relationships (Stage 3), LO2 -->`.
- Lines inside fenced code blocks (``` or ~~~) are never headings or metadata.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from personasim.errors import InputError
from personasim.inputs.module import Step

STEP_RE = re.compile(r"^##(?!#)(?:\s+(.*?))?\s*$")
TITLE_RE = re.compile(r"^#(?!#)(?:\s+.*)?$")
SECTION_RE = re.compile(r"^###\s+(activity|reflection questions)\s*:?\s*$", re.IGNORECASE)
COMMENT_RE = re.compile(r"^\s*<!--(.*)-->\s*$")
META_START_RE = re.compile(r"^\s*[A-Za-z_][\w-]*\s*:")
FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
BULLET_RE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
META_KEYS = ("id", "minutes", "serves")


@dataclass
class StepContext:
    path: str
    known_serves: set[str] = field(default_factory=set)


@dataclass
class _Draft:
    title: str
    line: int
    content: list[str] = field(default_factory=list)
    activity: list[str] | None = None
    activity_line: int = 0
    reflection: list[tuple[int, str]] | None = None
    reflection_line: int = 0
    section: str = "content"
    meta: dict[str, tuple[int, str]] = field(default_factory=dict)
    meta_line: int = 0


def slugify(title: str) -> str:
    """`"L.O.T.U.S. steps & questions"` -> `"lotus-steps-questions"`."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"(?<=[A-Za-z])\.(?=[A-Za-z])", "", text)
    text = re.sub(r"['\u2019]", "", text)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_steps(lines: list[str], start: int, context: StepContext) -> list[Step]:
    """Steps from `lines[start:]` (0-based index; reported line numbers are 1-based file lines)."""
    drafts: list[_Draft] = []
    fence: str | None = None
    for index in range(start, len(lines)):
        line, number = lines[index], index + 1
        marker = FENCE_RE.match(line)
        if fence is not None or marker:
            if marker and fence is None:
                fence = marker.group(1)[0]
            elif marker and marker.group(1)[0] == fence:
                fence = None
            _add_text(_require_step(drafts, number, context), line, number, context)
            continue
        _read_line(drafts, line, number, context)
    if not drafts:
        message = "no steps: add at least one '## Step title' heading after the front matter"
        raise InputError(context.path, start, message)
    return _build_all(drafts, context)


def _read_line(drafts: list[_Draft], line: str, number: int, context: StepContext) -> None:
    step_match = STEP_RE.match(line)
    if step_match:
        title = (step_match.group(1) or "").strip().rstrip("#").strip()
        if not title:
            raise InputError(context.path, number, "empty step heading: write a title after '## '")
        drafts.append(_Draft(title=title, line=number))
        return
    if not drafts:
        _check_preamble(line, number, context)
        return
    draft = drafts[-1]
    if TITLE_RE.match(line):
        raise InputError(context.path, number, "'# ' heading inside a step: use '### ' or deeper for sub-headings")
    section = SECTION_RE.match(line)
    if section:
        _open_section(draft, section.group(1).lower(), number, context)
        return
    comment = COMMENT_RE.match(line)
    if comment and META_START_RE.match(comment.group(1)):
        _read_meta(draft, comment.group(1), number, context)
        return
    _add_text(draft, line, number, context)


def _check_preamble(line: str, number: int, context: StepContext) -> None:
    """Before the first step only blank lines, comments and one '# Title' line may appear."""
    comment = COMMENT_RE.match(line)
    if comment and META_START_RE.match(comment.group(1)):
        raise InputError(context.path, number, "step metadata line before the first '## ' step heading")
    if not line.strip() or TITLE_RE.match(line) or comment:
        return
    raise InputError(
        context.path, number, "text before the first '## ' step heading belongs to no step: move it into a step"
    )


def _require_step(drafts: list[_Draft], number: int, context: StepContext) -> _Draft:
    if not drafts:
        raise InputError(context.path, number, "code block before the first '## ' step heading: move it into a step")
    return drafts[-1]


def _open_section(draft: _Draft, name: str, number: int, context: StepContext) -> None:
    if name == "activity":
        if draft.activity is not None:
            raise InputError(context.path, number, f"second '### Activity' in step {draft.title!r}")
        draft.activity, draft.activity_line, draft.section = [], number, "activity"
        return
    if draft.reflection is not None:
        raise InputError(context.path, number, f"second '### Reflection questions' in step {draft.title!r}")
    draft.reflection, draft.reflection_line, draft.section = [], number, "reflection"


def _add_text(draft: _Draft, line: str, number: int, context: StepContext) -> None:
    if draft.section == "activity":
        assert draft.activity is not None
        draft.activity.append(line)
    elif draft.section == "reflection":
        assert draft.reflection is not None
        draft.reflection.append((number, line))
    else:
        draft.content.append(line)


def _read_meta(draft: _Draft, body: str, number: int, context: StepContext) -> None:
    if draft.meta_line:
        raise InputError(
            context.path, number, f"second metadata line in step {draft.title!r} (first at line {draft.meta_line})"
        )
    draft.meta_line = number
    for part in body.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition(":")
        key = key.strip().lower()
        if not sep or key not in META_KEYS:
            raise InputError(
                context.path, number, f"unknown step metadata {part.strip()!r} (known keys: {', '.join(META_KEYS)})"
            )
        if key in draft.meta:
            raise InputError(context.path, number, f"step metadata key {key!r} is given twice")
        draft.meta[key] = (number, value.strip())


def _build_all(drafts: list[_Draft], context: StepContext) -> list[Step]:
    steps: list[Step] = []
    first_line: dict[str, int] = {}
    for draft in drafts:
        step = _build(draft, context)
        if step.id in first_line:
            raise InputError(
                context.path,
                draft.line,
                f"duplicate step id {step.id!r} (first used at line {first_line[step.id]}): "
                "rename the heading or give the step its own 'id:' in its metadata line",
            )
        first_line[step.id] = draft.line
        steps.append(step)
    return steps


def _build(draft: _Draft, context: StepContext) -> Step:
    step_id = _step_id(draft, context)
    content = "\n".join(draft.content).strip()
    if not content:
        raise InputError(context.path, draft.line, f"step {step_id!r} has no content: write text under the heading")
    return Step(
        id=step_id,
        title=draft.title,
        content=content,
        activity=_activity(draft, context),
        reflection_questions=_questions(draft, context),
        minutes=_minutes(draft, context),
        serves=_serves(draft, context),
        line=draft.line,
    )


def _step_id(draft: _Draft, context: StepContext) -> str:
    if "id" in draft.meta:
        number, value = draft.meta["id"]
        if not ID_RE.match(value):
            raise InputError(context.path, number, f"step id {value!r}: use letters, digits, '.', '_' or '-' only")
        return value
    slug = slugify(draft.title)
    if not slug:
        raise InputError(
            context.path, draft.line, f"cannot make a step id from {draft.title!r}: add 'id:' to its metadata line"
        )
    return slug


def _activity(draft: _Draft, context: StepContext) -> str:
    if draft.activity is None:
        return ""
    text = "\n".join(draft.activity).strip()
    if not text:
        raise InputError(context.path, draft.activity_line, f"empty '### Activity' in step {draft.title!r}")
    return text


def _questions(draft: _Draft, context: StepContext) -> list[str]:
    if draft.reflection is None:
        return []
    questions: list[str] = []
    for number, line in draft.reflection:
        if not line.strip():
            continue
        bullet = BULLET_RE.match(line)
        if bullet:
            questions.append(bullet.group(1))
        elif questions and line[:1].isspace():
            questions[-1] = f"{questions[-1]} {line.strip()}"
        else:
            raise InputError(context.path, number, "reflection questions must be a bullet list ('- question')")
    if not questions:
        raise InputError(context.path, draft.reflection_line, "no questions under '### Reflection questions'")
    return questions


def _minutes(draft: _Draft, context: StepContext) -> float | None:
    if "minutes" not in draft.meta:
        return None
    number, value = draft.meta["minutes"]
    try:
        minutes = float(value)
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes <= 0:
        raise InputError(context.path, number, f"minutes must be a positive number, got {value!r}")
    return minutes


def _serves(draft: _Draft, context: StepContext) -> list[str]:
    if "serves" not in draft.meta:
        return []
    number, value = draft.meta["serves"]
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if item not in context.known_serves:
            known = ", ".join(sorted(context.known_serves)) or "none declared"
            raise InputError(
                context.path,
                number,
                f"serves {item!r} is neither a target competency nor a learning-outcome label (known: {known})",
            )
    return items


WORDS_PER_MINUTE = 130
ACTIVITY_TIME_RE = re.compile(r"^\W*time\W*\s*(\d+(?:\.\d+)?)\s*min", re.IGNORECASE | re.MULTILINE)


def count_words(text: str) -> int:
    """Whitespace-separated tokens that contain a letter or digit (table pipes and bullets do not count)."""
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


def activity_minutes(activity: str) -> float:
    """The time an activity states on its own line, `Time: 5 minutes`; 0 when it states none."""
    match = ACTIVITY_TIME_RE.search(activity)
    return float(match.group(1)) if match else 0.0


def estimate_minutes(step: Step) -> int:
    """The documented rule (modules/README.md): content words at 130 a minute, plus the activity's
    stated time, plus 1 minute per reflection question, rounded up to a whole minute (at least 1)."""
    raw = count_words(step.content) / WORDS_PER_MINUTE + activity_minutes(step.activity)
    return max(1, math.ceil(raw + len(step.reflection_questions) - 1e-9))
