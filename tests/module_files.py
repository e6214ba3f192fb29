"""Small module and persona files for end-to-end runs that must stay fast."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STEP = """
## {title}
<!-- id: {id}; minutes: {minutes} -->

{content}

### Activity
Map how a concern about a colleague is triaged in your service.
Time: 2 minutes

### Reflection questions
- Who decides whether a concern becomes a formal investigation?
"""


def write_module(folder: Path, version: str, steps: int) -> Path:
    body = "".join(
        STEP.format(
            title=f"Part {i} of the {version} webinar",
            id=f"part-{i}",
            minutes=3 + i,
            content=f"Fair and compassionate investigations, part {i} ({version}): consistent triage and risk rating.",
        )  # fmt: skip
        for i in range(1, steps + 1)
    )
    front = (
        f'---\nid: fairness\ntitle: "Fair investigations"\nversion: {version}\n'
        "target_competencies:\n  - Build relationships (Stage 3)\ndelivery_format: webinar\n---\n"
    )
    path = folder / f"{version}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(front + body, encoding="utf-8")
    return path


def three_seed_personas(folder: Path) -> Path:
    """The seed persona file cut before persona 20: three real personas (17-19)."""
    text = (REPO / "personas" / "stage3-personas.md").read_text(encoding="utf-8")
    path = folder / "personas.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[: text.index("## Persona 20:")], encoding="utf-8")
    return path
