"""The learner's statements, numbered: one id per field per step (`S3.takeaway`, `S3.q1`,
`END.missing`). The judge sees them with their ids and cites ids, never free text, so the evidence
in a grade is the learner's own words by construction."""

from __future__ import annotations

from dataclasses import dataclass

from personasim.records.transcript import EndReflection, StepReaction, Transcript


@dataclass(frozen=True)
class Statement:
    id: str
    label: str  # what the learner was answering, as the judge reads it
    text: str


def step_statements(step_index: int, reaction: StepReaction) -> list[Statement]:
    """One step's statements in the order the judge reads them."""
    s = f"S{step_index}"
    out = [
        Statement(f"{s}.takeaway", "Learner takeaway", reaction.takeaway),
        Statement(f"{s}.lands", "Learner on how it lands", reaction.how_it_lands),
        Statement(f"{s}.do", "Learner would do", reaction.what_i_would_do),
    ]
    out += [Statement(f"{s}.m{n}", "Learner unsure of", m) for n, m in enumerate(reaction.misunderstandings, 1)]
    out += [Statement(f"{s}.q{n}", "Learner question", q) for n, q in enumerate(reaction.questions, 1)]
    out += [Statement(f"{s}.b{n}", f"Learner barrier ({b.kind})", b.detail) for n, b in enumerate(reaction.barriers, 1)]
    verb = "would continue" if reaction.would_continue else "would not continue"
    out.append(Statement(f"{s}.continue", f"Learner {verb}, because", reaction.continue_reason))
    return [st for st in out if st.text.strip()]


def end_statements(reflection: EndReflection) -> list[Statement]:
    verb = "would recommend" if reflection.would_recommend else "would not recommend"
    out = [
        Statement("END.changed", "Learner on what changed", reflection.what_changed),
        Statement("END.missing", "Learner on what was missing", reflection.what_was_missing),
        Statement("END.recommend", f"Learner {verb} it, because", reflection.recommend_reason),
    ]
    return [st for st in out if st.text.strip()]


def learner_statements(transcript: Transcript) -> dict[str, Statement]:
    """Every statement of the transcript by id, in reading order."""
    statements = [st for turn in transcript.turns for st in step_statements(turn.step_index, turn.reaction)]
    if transcript.reflection:
        statements += end_statements(transcript.reflection.reflection)
    return {st.id: st for st in statements}
