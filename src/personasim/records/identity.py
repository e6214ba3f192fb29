"""Unit identity: a unit's id and the content fingerprints of its persona and module."""

from __future__ import annotations

from personasim.hashing import canonical_json, content_hash
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona


def persona_fingerprint(persona: Persona) -> str:
    return persona.content_hash or content_hash(canonical_json(persona.model_dump(mode="json")))


def module_fingerprint(module: LearningModule) -> str:
    return module.content_hash or content_hash(canonical_json(module.model_dump(mode="json")))


def unit_id_for(persona: Persona, module: LearningModule, sample: int) -> str:
    raw = f"{persona.id}__{module.id}@{module.version}__s{sample}"
    return "".join(c if c.isalnum() or c in "._@-" else "-" for c in raw)
