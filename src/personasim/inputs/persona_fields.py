"""Persona sections (as `Entry` trees) -> `Persona` fields.

Each known section, subsection and `**Key:**` has a reader in a table below; names are compared
with `norm_name`, so case, curly quotes and -ize/-ise do not matter, and a part may be written as a
`####` subsection or as a `**Key:**` bullet/paragraph alike. Anything without a reader is kept (in
the part's `other` dict where the model has one, else in `Persona.extra`) and reported as a warning.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from personasim.inputs.persona import (
    CompetencyDevelopmentProfile,
    ContextualConstraints,
    CriticalConsciousness,
    DevelopmentalTrajectory,
    DiversityProfile,
    EvidenceGatheringCapacity,
    ExperienceOfPower,
    HoursPerWeek,
    LearningReadiness,
    PeerLearningContext,
    PriorKnowledge,
    ProtectedCharacteristics,
)
from personasim.inputs.persona_markdown import Entry, norm_name, render, trimmed_text


class ParseWarning(NamedTuple):
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Context:
    """Where warnings go, and the persona's `extra` being filled."""

    path: str
    warnings: list[ParseWarning]
    extra: dict[str, object] = field(default_factory=dict)

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(ParseWarning(self.path, line, message))

    def keep_extra(self, where: str, entry: Entry, why: str, hint: str = "") -> None:
        label = entry.key or "text"
        name = _unique(self.extra, f"{where} / {label}" if where else label)
        self.extra[name] = entry_value(entry)
        self.warn(entry.line, f"{why} {_describe(entry)} in {where or 'the persona'}: kept in extra[{name!r}]{hint}")


Reader = Callable[[Entry, Context, str], Any]


@dataclass(frozen=True)
class Field:
    name: str
    read: Reader
    repeatable: bool = False


# -- plain values -----------------------------------------------------------------------------


def text_of(entry: Entry, ctx: Context | None = None, where: str = "") -> str:
    """Headings keep their body as written; `**Key:** value` entries give the value (and any sub-list)."""
    if entry.kind == "heading":
        return trimmed_text(entry.raw)
    lines = [entry.text] if entry.text else []
    lines += ["- " + render(child) for child in entry.children]
    return "\n".join(lines)


def items_of(entry: Entry, ctx: Context | None = None, where: str = "") -> list[str]:
    """A list: the entry's own text (if any) then each child, nested children kept in the item."""
    items = [entry.text] if entry.text and entry.kind != "heading" else []
    return items + [render(child) for child in entry.children if render(child)]


def entry_value(entry: Entry) -> object:
    """A JSON-able value for an entry kept in `extra`, losing none of its text."""
    keys = [child.key for child in entry.children]
    if not entry.children:
        return text_of(entry)
    if all(keys) and len(set(keys)) == len(keys) and not entry.text:
        return {child.key: entry_value(child) for child in entry.children if child.key}
    if entry.kind == "heading" and not all(c.kind == "bullet" and not c.key for c in entry.children):
        return text_of(entry)
    return items_of(entry)


def _other_value(entry: Entry, ctx: Context, where: str) -> str | list[str]:
    return items_of(entry) if entry.children and entry.kind != "heading" and not entry.text else text_of(entry)


def _unique(mapping: dict[str, Any], name: str) -> str:
    candidate, n = name, 1
    while candidate in mapping:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def _describe(entry: Entry) -> str:
    if entry.kind == "heading":
        return f"section {entry.key!r}"
    if entry.key:
        return f"key {entry.key!r}"
    preview = entry.text if len(entry.text) <= 40 else entry.text[:37] + "..."
    return f"text {preview!r}"


# -- groups: a section whose parts each map to a field ------------------------------------------


def read_group(entry: Entry, ctx: Context, where: str, fields: dict[str, Field], other: Reader | None) -> dict:
    """Field values for the parts of `entry`; unknown keyed parts go to `other` (if given) or extra."""
    values: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for part in entry.children:
        spec = fields.get(norm_name(part.key)) if part.key else None
        part_where = f"{where} / {part.key}" if where else str(part.key)
        hint = did_you_mean(part.key, fields) if spec is None and part.key else ""
        if spec is None and part.key and other is not None:
            name = _unique(others, part.key)
            others[name] = other(part, ctx, part_where)
            ctx.warn(part.line, f"unknown {_describe(part)} in {where}: kept in other[{name!r}]{hint}")
        elif spec is None:
            ctx.keep_extra(where, part, "unknown" if part.key else "loose", hint)
        elif spec.repeatable:
            values.setdefault(spec.name, []).append(spec.read(part, ctx, part_where))
        elif spec.name in values:
            ctx.keep_extra(where, part, "duplicate")
        else:
            values[spec.name] = spec.read(part, ctx, part_where)
    if others:
        values["other"] = others
    return values


_SMALL_WORDS = {"of", "to", "and", "or", "the", "a", "an", "in", "for"}


def did_you_mean(name: str, fields: dict[str, Field]) -> str:
    """`; did you mean 'Learning Readiness'?` when `name` is a near-miss of a known section or key."""
    close = difflib.get_close_matches(norm_name(name), list(fields), n=1, cutoff=0.8)
    return f"; did you mean {display_name(close[0])!r}?" if close else ""


def display_name(normalised: str) -> str:
    """`experience of power` -> `Experience of Power` (how the seed document writes its headings)."""
    words = normalised.split()
    return " ".join(w if i and w in _SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words))


def group(model: type, fields: dict[str, Field], other: Reader | None = None) -> Reader:
    def read(entry: Entry, ctx: Context, where: str) -> Any:
        return model(**read_group(entry, ctx, where, fields, other))

    return read


def free_dict(entry: Entry, ctx: Context, where: str) -> dict[str, str]:
    """`**Key:** value` parts kept by their written key (Positionality, Availability, ...)."""
    values: dict[str, str] = {}
    for part in entry.children:
        if not part.key:
            ctx.keep_extra(where, part, "loose")
            continue
        name = _unique(values, part.key)
        if name != part.key:
            ctx.warn(part.line, f"duplicate key {part.key!r} in {where}: kept as {name!r}")
        values[name] = text_of(part)
    return values


def _fields(aliases: dict[str, str] | None = None, **readers: Reader | tuple[Reader, bool]) -> dict[str, Field]:
    """Field table keyed by normalised document name. Keywords are model field names (and, with
    underscores as spaces, the document names); `aliases` maps other document names to fields."""
    table = {}
    for name, reader in readers.items():
        read, repeatable = reader if isinstance(reader, tuple) else (reader, False)
        table[norm_name(name)] = Field(name, read, repeatable)
    for document_name, field_name in (aliases or {}).items():
        table[norm_name(document_name)] = table[norm_name(field_name)]
    return table


# -- special readers ---------------------------------------------------------------------------

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_NUM = r"([0-9]+(?:\.[0-9]+)?|" + "|".join(_NUMBER_WORDS) + ")"
_UNIT = r"(hours?|hrs?|h|minutes?|mins?)\b"
_RANGE = re.compile(rf"\b{_NUM}\s*(?:-|–|—|to)\s*{_NUM}\s*{_UNIT}", re.IGNORECASE)
_SINGLE = re.compile(rf"(\bup\s+to\s+)?\b{_NUM}\s*{_UNIT}", re.IGNORECASE)
_NOT_WEEKLY = re.compile(r"\b(days?|daily|months?|monthly|fortnight(?:ly)?|years?|yearly|annually)\b", re.IGNORECASE)
_WEEKLY = re.compile(r"\b(week|weeks|weekly|wk|pw)\b", re.IGNORECASE)


def _number(word: str) -> float:
    return float(_NUMBER_WORDS.get(word.lower(), word))


def parse_hours(text: str) -> HoursPerWeek | None:
    """Hours per week stated in a `Time Available` text: "5-6 hours weekly" -> 5..6, "3 hours" -> 3..3.

    None when it states no hours, or states them per day/month (not weekly) only.
    """
    if _NOT_WEEKLY.search(text) and not _WEEKLY.search(text):
        return None
    if match := _RANGE.search(text):
        scale = _unit_scale(match[3])
        low, high = sorted((_number(match[1]) * scale, _number(match[2]) * scale))
        return HoursPerWeek(min=low, max=high)
    if match := _SINGLE.search(text):
        hours = _number(match[2]) * _unit_scale(match[3])
        return HoursPerWeek(min=0 if match[1] else hours, max=hours)
    return None


def _unit_scale(unit: str) -> float:
    return 1 / 60 if unit.lower().startswith("m") else 1.0


def split_items(text: str) -> list[str]:
    """Split a prose list on commas, semicolons and sentence ends, but not inside brackets."""
    items, current, depth = [], [], 0
    for index, char in enumerate(text):
        depth = depth + 1 if char in "([{" else max(0, depth - 1) if char in ")]}" else depth
        if depth == 0 and (char in ",;\n" or (char == "." and _ends_sentence(text, index))):
            items.append("".join(current + ([char] if char == "." else [])))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    cleaned = [_clean_item(item) for item in items]
    cleaned = [item for item in cleaned if item]
    if len(cleaned) > 1:
        cleaned[-1] = re.sub(r"^(?:and|or)\s+", "", cleaned[-1])
    return cleaned


def _ends_sentence(text: str, index: int) -> bool:
    rest = text[index + 1 :]
    return not rest.strip() or (rest[:1].isspace() and rest.lstrip()[:1].isupper())


def _clean_item(item: str) -> str:
    item = item.strip()
    return item if item.lower().endswith("etc.") else item.removesuffix(".").strip()


def _read_prior(entry: Entry, ctx: Context, where: str) -> PriorKnowledge:
    values = read_group(entry, ctx, where, _PRIOR, other=None)
    return PriorKnowledge(
        understands=split_items(values.get("understands_text", "")),
        gaps=split_items(values.get("gaps_text", "")),
        **values,
    )


def _read_constraints(entry: Entry, ctx: Context, where: str) -> ContextualConstraints:
    values = read_group(entry, ctx, where, _CONSTRAINTS, other=_other_value)
    time_text = values.get("time_available", "")
    hours = parse_hours(time_text)
    if time_text and hours is None:
        line = next((c.line for c in entry.children if c.key and norm_name(c.key) == "time available"), entry.line)
        ctx.warn(line, f"no hours per week in Time Available {time_text!r}: write e.g. '3-4 hours weekly'")
    return ContextualConstraints(hours_per_week=hours, **values)


# -- the tables ----------------------------------------------------------------------------------

_PROTECTED = _fields(identity=(text_of, True), relevant_context=text_of)
_EXPERIENCE_OF_POWER = _fields(
    minoritised_identities=text_of,
    experienced_barriers=items_of,
    experienced_discrimination=items_of,
    power_position=text_of,
)
_CRITICAL = _fields(
    awareness_of_structural_inequality=text_of,
    experience_challenging_power=text_of,
    recognition_of_privilege=text_of,
    commitment_to_justice=text_of,
)
_DIVERSITY = _fields(
    protected_characteristics=group(ProtectedCharacteristics, _PROTECTED, other=text_of),
    positionality=free_dict,
    experience_of_power=group(ExperienceOfPower, _EXPERIENCE_OF_POWER, other=_other_value),
    critical_consciousness=group(CriticalConsciousness, _CRITICAL, other=_other_value),
)
_READINESS = _fields(
    current_capabilities=items_of,
    learning_preferences=items_of,
    barriers_to_engagement=items_of,
    access_to_learning=items_of,
)
_PRIOR = _fields({"Understands": "understands_text", "Gaps": "gaps_text"}, understands_text=text_of, gaps_text=text_of)
_CONSTRAINTS = _fields(time_available=text_of, system_pressures=text_of, support_available=text_of)
_EVIDENCE = _fields(can_demonstrate=items_of, needs_support=items_of)
_COMPETENCY = _fields(
    target_competencies=items_of,
    prior_knowledge=_read_prior,
    contextual_constraints=_read_constraints,
    evidence_gathering_capacity=group(EvidenceGatheringCapacity, _EVIDENCE),
    potential_misunderstandings=items_of,
)
_PEER = _fields(availability=free_dict, willingness_to_engage=free_dict)
_TRAJECTORY = _fields(
    {"Heading Towards": "heading_toward"}, coming_from=text_of, heading_toward=text_of, motivations=items_of
)
PERSONA_SECTIONS = _fields(
    role_context=text_of,
    framework_application=text_of,
    diversity_profile=group(DiversityProfile, _DIVERSITY),
    learning_readiness=group(LearningReadiness, _READINESS),
    competency_development_profile=group(CompetencyDevelopmentProfile, _COMPETENCY),
    peer_learning_context=group(PeerLearningContext, _PEER),
    developmental_trajectory=group(DevelopmentalTrajectory, _TRAJECTORY, other=_other_value),
    evaluation_criteria=items_of,
)


def read_persona_fields(persona: Entry, ctx: Context) -> dict[str, Any]:
    """Persona model fields from a `## Persona N:` section (as an entry); fills `ctx.extra`."""
    return read_group(persona, ctx, "", PERSONA_SECTIONS, other=None)
