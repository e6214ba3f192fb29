"""Model-free fit checks for `personasim gaps`: time, reading load and format against one persona.

- Time: the module's total and per-step minutes against the persona's parsed hours per week.
- Reading load: words per step at `READING_WORDS_PER_MINUTE`; steps over `TEXT_HEAVY_WORDS` or with a table
  are text-heavy, and flagged for personas whose profile names a barrier with written text (quoted).
- Format: each learning preference and barrier to engagement is matched to one rule (applied work, cases,
  peers, one-to-one, flexible timing, structure, evidence, time, schedule, load, written text) and checked
  against the module's delivery format and its steps' activities; an item no rule covers is left to text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personasim.inputs.module import LearningModule, Step
from personasim.inputs.module_steps import WORDS_PER_MINUTE, count_words
from personasim.inputs.persona import Persona

READING_WORDS_PER_MINUTE = WORDS_PER_MINUTE  # the rate the module format's minutes rule uses (modules/README.md)
TEXT_HEAVY_WORDS = 300  # about a page of prose: more than this in one step is a lot to read in one go
SHORT_STEP_MINUTES = 10  # a step that fits a short gap in a working day

WRITTEN_TEXT_BARRIER_RE = re.compile(
    r"dyslexi|visual(?:ly)?[ -]impair|sight loss|partially sighted|\bblind\b|screen reader|"
    r"written (?:communication|tasks?|text|material)|reading (?:is )?(?:difficult|hard|exhausting)|"
    r"exhaustion from reading|dense, inaccessible",
    re.IGNORECASE,
)
_TABLE_ROW_RE = re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE)
_CASE_RE = re.compile(r"\bcase(?:s| stud(?:y|ies))?\b|\bscenario|\bexample", re.IGNORECASE)
_PEER_RE = re.compile(
    r"\bpeers?\b|\bwith (?:a |your )?colleagues?\b|\btogether\b|\bin pairs?\b|\bin (?:a |small )?groups?\b|\bdiscuss|\bwith others\b",
    re.IGNORECASE,
)
_STRUCTURE_RE = re.compile(r"\bframework|\btoolkit|\btemplate|\bmatrix|\bstep \d", re.IGNORECASE)
_EVIDENCE_RE = re.compile(r"\(\D{0,60}\b(?:19|20)\d\d\)|\bdata\b|\bmetric|\bsurvey", re.IGNORECASE)
_SELF_PACED_RE = re.compile(r"e-?learning|online|self[- ]paced|recorded|on demand", re.IGNORECASE)
_ONE_TO_ONE_FORMAT_RE = re.compile(r"mentor|coach|shadow|one-to-one|1:1", re.IGNORECASE)

Verdict = Literal["met", "partly", "not met", "no rule"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepLoad(_Model):
    step_id: str
    minutes: float | None
    words: int = Field(description="words of content, activity and reflection questions")
    reading_minutes: float = Field(description="words / READING_WORDS_PER_MINUTE")
    has_table: bool
    text_heavy: bool = Field(description="more than TEXT_HEAVY_WORDS words, or a table")


class ProfileQuote(_Model):
    field: str = Field(description="the persona field the quoted line comes from")
    text: str


class TimeFit(_Model):
    time_available: str = Field(description="the persona's own words")
    hours_per_week_min: float | None
    hours_per_week_max: float | None
    module_minutes: float
    steps: int
    longest_step_id: str
    longest_step_minutes: float | None
    share_of_week: float | None = Field(
        description="module minutes / the persona's minimum minutes a week (over 1: weeks of development time it takes)"
    )
    fits_in_one_week: bool | None
    reading_words_per_minute: float = READING_WORDS_PER_MINUTE
    text_heavy_words: int = TEXT_HEAVY_WORDS
    load: list[StepLoad]
    text_barrier: list[ProfileQuote] = Field(description="profile lines naming a barrier with written text")
    text_heavy_steps: list[str] = Field(description="text-heavy step ids, flagged when text_barrier is not empty")
    summary: str


class FormatCheck(_Model):
    item: str
    source: Literal["learning_preferences", "barriers_to_engagement"]
    rule: str
    verdict: Verdict
    evidence: str
    steps: list[str] = Field(default_factory=list)


def step_words(step: Step) -> int:
    return (
        count_words(step.content) + count_words(step.activity) + sum(count_words(q) for q in step.reflection_questions)
    )


def step_load(step: Step) -> StepLoad:
    words = step_words(step)
    table = bool(_TABLE_ROW_RE.search(step.content))
    return StepLoad(
        step_id=step.id,
        minutes=step.minutes,
        words=words,
        reading_minutes=round(words / READING_WORDS_PER_MINUTE, 2),
        has_table=table,
        text_heavy=words > TEXT_HEAVY_WORDS or table,
    )


def text_barrier_quotes(persona: Persona) -> list[ProfileQuote]:
    """Every profile line that names a barrier with written text (dyslexia, sight loss, written communication)."""
    return [ProfileQuote(field=f, text=t) for f, t in _profile_lines(persona) if WRITTEN_TEXT_BARRIER_RE.search(t)]


def _profile_lines(persona: Persona) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, str):
            if value.strip():
                out.append((prefix, value.strip()))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)

    for name in ("diversity_profile", "learning_readiness", "peer_learning_context"):
        walk(name, getattr(persona, name).model_dump())
    return out


def time_fit(persona: Persona, module: LearningModule) -> TimeFit:
    hours = persona.hours_per_week
    total = module.total_minutes
    longest = max(module.steps, key=lambda s: s.minutes or 0)
    weekly = hours.min * 60 if hours is not None else None
    share = round(total / weekly, 3) if weekly else None
    load = [step_load(s) for s in module.steps]
    quotes = text_barrier_quotes(persona)
    heavy = [s.step_id for s in load if s.text_heavy] if quotes else []
    fit = TimeFit(
        time_available=persona.competency_development_profile.contextual_constraints.time_available,
        hours_per_week_min=hours.min if hours else None,
        hours_per_week_max=hours.max if hours else None,
        module_minutes=total,
        steps=len(module.steps),
        longest_step_id=longest.id,
        longest_step_minutes=longest.minutes,
        share_of_week=share,
        fits_in_one_week=(total <= weekly) if weekly is not None else None,
        load=load,
        text_barrier=quotes,
        text_heavy_steps=heavy,
        summary="",
    )
    return fit.model_copy(update={"summary": _time_summary(fit)})


def _time_summary(fit: TimeFit) -> str:
    head = f"{fit.module_minutes:g} min in {fit.steps} steps (longest {fit.longest_step_id}, {fit.longest_step_minutes or 0:g} min)"
    if fit.hours_per_week_min is None:
        return f"{head}; the persona states no hours a week ({fit.time_available or 'not stated'})"
    week = f"{fit.hours_per_week_min:g}-{fit.hours_per_week_max:g} h a week"
    verdict = "fits in one week" if fit.fits_in_one_week else f"needs {fit.share_of_week:.2f} weeks of it"
    text = f"{head} against {week}: {fit.share_of_week:.0%} of the minimum week, {verdict}"
    if fit.text_heavy_steps:
        text += f"; {len(fit.text_heavy_steps)} text-heavy steps for a reader whose profile says: {fit.text_barrier[0].text!r}"
    return text


@dataclass(frozen=True)
class _Features:
    format: str
    steps: int
    activity: list[str]
    cases: list[str]
    peers: list[str]
    structure: list[str]
    evidence: list[str]
    longest_minutes: float
    total_minutes: float
    heavy: list[str]


def module_features(module: LearningModule) -> _Features:
    def having(pattern: re.Pattern[str], part: Callable[[Step], str]) -> list[str]:
        return [s.id for s in module.steps if pattern.search(part(s))]

    def everything(s: Step) -> str:
        return "\n".join([s.content, s.activity, *s.reflection_questions])

    return _Features(
        format=module.delivery_format.strip() or "module of unstated format",
        steps=len(module.steps),
        activity=[s.id for s in module.steps if s.activity.strip()],
        cases=having(_CASE_RE, everything),
        peers=having(_PEER_RE, lambda s: s.activity),
        structure=having(_STRUCTURE_RE, lambda s: s.content),
        evidence=having(_EVIDENCE_RE, lambda s: s.content),
        longest_minutes=max((s.minutes or 0) for s in module.steps),
        total_minutes=module.total_minutes,
        heavy=[s.id for s in module.steps if step_load(s).text_heavy],
    )


def _share(ids: list[str], f: _Features, what: str) -> tuple[Verdict, str, list[str]]:
    verdict: Verdict = "met" if len(ids) * 2 >= f.steps and ids else ("partly" if ids else "not met")
    return verdict, f"{len(ids)} of {f.steps} steps {what}", ids


def _any(ids: list[str], f: _Features, what: str) -> tuple[Verdict, str, list[str]]:
    return ("met" if ids else "not met"), f"{len(ids)} of {f.steps} steps {what}", ids


def _applied(f: _Features) -> tuple[Verdict, str, list[str]]:
    return _share(f.activity, f, "have an activity for the learner to do")


def _one_to_one(f: _Features) -> tuple[Verdict, str, list[str]]:
    if _ONE_TO_ONE_FORMAT_RE.search(f.format):
        return "met", f"delivery format: {f.format}", []
    return "not met", f"delivery format {f.format!r}: no mentoring, coaching, shadowing or one-to-one part", []


def _flexible(f: _Features) -> tuple[Verdict, str, list[str]]:
    paced = bool(_SELF_PACED_RE.search(f.format))
    short = f.longest_minutes <= SHORT_STEP_MINUTES
    verdict: Verdict = "met" if paced and short else ("partly" if paced or short else "not met")
    timing = "self-paced" if paced else "taken at a set time (not stated to be self-paced or recorded)"
    return verdict, f"{f.format}: {timing}; longest step {f.longest_minutes:g} min", []


def _schedule(f: _Features) -> tuple[Verdict, str, list[str]]:
    paced = bool(_SELF_PACED_RE.search(f.format))
    if paced:
        return "met", f"{f.format}: can be taken in working hours, in steps of at most {f.longest_minutes:g} min", []
    return "not met", f"{f.format}: taken at a set time; the module does not say it is recorded", []


def _time(f: _Features) -> tuple[Verdict, str, list[str]]:
    short = f.longest_minutes <= SHORT_STEP_MINUTES
    verdict: Verdict = "met" if short and f.total_minutes <= 60 else ("partly" if short else "not met")
    return verdict, f"{f.total_minutes:g} min in all, longest step {f.longest_minutes:g} min (see fit-time)", []


def _load(f: _Features) -> tuple[Verdict, str, list[str]]:
    short = f.longest_minutes <= SHORT_STEP_MINUTES
    verdict: Verdict = "met" if short and not f.heavy else ("partly" if short else "not met")
    return verdict, f"longest step {f.longest_minutes:g} min; {len(f.heavy)} of {f.steps} steps text-heavy", f.heavy


def _written(f: _Features) -> tuple[Verdict, str, list[str]]:
    verdict: Verdict = "not met" if len(f.heavy) * 2 >= f.steps else ("partly" if f.heavy else "met")
    return verdict, f"{len(f.heavy)} of {f.steps} steps text-heavy (over {TEXT_HEAVY_WORDS} words or a table)", f.heavy


PREF, BARRIER = "learning_preferences", "barriers_to_engagement"
Source = Literal["learning_preferences", "barriers_to_engagement"]
Check = Callable[[_Features], tuple[Verdict, str, list[str]]]
TextCheck = Callable[[str], tuple[Verdict, str, list[str]]]

# (rule name, the item kinds it reads, what in the item triggers it, check). Every rule that matches applies.
RULES: list[tuple[str, tuple[str, ...], re.Pattern[str], Check]] = [
    ("one-to-one", (PREF,), re.compile(r"mentor|coach|one-to-one|1:1|shadow|observ", re.I), _one_to_one),
    ("peers", (PREF,), re.compile(r"peer|action learning|group", re.I),
     lambda f: _any(f.peers, f, "have an activity done with peers or colleagues")),
    ("cases", (PREF,), re.compile(r"case|scenario", re.I),
     lambda f: _any(f.cases, f, "use cases, scenarios or examples")),
    ("applied", (PREF, BARRIER), re.compile(r"practical|appl(?:y|ied|ication)|real (?:situation|issue)|hands-on|problem", re.I),
     _applied),
    ("flexible", (PREF,), re.compile(r"online|flexible|self-paced|bite-sized", re.I), _flexible),
    ("structure", (PREF,), re.compile(r"structured|framework", re.I),
     lambda f: _any(f.structure, f, "present a framework, toolkit or template")),
    ("evidence", (PREF,), re.compile(r"evidence|research|reading", re.I),
     lambda f: _any(f.evidence, f, "cite sources or show data")),
    ("written text", (BARRIER,), re.compile(r"written|reading|dyslexi", re.I), _written),
    ("time", (BARRIER,), re.compile(r"\btime\b|hours|busy|workload|demands", re.I), _time),
    ("schedule", (BARRIER,), re.compile(r"evening|weekend|childcare|parenting|caring|family|children", re.I), _schedule),
    ("load", (BARRIER,), re.compile(r"exhaust|fatigue|tired", re.I), _load),
]  # fmt: skip


def format_checks(persona: Persona, module: LearningModule, text_check: TextCheck | None = None) -> list[FormatCheck]:
    """Checks of each learning preference and barrier to engagement: one per rule that matches the item.

    An item no rule covers goes to `text_check` (rule `text`: is it spoken to anywhere in the steps?), or
    is reported as `no rule` without one.
    """
    features = module_features(module)
    readiness = persona.learning_readiness
    out: list[FormatCheck] = []
    for source, items in ((PREF, readiness.learning_preferences), (BARRIER, readiness.barriers_to_engagement)):
        for item in items:
            out.extend(_checks(item, source, features, text_check))  # type: ignore[arg-type]
    return out


def _checks(item: str, source: Source, f: _Features, text_check: TextCheck | None) -> list[FormatCheck]:
    out = []
    for name, kinds, pattern, check in RULES:
        if source in kinds and pattern.search(item):
            verdict, evidence, steps = check(f)
            out.append(
                FormatCheck(item=item, source=source, rule=name, verdict=verdict, evidence=evidence, steps=steps)
            )
    if out:
        return out
    if text_check is None:
        return [
            FormatCheck(item=item, source=source, rule="none", verdict="no rule", evidence="no format rule covers it")
        ]
    verdict, evidence, steps = text_check(item)
    return [FormatCheck(item=item, source=source, rule="text", verdict=verdict, evidence=evidence, steps=steps)]
