"""Render the prompt templates (jinja2 is imported only here).

Templates are versioned by content hash: `template_hashes()` goes into every transcript, result
row and manifest, so a result always names the exact prompt text that produced it.
By default they are the templates packaged with personasim (`personasim.prompt_templates`, built
from the repository's `prompts/`); a folder of one's own is used only when given (`--prompts DIR`,
`prompts:` in a suite), never picked up from the current directory.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import Any

import jinja2

from personasim.errors import InputError
from personasim.hashing import canonical_json, content_hash
from personasim.inputs.criteria import Criterion
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.records.statements import Statement, end_statements, step_statements
from personasim.records.transcript import Transcript

PERSONA_SYSTEM = "persona_system.md.j2"
STEP_TURN = "step_turn.md.j2"
END_REFLECTION = "end_reflection.md.j2"
JUDGE_SYSTEM = "judge_system.md.j2"
JUDGE_CRITERION = "judge_criterion.md.j2"
JUDGE_IDENTIFY = "judge_identify.md.j2"
STEP_RECAP = "step_recap.md.j2"
TEMPLATE_NAMES = (PERSONA_SYSTEM, STEP_TURN, STEP_RECAP, END_REFLECTION, JUDGE_SYSTEM, JUDGE_CRITERION, JUDGE_IDENTIFY)
JUDGE_STEP_CHARS = 400


def default_prompts_dir() -> Path:
    """The packaged templates' folder (a wheel's, or the checkout's `prompts/` in an editable install)."""
    return Path(str(importlib.resources.files("personasim.prompt_templates")))


def brief(text: str, limit: int = 200) -> str:
    """Collapse whitespace and cut at a word boundary: long persona paragraphs stay bounded."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = " ".join(item.split()).casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


class Prompts:
    """The templates of one prompts folder, loaded with StrictUndefined (a typo is an error)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_prompts_dir()
        missing = [n for n in TEMPLATE_NAMES if not (self.directory / n).is_file()]
        if missing:
            raise InputError(self.directory, None, f"prompts folder lacks {', '.join(missing)}")
        # Read once: what is rendered is exactly what is hashed, even if a file changes mid-run.
        self._sources = {n: (self.directory / n).read_text(encoding="utf-8") for n in TEMPLATE_NAMES}
        self._hashes = {n: content_hash(text) for n, text in self._sources.items()}
        self._env = jinja2.Environment(
            loader=jinja2.DictLoader(self._sources),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        self._env.filters["brief"] = brief
        self._env.filters["unique"] = _unique
        for name in TEMPLATE_NAMES:  # a syntax error shows up before any model call
            try:
                self._env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise InputError(self.directory / name, exc.lineno, f"template error: {exc.message}") from exc

    def template_hashes(self) -> dict[str, str]:
        return dict(self._hashes)

    def prompt_hash(self) -> str:
        """One hash over all templates: the `prompt_hash` column of a result row."""
        return content_hash(canonical_json(self._hashes))

    def render(self, name: str, **context: Any) -> str:
        try:
            return self._env.get_template(name).render(**context).strip() + "\n"
        except jinja2.UndefinedError as exc:
            raise InputError(self.directory / name, None, f"template uses an unknown value: {exc.message}") from exc

    def persona_system(self, persona: Persona) -> str:
        return self.render(PERSONA_SYSTEM, persona=persona)

    def step_turn(self, persona: Persona, module: LearningModule, index: int) -> str:
        """The user turn for step `index` (1-based)."""
        step = module.steps[index - 1]
        return self.render(STEP_TURN, persona=persona, module=module, step=step, index=index, total=len(module.steps))

    def step_recap(self, module: LearningModule, index: int) -> str:
        """What stands in for step `index` in the history once answered, with `history="recap"`."""
        step = module.steps[index - 1]
        return self.render(STEP_RECAP, module=module, step=step, index=index, total=len(module.steps))

    def end_reflection(self, persona: Persona, module: LearningModule) -> str:
        return self.render(END_REFLECTION, persona=persona, module=module)

    def judge_system(
        self, transcript: Transcript, persona: Persona, module: LearningModule, step_chars: int = JUDGE_STEP_CHARS
    ) -> str:
        steps = {s.id: s for s in module.steps}
        statements = {t.step_index: step_statements(t.step_index, t.reaction) for t in transcript.turns}
        closing = end_statements(transcript.reflection.reflection) if transcript.reflection else []
        return self.render(
            JUDGE_SYSTEM,
            transcript=transcript,
            persona=persona,
            module=module,
            steps=steps,
            step_chars=step_chars,
            statements=statements,
            closing=closing,
        )

    def judge_criterion(self, criterion: Criterion) -> str:
        return self.render(JUDGE_CRITERION, criterion=criterion)

    def judge_identify(self, statements: list[Statement], profiles: list[tuple[str, str]]) -> str:
        """check-model's fidelity question: which of `profiles` (label, summary) wrote these
        (anonymised) statements."""
        return self.render(JUDGE_IDENTIFY, statements=statements, profiles=profiles)


def template_hashes(directory: str | Path | None = None) -> dict[str, str]:
    return Prompts(directory).template_hashes()
