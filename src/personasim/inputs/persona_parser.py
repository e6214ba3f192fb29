"""Persona documents (markdown) -> `Persona` models, plus warnings for anything not understood.

A document holds one or more `## Persona N: Title` sections, optionally under `## Stage N: Name`
headings (whose `### Stage Description` is attached to every persona after it). Text before the
first stage or persona (document title, version, purpose) is the document's own and is skipped.
A persona runs to the next level-1/2 heading; its `content_hash` is the hash of that text with
trailing blank lines and `---` rules left out, so separators between personas do not change it.

Bad input raises `InputError` (file:line: what is wrong and what to do); never anything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from personasim.errors import InputError
from personasim.hashing import content_hash
from personasim.inputs.persona import Persona, SourceRef, Stage
from personasim.inputs.persona_fields import Context, ParseWarning, read_persona_fields
from personasim.inputs.persona_markdown import Section, read_sections, section_as_entry, split_lines, trimmed_text

__all__ = [
    "ParseResult",
    "ParseWarning",
    "PersonaSource",
    "find_persona",
    "load_personas",
    "parse_files",
    "parse_personas",
    "persona_files",
    "persona_id",
    "read_persona_file",
    "select_persona",
    "split_personas",
]

_PERSONA_WORD = re.compile(r"^persona\b", re.IGNORECASE)
_PERSONA = re.compile(r"^persona\s+(?P<number>[0-9]+)\b\s*[:.)\-–—]?\s*(?P<title>.*)$", re.IGNORECASE)
_NUMBERED_PERSONA = re.compile(r"^persona\s+[0-9]+\s*(?:[:.)\-–—]|$)", re.IGNORECASE)
_STAGE = re.compile(r"^stage\s+(?P<number>[0-9]+)\b", re.IGNORECASE)
_HEADING_HINT = "write it as '## Persona 17: Job title'"


@dataclass
class ParseResult:
    personas: list[Persona]
    warnings: list[ParseWarning]


@dataclass
class PersonaSource:
    """One persona's section of a document, before its fields are read."""

    number: int
    title: str
    section: Section
    stage: Stage | None
    text: str


def persona_id(number: int, title: str) -> str:
    return f"p{number}-{slugify(title)}"


def slugify(text: str) -> str:
    text = re.sub(r"['\u2018\u2019`]", "", text.casefold())
    return re.sub(r"[^0-9a-z]+", "-", text).strip("-")


# -- one document -------------------------------------------------------------------------------


def parse_personas(text: str, path: str) -> ParseResult:
    """Every persona in one markdown document; `path` is only used in messages and `source`."""
    warnings: list[ParseWarning] = []
    personas = [_build_persona(source, path, warnings) for source in split_personas(text, path, warnings)]
    _check_unique_ids(personas)
    return ParseResult(personas=personas, warnings=warnings)


def split_personas(text: str, path: str, warnings: list[ParseWarning]) -> list[PersonaSource]:
    """The persona sections of a document, each with the stage it sits under."""
    lines = split_lines(text)
    root = read_sections(lines)
    _reject_misplaced_persona_headings(root, path)
    sources: list[PersonaSource] = []
    stage: Stage | None = None
    for section in _top_sections(root):
        if section.level == 2 and _PERSONA_WORD.match(section.title):
            sources.append(_persona_source(section, stage, path))
        elif section.level == 2 and _STAGE.match(section.title):
            stage = _read_stage(section, path, warnings)
        elif sources:
            message = f"section {section.title!r} is outside any persona and is ignored"
            warnings.append(ParseWarning(path, section.line, message))
    if not sources:
        raise InputError(path, 1, f"no personas found: each persona needs a heading; {_HEADING_HINT}")
    return sources


def _top_sections(root: Section) -> Iterator[Section]:
    """Level-2 sections, and any other section not inside one, in document order."""
    for section in root.subsections:
        yield section
        if section.level < 2:
            yield from _top_sections(section)


def _reject_misplaced_persona_headings(root: Section, path: str) -> None:
    for section in root.walk():
        if section.level not in (0, 2) and _NUMBERED_PERSONA.match(section.title):
            raise InputError(
                path,
                section.line,
                f"persona heading {section.heading.strip()!r} is level {section.level}; "
                f"persona headings are level 2: '## {section.title}'",
            )


def _persona_source(section: Section, stage: Stage | None, path: str) -> PersonaSource:
    match = _PERSONA.match(section.title)
    if match is None:
        raise InputError(path, section.line, f"persona heading {section.title!r} has no number; {_HEADING_HINT}")
    title = match["title"].strip()
    if not slugify(title):
        raise InputError(path, section.line, f"persona {match['number']} has no title; {_HEADING_HINT}")
    lines = [section.heading] + [text for _, text in section.source_lines()]
    return PersonaSource(int(match["number"]), title, section, stage, trimmed_text(lines) + "\n")


def _read_stage(section: Section, path: str, warnings: list[ParseWarning]) -> Stage:
    match = _STAGE.match(section.title)
    parts = [trimmed_text([text for _, text in section.body])]
    for sub in section.subsections:
        if sub.title.casefold() == "stage description":
            parts.append(trimmed_text([text for _, text in sub.source_lines()]))
        else:
            message = f"section {sub.title!r} under {section.title!r} is not a persona; ignored"
            warnings.append(ParseWarning(path, sub.line, message))
    return Stage(
        name=section.title,
        number=int(match["number"]) if match else None,
        description="\n\n".join(part for part in parts if part),
    )


def _build_persona(source: PersonaSource, path: str, warnings: list[ParseWarning]) -> Persona:
    ctx = Context(path=path, warnings=warnings)
    fields = read_persona_fields(section_as_entry(source.section), ctx)
    try:
        return Persona(
            id=persona_id(source.number, source.title),
            number=source.number,
            title=source.title,
            stage=source.stage,
            extra=ctx.extra,
            source=SourceRef(path=path, line=source.section.line),
            content_hash=content_hash(source.text),
            **fields,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        message = f"persona {source.number}: {where}: {problem['msg']}"
        raise InputError(path, source.section.line, message) from None


def _check_unique_ids(personas: Iterable[Persona]) -> None:
    first_seen: dict[str, Persona] = {}
    for persona in personas:
        earlier = first_seen.setdefault(persona.id, persona)
        if earlier is not persona and persona.source and earlier.source:
            raise InputError(
                persona.source.path,
                persona.source.line,
                f"duplicate persona id {persona.id!r} (first at {earlier.source.path}:{earlier.source.line}); "
                "give each persona its own number and title",
            )


# -- files and folders ----------------------------------------------------------------------------


def persona_files(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and the `*.md` files of folders (sorted), each file once; raises if a path
    is missing or a folder has no `*.md` files."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.md") if p.is_file())
            if not found:
                raise InputError(path, None, "folder holds no *.md persona files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(path, None, "no such file or folder")
    first_by_target: dict[Path, Path] = {}
    for file in files:
        first_by_target.setdefault(file.resolve(), file)
    return list(first_by_target.values())


def read_persona_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def parse_files(paths: Iterable[Path | str]) -> list[tuple[Path, ParseResult]]:
    """Each file's parse result; raises on the first bad file or an id used in two files."""
    results = [(file, parse_personas(read_persona_file(file), str(file))) for file in persona_files(paths)]
    _check_unique_ids(persona for _, result in results for persona in result.personas)
    return results


def load_personas(paths: Iterable[Path | str]) -> list[Persona]:
    """All personas in the given files and folders, in file order."""
    return [persona for _, result in parse_files(paths) for persona in result.personas]


def find_persona(paths: Iterable[Path | str], persona_id: str) -> Persona:
    """The persona with this id; `p17` or `17` also work when only one persona has that number."""
    paths = list(paths)
    return select_persona(load_personas(paths), persona_id, where=", ".join(str(p) for p in paths))


def select_persona(personas: list[Persona], persona_id: str, where: str = "the personas given") -> Persona:
    """`find_persona` over personas already loaded (no re-reading of their files)."""
    exact = [p for p in personas if p.id == persona_id]
    if exact:
        return exact[0]
    wanted = persona_id.casefold().removeprefix("p")
    by_number = [p for p in personas if wanted.isdigit() and p.number == int(wanted)]
    if len(by_number) == 1:
        return by_number[0]
    known = ", ".join(p.id for p in personas)
    raise InputError(None, None, f"no persona {persona_id!r} in {where}; known ids: {known}")
