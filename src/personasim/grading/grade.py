"""Graders: pure functions of a saved transcript and criteria -> `Grade`s.

The LLM judge is asked each criterion `judge_samples` times (each repeat its own sample index, so
its own replay key and seed); the mean is the score and the spread (sd, min, max) is kept. Its
evidence quotes are checked against the learner's own answers; an unverified quote is flagged,
never dropped. Judge calls for one transcript share one prompt prefix (rubric + transcript in the
system prompt) and differ only in the last, short criterion message.

Deterministic graders (no LLM): time fit, abandonment and misunderstanding coverage; see their
docstrings for how they score. All scores are on the judge's 1-5 scale.
"""

from __future__ import annotations

import asyncio
import functools
import re
import statistics
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from personasim.errors import PersonasimError
from personasim.inputs.criteria import Criterion
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.settings import LLMSettings, sample_options
from personasim.llm.structured import complete_structured
from personasim.llm.types import ChatClient, Completion, RefusalError, StructuredOutputError, TruncatedError
from personasim.prompts import Prompts
from personasim.records.transcript import Transcript
from personasim.records.usage import Usage

GRADE_VERSION = 1
T = TypeVar("T")
# Answer problems that a re-ask did not fix: they leave one criterion ungraded (score null,
# error shown); anything else from the LLM layer (quota, replay miss, ...) fails the unit.
JUDGE_ANSWER_ERRORS = (StructuredOutputError, RefusalError, TruncatedError)


class JudgeVerdict(BaseModel):
    """What the judge writes, in this order: reasoning and evidence before the score."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(max_length=600, description="why this score, referring to the learner's answers")
    evidence: list[Annotated[str, Field(max_length=300)]] = Field(
        max_length=3, description="exact quotes copied from the learner's answers"
    )
    score: Literal[1, 2, 3, 4, 5]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    verified: bool


class JudgeSample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_index: int
    score: int | None = None
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    raw_text: str = ""
    from_recording: bool = False
    error: str | None = None


class Grade(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = GRADE_VERSION
    unit_id: str
    criterion_id: str
    criterion_text: str
    lens: str
    source_field: str = ""
    grader: str
    score: float | None = Field(default=None, description="1-5; null when it could not be graded")
    threshold: float
    passed: bool | None = None
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    evidence_verified: bool | None = Field(default=None, description="all quotes verified; null when none")
    flags: list[str] = Field(default_factory=list)
    judge_samples: int = 0
    score_sd: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    samples: list[JudgeSample] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    error: str | None = None

    @property
    def score_norm(self) -> float | None:
        return None if self.score is None else (self.score - 1) / 4


# --------------------------------------------------------------------------- evidence checks

_QUOTE_MARKS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})  # fmt: skip
_ELLIPSIS = re.compile(r"\.\.\.|\u2026|\[\.\.\.\]")


@functools.lru_cache(maxsize=4096)  # every quote is checked against the same learner answers
def normalise(text: str) -> str:
    """Case, whitespace and curly/straight quote marks only: a quote must otherwise be verbatim."""
    return " ".join(text.translate(_QUOTE_MARKS).casefold().split())


def verify_quote(quote: str, learner_texts: list[str]) -> bool:
    """True when the quote occurs in one of the learner's answers. Surrounding quote marks and
    end punctuation are ignored, and an ellipsis may stand for omitted words (each fragment must
    then occur, in the same answer)."""
    haystacks = [normalise(t) for t in learner_texts]
    fragments = [f.strip(" \"'.,;:!?") for f in _ELLIPSIS.split(normalise(quote))]
    fragments = [f for f in fragments if f]
    if not fragments:
        return False
    return any(all(f in h for f in fragments) for h in haystacks)


def check_evidence(quotes: list[str], learner_texts: list[str]) -> list[Evidence]:
    return [Evidence(text=q, verified=verify_quote(q, learner_texts)) for q in quotes]


# --------------------------------------------------------------------------- LLM judge


def judge_messages(prompts: Prompts, transcript: Transcript, persona: Persona, module: LearningModule,
                   criterion: Criterion, system: str | None = None) -> list[dict[str, str]]:  # fmt: skip
    """`system`: the transcript's judge system prompt when already rendered (it is the same for
    every criterion of a transcript; rendering it per criterion cost more than the HTTP call)."""
    if system is None:
        system = prompts.judge_system(transcript, persona, module)
    return [{"role": "system", "content": system}, {"role": "user", "content": prompts.judge_criterion(criterion)}]


def _to_usage(completion: Completion | None, error: BaseException | None = None) -> Usage:
    usage = completion.usage if completion is not None else getattr(error, "usage", None)
    if usage is None:
        return Usage()
    return Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                      cached_tokens=usage.cached_tokens)  # fmt: skip


async def _judge_once(client: ChatClient, messages: list[dict[str, str]], settings: LLMSettings, index: int,
                      learner_texts: list[str]) -> tuple[JudgeSample, Usage]:  # fmt: skip
    options = sample_options(settings, index)
    try:
        completion = await complete_structured(client, messages, options, JudgeVerdict, max_reasks=settings.max_reasks)
    except JUDGE_ANSWER_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}"
        return JudgeSample(sample_index=index, error=error, raw_text=getattr(exc, "last_text", "")), _to_usage(
            None, exc
        )
    verdict: JudgeVerdict = completion.parsed
    sample = JudgeSample(
        sample_index=index,
        score=verdict.score,
        rationale=verdict.rationale,
        evidence=check_evidence(verdict.evidence, learner_texts),
        raw_text=completion.text,
        from_recording=completion.from_recording,
    )
    return sample, _to_usage(completion)


def _merge_evidence(samples: list[JudgeSample]) -> list[Evidence]:
    seen: dict[str, Evidence] = {}
    for sample in samples:
        for item in sample.evidence:
            seen.setdefault(normalise(item.text), item)
    return list(seen.values())


def _judge_flags(score: float, evidence: list[Evidence], scores: list[int]) -> list[str]:
    flags = []
    if any(not e.verified for e in evidence):
        flags.append("unverified evidence")
    if score >= 4 and not any(e.verified for e in evidence):
        flags.append("high score without verified evidence")
    if scores and max(scores) - min(scores) >= 2:
        flags.append("judge samples disagree")
    return flags


def _judge_grade(criterion: Criterion, transcript: Transcript, samples: list[JudgeSample], usage: Usage,
                 model: str) -> Grade:  # fmt: skip
    base = _base(criterion, transcript)
    scored = [s for s in samples if s.score is not None]
    errors = [s.error for s in samples if s.error]
    common = {"judge_samples": len(samples), "samples": samples, "usage": usage, "model": model}
    if not scored:
        return Grade(**base, **common, error=errors[0] if errors else "no judge answer", flags=["judge failed"])
    scores = [s.score for s in scored if s.score is not None]
    # The scale is ordinal: the score is the (lower) median of the repeats, a score one of them gave,
    # and the rationale shown is that of the first repeat that gave it.
    median = statistics.median_low(scores)
    shown = next(s for s in scored if s.score == median)
    evidence = _merge_evidence(scored)
    flags = _judge_flags(median, evidence, scores)
    if errors:
        flags.append(f"{len(errors)} of {len(samples)} judge samples failed")
    return Grade(
        **base,
        **common,
        score=float(median),
        passed=median >= criterion.threshold,
        rationale=shown.rationale,
        evidence=evidence,
        evidence_verified=all(e.verified for e in evidence) if evidence else None,
        flags=flags,
        score_sd=round(statistics.stdev(scores), 4) if len(scores) > 1 else None,
        score_min=float(min(scores)),
        score_max=float(max(scores)),
        error=errors[0] if errors else None,
    )


async def judge_criterion(client: ChatClient, transcript: Transcript, persona: Persona, module: LearningModule,
                          criterion: Criterion, *, judge_samples: int, settings: LLMSettings,
                          prompts: Prompts, system: str | None = None) -> Grade:  # fmt: skip
    messages = judge_messages(prompts, transcript, persona, module, criterion, system)
    learner_texts = transcript.learner_texts()
    samples, usage = [], Usage()
    for index in range(judge_samples):  # in order: repeats of one request share the whole prompt
        sample, used = await _judge_once(client, messages, settings, index, learner_texts)
        samples.append(sample)
        usage = usage + used
    return _judge_grade(criterion, transcript, samples, usage, settings.model)


# --------------------------------------------------------------------------- deterministic graders


def _base(criterion: Criterion, transcript: Transcript) -> dict[str, object]:
    return {
        "unit_id": transcript.unit_id,
        "criterion_id": criterion.id,
        "criterion_text": criterion.text,
        "lens": criterion.lens,
        "source_field": criterion.source_field,
        "grader": criterion.grader,
        "threshold": criterion.threshold,
    }


def _scored(criterion: Criterion, transcript: Transcript, score: float | None, rationale: str,
            evidence: list[Evidence] | None = None) -> Grade:  # fmt: skip
    evidence = evidence or []
    return Grade(
        **_base(criterion, transcript),
        score=None if score is None else round(score, 4),
        passed=None if score is None else score >= criterion.threshold,
        rationale=rationale,
        evidence=evidence,
        evidence_verified=all(e.verified for e in evidence) if evidence else None,
    )


def _fraction_score(fraction: float) -> int:
    for limit, score in ((0.25, 5), (0.5, 4), (1.0, 3), (2.0, 2)):
        if fraction <= limit:
            return score
    return 1


def grade_time_fit(criterion: Criterion, transcript: Transcript, persona: Persona, module: LearningModule) -> Grade:
    """Share of one week's development time the module takes: the larger of the module's own
    estimate and the minutes the learner said they would spend, against the low end of the
    persona's weekly hours ("3-4 h": 3 h). "Up to N h" is parsed as 0-N h; its low end, 0, is no
    budget at all, so the grader reads it as N h and says so. <=25% -> 5, <=50% -> 4, <=100% -> 3,
    <=200% -> 2, more -> 1."""
    hours = persona.hours_per_week
    if hours is None:
        return _scored(criterion, transcript, None, "the persona states no weekly development hours")
    module_min = module.total_minutes
    learner_min = sum(t.reaction.minutes_spent for t in transcript.turns)
    needed = f"module estimate {module_min:g} min, learner's own estimate {learner_min} min"
    if hours.max <= 0:
        return _scored(criterion, transcript, 1, f"{needed}; the persona has 0 h of development time a week")
    if hours.min > 0:
        weekly_min = hours.min * 60
        basis = f"low end of {hours.min:g}-{hours.max:g} h" if hours.max > hours.min else f"{hours.min:g} h"
    else:
        weekly_min = hours.max * 60
        basis = f"up to {hours.max:g} h: the upper limit, the only figure stated"
    fraction = max(module_min, learner_min) / weekly_min
    rationale = f"{needed}; {weekly_min:g} min of development time a week ({basis}): {fraction:.0%} of a week"
    return _scored(criterion, transcript, _fraction_score(fraction), rationale)


def grade_abandonment(criterion: Criterion, transcript: Transcript, persona: Persona, module: LearningModule) -> Grade:
    """5 when the learner would continue after every step but the last; otherwise 1 + 4 x the
    share of steps completed before the first step where they would stop (stopping at step 1 -> 1).
    The last step's would_continue is not counted: there is no next step to continue to (a one-step
    module scores 5)."""
    total = len(module.steps)
    asked = [t for t in transcript.turns if t.step_index < total]
    stops = [t for t in asked if not t.reaction.would_continue]
    ignored = "; the last step's would_continue is not counted: no step follows it"
    if not stops:
        done = "a one-step module" if total == 1 else f"would continue after each of steps 1-{total - 1} of {total}"
        return _scored(criterion, transcript, 5, done + ignored)
    first = stops[0]
    score = 1 + 4 * (first.step_index - 1) / total
    rationale = (
        f"would stop at step {first.step_index} of {total} ({first.step_id}); "
        f"{len(stops)} earlier step(s) with would_continue false{ignored}"
    )
    evidence = [Evidence(text=first.reaction.continue_reason, verified=True)] if first.reaction.continue_reason else []
    return _scored(criterion, transcript, score, rationale, evidence)


_STOPWORDS = frozenset(
    "a an and are as at be been being by for from in into is it its of on or that the their them this to "
    "was were with i my me we our you your they he she his her think believ assum thinking believing "
    "assuming belief means mean".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=8192)  # the same answers and criteria are tokenised again and again
def content_tokens(text: str) -> frozenset[str]:
    """Lower-case words, crude suffixes stripped, stop and framing words ("thinking", "assuming") dropped."""
    words = re.findall(r"[a-z0-9]+", normalise(text))
    return frozenset(s for s in (_stem(w) for w in words if w not in _STOPWORDS) if s not in _STOPWORDS)


def overlap(expected: str, said: str) -> float:
    """Share of the expected item's content tokens that the learner's item contains."""
    want = content_tokens(expected)
    return len(want & content_tokens(said)) / len(want) if want else 0.0


MATCH_THRESHOLD = 0.5


def grade_misunderstanding_coverage(criterion: Criterion, transcript: Transcript, persona: Persona,
                                    module: LearningModule) -> Grade:  # fmt: skip
    """Token-overlap match of each of the persona's potential misunderstandings against every
    misunderstanding the learner listed: matched when the learner's item holds at least half of
    its content tokens. Score 1 + 4 x share matched."""
    expected = list(dict.fromkeys(m.strip() for m in persona.misunderstandings if m.strip()))
    said = [m for t in transcript.turns for m in t.reaction.misunderstandings]
    if not expected:
        return _scored(criterion, transcript, None, "the persona lists no potential misunderstandings")
    matched: dict[str, str] = {}
    for item in expected:
        best = max(said, key=lambda s: overlap(item, s), default=None)
        if best is not None and overlap(item, best) >= MATCH_THRESHOLD:
            matched[item] = best
    missing = [m for m in expected if m not in matched]
    rationale = f"{len(matched)} of {len(expected)} voiced ({len(said)} listed by the learner)"
    if missing:
        rationale += "; not voiced: " + "; ".join(missing)
    evidence = [Evidence(text=s, verified=True) for s in dict.fromkeys(matched.values())]
    return _scored(criterion, transcript, 1 + 4 * len(matched) / len(expected), rationale, evidence)


DETERMINISTIC: dict[str, Callable[[Criterion, Transcript, Persona, LearningModule], Grade]] = {
    "time_fit": grade_time_fit,
    "abandonment": grade_abandonment,
    "misunderstanding_coverage": grade_misunderstanding_coverage,
}


# --------------------------------------------------------------------------- entry point


async def grade_transcript(
    client: ChatClient,
    transcript: Transcript,
    persona: Persona,
    module: LearningModule,
    criteria: list[Criterion],
    judge_samples: int = 1,
    *,
    settings: LLMSettings,
    prompts: Prompts,
    concurrent: bool = True,
) -> list[Grade]:
    """Grades in criteria order. `concurrent=False` sends the judge calls one after another
    (a local server that keeps one prompt prefix)."""
    if transcript.status != "finished":
        raise PersonasimError(f"transcript {transcript.unit_id} is {transcript.status}; only finished ones are graded")
    if judge_samples < 1:
        raise PersonasimError("judge_samples must be at least 1")

    judged = any(c.grader == "judge" for c in criteria)
    system = prompts.judge_system(transcript, persona, module) if judged else None

    async def one(criterion: Criterion) -> Grade:
        if criterion.grader == "judge":
            return await judge_criterion(client, transcript, persona, module, criterion, judge_samples=judge_samples,
                                         settings=settings, prompts=prompts, system=system)  # fmt: skip
        return DETERMINISTIC[criterion.grader](criterion, transcript, persona, module)

    if concurrent:
        return await gather_cancelling([one(c) for c in criteria])
    return [await one(c) for c in criteria]


async def gather_cancelling(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """asyncio.gather that cancels the others when one fails (plain gather leaves them running)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
