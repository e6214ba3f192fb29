"""The Persona model: a learner profile that mirrors the Stage persona documents.

Parsing lives in `persona_parser.py`, lint in `persona_lint.py`; this file only holds the shape.
Every section of the source document has a field here; anything the parser does not know goes
into `extra` (kept, and reported as a warning), never dropped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceRef(_Model):
    path: str
    line: int = Field(ge=1, description="1-based line of the persona's `## Persona N:` heading")


class Stage(_Model):
    name: str = Field(description="e.g. 'Stage 3: Senior managers and leaders'")
    number: int | None = None
    description: str = ""


class ProtectedCharacteristics(_Model):
    identity: list[str] = Field(default_factory=list, description="every **Identity:** line, in order")
    relevant_context: str = ""
    other: dict[str, str] = Field(default_factory=dict, description="any other **Key:** in the subsection")


class ExperienceOfPower(_Model):
    minoritised_identities: str = ""
    experienced_barriers: list[str] = Field(default_factory=list)
    experienced_discrimination: list[str] = Field(default_factory=list)
    power_position: str = ""
    other: dict[str, str | list[str]] = Field(default_factory=dict)


class CriticalConsciousness(_Model):
    awareness_of_structural_inequality: str = ""
    experience_challenging_power: str = ""
    recognition_of_privilege: str = ""
    commitment_to_justice: str = ""
    other: dict[str, str | list[str]] = Field(default_factory=dict)


class DiversityProfile(_Model):
    protected_characteristics: ProtectedCharacteristics = Field(default_factory=ProtectedCharacteristics)
    positionality: dict[str, str] = Field(
        default_factory=dict,
        description="key -> value as written, e.g. {'Social Class': ..., 'Disability Experience': ...}",
    )
    experience_of_power: ExperienceOfPower = Field(default_factory=ExperienceOfPower)
    critical_consciousness: CriticalConsciousness = Field(default_factory=CriticalConsciousness)


class LearningReadiness(_Model):
    current_capabilities: list[str] = Field(default_factory=list)
    learning_preferences: list[str] = Field(default_factory=list)
    barriers_to_engagement: list[str] = Field(default_factory=list)
    access_to_learning: list[str] = Field(default_factory=list)


class PriorKnowledge(_Model):
    understands: list[str] = Field(default_factory=list, description="split on top-level commas")
    gaps: list[str] = Field(default_factory=list, description="split on top-level commas")
    understands_text: str = ""
    gaps_text: str = ""


class HoursPerWeek(_Model):
    min: float = Field(ge=0)
    max: float = Field(ge=0)


class ContextualConstraints(_Model):
    time_available: str = ""
    hours_per_week: HoursPerWeek | None = Field(
        default=None, description="parsed from time_available; None when it states no hours"
    )
    system_pressures: str = ""
    support_available: str = ""
    other: dict[str, str | list[str]] = Field(default_factory=dict)


class EvidenceGatheringCapacity(_Model):
    can_demonstrate: list[str] = Field(default_factory=list)
    needs_support: list[str] = Field(default_factory=list)


class CompetencyDevelopmentProfile(_Model):
    target_competencies: list[str] = Field(default_factory=list, description="as written, duplicates kept")
    prior_knowledge: PriorKnowledge = Field(default_factory=PriorKnowledge)
    contextual_constraints: ContextualConstraints = Field(default_factory=ContextualConstraints)
    evidence_gathering_capacity: EvidenceGatheringCapacity = Field(default_factory=EvidenceGatheringCapacity)
    potential_misunderstandings: list[str] = Field(default_factory=list)


class PeerLearningContext(_Model):
    availability: dict[str, str] = Field(default_factory=dict, description="Mentor Access, Peer Groups, ...")
    willingness_to_engage: dict[str, str] = Field(default_factory=dict, description="Comfort, Time Commitment, ...")


class DevelopmentalTrajectory(_Model):
    coming_from: str = ""
    heading_toward: str = ""
    motivations: list[str] = Field(default_factory=list)
    other: dict[str, str | list[str]] = Field(default_factory=dict)


class Persona(_Model):
    id: str = Field(description="stable id: p<number>-<slug of title>, e.g. p17-assistant-director-of-finance")
    number: int
    title: str
    stage: Stage | None = None
    role_context: str = ""
    framework_application: str = ""
    diversity_profile: DiversityProfile = Field(default_factory=DiversityProfile)
    learning_readiness: LearningReadiness = Field(default_factory=LearningReadiness)
    competency_development_profile: CompetencyDevelopmentProfile = Field(default_factory=CompetencyDevelopmentProfile)
    peer_learning_context: PeerLearningContext = Field(default_factory=PeerLearningContext)
    developmental_trajectory: DevelopmentalTrajectory = Field(default_factory=DevelopmentalTrajectory)
    evaluation_criteria: list[str] = Field(default_factory=list, description="explicit `Evaluation Criteria` items")
    extra: dict[str, object] = Field(
        default_factory=dict, description="sections and keys the parser does not know, kept verbatim"
    )
    source: SourceRef | None = None
    content_hash: str = Field(default="", description="content_hash() of this persona's source text")

    # Convenience views used by prompts and criteria.
    @property
    def gaps(self) -> list[str]:
        return self.competency_development_profile.prior_knowledge.gaps

    @property
    def misunderstandings(self) -> list[str]:
        return self.competency_development_profile.potential_misunderstandings

    @property
    def hours_per_week(self) -> HoursPerWeek | None:
        return self.competency_development_profile.contextual_constraints.hours_per_week
