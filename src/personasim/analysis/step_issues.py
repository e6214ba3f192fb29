"""What the learners said at each step, counted and merged: the report's step x persona grid and its
"what goes wrong at each step" lists. Pure computations over transcripts (no pandas, no model).

Near-duplicates merge by text similarity: difflib's ratio over the Snowball stems of each item
(`text_similarity.tokenize`: casefolded, stop words out), at `MERGE_SIMILARITY` or above. Grouping is
greedy and in reading order (persona, sample, then item order): an item joins the first group whose
first text it matches, so the same answers always give the same groups. Stems make "Is the triage
template a disciplinary tool?" and "Is the triage template meant as a disciplinary tool?" one issue
(0.89), while two different questions about one step stay apart (below 0.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from statistics import mean

from personasim.records.transcript import Transcript
from personasim.text_similarity import tokenize

MERGE_SIMILARITY = 0.6
KINDS = ("misunderstanding", "question", "barrier")


@dataclass(frozen=True)
class Mention:
    """One item a learner wrote at one step: a misunderstanding, a question or a barrier."""

    kind: str
    persona_id: str
    sample: int
    step_index: int
    statement_id: str  # the judge's id for it: S3.m1, S3.q2, S3.b1
    text: str
    barrier_kind: str = ""


@dataclass
class IssueGroup:
    """Mentions that say the same thing (near-duplicates merged)."""

    kind: str
    text: str  # the first mention's text, as written
    barrier_kind: str = ""
    mentions: list[Mention] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.mentions)

    @property
    def personas(self) -> list[str]:
        return sorted({m.persona_id for m in self.mentions})

    @property
    def steps(self) -> list[int]:
        return sorted({m.step_index for m in self.mentions})

    @property
    def variants(self) -> list[str]:
        """Other wordings merged into this group, each once."""
        return [t for t in dict.fromkeys(m.text for m in self.mentions) if t != self.text]


@lru_cache(maxsize=8192)
def _stems(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text)) or tuple(text.casefold().split())


def similarity(a: str, b: str) -> float:
    """difflib's ratio over the two texts' Snowball stems, in [0, 1]."""
    sa, sb = _stems(a), _stems(b)
    if not sa or not sb:
        return 1.0 if a.strip().casefold() == b.strip().casefold() else 0.0
    return SequenceMatcher(None, sa, sb, autojunk=False).ratio()


def group_mentions(mentions: Iterable[Mention], threshold: float = MERGE_SIMILARITY) -> list[IssueGroup]:
    """Near-duplicates merged (barriers only within one barrier kind); most-mentioned group first, then
    the order they were first raised."""
    groups: list[IssueGroup] = []
    for m in mentions:
        home = next((g for g in groups if g.kind == m.kind and g.barrier_kind == m.barrier_kind
                     and similarity(g.text, m.text) >= threshold), None)  # fmt: skip
        if home is None:
            home = IssueGroup(m.kind, m.text, m.barrier_kind)
            groups.append(home)
        home.mentions.append(m)
    order = {id(g): i for i, g in enumerate(groups)}
    return sorted(groups, key=lambda g: (-len(g.personas), -g.count, order[id(g)]))


def mentions_of(transcripts: Sequence[Transcript]) -> list[Mention]:
    """Every misunderstanding, question and barrier of the transcripts, in reading order."""
    out = []
    for t in sorted(transcripts, key=lambda t: (t.persona_id, t.sample)):
        for turn in t.turns:
            r, s = turn.reaction, f"S{turn.step_index}"
            out += [Mention("misunderstanding", t.persona_id, t.sample, turn.step_index, f"{s}.m{n}", text.strip())
                    for n, text in enumerate(r.misunderstandings, 1) if text.strip()]  # fmt: skip
            out += [Mention("question", t.persona_id, t.sample, turn.step_index, f"{s}.q{n}", text.strip())
                    for n, text in enumerate(r.questions, 1) if text.strip()]  # fmt: skip
            out += [Mention("barrier", t.persona_id, t.sample, turn.step_index, f"{s}.b{n}", b.detail.strip(), b.kind)
                    for n, b in enumerate(r.barriers, 1) if b.detail.strip()]  # fmt: skip
    return out


@dataclass
class StepIssues:
    index: int
    step_id: str
    groups: dict[str, list[IssueGroup]]  # kind -> groups
    raised: int  # mentions in all

    def distinct(self, kind: str) -> int:
        return len(self.groups.get(kind, []))


def step_ids(transcripts: Sequence[Transcript]) -> dict[int, str]:
    """Step index -> step id, for every step any transcript reached."""
    ids: dict[int, str] = {}
    for t in transcripts:
        for turn in t.turns:
            ids.setdefault(turn.step_index, turn.step_id)
    return dict(sorted(ids.items()))


def step_issues(transcripts: Sequence[Transcript], threshold: float = MERGE_SIMILARITY) -> list[StepIssues]:
    """Per step (module order): its misunderstandings, questions and barriers, near-duplicates merged."""
    mentions = mentions_of(transcripts)
    out = []
    for index, step_id in step_ids(transcripts).items():
        here = [m for m in mentions if m.step_index == index]
        groups = {kind: group_mentions((m for m in here if m.kind == kind), threshold) for kind in KINDS}
        out.append(StepIssues(index, step_id, groups, len(here)))
    return out


def standing_mentions(transcripts: Sequence[Transcript], min_steps: int = 3,
                      threshold: float = MERGE_SIMILARITY) -> set[Mention]:  # fmt: skip
    """Mentions of issues that the same persona raises at `min_steps` steps or more: a persona's
    standing concern (or a model repeating itself) rather than one step's problem."""
    by_persona: dict[str, list[Mention]] = {}
    for m in mentions_of(transcripts):
        by_persona.setdefault(m.persona_id, []).append(m)
    out: set[Mention] = set()
    for mentions in by_persona.values():
        for g in group_mentions(mentions, threshold):
            if len(g.steps) >= min_steps:
                out.update(g.mentions)
    return out


def recurring(transcripts: Sequence[Transcript], min_steps: int = 3,
              threshold: float = MERGE_SIMILARITY) -> list[IssueGroup]:  # fmt: skip
    """The standing concerns (`standing_mentions`), near-duplicates merged across personas; raised at
    the most steps first."""
    standing = standing_mentions(transcripts, min_steps, threshold)
    groups = group_mentions([m for m in mentions_of(transcripts) if m in standing], threshold)
    return sorted(groups, key=lambda g: (-len(g.steps), -g.count))


# --------------------------------------------------------------------------- the step x persona grid


@dataclass
class Cell:
    """One persona at one step, over its samples."""

    engagement: list[int] = field(default_factory=list)
    relevance: list[int] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    stops: int = 0  # samples that would not continue after this step
    first_stops: int = 0  # samples whose first "would not continue" is this step
    misunderstandings: int = 0
    questions: int = 0
    barriers: int = 0

    @property
    def n(self) -> int:
        return len(self.engagement)

    @staticmethod
    def _mean(values: list[int]) -> float | None:
        return mean(values) if values else None

    @property
    def engagement_mean(self) -> float | None:
        return self._mean(self.engagement)

    @property
    def relevance_mean(self) -> float | None:
        return self._mean(self.relevance)


def step_grid(transcripts: Sequence[Transcript]) -> dict[tuple[str, int], Cell]:
    """(persona id, step index) -> that persona's answers at that step, over samples. The last step's
    would-continue is not counted as a stop (no step follows it), as the abandonment grader reads it."""
    cells: dict[tuple[str, int], Cell] = {}
    for t in transcripts:
        last = max((turn.step_index for turn in t.turns), default=0)
        first = first_stop(t)
        for turn in t.turns:
            r = turn.reaction
            cell = cells.setdefault((t.persona_id, turn.step_index), Cell())
            cell.engagement.append(r.engagement)
            cell.relevance.append(r.relevance)
            cell.minutes.append(r.minutes_spent)
            if not r.would_continue and turn.step_index < last:
                cell.stops += 1
            cell.first_stops += turn.step_index == first
            cell.misunderstandings += sum(1 for m in r.misunderstandings if m.strip())
            cell.questions += sum(1 for q in r.questions if q.strip())
            cell.barriers += sum(1 for b in r.barriers if b.detail.strip())
    return cells


def first_stop(transcript: Transcript) -> int | None:
    """Index of the first step after which the learner would not carry on (the last step aside)."""
    last = max((turn.step_index for turn in transcript.turns), default=0)
    return next((turn.step_index for turn in transcript.turns
                 if not turn.reaction.would_continue and turn.step_index < last), None)  # fmt: skip
