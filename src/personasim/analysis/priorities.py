"""What to change first, and whom the module fails: computed from the learners' answers and the
judge's scores, never written by a model. Pure computations (no pandas).

**Steps to revise** (`step_priorities`): every step gets a priority, the sum of six parts, each 0-1
before its weight (`WEIGHTS`), so the most a step can score is 7:

- engagement, relevance: how far below 5 the mean rating is, (5 - mean) / 4, each persona's mean
  over its samples weighing the same;
- abandonment (weight 2): the share of conversations whose first "would not carry on" is this step;
- misunderstandings, barriers: mentions per conversation at this step, over 3 (the most a step asks for);
- time: minutes the learners say they would spend over the step's planned minutes, as a share of the
  plan (capped at 1; 0 when the module plans no minutes for the step).

**Whom the module fails** (`persona_profile`, `compare_groups`): each persona's characteristics,
read from its file by the keyword rules in `GROUPINGS`, and for each characteristic the mean score of
each group with a 95% t interval over the group's personas, only where every group has two personas
or more (otherwise a note says the set is too small).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import mean, stdev

from personasim.analysis.step_issues import step_grid, step_ids, step_issues
from personasim.inputs.module_diff import ModuleDiff
from personasim.inputs.persona import Persona
from personasim.records.transcript import Transcript

WEIGHTS = {"engagement": 1.0, "relevance": 1.0, "abandonment": 2.0, "misunderstandings": 1.0, "barriers": 1.0,
           "time": 1.0}  # fmt: skip
LOW = 2  # a rating of 2 or less: the persona is lost or it does not apply to them
CHANGE = 0.25  # a change in priority this large reads "better" or "worse" (descriptive: no test per step)


@dataclass(frozen=True)
class Citation:
    """A judge grade that cites a statement of this step."""

    step_index: int
    persona_id: str
    sample: int
    criterion_id: str
    statement_id: str
    score: float | None


@dataclass
class StepPriority:
    index: int
    step_id: str
    score: float
    parts: dict[str, float]
    conversations: int
    engagement: float | None
    relevance: float | None
    first_stops: int
    stop_personas: list[str]
    low_personas: list[str]
    issue_personas: list[str]
    misunderstandings: int
    distinct_misunderstandings: int
    barriers: dict[str, int]
    minutes: float | None
    budget: float | None
    citations: list[Citation] = field(default_factory=list)

    @property
    def affected(self) -> list[str]:
        return sorted(set(self.stop_personas) | set(self.low_personas))

    def reasons(self) -> list[str]:
        """The parts that weigh, largest first, in words."""
        words = {
            "engagement": f"engagement {self.engagement:.1f} of 5" if self.engagement is not None else "",
            "relevance": f"relevance {self.relevance:.1f} of 5" if self.relevance is not None else "",
            "abandonment": f"{self.first_stops} of {self.conversations} conversations stop here first",
            "misunderstandings": f"{self.misunderstandings} misunderstandings ({self.distinct_misunderstandings} distinct)",
            "barriers": "barriers: " + ", ".join(f"{k} {n}" for k, n in sorted(self.barriers.items(), key=lambda x: -x[1])),
            "time": f"{self.minutes:.0f} min spent against {self.budget:g} planned" if self.budget else "",
        }  # fmt: skip
        ranked = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return [words[k] for k, v in ranked if v > 0.05 and words[k]]


def _persona_mean(values: Mapping[str, list[int]]) -> float | None:
    means = [mean(v) for v in values.values() if v]
    return mean(means) if means else None


def step_priorities(transcripts: Sequence[Transcript], budgets: Mapping[str, float] | None = None,
                    citations: Sequence[Citation] = ()) -> list[StepPriority]:  # fmt: skip
    """Every step of one module version, highest priority first (ties in module order)."""
    budgets = budgets or {}
    grid = step_grid(transcripts)
    issues = {s.index: s for s in step_issues(transcripts)}
    out = []
    for index, step_id in step_ids(transcripts).items():
        cells = {pid: c for (pid, i), c in grid.items() if i == index}
        n = sum(c.n for c in cells.values())
        eng = _persona_mean({p: c.engagement for p, c in cells.items()})
        rel = _persona_mean({p: c.relevance for p, c in cells.items()})
        first = sum(c.first_stops for c in cells.values())
        mis = sum(c.misunderstandings for c in cells.values())
        bar = sum(c.barriers for c in cells.values())
        minutes = mean(m for c in cells.values() for m in c.minutes) if n else None
        budget = budgets.get(step_id)
        over = max(0.0, (minutes or 0) - budget) / budget if budget else 0.0
        raw = {
            "engagement": 0.0 if eng is None else (5 - eng) / 4,
            "relevance": 0.0 if rel is None else (5 - rel) / 4,
            "abandonment": first / n if n else 0.0,
            "misunderstandings": min(1.0, mis / n / 3) if n else 0.0,
            "barriers": min(1.0, bar / n / 3) if n else 0.0,
            "time": min(1.0, over),
        }
        parts = {k: round(v * WEIGHTS[k], 4) for k, v in raw.items()}
        step = issues[index]
        kinds = Counter(m.barrier_kind for g in step.groups["barrier"] for m in g.mentions)
        raisers = sorted({m.persona_id for gs in step.groups.values() for g in gs for m in g.mentions})
        out.append(StepPriority(
            index=index, step_id=step_id, score=round(sum(parts.values()), 3), parts=parts, conversations=n,
            engagement=eng, relevance=rel, first_stops=first,
            stop_personas=sorted(p for p, c in cells.items() if c.first_stops),
            low_personas=sorted(p for p, c in cells.items()
                                if min(c.engagement_mean or 5, c.relevance_mean or 5) <= LOW),
            issue_personas=raisers, misunderstandings=mis, distinct_misunderstandings=step.distinct("misunderstanding"),
            barriers=dict(kinds), minutes=minutes, budget=budget,
            citations=[c for c in citations if c.step_index == index],
        ))  # fmt: skip
    return sorted(out, key=lambda s: (-s.score, s.index))


def step_citations(rows: Sequence[tuple[str, int, str, float | None, Sequence[str]]]) -> list[Citation]:
    """(persona id, sample, criterion id, score, cited statement ids) per judge grade -> one citation per
    cited step statement (`S3.takeaway` is step 3; `END.*` is no step)."""
    out = []
    for pid, sample, cid, score, ids in rows:
        for sid in ids:
            found = re.fullmatch(r"S(\d+)\.\w+", sid)
            if found:
                out.append(Citation(int(found.group(1)), pid, sample, cid, sid, score))
    return out


# --------------------------------------------------------------------------- two versions, step by step


@dataclass
class StepChange:
    status: str  # matched, added, removed
    matched_by: str  # id, title, content; "" for added or removed
    a: StepPriority | None
    b: StepPriority | None

    @property
    def label(self) -> str:
        ia, ib = (self.a.step_id if self.a else None), (self.b.step_id if self.b else None)
        return f"{ia} -> {ib}" if ia and ib and ia != ib else (ib or ia or "")

    def delta(self, name: str) -> float | None:
        if self.a is None or self.b is None:
            return None
        va, vb = getattr(self.a, name), getattr(self.b, name)
        return None if va is None or vb is None else vb - va

    @property
    def verdict(self) -> str:
        d = self.delta("score")
        if d is None:
            return self.status
        return "better" if d <= -CHANGE else ("worse" if d >= CHANGE else "about the same")


def step_pairs(ids_a: Sequence[str], ids_b: Sequence[str], diff: ModuleDiff | None = None) -> list[tuple[str | None, str | None, str]]:  # fmt: skip
    """(step of A, step of B, how matched) in B's order, then A's removed steps: from `modules diff`'s
    matching (ids, then renames by similar title or identical content) when both modules are known,
    else on step ids alone."""
    pairs: dict[str, tuple[str | None, str | None, str]] = {}
    if diff is not None:
        for d in diff.changed:
            pairs[d.id_after or ""] = (d.id_before, d.id_after, d.matched_by or "id")
        for sid in diff.unchanged:
            pairs[sid] = (sid, sid, "id")
    else:
        for sid in ids_b:
            if sid in ids_a:
                pairs[sid] = (sid, sid, "id")
    matched_a = {a for a, _, _ in pairs.values()}
    out = [pairs.get(sid, (None, sid, "")) for sid in ids_b]
    return out + [(sid, None, "") for sid in ids_a if sid not in matched_a]


def compare_steps(a: Sequence[StepPriority], b: Sequence[StepPriority],
                  pairs: Sequence[tuple[str | None, str | None, str]]) -> list[StepChange]:  # fmt: skip
    by_a, by_b = {s.step_id: s for s in a}, {s.step_id: s for s in b}
    out = []
    for ia, ib, how in pairs:
        sa, sb = by_a.get(ia or ""), by_b.get(ib or "")
        if sa is None and sb is None:
            continue
        status = "matched" if sa and sb else ("added" if sb else "removed")
        out.append(StepChange(status, how if status == "matched" else "", sa, sb))
    return out


# --------------------------------------------------------------------------- whom the module fails

_DISABILITY = re.compile(r"disab|dyslexi|dyspraxi|adhd|autis|deaf|blind|sight loss|wheelchair|neurodiverg|chronic "
                         r"(?:illness|pain|condition)|long-term condition", re.IGNORECASE)  # fmt: skip
_PEER = re.compile(r"peer|action learning", re.IGNORECASE)
_PART_TIME = re.compile(r"part[- ]time", re.IGNORECASE)
_TIMING = re.compile(r"flexib|timing|job plan|work (?:time|hours)|part[- ]time|caring|parent", re.IGNORECASE)


@dataclass
class PersonaProfile:
    persona_id: str
    title: str
    time_available: str
    hours_low: float | None
    identity: list[str]
    minoritised: str
    disability: str
    working_pattern: str
    preferences: list[str]
    groups: dict[str, str] = field(default_factory=dict)


def _gender(identity: str) -> str:
    if re.search(r"\bnon-binary\b", identity, re.IGNORECASE):
        return "non-binary"
    if re.search(r"\b(?:woman|female)\b", identity, re.IGNORECASE):
        return "woman"
    if re.search(r"\b(?:man|male)\b", identity, re.IGNORECASE):
        return "man"
    return "not stated"


def _time_band(hours: float | None) -> str:
    if hours is None:
        return "not stated"
    return "under 3 h a week" if hours < 3 else ("3 to under 5 h a week" if hours < 5 else "5 h a week or more")


_ORDER = {"under 3 h a week": 0, "3 to under 5 h a week": 1, "5 h a week or more": 2}
GROUPINGS: dict[str, tuple[str, Callable[[PersonaProfile], str]]] = {
    "time available": ("the low end of the hours a week in Time Available", lambda p: _time_band(p.hours_low)),
    "gender": ("woman / man / non-binary in the Identity line", lambda p: _gender(" ".join(p.identity[:1]))),
    "ethnicity": ("White when the Identity line says White, otherwise minority ethnic",
                  lambda p: "not stated" if not p.identity else
                  ("White" if re.search(r"\bwhite\b", p.identity[0], re.IGNORECASE) else "minority ethnic")),
    "disability": ("a Disability Experience entry, or an Identity line naming a disability or neurodivergence",
                   lambda p: "disability stated" if p.disability else "none stated"),
    "working pattern": ("part-time when Time Available or the role says so",
                        lambda p: "part-time" if _PART_TIME.search(p.working_pattern) else "full-time or not stated"),
    "learning preferences": ("a preference for peer or action learning",
                             lambda p: "prefers peer learning" if any(_PEER.search(x) for x in p.preferences)
                             else "no peer preference stated"),
}  # fmt: skip


def persona_profile(p: Persona) -> PersonaProfile:
    """The characteristics the report shows for a persona, from its file."""
    div = p.diversity_profile
    identity = list(div.protected_characteristics.identity)
    disability = next((v for k, v in div.positionality.items() if "disab" in k.casefold()), "")
    if not disability:
        disability = "; ".join(line for line in identity if _DISABILITY.search(line))
    constraints = p.competency_development_profile.contextual_constraints
    said = constraints.time_available.casefold()
    timing = [x for x in p.learning_readiness.access_to_learning if _TIMING.search(x) and x.casefold() not in said]
    if _PART_TIME.search(constraints.time_available) or _PART_TIME.search(p.role_context):
        timing.insert(0, "part-time")
    pattern = "; ".join(dict.fromkeys(timing))
    hours = p.hours_per_week
    profile = PersonaProfile(
        persona_id=p.id, title=p.title, time_available=constraints.time_available,
        hours_low=hours.min if hours else None, identity=identity,
        minoritised=div.experience_of_power.minoritised_identities, disability=disability, working_pattern=pattern,
        preferences=list(p.learning_readiness.learning_preferences),
    )  # fmt: skip
    profile.groups = {name: rule(profile) for name, (_, rule) in GROUPINGS.items()}
    return profile


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% t interval for the mean of `values` (two or more), clipped to the 0-1 scale."""
    if len(values) < 2:
        return None
    t = _T975[len(values) - 2] if len(values) - 1 <= len(_T975) else 1.96
    half = t * stdev(values) / math.sqrt(len(values))
    m = mean(values)
    return max(0.0, m - half), min(1.0, m + half)


@dataclass
class GroupRow:
    label: str
    personas: list[str]
    mean: float
    interval: tuple[float, float] | None


@dataclass
class GroupComparison:
    characteristic: str
    rule: str
    groups: list[GroupRow]
    comparable: bool
    note: str = ""


def compare_groups(scores: Mapping[str, float], profiles: Mapping[str, PersonaProfile]) -> list[GroupComparison]:
    """Per characteristic: each group's mean persona score with its interval, where every group holds at
    least two personas and there are two groups or more; otherwise a note."""
    out = []
    for name, (rule, _) in GROUPINGS.items():
        members: dict[str, list[str]] = {}
        for pid in scores:
            if pid in profiles:
                members.setdefault(profiles[pid].groups[name], []).append(pid)
        rows = [GroupRow(label, sorted(pids), mean(scores[p] for p in pids), t_interval([scores[p] for p in pids]))
                for label, pids in sorted(members.items(), key=lambda kv: (_ORDER.get(kv[0], 9), kv[0]))]  # fmt: skip
        sizes = ", ".join(f"{r.label} {len(r.personas)}" for r in rows)
        if len(rows) < 2:
            note = f"every persona falls in one group ({sizes or 'none'}): nothing to compare"
        elif min(len(r.personas) for r in rows) < 2:
            note = f"too few personas to compare groups ({sizes}): a group needs at least two"
        else:
            note = ""
        out.append(GroupComparison(name, rule, rows, not note, note))
    return out
