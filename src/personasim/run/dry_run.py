"""What a planned run would ask, without asking anything (`run --dry-run`): calls per role, the
rounds a batch run takes, estimated tokens, and the cost live and at batch prices.

Tokens are estimated from the rendered prompts (about 4 characters a token) and an assumed answer
length per role; the conversation grows by each answer, and a judge call reads the whole
walkthrough. Re-asks are not foreseen: each wave of them adds a round and its calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.costs import PriceTable
from personasim.prompts import JUDGE_STEP_CHARS, Prompts
from personasim.records.usage import Usage
from personasim.run.config import RunConfig

CHARS_PER_TOKEN = 4
ASSUMED_ANSWER_TOKENS = {"learner": 250, "judge": 150}
JUDGE_TEMPLATE_CHARS = 3000  # the judge's rubric, instructions and learner profile


@dataclass
class Estimate:
    units: int
    calls: dict[str, int] = field(default_factory=lambda: {"learner": 0, "judge": 0})
    prompt_tokens: dict[str, int] = field(default_factory=lambda: {"learner": 0, "judge": 0})
    completion_tokens: dict[str, int] = field(default_factory=lambda: {"learner": 0, "judge": 0})
    rounds: int = 0
    cost_live: float | None = None
    cost_batch: float | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def _tokens(chars: int) -> int:
    return max(1, chars // CHARS_PER_TOKEN)


def _walkthrough(persona: Persona, module: LearningModule, prompts: Prompts, recap: bool) -> tuple[int, int]:
    """(prompt characters over every learner call, characters a judge call reads before its criterion)."""
    answer = ASSUMED_ANSWER_TOKENS["learner"] * CHARS_PER_TOKEN
    history = len(prompts.persona_system(persona))
    total = 0
    for index in range(1, len(module.steps) + 1):
        turn = prompts.step_turn(persona, module, index)
        total += history + len(turn)
        history += (len(prompts.step_recap(module, index)) if recap else len(turn)) + answer
    reflection = prompts.end_reflection(persona, module)
    total += history + len(reflection)
    return total, _judge_system_chars(module, answer)


def _judge_system_chars(module: LearningModule, answer: int) -> int:
    """What a judge call reads before its criterion: the rubric and profile (about as long as the
    template), each step's title and its text cut to JUDGE_STEP_CHARS, and every answer."""
    steps = sum(len(step.title) + min(len(step.content), JUDGE_STEP_CHARS) for step in module.steps)
    return JUDGE_TEMPLATE_CHARS + steps + (len(module.steps) + 1) * answer


def estimate_run(
    config: RunConfig, personas: list[Persona], modules: list[LearningModule], prompts: Prompts
) -> Estimate:
    estimate = Estimate(units=len(personas) * len(modules) * config.samples)
    judged_any = False
    for persona in personas:
        for module in modules:
            learner_chars, walkthrough = _walkthrough(persona, module, prompts, config.history == "recap")
            judged = [c for c in derive_criteria(persona, module) if c.grader == "judge"]
            judged_any = judged_any or bool(judged)
            judge_calls = len(judged) * config.judge_samples
            for _ in range(config.samples):
                estimate.calls["learner"] += len(module.steps) + 1
                estimate.prompt_tokens["learner"] += _tokens(learner_chars)
                estimate.calls["judge"] += judge_calls
                estimate.prompt_tokens["judge"] += sum(_tokens(walkthrough + len(c.text)) for c in judged) * (
                    config.judge_samples
                )
            estimate.rounds = max(estimate.rounds, len(module.steps) + 1)
    estimate.rounds += 1 if judged_any else 0
    for role in ("learner", "judge"):
        estimate.completion_tokens[role] = estimate.calls[role] * ASSUMED_ANSWER_TOKENS[role]
    _cost(estimate, config)
    return estimate


def _cost(estimate: Estimate, config: RunConfig) -> None:
    table = config.learner_settings().price_table
    if table is None:
        return
    prices = PriceTable.from_file(table)
    roles = config.roles()
    usage = {role: Usage(prompt_tokens=estimate.prompt_tokens[role], completion_tokens=estimate.completion_tokens[role])
             for role in ("learner", "judge")}  # fmt: skip
    models = {"learner": roles.learner.model, "judge": roles.judge.model}

    def total(table: PriceTable) -> float | None:
        parts = [table.cost(models[role], usage[role]) for role in ("learner", "judge")]
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)

    estimate.cost_live, estimate.cost_batch = total(prices), total(prices.batch_prices())
