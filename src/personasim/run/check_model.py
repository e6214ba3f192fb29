"""`personasim check-model`: a small fixed protocol that measures whether a model can stand in for
these learners and judge them, written as a scorecard (`check.json`).

Two runs through the ordinary pipeline (`run/session.py`), as subfolders of the check's folder: the
module as given (or a slice of its steps) and, when an ablation is named, a copy without the steps
that serve the named learning outcomes. Then one judge call per transcript of the first run: which
of the personas (profiles, shuffled under letters) wrote this anonymised transcript? The checks
themselves are pure functions in `analysis/model_checks.py`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from personasim import __version__
from personasim.analysis import model_checks as mc
from personasim.errors import InputError, PersonasimError
from personasim.fileio import atomic_write_text
from personasim.hashing import canonical_json, content_hash
from personasim.inputs.criteria import _dedupe, derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.roles import build_role_clients
from personasim.llm.settings import sample_options
from personasim.llm.structured import complete_structured
from personasim.prompts import brief
from personasim.records.scorecard import CheckResult, Scorecard
from personasim.records.statements import Statement, learner_statements
from personasim.records.transcript import Transcript
from personasim.run.config import RunConfig
from personasim.run.runner import RunOutcome
from personasim.run.session import OpenedRun, execute

CHECK_FILE = "check.json"


@dataclass
class Ablation:
    """Remove the steps that serve these learning outcomes; these lenses should then drop."""

    outcomes: list[str]
    expect_lenses: list[str] = field(default_factory=list)


def slice_steps(module: LearningModule, spec: str | None) -> LearningModule:
    """`spec`: 1-based step numbers and ranges, e.g. "1-3,9-11"; None keeps every step."""
    if not spec:
        return module
    wanted: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if not match:
            raise InputError(None, None, f"--steps {spec!r}: use step numbers and ranges, e.g. 1-3,9-11")
        low, high = int(match[1]), int(match[2] or match[1])
        wanted += range(low, high + 1)
    if not wanted or max(wanted) > len(module.steps) or min(wanted) < 1:
        raise InputError(None, None, f"--steps {spec!r}: {module.ref} has steps 1-{len(module.steps)}")
    steps = [module.steps[i - 1] for i in dict.fromkeys(wanted)]
    return _variant(module, steps, f"steps-{spec.replace(',', '+').replace(' ', '')}")


def ablate_module(module: LearningModule, outcomes: list[str]) -> LearningModule:
    """The module without the steps whose `serves:` names any of `outcomes` (e.g. LO4, LO5)."""
    wanted = {o.strip().casefold() for o in outcomes if o.strip()}
    kept = [s for s in module.steps if not any(_outcome(x) in wanted for x in s.serves)]
    if len(kept) == len(module.steps):
        raise InputError(None, None, f"--ablate {','.join(outcomes)}: no step of {module.ref} serves it")
    if not kept:
        raise InputError(None, None, f"--ablate {','.join(outcomes)}: every step of {module.ref} serves it")
    return _variant(module, kept, "without-" + "+".join(o.strip() for o in outcomes))


def _outcome(serves: str) -> str:
    return serves.split(":", 1)[0].strip().casefold()


def _variant(module: LearningModule, steps: list[Any], label: str) -> LearningModule:
    variant = module.model_copy(update={"steps": steps, "version": f"{module.version}-{label}", "content_hash": ""})
    return variant.model_copy(update={"content_hash": content_hash(canonical_json(variant.model_dump(mode="json")))})


# --------------------------------------------------------------------------- persona identification


def profile_summary(persona: Persona) -> str:
    """What the judge reads about each candidate persona."""
    cdp = persona.competency_development_profile
    parts = [
        persona.title,
        brief(persona.role_context, 160),
        "Time: " + (cdp.contextual_constraints.time_available or "not stated"),
        "Identity: " + brief("; ".join(persona.diversity_profile.protected_characteristics.identity), 120),
        "Power: " + brief(persona.diversity_profile.experience_of_power.power_position, 120),
        "Gaps: " + brief("; ".join(persona.gaps), 160),
        "May misunderstand: " + brief("; ".join(persona.misunderstandings), 160),
    ]
    return " | ".join(p for p in parts if p and not p.endswith(": "))


def anonymise(statements: list[Statement], persona: Persona) -> list[Statement]:
    """The statements without the persona's job title, id or number."""
    names = [persona.title, persona.id, f"p{persona.number}", f"persona {persona.number}"]
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n), re.IGNORECASE)
    return [Statement(s.id, s.label, pattern.sub("[removed]", s.text)) for s in statements]


def _guess_model(labels: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        "PersonaGuess",
        __config__=ConfigDict(extra="forbid"),
        reasoning=(str, Field(max_length=400, description="what in the statements points to the profile")),
        profile=(Literal[labels], Field(description="the label of one profile")),  # type: ignore[valid-type]
    )


def lettered(personas: list[Persona]) -> list[tuple[str, Persona]]:
    """Profiles under letters, in an order that does not follow the personas' own (their content hash)."""
    order = sorted(personas, key=lambda p: content_hash(p.content_hash or p.id))
    return [(chr(ord("A") + i), p) for i, p in enumerate(order)]


async def identify(opened: OpenedRun, transcripts: list[Transcript]) -> list[tuple[str, str]]:
    """(true persona, the persona the judge named) for each finished transcript."""
    labelled = lettered(opened.personas)
    profiles = [(label, profile_summary(p)) for label, p in labelled]
    by_label = {label: p.id for label, p in labelled}
    by_id = {p.id: p for p in opened.personas}
    answer_model = _guess_model(tuple(by_label))
    clients = build_role_clients(opened.roles)
    guesses = []
    try:
        for t in transcripts:
            shown = anonymise(list(learner_statements(t).values()), by_id[t.persona_id])
            messages = [{"role": "user", "content": opened.prompts.judge_identify(shown, profiles)}]
            options = sample_options(opened.roles.judge, t.sample)
            completion = await complete_structured(
                clients.judge, messages, options, answer_model, max_reasks=opened.roles.judge.max_reasks
            )
            guesses.append((t.persona_id, by_label[completion.parsed.profile]))
    finally:
        await clients.aclose()
    return guesses


# --------------------------------------------------------------------------- the protocol


async def run_protocol(original: OpenedRun, ablated: OpenedRun | None, ablation: Ablation | None,
                       thresholds: dict[str, float]) -> tuple[list[CheckResult], dict[str, str]]:  # fmt: skip
    """Both runs, the identification calls, then every check."""
    first = await execute(original)
    second = await execute(ablated) if ablated is not None else None
    transcripts = _finished(first)
    guesses = await identify(original, transcripts)
    return _checks(original, first, second, ablation, guesses, transcripts, thresholds), _runs(first, second)


def _finished(outcome: RunOutcome) -> list[Transcript]:
    from personasim.records.transcript import load_transcript

    folder = outcome.run_dir / "transcripts"
    done = [u for u, status in outcome.manifest.units.items() if status == "finished"]
    return [load_transcript(folder / f"{unit}.json") for unit in done]


def _runs(first: RunOutcome, second: RunOutcome | None) -> dict[str, str]:
    return {"original": str(first.run_dir), **({"ablated": str(second.run_dir)} if second else {})}


def _checks(opened: OpenedRun, first: RunOutcome, second: RunOutcome | None, ablation: Ablation | None,
            guesses: list[tuple[str, str]], transcripts: list[Transcript],
            t: dict[str, float]) -> list[CheckResult]:  # fmt: skip
    from personasim.analysis.compare import compare

    comparison = None
    # The judge's rows only: deterministic graders (time fit) move with the removed minutes by
    # arithmetic, which says nothing about whether the model reads content.
    judged_a, judged_b = (f[f["grader"] == "judge"] for f in (first.frame, second.frame if second else first.frame))
    if second is not None and len(judged_a) and len(judged_b):
        comparison = compare(judged_a, judged_b, label_a="original", label_b="ablated", seed=0)
    expect = ablation.expect_lenses if ablation else []
    texts = [(tr.persona_id, " ".join(tr.learner_texts())) for tr in transcripts]
    return [
        mc.persona_fidelity(guesses, len(opened.personas), t),
        mc.style_baseline(texts),
        mc.sensitivity(comparison, expect, t),
        mc.specificity(comparison, second.frame if second else None, expect, t),
        mc.stability(first.frame, t),
        mc.judge_reliability(first.frame, t, opened.roles.judge.temperature),
        mc.surfacing(_voiced(opened, transcripts), t),
        mc.instruction_following(transcripts, first.frame, t),
    ]


def _voiced(opened: OpenedRun, transcripts: list[Transcript]) -> dict[str, tuple[int, int]]:
    """Per persona: its potential misunderstandings that the module's text touches (gap analysis),
    and how many of those the learner voiced in any sample (the surfacing grader, item by item)."""
    from personasim.analysis.gaps import coverage_for_run
    from personasim.grading.deterministic import grade_misunderstanding_coverage

    module = opened.modules[0]
    coverage = coverage_for_run(opened.personas, [module])
    per_persona: dict[str, list[tuple[str, bool, bool]]] = {}
    for persona in opened.personas:
        found = coverage.find(persona.id, module.ref)
        criteria = [c for c in derive_criteria(persona, module) if c.lens == "misunderstandings"]
        touched = {c.id: bool(hit.addressed) for c in criteria if found and (hit := _hit(found, c.id))}
        surfaced = next(c for c in derive_criteria(persona, module) if c.grader == "misunderstanding_coverage")
        items = []
        for criterion, (_, item) in zip(criteria, _dedupe(persona.misunderstandings)):
            alone = persona.model_copy(deep=True)
            alone.competency_development_profile.potential_misunderstandings = [item]
            mine = [tr for tr in transcripts if tr.persona_id == persona.id]
            voiced = any((grade_misunderstanding_coverage(surfaced, tr, alone, module).score or 1) > 1 for tr in mine)
            items.append((item, touched.get(criterion.id, False), voiced))
        per_persona[persona.id] = items
    return mc.voiced_counts(per_persona)


def _hit(found: Any, criterion_id: str) -> Any:
    return next((c for c in found.criteria if c.criterion_id == criterion_id), None)


def scorecard(
    original: OpenedRun, checks: list[CheckResult], runs: dict[str, str], config: dict[str, Any]
) -> Scorecard:
    return Scorecard(
        verdict=mc.verdict(checks),  # type: ignore[arg-type]
        checks=checks,
        roles=original.roles.summary(),
        config=config,
        hashes={
            "personas": {p.id: p.content_hash for p in original.personas},
            "modules": {m.ref: m.content_hash for m in original.modules},
            "prompts": original.prompts.template_hashes(),
        },
        runs=runs,
        package_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_scorecard(card: Scorecard, folder: Path) -> Path:
    path = folder / CHECK_FILE
    atomic_write_text(path, card.model_dump_json(indent=2) + "\n")
    return path


def latest_scorecard(
    out_dir: Path, roles_summary: dict[str, Any], run_dir: Path | None = None
) -> tuple[Path, Scorecard] | None:
    """The newest check.json under `out_dir` made with the same learner and judge models, or the one
    the run's suite records (`check_model: {scorecard: ...}`)."""
    found = []
    candidates = list(Path(out_dir).glob(f"*/{CHECK_FILE}"))
    suite_card = suite_scorecard(run_dir) if run_dir is not None else None
    for path in candidates + ([suite_card] if suite_card else []):
        try:
            card = Scorecard.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            continue
        if _same_roles(card.roles, roles_summary):
            found.append((card.created_at, path, card))
    if not found:
        return None
    _, path, card = max(found, key=lambda f: f[0])
    return path, card


def suite_scorecard(run_dir: Path) -> Path | None:
    """The scorecard a run's suite records for its model roles (None: no suite, or none recorded)."""
    from personasim.run.state import read_run_config
    from personasim.run.suite import load_suite

    try:
        suite_path = read_run_config(run_dir).suite
        suite = load_suite(suite_path) if suite_path else None
    except (PersonasimError, OSError):
        return None
    if suite is None or not suite.check_model.scorecard:
        return None
    path = suite.root / suite.check_model.scorecard
    return path if path.is_file() else None


def manifest_roles(manifest: Any) -> dict[str, dict[str, Any]]:
    """A run manifest's roles, as a scorecard records them (what shapes the answers)."""
    from personasim.llm.settings import GENERATION_FIELDS

    learner = dict(getattr(manifest, "settings", None) or {"model": getattr(manifest, "model", None)})
    judge = dict(getattr(manifest, "judge_settings", None) or {})
    judge = judge or {**learner, "model": getattr(manifest, "judge_model", None) or learner.get("model")}
    return {
        role: {k: v for k, v in s.items() if k in GENERATION_FIELDS}
        for role, s in (("learner", learner), ("judge", judge))
    }


def _same_roles(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same learner model and the same judge model (a check's repeats sample at a temperature
    a single run need not share)."""
    return all(a.get(role, {}).get("model") == b.get(role, {}).get("model") for role in ("learner", "judge"))


def check_config(
    config: RunConfig, module: LearningModule, steps: str | None, ablation: Ablation | None
) -> dict[str, Any]:
    return {
        "module": module.ref,
        "steps": steps or "all",
        "samples": config.samples,
        "judge_samples": config.judge_samples,
        "history": config.history,
        "ablation": None
        if ablation is None
        else {"remove": ablation.outcomes, "expect_lenses": ablation.expect_lenses},
    }


# --------------------------------------------------------------------------- from the command's options


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def run_check(*, suite: Path | None, personas: list[Path] | None, only: list[str] | None, module: Path | None,
              steps: str | None, samples: int | None, judge_samples: int | None, ablate: str | None,
              expect_lenses: str | None, backend: str | None, run_id: str | None, out: Path,
              fail_under: str | None, llm: Any) -> tuple[Scorecard, Path]:  # fmt: skip
    """Resolve the check from flags and a suite, run the protocol, write check.json."""
    import asyncio

    from personasim.records.scorecard import FAIL_UNDER
    from personasim.run.config import Given, resolve_run
    from personasim.run.runner import new_run_id
    from personasim.run.session import load_inputs, open_run
    from personasim.run.suite import CheckModelSpec, load_suite

    if fail_under not in (None, *FAIL_UNDER):
        raise InputError(None, None, f"--fail-under is fit or caution, not {fail_under!r}")
    loaded = load_suite(suite) if suite else None
    spec = loaded.check_model if loaded is not None else CheckModelSpec()
    unknown = sorted(set(spec.thresholds) - set(mc.THRESHOLDS))
    if unknown:
        raise InputError(
            suite, None, f"check_model.thresholds: unknown {', '.join(unknown)} (known: {', '.join(mc.THRESHOLDS)})"
        )
    if module is None and spec.module and loaded is not None:
        module = loaded.root / spec.module
    persona_paths = personas or ([] if loaded else [Path("personas")])
    chosen, modules = load_inputs(
        loaded, persona_paths or None, [module] if module else None, only or spec.personas or None
    )
    if not modules:
        raise InputError(None, None, "name the module to check with: --module FILE (or --suite)")
    base = slice_steps(modules[0], steps or spec.steps)
    outcomes = _split(ablate) or spec.ablate
    ablation = Ablation(outcomes, _split(expect_lenses) or spec.expect_lenses) if outcomes else None
    check_id = run_id or f"check-{new_run_id()}"
    run = {"samples": samples or spec.samples, "judge_samples": judge_samples or spec.judge_samples, "backend": backend}
    given = Given(learner=llm.learner, judge=llm.judge, run=run, config_file=llm.config, suite=loaded)
    config = resolve_run(given, run_id="original", out_dir=out / check_id)
    thresholds = {**mc.THRESHOLDS, **spec.thresholds}
    with open_run(config, chosen, [base], suite=loaded) as opened:
        second = None
        if ablation is not None:
            ablated_config = opened.config.model_copy(update={"run_id": "ablated"})
            second = dataclasses.replace(
                opened, config=ablated_config, modules=[ablate_module(base, ablation.outcomes)]
            )
        checks, runs = asyncio.run(run_protocol(opened, second, ablation, thresholds))
        card = scorecard(opened, checks, runs, {**check_config(opened.config, base, steps or spec.steps, ablation),
                                                "personas": [p.id for p in chosen], "thresholds": thresholds})  # fmt: skip
    return card, write_scorecard(card, out / check_id)
