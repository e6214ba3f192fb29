"""The run plan: one unit per persona x module version x sample, each with its criteria, its id
and the config hash that says whether a finished unit can be kept on resume."""

from __future__ import annotations

from dataclasses import dataclass

from personasim.errors import InputError
from personasim.hashing import canonical_json, content_hash
from personasim.inputs.criteria import Criterion, derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.roles import ModelRoles
from personasim.prompts import Prompts
from personasim.records.identity import module_fingerprint, persona_fingerprint, unit_id_for
from personasim.run.config import History


@dataclass
class Unit:
    persona: Persona
    module: LearningModule
    sample: int
    criteria: list[Criterion]
    unit_id: str
    config_hash: str


def config_hash(
    persona: Persona,
    module: LearningModule,
    sample: int,
    criteria: list[Criterion],
    judge_samples: int,
    roles: ModelRoles,
    prompts: Prompts,
    history: History = "full",
) -> str:
    """Everything that shapes a unit's transcript and grades; a change means the unit is redone."""
    # Not base_url: the same model behind another address (a new port) answers the same.
    generation = {
        role: {k: v for k, v in summary.items() if k != "base_url"} for role, summary in roles.summary().items()
    }
    return content_hash(
        canonical_json(
            {
                "persona": persona_fingerprint(persona),
                "module": module_fingerprint(module),
                "sample": sample,
                "criteria": [c.model_dump(mode="json") for c in criteria],
                "judge_samples": judge_samples,
                "history": history,
                "generation": generation,
                "prompts": prompts.template_hashes(),
            }
        )
    )


def plan_units(
    personas: list[Persona],
    modules: list[LearningModule],
    samples: int,
    judge_samples: int,
    roles: ModelRoles,
    prompts: Prompts,
    history: History = "full",
) -> list[Unit]:
    _check_unique([p.id for p in personas], "persona id")
    _check_unique([m.ref for m in modules], "module version")
    units = []
    for persona in personas:
        for module in modules:
            criteria = derive_criteria(persona, module)
            for sample in range(samples):
                digest = config_hash(persona, module, sample, criteria, judge_samples, roles, prompts, history)
                units.append(Unit(persona, module, sample, criteria, unit_id_for(persona, module, sample), digest))
    return units


def _check_unique(names: list[str], what: str) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(None, None, f"duplicate {what}: {', '.join(dupes)}")
