"""Coverage before simulation: which steps of a module address each of a persona's criteria, with no model.

`coverage_for_run(personas, modules)` is the entry point (the `gaps` command and a run both call it).
Each criterion from `derive_criteria` is decided by one method:

- `serves`: target competencies, exactly, through the steps' `serves:` and the module's `target_competencies`
  (names compared casefolded, punctuation and spacing aside).
- `time`: `fit-time`, from the module's minutes against the persona's hours per week (`gaps_fit.time_fit`).
- `format`: `fit-preferences` and `fit-barriers`, rule by rule (`gaps_fit.format_checks`).
- `text`: gaps, potential misunderstandings, the four lenses and explicit criteria: BM25 between the
  criterion and each sentence of each step (`text_similarity`); a step addresses it when its best
  sentence scores `threshold` or more.
- `simulation`: criteria decided from the learner's answers (abandonment, misunderstanding coverage).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from personasim.analysis.gaps_fit import (
    READING_WORDS_PER_MINUTE,
    TEXT_HEAVY_WORDS,
    FormatCheck,
    TimeFit,
    Verdict,
    format_checks,
    time_fit,
)
from personasim.analysis.gaps_types import (
    Coverage,
    CoverageChange,
    CoverageSettings,
    CriterionCoverage,
    Part,
    PersonaCoverage,
    SentenceHit,
    StepHit,
)
from personasim.inputs.criteria import Criterion, derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.text_similarity import K1, SATURATION, B, SentenceIndex, split_sentences

# Chosen on two thirds of the labels in tests/fixtures/gap_labels.yaml (the highest Matthews correlation);
# the held-out third is what the README reports. STRONG_THRESHOLD is a display level only, not measured.
DEFAULT_THRESHOLD = 0.15
STRONG_THRESHOLD = 0.5
MAX_SENTENCES = 2
# Words of the criteria templates (criteria.py) that say nothing about the topic.
QUERY_STOPWORDS = frozenset({"module", "learner", "learners", "learner's", "stated"})
_INDEX_RE = re.compile(r"\[(\d+)\]$")
_ACTIVITY_TIME_RE = re.compile(r"^\W*time\W*\s*\d+(?:\.\d+)?\s*min\w*\W*$", re.IGNORECASE | re.MULTILINE)
_PARENS_RE = re.compile(r"\([^()]*(?:\([^()]*\)[^()]*)*\)")
SIMULATION_ONLY = {"abandonment", "misunderstanding_coverage"}


@dataclass(frozen=True)
class _Sentence:
    step: int
    part: Part
    text: str


class ModuleText:
    """Every sentence of a module's steps (title, content, activity, reflection questions), indexed once."""

    def __init__(self, module: LearningModule, saturation: int = SATURATION) -> None:
        self.module = module
        self.sentences: list[_Sentence] = []
        for i, step in enumerate(module.steps):
            self._add(i, "title", [step.title])
            self._add(i, "content", split_sentences(step.content))
            self._add(i, "activity", split_sentences(_ACTIVITY_TIME_RE.sub("", step.activity)))
            self._add(i, "reflection", [s for q in step.reflection_questions for s in split_sentences(q)])
        self.index = SentenceIndex([s.text for s in self.sentences], saturation=saturation)

    def _add(self, step: int, part: Part, texts: Iterable[str]) -> None:
        self.sentences.extend(_Sentence(step, part, t) for t in texts if t.strip())

    def step_hits(self, query: str) -> list[StepHit]:
        """Every step with a sentence sharing a query term: best score, best sentences first; module order."""
        found: dict[int, list[SentenceHit]] = {}
        for match in self.index.matches(query, QUERY_STOPWORDS):
            sentence = self.sentences[match.index]
            hit = SentenceHit(
                part=sentence.part, text=sentence.text, score=round(match.score, 3), terms=list(match.terms)
            )
            found.setdefault(sentence.step, []).append(hit)
        return [self._hit(i, hits) for i, hits in sorted(found.items())]

    def _hit(self, i: int, hits: list[SentenceHit]) -> StepHit:
        step = self.module.steps[i]
        return StepHit(step_id=step.id, step_title=step.title, position=i + 1, strength=None,
                       score=hits[0].score, sentences=hits[:MAX_SENTENCES])  # fmt: skip


def coverage_for_run(
    personas: Sequence[Persona], modules: Sequence[LearningModule], *, threshold: float = DEFAULT_THRESHOLD
) -> Coverage:
    """Coverage of every persona x module version (each module's sentences indexed once)."""
    texts = [ModuleText(m) for m in modules]
    items = [coverage_for(p, t, threshold=threshold) for t in texts for p in personas]
    return Coverage(settings=settings(threshold), items=items)


def settings(threshold: float = DEFAULT_THRESHOLD) -> CoverageSettings:
    return CoverageSettings(
        matcher="BM25 (bm25s, Lucene variant) over step sentences, Snowball English stems (PyStemmer)",
        threshold=threshold, strong_threshold=max(threshold, STRONG_THRESHOLD), saturation=SATURATION, k1=K1, b=B,
        reading_words_per_minute=READING_WORDS_PER_MINUTE, text_heavy_words=TEXT_HEAVY_WORDS,
    )  # fmt: skip


def coverage_for(
    persona: Persona, text: ModuleText | LearningModule, *, threshold: float = DEFAULT_THRESHOLD
) -> PersonaCoverage:
    """Coverage of one persona's criteria by one module version."""
    text = text if isinstance(text, ModuleText) else ModuleText(text)
    module = text.module
    fit = time_fit(persona, module)
    judge = _Judge(text, threshold)
    criteria = [judge.decide(persona, c, fit) for c in derive_criteria(persona, module)]
    return PersonaCoverage(
        persona_id=persona.id, persona_title=persona.title, persona_hash=persona.content_hash,
        module_ref=module.ref, module_title=module.title, module_hash=module.content_hash,
        delivery_format=module.delivery_format, time=fit, criteria=criteria,
    )  # fmt: skip


def coverage_changes(coverage: Coverage, ref_a: str, ref_b: str) -> list[CoverageChange]:
    """Criterion by criterion, per persona in both: what module version `ref_b` gained or lost against `ref_a`.

    Criteria pair by persona and criterion id (ids are positions in the persona's own lists, the same
    for both versions); `undecided` where either side needs a simulation.
    """
    out: list[CoverageChange] = []
    for a in (i for i in coverage.items if i.module_ref == ref_a):
        b = coverage.find(a.persona_id, ref_b)
        if b is None:
            continue
        for ca in a.criteria:
            cb = b.criterion(ca.criterion_id)
            if cb is None:
                continue
            out.append(CoverageChange(
                persona_id=a.persona_id, criterion_id=ca.criterion_id, lens=ca.lens, a=ca.addressed, b=cb.addressed,
                change=_change(ca.addressed, cb.addressed), steps_a=[s.step_id for s in ca.steps],
                steps_b=[s.step_id for s in cb.steps], summary_a=ca.summary, summary_b=cb.summary,
            ))  # fmt: skip
    return out


def coverage_between(a: Coverage, ref_a: str, b: Coverage, ref_b: str) -> list[CoverageChange]:
    """`coverage_changes` of module `ref_b` in coverage `b` against `ref_a` in `a` (two runs' coverage):
    each side's items are set apart first, so two runs of the same module version still pair."""
    if a is b and ref_a != ref_b:
        return coverage_changes(a, ref_a, ref_b)
    sides = [i.model_copy(update={"module_ref": "A"}) for i in a.items if i.module_ref == ref_a]
    sides += [i.model_copy(update={"module_ref": "B"}) for i in b.items if i.module_ref == ref_b]
    return coverage_changes(Coverage(settings=a.settings, items=sides), "A", "B")


def _change(a: bool | None, b: bool | None) -> str:
    if a is None or b is None:
        return "undecided"
    return "same" if a == b else ("gained" if b else "lost")


def normalise_name(name: str) -> str:
    """`"Build  relationships (Stage 3)"` -> `"build relationships stage 3"`: case, punctuation and spacing aside."""
    return " ".join(re.sub(r"[^\w]+", " ", name.casefold()).split())


def criterion_query(persona: Persona, criterion: Criterion) -> str:
    """What a free-text criterion is matched on: the persona's own item for gaps and misunderstandings,
    the criterion's wording otherwise (lenses: their question with the persona's context in it)."""
    index = _INDEX_RE.search(criterion.source_field)
    if criterion.lens == "gaps" and index:
        return persona.gaps[int(index.group(1))]
    if criterion.lens == "misunderstandings" and index:
        return persona.misunderstandings[int(index.group(1))]
    return criterion.text


class _Judge:
    """Decides one criterion at a time against one module's text."""

    def __init__(self, text: ModuleText, threshold: float) -> None:
        self.text, self.threshold = text, threshold
        self.strong = max(threshold, STRONG_THRESHOLD)

    def decide(self, persona: Persona, criterion: Criterion, fit: TimeFit) -> CriterionCoverage:
        base = {
            "criterion_id": criterion.id,
            "lens": criterion.lens,
            "grader": criterion.grader,
            "text": criterion.text,
        }
        if criterion.grader in SIMULATION_ONLY:
            return CriterionCoverage(**base, method="simulation", addressed=None,
                                     summary="decided from the learner's answers: needs a simulation")  # fmt: skip
        if criterion.id == "fit-time":
            return CriterionCoverage(**base, method="time", addressed=fit.fits_in_one_week, summary=fit.summary)
        if criterion.id in ("fit-preferences", "fit-barriers"):
            return self._format(persona, criterion, base)
        if criterion.lens == "competencies":
            return self._competency(persona, criterion, base)
        return self._free_text(criterion_query(persona, criterion), base)

    def _free_text(self, query: str, base: dict[str, str]) -> CriterionCoverage:
        hits = self.text.step_hits(query)
        above = [h.model_copy(update={"strength": self._strength(h.score or 0)}) for h in hits
                 if (h.score or 0) >= self.threshold]  # fmt: skip
        nearest = None if above else max(hits, key=lambda h: (h.score or 0, -h.position), default=None)
        if above:
            best = sorted(above, key=lambda h: (-(h.score or 0), h.position))
            named = ", ".join(
                f"{h.step_id} ({h.score:.2f}{', strong' if h.strength == 'strong' else ''})" for h in best[:3]
            )
            more = f", +{len(best) - 3} more" if len(best) > 3 else ""
            summary = f"addressed by {len(above)} step{'s' if len(above) > 1 else ''}: {named}{more}"
        elif nearest:
            summary = (
                f"not addressed by any step (nearest: {nearest.step_id}, {nearest.score:.2f} < {self.threshold:g})"
            )
        else:
            summary = "not addressed by any step (no step shares a word with it)"
        return CriterionCoverage(**base, method="text", query=query, addressed=bool(above), steps=above,
                                 nearest=nearest, summary=summary)  # fmt: skip

    def _strength(self, score: float) -> str:
        return "strong" if score >= self.strong else "weak"

    def _competency(self, persona: Persona, criterion: Criterion, base: dict[str, str]) -> CriterionCoverage:
        index = _INDEX_RE.search(criterion.source_field)
        name = persona.competency_development_profile.target_competencies[int(index.group(1))] if index else ""
        key = normalise_name(name)
        module = self.text.module
        claims = key in {normalise_name(c) for c in module.target_competencies}
        steps = [StepHit(step_id=s.id, step_title=s.title, position=i + 1, strength="declared", score=None)
                 for i, s in enumerate(module.steps) if key in {normalise_name(x) for x in s.serves}]  # fmt: skip
        if steps:
            summary = (
                f"served by {len(steps)} step{'s' if len(steps) > 1 else ''}: {', '.join(s.step_id for s in steps)}"
            )
        elif claims:
            summary = "the module lists it as a target competency, but no step's serves: names it"
        else:
            summary = "not addressed by any step (not a target competency of the module; no step serves it)"
        return CriterionCoverage(**base, method="serves", query=name, addressed=bool(steps), steps=steps,
                                 module_claims=claims, summary=summary)  # fmt: skip

    def _format(self, persona: Persona, criterion: Criterion, base: dict[str, str]) -> CriterionCoverage:
        source = "learning_preferences" if criterion.id == "fit-preferences" else "barriers_to_engagement"
        checks = [c for c in format_checks(persona, self.text.module, self._text_check) if c.source == source]
        counts = {v: sum(c.verdict == v for c in checks) for v in ("met", "partly", "not met", "no rule")}
        good = counts["met"] + counts["partly"]
        addressed = (good * 2 >= len(checks)) if checks else None
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {len(checks)} checks" if checks else (
            "the persona states none")  # fmt: skip
        return CriterionCoverage(**base, method="format", addressed=addressed, checks=checks, summary=summary)

    def _text_check(self, item: str) -> tuple[Verdict, str, list[str]]:
        decided = self._free_text(item, {"criterion_id": "", "lens": "", "grader": "", "text": item})
        if decided.steps:
            best = max(decided.steps, key=lambda h: h.score or 0)
            return "met", f"text: {best.step_id}: {best.sentences[0].text!r}", [h.step_id for h in decided.steps]
        return "not met", f"text: {decided.summary}", []


def format_verdicts(checks: Sequence[FormatCheck]) -> str:
    """`"met: Practical application (applied); not met: Mentoring relationships (one-to-one)"`."""
    return "; ".join(f"{c.verdict}: {c.item} ({c.rule})" for c in checks)
