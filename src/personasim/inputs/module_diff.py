"""Compare two versions of a learning module step by step.

Steps are matched by id first. Steps left over on both sides are then paired as renames when their
titles are similar (difflib ratio >= 0.6) or their content is identical, best pairs first; the rest
are added or removed. Minutes are reported per step and in total.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from personasim.inputs.module import LearningModule, Step
from personasim.inputs.module_loader import FRONT_MATTER_KEYS

TITLE_SIMILARITY = 0.6
STEP_FIELDS = ("title", "content", "activity", "reflection_questions", "minutes", "serves")
# Every front-matter field but the two that name the version being compared.
MODULE_FIELDS = tuple(key for key in FRONT_MATTER_KEYS if key not in ("id", "version"))


class StepDiff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["added", "removed", "changed"]
    id_before: str | None = None
    id_after: str | None = None
    title_before: str | None = None
    title_after: str | None = None
    minutes_before: float | None = None
    minutes_after: float | None = None
    changed_fields: list[str] = Field(default_factory=list, description="for changed steps: what differs")
    matched_by: Literal["id", "title", "content"] | None = None

    @property
    def label(self) -> str:
        """`id`, or `old-id -> new-id` for a renamed step."""
        if self.id_before and self.id_after and self.id_before != self.id_after:
            return f"{self.id_before} -> {self.id_after}"
        return self.id_after or self.id_before or ""


class ModuleDiff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: str = Field(description="ref of the first module (id@version)")
    after: str
    before_hash: str = ""
    after_hash: str = ""
    module_fields_changed: list[str] = Field(default_factory=list)
    added: list[StepDiff] = Field(default_factory=list)
    removed: list[StepDiff] = Field(default_factory=list)
    changed: list[StepDiff] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list, description="ids of steps that are the same in both")
    steps_before: int = 0
    steps_after: int = 0
    total_minutes_before: float = 0.0
    total_minutes_after: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.module_fields_changed)


def diff_modules(a: LearningModule, b: LearningModule) -> ModuleDiff:
    """What changed from module `a` to module `b`."""
    pairs, only_a, only_b = _match_steps(a.steps, b.steps)
    changed: list[StepDiff] = []
    unchanged: list[str] = []
    for old, new, matched_by in pairs:
        fields = _changed_fields(old, new)
        if fields or old.id != new.id:
            changed.append(_step_diff("changed", old, new, fields, matched_by))
        else:
            unchanged.append(new.id)
    return ModuleDiff(
        before=a.ref,
        after=b.ref,
        before_hash=a.content_hash,
        after_hash=b.content_hash,
        module_fields_changed=[f for f in MODULE_FIELDS if getattr(a, f) != getattr(b, f)],
        added=[_step_diff("added", None, s) for s in only_b],
        removed=[_step_diff("removed", s, None) for s in only_a],
        changed=changed,
        unchanged=unchanged,
        steps_before=len(a.steps),
        steps_after=len(b.steps),
        total_minutes_before=a.total_minutes,
        total_minutes_after=b.total_minutes,
    )


def _match_steps(before: list[Step], after: list[Step]) -> tuple[list[tuple[Step, Step, str]], list[Step], list[Step]]:
    """(matched pairs in `after` order, steps only in `before`, steps only in `after`)."""
    after_ids = {s.id for s in after}
    by_id = {s.id: s for s in before}
    pairs = [(by_id[s.id], s, "id") for s in after if s.id in by_id]
    left = [s for s in before if s.id not in after_ids]
    right = [s for s in after if s.id not in by_id]
    for old, new, how in _rename_pairs(left, right):
        pairs.append((old, new, how))
        left.remove(old)
        right.remove(new)
    position = {s.id: i for i, s in enumerate(after)}
    pairs.sort(key=lambda pair: position[pair[1].id])
    return pairs, left, right


def _rename_pairs(left: list[Step], right: list[Step]) -> list[tuple[Step, Step, str]]:
    """Greedy best-first pairing of unmatched steps by title similarity or identical content."""
    candidates = []
    for i, old in enumerate(left):
        for j, new in enumerate(right):
            if old.content == new.content:
                candidates.append((2.0, i, j, "content"))
                continue
            ratio = SequenceMatcher(None, old.title.lower(), new.title.lower()).ratio()
            if ratio >= TITLE_SIMILARITY:
                candidates.append((ratio, i, j, "title"))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_left: set[int] = set()
    used_right: set[int] = set()
    result = []
    for _, i, j, how in candidates:
        if i not in used_left and j not in used_right:
            used_left.add(i)
            used_right.add(j)
            result.append((left[i], right[j], how))
    return result


def _changed_fields(old: Step, new: Step) -> list[str]:
    return [f for f in STEP_FIELDS if getattr(old, f) != getattr(new, f)]


def _step_diff(
    status: Literal["added", "removed", "changed"],
    old: Step | None,
    new: Step | None,
    fields: list[str] | None = None,
    matched_by: str | None = None,
) -> StepDiff:
    changed_fields = list(fields or [])
    if old is not None and new is not None and old.id != new.id:
        changed_fields.insert(0, "id")
    return StepDiff(
        status=status,
        id_before=old.id if old else None,
        id_after=new.id if new else None,
        title_before=old.title if old else None,
        title_after=new.title if new else None,
        minutes_before=old.minutes if old else None,
        minutes_after=new.minutes if new else None,
        changed_fields=changed_fields,
        matched_by=matched_by,  # type: ignore[arg-type]
    )
