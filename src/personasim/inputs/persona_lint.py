"""Lint for persona documents: problems worth fixing that do not stop a document from parsing.

Checks: everything the parser warns about, duplicate items within one list, stray escapes such as
`\\'` (left over from copying out of code or JSON), empty sections and values, and required
sections that are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from personasim.inputs.persona import Persona
from personasim.inputs.persona_fields import ParseWarning
from personasim.inputs.persona_markdown import Entry, norm_name, render, section_as_entry, split_lines
from personasim.inputs.persona_parser import PersonaSource, parse_files, read_persona_file, split_personas

# Each path names a section/subsection/key, read the same way the parser reads them.
REQUIRED_PARTS: tuple[tuple[str, ...], ...] = (
    ("Role Context",),
    ("Diversity Profile",),
    ("Learning Readiness",),
    ("Competency Development Profile",),
    ("Competency Development Profile", "Potential Misunderstandings"),
    ("Competency Development Profile", "Contextual Constraints", "Time Available"),
    ("Peer Learning Context",),
    ("Developmental Trajectory",),
)

# A backslash before a quote is never needed in markdown, and before a letter it is not an
# escape at all (a literal backslash shows, usually a leaked `\n`).
_STRAY_ESCAPE = re.compile(r"\\['\"A-Za-z]")
_CODE_SPAN = re.compile(r"`[^`]*`")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def lint_personas(paths: Iterable[Path | str]) -> list[Finding]:
    """Findings for every persona file in `paths`, sorted by file and line.

    A file that does not parse raises `InputError`, as it would for `load_personas`.
    """
    findings: list[Finding] = []
    for file, result in parse_files(paths):
        path = str(file)
        text = read_persona_file(file)
        findings += [_from_warning(warning) for warning in result.warnings]
        findings += stray_escapes(text, path)
        for source in split_personas(text, path, warnings=[]):
            findings += lint_persona(source, path)
    return sorted(findings, key=lambda f: (f.path, f.line))


def validation_findings(text: str, path: str, warnings: Iterable[ParseWarning]) -> list[Finding]:
    """What `personas validate` and `run` report for one parsed file: the parser's warnings (unknown
    sections and keys, with a suggestion for a near-miss) and missing required sections."""
    findings = [_from_warning(warning) for warning in warnings]
    for source in split_personas(text, path, warnings=[]):
        label = f"persona {source.number}"
        findings += missing_parts(section_as_entry(source.section), path, label, source.section.line)
    return sorted(findings, key=lambda f: f.line)


def persona_warnings(paths: Iterable[Path | str], personas: Iterable[Persona] | None = None) -> list[Finding]:
    """`validation_findings` for every persona file in `paths`; with `personas`, only the findings
    inside those personas' sections (and the files' own, before any persona)."""
    findings: list[Finding] = []
    starts: set[tuple[str, int]] = set()
    for file, result in parse_files(paths):
        findings += validation_findings(read_persona_file(file), str(file), result.warnings)
        starts |= {(p.source.path, p.source.line) for p in result.personas if p.source}
    if personas is None:
        return findings
    wanted = {(p.source.path, p.source.line) for p in personas if p.source} | {None}
    return [f for f in findings if _owner(f, starts) in wanted]


def _owner(finding: Finding, starts: set[tuple[str, int]]) -> tuple[str, int] | None:
    """The persona (file, heading line) a finding lies in: the last heading at or above it."""
    above = [start for start in starts if start[0] == finding.path and start[1] <= finding.line]
    return max(above, key=lambda start: start[1]) if above else None


def lint_persona(source: PersonaSource, path: str) -> list[Finding]:
    persona = section_as_entry(source.section)
    label = f"persona {source.number}"
    return (
        duplicate_items(persona, path)
        + empty_parts(persona, path)
        + missing_parts(persona, path, label, source.section.line)
    )


def _from_warning(warning: ParseWarning) -> Finding:
    return Finding(warning.path, warning.line, "parse-warning", warning.message)


def stray_escapes(text: str, path: str) -> list[Finding]:
    findings = []
    in_fence = False
    for number, line in enumerate(split_lines(text), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        found = [] if in_fence else _STRAY_ESCAPE.findall(_CODE_SPAN.sub("", line))
        if found:
            shown = ", ".join(dict.fromkeys(found))
            findings.append(Finding(path, number, "stray-escape", f"stray escape {shown}: remove the backslash"))
    return findings


def duplicate_items(entry: Entry, path: str) -> list[Finding]:
    """The same item twice in one list (compared ignoring case and spacing)."""
    findings = []
    first_line: dict[str, int] = {}
    for child in entry.children:
        if child.kind == "bullet" and (text := " ".join(render(child).casefold().split())):
            if text in first_line:
                findings.append(
                    Finding(
                        path,
                        child.line,
                        "duplicate-item",
                        f"duplicate item {render(child)!r} in {entry.key or 'list'} "
                        f"(first at line {first_line[text]}): remove one",
                    )
                )
            first_line.setdefault(text, child.line)
        findings += duplicate_items(child, path)
    return findings


def empty_parts(entry: Entry, path: str) -> list[Finding]:
    """Headings with nothing under them, and `**Key:**` with no value."""
    findings = []
    for child in entry.children:
        if child.kind == "heading" and not child.children:
            findings.append(
                Finding(path, child.line, "empty-section", f"section {child.key!r} is empty: fill it in or remove it")
            )
        elif child.key and child.kind != "heading" and not child.text and not child.children:
            findings.append(Finding(path, child.line, "empty-value", f"{child.key!r} has no value: fill it in"))
        findings += empty_parts(child, path)
    return findings


def missing_parts(persona: Entry, path: str, label: str, line: int) -> list[Finding]:
    findings = []
    for required in REQUIRED_PARTS:
        if _find(persona, required) is None:
            findings.append(Finding(path, line, "missing-section", f"{label} has no {' / '.join(required)!r}: add it"))
    return findings


def _find(entry: Entry, names: tuple[str, ...]) -> Entry | None:
    for name in names:
        wanted = norm_name(name)
        entry = next((c for c in entry.children if c.key and norm_name(c.key) == wanted), None)
        if entry is None:
            return None
    return entry
