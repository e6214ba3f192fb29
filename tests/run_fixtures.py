"""A synthetic but realistic run folder, built from the real models and written by results.py.

Six Stage 3 personas walk through two versions of the LOTUS module (v2 engages them more);
scores, engagement and misunderstandings vary by persona, step, sample and version from a
seeded generator, so the folder is the same on every call with the same arguments.
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

from personasim.analysis.results import (
    GradeFile,
    Manifest,
    RunPaths,
    results_frame,
    save_grades,
    write_manifest,
    write_results,
)
from personasim.inputs.module import LearningModule, Step
from personasim.inputs.persona_parser import load_personas
from personasim.records.grades import Evidence, Grade, JudgeSample
from personasim.records.statements import learner_statements
from personasim.records.transcript import (
    Barrier,
    EndReflection,
    ReflectionTurn,
    StepReaction,
    Transcript,
    Turn,
    save_transcript,
)
from personasim.records.usage import Usage

PERSONAS = [
    ("p17-assistant-director-of-finance", "Assistant Director of Finance"),
    ("p18-primary-care-practice-manager", "Primary Care Practice Manager"),
    ("p19-information-governance-lead", "Information Governance Lead"),
    ("p20-primary-care-operations-lead-icb", "Primary Care Operations Lead (ICB)"),
    ("p21-chief-allied-health-professional", "Chief Allied Health Professional"),
    ("p22-specialist-doctor-in-dermatology", "Specialist Doctor in Dermatology"),
]
STEPS = ["fairness-and-compassion-defined", "gmc-good-medical-practice-2024", "what-regional-leaders-told-us",
         "the-lotus-steps", "the-triage-template", "lessons-learnt"]  # fmt: skip
CRITERIA = [
    ("gap-01", "gaps", "judge", "Does the module help this learner close the gap: influencing across functions?"),
    ("gap-02", "gaps", "judge", "Does the module help this learner close the gap: reading investigation data?"),
    ("misunderstanding-01", "misunderstandings", "judge",
     'Potential misunderstanding: "Compassion means avoiding accountability". Did it surface, and was it corrected?'),
    ("competency-01", "competencies", "judge", "Does the learner show progress on: Build relationships (Stage 3)?"),
    ("fit-time", "fit", "time_fit", "Does the module fit the 5-6 hours a week this learner has?"),
    ("fit-abandonment", "fit", "abandonment", "Does the learner carry on to the end?"),
    ("lens-power", "power", "judge", "Does the module engage with the power this learner holds and lacks?"),
    ("lens-difference", "difference", "judge", "Does it engage with difference and identity?"),
    ("lens-inclusion", "inclusion", "judge", "Does it support inclusive practice in this learner's setting?"),
    ("lens-transformational", "transformational", "judge", "Does it invite critical reflection on assumptions?"),
]  # fmt: skip
MISUNDERSTANDINGS = [
    "I think a just culture means nobody is ever held to account",
    "Is the triage template a disciplinary tool?",
    "I assumed WRES metrics only apply to medical staff",
    "Does compassion mean I should delay an investigation?",
]
POINTS = {
    "fairness-and-compassion-defined": ["fairness is about process as much as outcome",
                                        "compassion and accountability can sit together",
                                        "people notice how they were treated long after the verdict"],
    "gmc-good-medical-practice-2024": ["the GMC now expects leaders to act on unfair treatment",
                                       "speaking up is framed as a professional duty",
                                       "the standard covers how we treat colleagues, not just patients"],
    "what-regional-leaders-told-us": ["staff from ethnic minorities are referred to investigation more often",
                                      "investigations drag on and harm everyone involved",
                                      "managers rarely get training before running a case"],
    "the-lotus-steps": ["listen first, then optimise the process", "the four questions slow a rushed decision down",
                        "utilising learning matters more than finding someone to blame"],
    "the-triage-template": ["a risk rating decides whether a formal route is needed at all",
                            "most concerns can be resolved informally and quickly",
                            "the template makes the decision visible and reviewable"],
    "lessons-learnt": ["pilots cut the number of formal investigations", "boards need to see the data every quarter",
                       "the call to action asks each of us to change one habit"],
}  # fmt: skip
ANGLES = {
    "p17": ["for my finance team at month end", "when I sit on a disciplinary panel", "in budget-holder conversations"],
    "p18": ["in a practice of twelve staff", "when a receptionist gets a complaint", "with partners who hire and fire"],
    "p19": ["when a data breach lands on my desk", "in our incident reviews", "for the IG team I manage"],
    "p20": ["across forty practices in the ICB", "in contract meetings with PCNs", "when we commission services"],
    "p21": ["for therapists on the wards", "in my professional leadership role", "with AHP leads who report to me"],
    "p22": ["in clinic, where I see the impact on doctors", "as an SAS doctor often overlooked",
            "in job planning and rota disputes"],
}  # fmt: skip
OPENERS = ["What stayed with me:", "My main point:", "I took away that", "The key message for me:", "Honestly,",
           "What I noticed is that"]  # fmt: skip
LANDS = {
    True: ["This is close to a case I handled last year.", "Useful: I can picture using it on Monday.",
           "It names something I have seen but never said out loud.", "Feels practical and fair."],
    False: ["Feels distant from my day-to-day.", "Too much policy, not enough of what to do.",
            "I was skimming by the end of this part.", "Hard to see how this fits my setting."],
}  # fmt: skip
BARRIERS = [
    ("time", "month-end and clinics leave little room"),
    ("relevance", "examples are all from acute trusts"),
    ("safety_to_speak", "unsure it is safe to raise this locally"),
    ("format", "long slides, no activity"),
]


REPO = Path(__file__).resolve().parents[1]
PLANNED_MINUTES = {"the-triage-template": 20}  # every other step: 10 (learners say 10-30)


def _reaction(rng: random.Random, pid: str, step: str, level: float, inject: str | None,
              degenerate: bool, repeat: str | None = None) -> StepReaction:  # fmt: skip
    if degenerate:  # what a weak model does: the same answer, the same scores, every step
        return StepReaction(takeaway="This step is relevant to my role.", how_it_lands="It lands well for me.",
                            relevance=4, engagement=4, what_i_would_do="Apply it.", misunderstandings=[],
                            questions=[], barriers=[], would_continue=True, continue_reason="It is relevant.",
                            minutes_spent=10)  # fmt: skip
    engagement = max(1, min(5, round(level + rng.uniform(-1, 1))))
    relevance = max(1, min(5, round(level + rng.uniform(-1.2, 0.8))))
    confused = [m for m in MISUNDERSTANDINGS if rng.random() < 0.3][:2]
    if repeat:
        confused.append(repeat)
    if inject:
        confused.append(inject[:200])
    angle = rng.choice(ANGLES[pid[:3]])
    kind, detail = rng.choice(BARRIERS)
    return StepReaction(
        takeaway=f"{rng.choice(OPENERS)} {rng.choice(POINTS[step])}, {angle}.",
        how_it_lands=f"{rng.choice(LANDS[engagement >= 3])} I read it {rng.choice(ANGLES[pid[:3]])}.",
        relevance=relevance, engagement=engagement,
        what_i_would_do=rng.choice(["Try the four questions in my next case review.", "Ask HR for our referral data.",
                                    "Nothing yet; I need an example first.", "Share the template with my deputy."]),
        misunderstandings=confused,
        questions=["How would this work in a small practice?"] if rng.random() < 0.5 else [],
        barriers=[Barrier(kind=kind, detail=detail)] if rng.random() < 0.7 else [],
        would_continue=engagement >= 2, continue_reason="Worth my time so far." if engagement >= 2 else "Lost me here.",
        minutes_spent=rng.choice([10, 15, 20, 30]),
    )  # fmt: skip


def make_transcript(run_id: str, persona: tuple[str, str], version: str, sample: int, *, base: float,
                    rng: random.Random, inject: str | None = None, degenerate: bool = False,
                    steps: list[str] | None = None, repeat: str | None = None) -> Transcript:  # fmt: skip
    pid, title = persona
    turns = []
    for i, step in enumerate(steps or STEPS, start=1):
        level = base + (0.4 * i / len(STEPS) if version == "v2" else -0.5 * i / len(STEPS))
        reaction = _reaction(rng, pid, STEPS[i - 1], level, inject if i == 2 else None, degenerate, repeat)
        usage = Usage(prompt_tokens=1800 + 300 * i, completion_tokens=260, cached_tokens=1500 if i > 1 else 0)
        turns.append(Turn(step_id=step, step_index=i, reaction=reaction, user_prompt=f"Step {i}: {step} ...",
                          raw_text=reaction.model_dump_json(), usage=usage, model="gpt-4o-mini"))  # fmt: skip
    abandoned = next((t.step_id for t in turns if not t.reaction.would_continue), None)
    reflection = EndReflection(what_changed=inject or "I will ask 'what happened' before 'who did it'.",
                               what_was_missing="Examples from primary care.", would_recommend=base > 3,
                               recommend_reason="Practical, if long.")  # fmt: skip
    return Transcript(
        run_id=run_id, unit_id=f"{pid}__lotus@{version}__s{sample}", persona_id=pid,
        persona_title=title + (inject or ""), persona_hash="ph-" + pid[:3], module_id="lotus", module_version=version,
        module_title="Embedding Compassion and Fairness in NHS Investigations", module_hash=f"mh-{version}",
        sample=sample, model="gpt-4o-mini", system_prompt=f"You are the {title}. This is a role-play." + (inject or ""),
        turns=turns, first_abandoned_step=abandoned, duration_s=42.0 + sample,
        reflection=ReflectionTurn(reflection=reflection, user_prompt="Look back", raw_text="{}", model="gpt-4o-mini"),
    )  # fmt: skip


def _verdict(score: int) -> str:
    return "met" if score >= 4 else "partly met" if score == 3 else "not met"


def make_grades(t: Transcript, *, rng: random.Random, shift: float, inject: str | None = None,
                judge_samples: int = 2) -> GradeFile:  # fmt: skip
    grades = []
    said = list(learner_statements(t).values())
    for n, (cid, lens, grader, text) in enumerate(CRITERIA):
        score = float(max(1, min(5, round(3 + shift + rng.uniform(-1.4, 1.4)))))
        cited = said[n % len(said)]
        quotes = [Evidence(id=cited.id, text=cited.text)]
        if rng.random() < 0.1 and score >= 4:  # the judge scores high on nothing it can cite
            quotes = []
        rationale = f"The learner's answers on {lens} show {'clear' if score >= 4 else 'little'} movement."
        if inject and n == 0:
            rationale = inject
        second = max(1, int(score) - (rng.random() < 0.3))  # the judge's repeat sometimes scores one lower
        samples = [JudgeSample(sample_index=0, verdict=_verdict(int(score)), score=int(score), rationale=rationale),
                   JudgeSample(sample_index=1, verdict=_verdict(second), score=second, rationale=rationale)]  # fmt: skip
        judged = grader == "judge"
        if judge_samples == 1:
            samples = samples[:1]
        elif judged:
            score = (score + second) / 2
        grades.append(Grade(
            unit_id=t.unit_id, criterion_id=cid, criterion_text=text + (inject if inject and n == 1 else ""), lens=lens,
            grader=grader, verdict=_verdict(int(score)) if judged else None, score=score, threshold=3.0,
            passed=score >= 3, rationale=rationale, evidence=quotes if judged else [], samples=samples if judged else [],
            judge_samples=len(samples) if judged else 0,
            score_sd=statistics.stdev([s.score for s in samples]) if judged and len(samples) > 1 else None,
            score_min=float(min(s.score for s in samples)) if judged else None,
            score_max=float(samples[0].score) if judged else None,
            usage=Usage(prompt_tokens=2400, completion_tokens=120, cached_tokens=2000), model="gpt-4o-mini",
        ))  # fmt: skip
    return GradeFile(unit_id=t.unit_id, grades=grades, judge_samples=judge_samples)


def synthetic_module(version: str, renames: dict[str, str] | None = None, inject: str | None = None) -> LearningModule:
    """The module the synthetic transcripts walk through: STEPS, with planned minutes; `renames` gives
    some steps a new id in this version (the title stays, so `modules diff` pairs them by title)."""
    renames = renames or {}
    steps = [Step(id=renames.get(sid, sid), title=sid.replace("-", " ").capitalize() + (inject or ""),
                  content=f"The {sid} step.",
                  minutes=PLANNED_MINUTES.get(sid, 10)) for sid in STEPS]  # fmt: skip
    return LearningModule(id="lotus", title="Embedding Compassion and Fairness in NHS Investigations" + (inject or ""),
                          version=version, steps=steps, content_hash=f"mh-{version}")  # fmt: skip


def write_inputs(run_dir: Path, versions: tuple[str, ...], personas: int,
                 renames: dict[str, str] | None = None, inject: str | None = None) -> None:  # fmt: skip
    """An `inputs.json` as a run writes one: the seed persona files and the synthetic modules."""
    wanted = {pid for pid, _ in PERSONAS[:personas]}
    found = [p for p in load_personas([REPO / "personas"]) if p.id in wanted]
    modules = [synthetic_module(v, renames if v != versions[0] else None, inject) for v in versions]
    data = {"version": 2, "personas": [p.model_dump(mode="json") for p in found],
            "modules": [m.model_dump(mode="json") for m in modules]}  # fmt: skip
    (run_dir / "inputs.json").write_text(json.dumps(data), encoding="utf-8")


def build_run(root: Path, run_id: str = "run-synthetic", *, versions: tuple[str, ...] = ("v1", "v2"),
              samples: int = 2, personas: int = 6, seed: int = 7, inject: str | None = None,
              degenerate: bool = False, inputs: bool = False, renames: dict[str, str] | None = None,
              repeat: str | None = None, judge_samples: int = 2) -> Path:  # fmt: skip
    """Write results/<run_id>/ under `root` and return the folder. `inputs` also writes `inputs.json`
    (the seed personas' files and the synthetic modules); `renames` renames steps in every version but
    the first; `repeat` is a misunderstanding the first persona raises at every step."""
    rng = random.Random(seed)
    paths = RunPaths(root / run_id)
    units = []
    for p_index, persona in enumerate(PERSONAS[:personas]):
        base = 2.6 + 0.35 * p_index
        for version in versions:
            for sample in range(samples):
                steps = [(renames or {}).get(s, s) for s in STEPS] if version != versions[0] else None
                t = make_transcript(run_id, persona, version, sample, base=base, rng=rng, inject=inject,
                                    degenerate=degenerate, steps=steps,
                                    repeat=repeat if p_index == 0 else None)  # fmt: skip
                g = make_grades(t, rng=rng, shift=(0.9 if version == "v2" else 0.0) + (p_index - 2.5) * 0.2,
                                inject=inject, judge_samples=judge_samples)  # fmt: skip
                save_transcript(t, paths.transcript(t.unit_id))
                save_grades(paths.grades(t.unit_id), g)
                units.append((t, g))
    frame = results_frame(units)
    write_results(paths.root, frame)
    usage = {"total": {"prompt_tokens": 912_000, "completion_tokens": 41_000, "cached_tokens": 640_000}}
    write_manifest(paths.root, Manifest(
        run_id=run_id, package_version="0.1.0", model="gpt-4o-mini", seed=0,
        settings={"base_url": "https://api.openai.com/v1", "temperature": 0.0, "seed": 0, "max_tokens": 1024},
        samples=samples, judge_samples=judge_samples, sequential=False,
        personas={p: "ph-" + p[:3] for p, _ in PERSONAS[:personas]},
        modules={f"lotus@{v}": f"mh-{v}" for v in versions},
        prompt_hashes={"judge_system.md.j2": "abc123"}, started_at="2025-11-20T10:00:00+00:00",
        finished_at="2025-11-20T10:14:00+00:00", duration_s=840.0, units={t.unit_id: "finished" for t, _ in units},
        usage=usage, cost_usd=0.1734, rows=len(frame),
    ))  # fmt: skip
    if inputs:
        write_inputs(paths.root, versions, personas, renames, inject)
    return paths.root
