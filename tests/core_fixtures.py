"""Hand-built persona and module objects for the core-job tests (no parser or loader needed)."""

from __future__ import annotations

from personasim.inputs.module import LearningModule, Step
from personasim.inputs.persona import (
    CompetencyDevelopmentProfile,
    ContextualConstraints,
    CriticalConsciousness,
    DiversityProfile,
    ExperienceOfPower,
    HoursPerWeek,
    LearningReadiness,
    Persona,
    PriorKnowledge,
    ProtectedCharacteristics,
    Stage,
)


def make_persona(
    number: int = 17,
    title: str = "Assistant Director of Finance",
    hours: tuple[float, float] | None = (5, 6),
    evaluation_criteria: list[str] | None = None,
) -> Persona:
    """A persona shaped like persona 17 of the seed document."""
    time_text = f"{hours[0]:g}-{hours[1]:g} hours weekly for development" if hours else "varies"
    return Persona(
        id=f"p{number}-test",
        number=number,
        title=title,
        stage=Stage(name="Stage 3: Senior managers and leaders", number=3),
        role_context="I oversee all aspects of financial management functions at an acute trust.",
        diversity_profile=DiversityProfile(
            protected_characteristics=ProtectedCharacteristics(
                identity=["British Indian (Punjabi Sikh) man, age 47, heterosexual, turban-wearing"]
            ),
            experience_of_power=ExperienceOfPower(
                minoritised_identities="British Sikh man in NHS leadership, visible religious minority",
                experienced_barriers=["Excluded from some informal networking (pub culture)"],
                power_position="Significant organisational power as assistant director of finance.",
            ),
            critical_consciousness=CriticalConsciousness(
                awareness_of_structural_inequality="Deep awareness of religious discrimination and hate crime."
            ),
        ),
        learning_readiness=LearningReadiness(
            learning_preferences=["Learning through observation and shadowing", "Mentoring relationships"],
            barriers_to_engagement=["Limited time with work and parenting responsibilities"],
        ),
        competency_development_profile=CompetencyDevelopmentProfile(
            target_competencies=[
                "Build relationships (Stage 3)",
                "Allocate and optimise the use of resources (Stage 3)",
                "Build relationships (Stage 3)",
            ],
            prior_knowledge=PriorKnowledge(
                gaps=["Building strategic relationships beyond finance", "influencing across functions"]
            ),
            contextual_constraints=ContextualConstraints(
                time_available=time_text,
                hours_per_week=HoursPerWeek(min=hours[0], max=hours[1]) if hours else None,
            ),
            potential_misunderstandings=[
                "Thinking finance leadership is purely technical",
                "Believing collaboration means compromise of financial rigour",
                "Assuming networking is about socialising not strategic relationships",
            ],
        ),
        evaluation_criteria=evaluation_criteria or [],
        content_hash=f"sha256:persona{number:011d}",
    )


def make_module(version: str = "v1", steps: int = 3, minutes: float | None = 20) -> LearningModule:
    return LearningModule(
        id="lotus",
        title="Compassionate and fair investigations",
        version=version,
        target_competencies=["Build relationships (Stage 3)"],
        steps=[
            Step(
                id=f"step-{i}",
                title=f"Step {i} title",
                content=f"Content of step {i} in {version}: compassion in investigations.",
                activity=f"Activity {i}",
                reflection_questions=[f"Question {i}?"],
                minutes=minutes,
            )
            for i in range(1, steps + 1)
        ],
        content_hash=f"sha256:module-{version}",
    )
