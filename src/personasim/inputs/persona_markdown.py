"""Markdown reading for persona documents: a heading tree, and entries (bullets, paragraphs) per section.

Deliberately small. It knows ATX headings, `-`/`*`/`+`/numbered bullets nested at any indent,
`**Key:** value` bullets and paragraphs, plain paragraphs, `---` rules and fenced code (so a `#` in
code is not a heading). Everything else is text. The persona parser and the linter both read
documents through this module, so they agree on what a section and a list item are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET = re.compile(r"^([ \t]*)(?:[-*+]|[0-9]{1,9}[.)])(?:[ \t]+(.*))?$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_KEYED = re.compile(r"^\*\*(?P<key>[^*]+?)(?::\s*\*\*|\*\*\s*:)\s*(?P<value>.*)$", re.DOTALL)
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
# Deeper nesting than this is kept flat: it only happens in broken files, and unbounded depth
# would make rendering recurse without limit.
MAX_NESTING = 40

EntryKind = Literal["bullet", "paragraph", "heading"]


@dataclass
class Section:
    """A heading and everything under it up to the next heading of the same or a higher level."""

    title: str
    level: int
    line: int
    heading: str = ""
    body: list[tuple[int, str]] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)

    def source_lines(self) -> list[tuple[int, str]]:
        """Body and subsections (with their heading lines) in document order, without this heading."""
        lines = list(self.body)
        for sub in self.subsections:
            lines.append((sub.line, sub.heading))
            lines.extend(sub.source_lines())
        return lines

    def walk(self) -> Iterator[Section]:
        yield self
        for sub in self.subsections:
            yield from sub.walk()


@dataclass
class Entry:
    """One list item, paragraph or heading. `key` is set for `**Key:** value` and for headings."""

    line: int
    text: str
    key: str | None = None
    kind: EntryKind = "bullet"
    children: list[Entry] = field(default_factory=list)
    raw: list[str] = field(default_factory=list, repr=False)
    indent: int = field(default=0, repr=False)


def split_lines(text: str) -> list[str]:
    """Lines without their endings; CRLF and CR count as one line break, as in editors."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def clean_title(title: str) -> str:
    title = title.strip()
    for marker in ("**", "__"):
        if len(title) > 2 * len(marker) and title.startswith(marker) and title.endswith(marker):
            title = title[len(marker) : -len(marker)].strip()
    return title


def norm_name(name: str) -> str:
    """Comparable form of a section or key name: case, quotes, punctuation and -ize/-ise ignored."""
    name = unicodedata.normalize("NFKC", name).casefold().translate(_CURLY).replace("&", " and ")
    name = re.sub(r"[^a-z0-9]+", " ", name).strip()
    return name.replace("iz", "is")


def read_sections(lines: list[str]) -> Section:
    """The heading tree of a document; the returned root (level 0) holds text before any heading."""
    root = Section(title="", level=0, line=0)
    stack = [root]
    fence: str | None = None
    for number, text in enumerate(lines, start=1):
        fence, in_code = _track_fence(fence, text)
        match = None if in_code else _HEADING.match(text)
        if match is None:
            stack[-1].body.append((number, text))
            continue
        level = len(match[1])
        section = Section(title=clean_title(match[2] or ""), level=level, line=number, heading=text)
        while stack[-1].level >= level:
            stack.pop()
        stack[-1].subsections.append(section)
        stack.append(section)
    return root


def _track_fence(fence: str | None, text: str) -> tuple[str | None, bool]:
    """(fence still open after this line, whether this line is code)."""
    match = _FENCE.match(text)
    if fence is None:
        return (match[1], True) if match else (None, False)
    if match and match[1][0] == fence[0] and len(match[1]) >= len(fence):
        return None, True
    return fence, True


def section_as_entry(section: Section) -> Entry:
    """A section as an entry: its body entries, then its subsections, as children."""
    children = parse_entries(section.body) + [section_as_entry(sub) for sub in section.subsections]
    return Entry(
        line=section.line,
        text="",
        key=section.title,
        kind="heading",
        children=children,
        raw=[text for _, text in section.source_lines()],
    )


def parse_entries(body: list[tuple[int, str]]) -> list[Entry]:
    """Bullets (nested by indent) and paragraphs of a section body.

    Bullets after a `**Key:**` paragraph belong to it (`**Motivations:**` then a list). Blank lines
    do not end a list; a rule or an unindented paragraph does.
    """
    entries: list[Entry] = []
    open_items: list[Entry] = []
    adopter: Entry | None = None
    paragraph: Entry | None = None
    after_blank = True
    for number, text in body:
        if not text.strip():
            paragraph, after_blank = None, True
            continue
        if _RULE.match(text):
            open_items.clear()
            adopter = paragraph = None
            after_blank = True
            continue
        bullet = _BULLET.match(text)
        new_key = _width(text) == 0 and _KEYED.match(text.strip()) is not None
        if bullet:
            item = _make_entry(number, bullet[2] or "", "bullet", indent=_width(bullet[1]))
            _place_bullet(item, open_items, adopter, entries)
            paragraph = None
        elif open_items and not new_key and (not after_blank or _width(text) > open_items[0].indent):
            _continue_item(open_items, text, after_blank)
        elif paragraph is not None and not new_key:
            paragraph.text = f"{paragraph.text}\n{text.strip()}".strip()
        else:
            paragraph = _make_entry(number, text, "paragraph")
            entries.append(paragraph)
            open_items.clear()
            adopter = paragraph if paragraph.key else None
        after_blank = False
    return entries


def _place_bullet(item: Entry, open_items: list[Entry], adopter: Entry | None, entries: list[Entry]) -> None:
    while open_items and open_items[-1].indent >= item.indent:
        open_items.pop()
    if len(open_items) >= MAX_NESTING:
        open_items.pop()
    parent = open_items[-1] if open_items else adopter
    (parent.children if parent is not None else entries).append(item)
    open_items.append(item)


def _continue_item(open_items: list[Entry], text: str, after_blank: bool) -> None:
    """A wrapped line (or an indented paragraph) belongs to the deepest item it is indented under."""
    target = open_items[-1]
    if after_blank:
        width = _width(text)
        target = next((item for item in reversed(open_items) if item.indent < width), open_items[0])
    separator = "\n" if after_blank else " "
    target.text = f"{target.text}{separator}{text.strip()}".strip()


def _make_entry(number: int, content: str, kind: EntryKind, indent: int = 0) -> Entry:
    content = content.strip()
    keyed = _KEYED.match(content)
    if keyed and keyed["key"].strip():
        return Entry(line=number, text=keyed["value"].strip(), key=keyed["key"].strip(), kind=kind, indent=indent)
    return Entry(line=number, text=content, kind=kind, indent=indent)


def _width(text: str) -> int:
    expanded = text.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def is_rule(text: str) -> bool:
    return _RULE.match(text) is not None


def render(entry: Entry, depth: int = 0) -> str:
    """An entry as plain text: `Key: value`, with children as indented `- ` lines."""
    head = f"{entry.key}: {entry.text}".rstrip() if entry.key else entry.text
    lines = [head] if head else []
    lines += ["  " * (depth + 1) + "- " + render(child, depth + 1) for child in entry.children]
    return "\n".join(lines)


def trimmed_text(lines: list[str]) -> str:
    """Lines joined, without leading/trailing blank lines and trailing `---` rules."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and (not lines[end - 1].strip() or is_rule(lines[end - 1])):
        end -= 1
    return "\n".join(line.rstrip() for line in lines[start:end])
