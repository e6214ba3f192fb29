"""Persona lint: exact findings on the seed, and each check on small documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from personasim.errors import InputError
from personasim.inputs.persona_lint import Finding, lint_personas, persona_warnings, validation_findings
from personasim.inputs.persona_parser import load_personas

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "personas" / "stage3-personas.md"
UNSEEN = REPO / "tests" / "fixtures" / "personas" / "stage4-persona-23.md"

COMPLETE_PERSONA = """\
## Persona 5: Ward Manager

### Role Context

I run a surgical ward.

### Diversity Profile

#### Protected Characteristics
- **Identity:** Man, age 40

### Learning Readiness

#### Current Capabilities
- Rota planning
- Rota  PLANNING

### Competency Development Profile

#### Contextual Constraints
- **Time Available:** 2 hours weekly

#### Potential Misunderstandings
- Thinking rotas are neutral

### Peer Learning Context

#### Availability
- **Mentor Access:** None yet

### Developmental Trajectory

**Coming From:** Senior nurse.
"""


def lint_text(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return [(f.line, f.code) for f in lint_personas([path])]


def test_seed_findings_are_exactly_the_known_irregularities():
    findings = lint_personas([SEED])
    assert [(f.line, f.code) for f in findings] == [
        (60, "stray-escape"),
        (103, "duplicate-item"),
        (639, "duplicate-item"),
    ]
    assert [str(f) for f in findings] == [
        f"{SEED}:60: stray escape \\': remove the backslash",
        f"{SEED}:103: duplicate item 'Build relationships (Stage 3)' in Target Competencies "
        "(first at line 101): remove one",
        f"{SEED}:639: duplicate item 'Build relationships (Stage 3)' in Target Competencies "
        "(first at line 635): remove one",
    ]


def test_folder_and_parse_warnings_become_findings():
    findings = lint_personas([UNSEEN.parent])
    assert [(Path(f.path).name, f.line, f.code) for f in findings] == [
        ("stage4-persona-23.md", 33, "parse-warning"),
        ("stage4-persona-23.md", 93, "parse-warning"),
        ("stage4-persona-23.md", 134, "parse-warning"),
    ]


def test_duplicates_ignore_case_and_spacing_but_not_list_boundaries(tmp_path):
    assert lint_text(tmp_path, COMPLETE_PERSONA) == [(16, "duplicate-item")]
    nested = COMPLETE_PERSONA.replace("- Rota  PLANNING", "  - Nights\n  - nights\n- Nights")
    assert lint_text(tmp_path, nested) == [(17, "duplicate-item")]


def test_missing_required_sections_are_named_at_the_persona_heading(tmp_path):
    clean = COMPLETE_PERSONA.replace("- Rota  PLANNING\n", "")
    assert lint_text(tmp_path, clean) == []
    without = (
        clean.replace("#### Potential Misunderstandings\n- Thinking rotas are neutral\n", "")
        .replace("- **Time Available:** 2 hours weekly\n", "- **System Pressures:** Winter\n")
        .replace("### Peer Learning Context\n", "### Peer Support\n")
    )
    path = tmp_path / "doc.md"
    path.write_text(without, encoding="utf-8")
    findings = lint_personas([path])
    missing = [f for f in findings if f.code == "missing-section"]
    assert [(f.line, f.message) for f in missing] == [
        (1, "persona 5 has no 'Competency Development Profile / Potential Misunderstandings': add it"),
        (1, "persona 5 has no 'Competency Development Profile / Contextual Constraints / Time Available': add it"),
        (1, "persona 5 has no 'Peer Learning Context': add it"),
    ]
    assert [f.code for f in findings if f.code != "missing-section"] == ["parse-warning"]  # the unknown section


def test_every_required_section_missing(tmp_path):
    findings = lint_personas([_write(tmp_path, "## Persona 6: Porter\n\n### Framework Application\nUsed it.\n")])
    assert len([f for f in findings if f.code == "missing-section"]) == 8


def test_empty_sections_and_values(tmp_path):
    inserted = "#### Prior Knowledge\n- **Gaps:**\n\n#### Evidence Gathering Capacity\n\n#### Contextual Constraints\n"
    text = COMPLETE_PERSONA.replace("- Rota  PLANNING\n", "").replace("#### Contextual Constraints\n", inserted)
    assert lint_text(tmp_path, text) == [(20, "empty-value"), (22, "empty-section")]


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("- It\\'s fine", True),
        ('- She said \\"no\\"', True),
        ("- A leaked\\nnewline", True),
        ("- Literal \\* asterisk is a real markdown escape", False),
        ("- Code `C:\\new` is code", False),
        ("- Plain text", False),
    ],
)
def test_stray_escapes(tmp_path, line, found):
    text = COMPLETE_PERSONA.replace("- Rota  PLANNING", line)
    assert lint_text(tmp_path, text) == ([(16, "stray-escape")] if found else [])


def test_finding_prints_file_line_message():
    finding = Finding("a.md", 3, "empty-section", "section 'X' is empty")
    assert str(finding) == "a.md:3: section 'X' is empty"
    assert finding.to_dict() == {"path": "a.md", "line": 3, "code": "empty-section", "message": "section 'X' is empty"}


def test_broken_document_raises_input_error(tmp_path):
    with pytest.raises(InputError, match=r"doc\.md:1: persona heading 'Persona X: A' has no number"):
        lint_personas([_write(tmp_path, "## Persona X: A\n")])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_near_miss_heading_or_key_gets_a_suggestion(tmp_path):
    text = COMPLETE_PERSONA.replace("### Learning Readiness", "### Learning Readyness").replace(
        "**Time Available:**", "**Time Availble:**"
    )
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    messages = [f.message for f in lint_personas([path])]
    assert any(m.endswith("did you mean 'Learning Readiness'?") for m in messages if "'Learning Readyness'" in m)
    assert any(m.endswith("did you mean 'Time Available'?") for m in messages if "'Time Availble'" in m)
    assert "persona 5 has no 'Learning Readiness': add it" in messages


def test_persona_warnings_keep_to_the_personas_loaded(tmp_path):
    second = COMPLETE_PERSONA.replace("Persona 5: Ward Manager", "Persona 6: Matron").replace(
        "### Peer Learning Context", "### Peer Lerning Context"
    )
    path = tmp_path / "doc.md"
    path.write_text(COMPLETE_PERSONA + "\n" + second, encoding="utf-8")
    everyone = persona_warnings([path])
    assert {f.code for f in everyone} == {"parse-warning", "missing-section"}
    personas = load_personas([path])
    assert persona_warnings([path], [p for p in personas if p.number == 5]) == []
    assert persona_warnings([path], [p for p in personas if p.number == 6]) == everyone
    assert validation_findings(path.read_text(), str(path), []) == [f for f in everyone if f.code == "missing-section"]
