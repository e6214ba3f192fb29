"""module_loader / module_steps: parsing hand-written module files, and every validation error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from personasim.errors import InputError
from personasim.hashing import content_hash
from personasim.inputs.module_loader import (
    check_modules,
    find_module,
    load_module,
    load_modules,
    module_files,
    parse_ref,
    version_key,
)
from personasim.inputs.module_steps import estimate_minutes, slugify

FIXTURES = Path(__file__).parent / "fixtures" / "modules"
DEMO_V1 = FIXTURES / "valid" / "demo" / "v1.md"

HEADER = """\
---
id: m
title: M
version: v1
target_competencies:
  - Build relationships (Stage 3)
learning_outcomes:
  - "LO1: Outcome one."
---
"""


def write(tmp_path: Path, text: str, name: str = "m.md") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- a valid module -----------------------------------------------------------------------------


def test_demo_front_matter() -> None:
    module = load_module(DEMO_V1)
    assert (module.id, module.version, module.ref) == ("demo", "v1", "demo@v1")
    assert module.title == "Demo module"
    assert module.stage == "Stage 3: Senior managers and leaders"
    assert module.target_competencies == ["Build relationships (Stage 3)"]
    assert module.learning_outcomes == ["LO1: Say what the demo is about.", "LO2: Read a small table."]
    assert module.estimated_minutes == 7
    assert module.delivery_format == "webinar"
    assert module.path == str(DEMO_V1)


def test_demo_steps() -> None:
    steps = load_module(DEMO_V1).steps
    assert [s.id for s in steps] == ["welcome-purpose", "table", "closing"]
    assert [s.line for s in steps] == [19, 35, 49]
    welcome = steps[0]
    assert welcome.title == "Welcome & purpose"
    assert welcome.content == "The demo opens here.\n\nIt has two paragraphs."
    assert welcome.activity == "Write one line about your own service.\nTime: 1 minute"
    assert welcome.reflection_questions == ["What do you expect?", "What would change in your own team?"]
    assert (welcome.minutes, welcome.serves) == (2, ["LO1"])
    assert steps[1].serves == ["LO2", "Build relationships (Stage 3)"]
    assert steps[2].activity == "" and steps[2].reflection_questions == []


def test_code_fence_and_subheadings_stay_in_content() -> None:
    table = load_module(DEMO_V1).steps[1]
    assert "## not a step heading (inside a code fence)" in table.content
    assert "<!-- minutes: -1 -->" in table.content
    assert "#### A sub-heading stays in the content" in table.content
    assert table.content.startswith("| Metric | 2021 | 2022 |")
    assert table.minutes == 3


def test_step_without_metadata_has_no_minutes(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n## Only\n\nText.\n")
    step = load_module(path).steps[0]
    assert (step.id, step.minutes, step.serves) == ("only", None, [])


def test_total_minutes_sums_steps() -> None:
    assert load_module(DEMO_V1).total_minutes == 7


# --- content hash ---------------------------------------------------------------------------------
# Rule: the hash is of the file text with line endings normalised to "\n". Any other change, including
# whitespace-only ones, changes it.


def test_hash_is_content_hash_of_file_text() -> None:
    module = load_module(DEMO_V1)
    assert module.content_hash == content_hash(DEMO_V1.read_text(encoding="utf-8"))


def test_hash_same_for_same_text_in_another_file(tmp_path: Path) -> None:
    copy = tmp_path / "copy.md"
    copy.write_bytes(DEMO_V1.read_bytes())
    assert load_module(copy).content_hash == load_module(DEMO_V1).content_hash


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("The demo opens here.", "The demo opens here. "),  # trailing space
        lambda t: t.replace("Thank you.", "Thank you.\n\n"),  # extra blank lines
        lambda t: t.replace("Thank you.", "Thank  you."),  # double space inside the content
        lambda t: t.replace("Thank you.", "Thanks."),  # a real content change
        lambda t: t.replace("minutes: 2 -->", "minutes: 3 -->"),  # metadata change
    ],
)
def test_hash_changes_with_any_text_change(tmp_path: Path, edit) -> None:
    original = DEMO_V1.read_text(encoding="utf-8")
    edited = edit(original)
    assert edited != original
    path = tmp_path / "v1.md"
    path.write_text(edited, encoding="utf-8")
    assert load_module(path).content_hash != load_module(DEMO_V1).content_hash


def test_whitespace_only_change_keeps_parsed_steps(tmp_path: Path) -> None:
    """A trailing space changes the hash, though the parsed steps are the same."""
    path = tmp_path / "v1.md"
    path.write_text(DEMO_V1.read_text(encoding="utf-8").replace("Thank you.", "Thank you.   "), encoding="utf-8")
    assert load_module(path).steps == load_module(DEMO_V1).steps
    assert load_module(path).content_hash != load_module(DEMO_V1).content_hash


def test_hash_ignores_line_ending_style(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(DEMO_V1.read_bytes().replace(b"\n", b"\r\n"))
    assert load_module(path).content_hash == load_module(DEMO_V1).content_hash


# --- finding modules ------------------------------------------------------------------------------


def test_load_modules_recursive_skips_readme() -> None:
    modules = load_modules([FIXTURES / "valid"])
    assert [m.ref for m in modules] == ["demo@v1", "demo@v2"]


def test_module_files_dedupes_and_keeps_explicit_files() -> None:
    files = module_files([FIXTURES / "valid", DEMO_V1])
    assert files == [DEMO_V1, FIXTURES / "valid" / "demo" / "v2.md"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        load_modules([tmp_path / "nope"])


def test_hidden_folders_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".cache").mkdir()
    write(tmp_path, "not a module", name=".cache/junk.md")
    write(tmp_path, HEADER + "\n## A\n\nText.\n")
    assert [m.ref for m in load_modules([tmp_path])] == ["m@v1"]


def test_find_module_exact_and_latest() -> None:
    assert find_module([FIXTURES / "valid"], "demo@v1").version == "v1"
    assert find_module([FIXTURES / "valid"], "demo").version == "v2"


def test_find_module_latest_uses_natural_order(tmp_path: Path) -> None:
    for version in ("v2", "v10", "v9"):
        write(tmp_path, HEADER.replace("version: v1", f"version: {version}") + "\n## A\n\nT.\n", f"{version}.md")
    assert find_module([tmp_path], "m").version == "v10"
    assert version_key("1.9") < version_key("1.10")


def test_find_module_unknown_lists_available() -> None:
    with pytest.raises(InputError) as info:
        find_module([FIXTURES / "valid"], "demo@v9")
    assert "no module 'demo@v9'" in str(info.value)
    assert "available: demo@v1, demo@v2" in str(info.value)


@pytest.mark.parametrize("ref", ["", "@v1", "demo@", "a@b@c"])
def test_bad_refs(ref: str) -> None:
    with pytest.raises(InputError, match="bad module reference"):
        parse_ref(ref)


def test_duplicate_ref_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, HEADER + "\n## A\n\nText.\n", "a.md")
    second = write(tmp_path, HEADER + "\n## B\n\nText.\n", "b.md")
    modules, errors = check_modules([tmp_path])
    assert [m.path for m in modules] == [str(first)]
    assert [str(e) for e in errors] == [f"{second}:1: module m@v1 is also defined in {first}"]
    with pytest.raises(InputError):
        load_modules([tmp_path])


def test_check_modules_reports_each_broken_file(tmp_path: Path) -> None:
    write(tmp_path, "no front matter\n", "a.md")
    write(tmp_path, HEADER, "b.md")
    write(tmp_path, HEADER + "\n## Fine\n\nText.\n", "c.md")
    modules, errors = check_modules([tmp_path])
    assert [m.ref for m in modules] == ["m@v1"]
    assert [Path(e.path).name for e in errors] == ["a.md", "b.md"]


# --- validation errors: file, line and message ----------------------------------------------------

STEP = "\n## Step\n\nText.\n"

ERROR_CASES = {
    "no front matter": ("# Title\n\n## Step\n\nText.\n", 1, "missing YAML front matter"),
    "front matter not closed": ("---\nid: m\ntitle: M\n", 1, "front matter is not closed"),
    "invalid yaml": ("---\nid: m\ntitle: [unclosed\nversion: v1\n---\n" + STEP, 4, "invalid YAML in front matter"),
    "empty front matter": ("---\n---\n" + STEP, 1, "front matter is empty"),
    "front matter not a mapping": ("---\n- a\n- b\n---\n" + STEP, 2, "must be 'key: value' lines"),
    "unknown key": (
        "---\nid: m\ntitle: M\nversion: v1\nduration: 5\n---\n" + STEP,
        5,
        "unknown front-matter key 'duration'",
    ),
    "duplicate key": ("---\nid: m\ntitle: M\ntitle: N\nversion: v1\n---\n" + STEP, 4, "key 'title' is given twice"),
    "missing required keys": ("---\nid: m\ntitle: M\n---\n" + STEP, 1, "missing required key(s): version"),
    "wrong type": (
        "---\nid: m\ntitle: M\nversion: v1\ntarget_competencies: Build relationships\n---\n" + STEP,
        5,
        "front matter target_competencies: Input should be a valid list",
    ),
    "version is a number": ("---\nid: m\ntitle: M\nversion: 2\n---\n" + STEP, 4, "front matter version: Input should"),
    "estimated minutes not positive": (
        "---\nid: m\ntitle: M\nversion: v1\nestimated_minutes: 0\n---\n" + STEP,
        5,
        "front matter estimated_minutes: Input should be greater than 0",
    ),
    "bad id": ("---\nid: my module\ntitle: M\nversion: v1\n---\n" + STEP, 2, "front matter id 'my module'"),
    "no steps": (HEADER + "\n# Title only\n", 9, "no steps"),
    "text before first step": (HEADER + "\nIntro text.\n" + STEP, 11, "belongs to no step"),
    "metadata before first step": (HEADER + "<!-- minutes: 2 -->\n" + STEP, 10, "metadata line before the first"),
    "plain comment before first step is fine": (HEADER + "<!-- draft -->\n", 9, "no steps"),
    "empty heading": (HEADER + "\n##\n\nText.\n", 11, "empty step heading"),
    "duplicate step ids": (
        HEADER + "\n## Same\n\nA.\n\n## Same\n\nB.\n",
        15,
        "duplicate step id 'same' (first used at line 11)",
    ),
    "duplicate explicit id": (
        HEADER + "\n## A\n<!-- id: x -->\n\nA.\n\n## B\n<!-- id: x -->\n\nB.\n",
        16,
        "duplicate step id 'x'",
    ),
    "step with no content": (HEADER + "\n## Empty\n<!-- minutes: 2 -->\n\n## Next\n\nText.\n", 11, "has no content"),
    "step with only an activity": (
        HEADER + "\n## Empty\n\n### Activity\nDo it.\n",
        11,
        "step 'empty' has no content",
    ),
    "minutes zero": (HEADER + "\n## S\n<!-- minutes: 0 -->\n\nT.\n", 12, "minutes must be a positive number, got '0'"),
    "minutes negative": (HEADER + "\n## S\n<!-- minutes: -3 -->\n\nT.\n", 12, "minutes must be a positive number"),
    "minutes not a number": (HEADER + "\n## S\n<!-- minutes: six -->\n\nT.\n", 12, "got 'six'"),
    "minutes infinite": (HEADER + "\n## S\n<!-- minutes: inf -->\n\nT.\n", 12, "minutes must be a positive number"),
    "unknown metadata key": (HEADER + "\n## S\n<!-- duration: 5 -->\n\nT.\n", 12, "unknown step metadata 'duration"),
    "second metadata line": (
        HEADER + "\n## S\n<!-- minutes: 1 -->\n\nT.\n<!-- serves: LO1 -->\n",
        15,
        "second metadata line in step 'S' (first at line 12)",
    ),
    "serves undeclared": (
        HEADER + "\n## S\n<!-- serves: LO1, LO7 -->\n\nT.\n",
        12,
        "serves 'LO7' is neither a target competency nor a learning-outcome label",
    ),
    "bad explicit step id": (HEADER + "\n## S\n<!-- id: has space -->\n\nT.\n", 12, "step id 'has space'"),
    "heading that makes no slug": (HEADER + "\n## ???\n\nT.\n", 11, "cannot make a step id"),
    "level-1 heading inside a step": (HEADER + "\n## S\n\nT.\n\n# Big\n", 15, "'# ' heading inside a step"),
    "empty activity": (HEADER + "\n## S\n\nT.\n\n### Activity\n\n## Next\n\nT.\n", 15, "empty '### Activity'"),
    "second activity": (
        HEADER + "\n## S\n\nT.\n\n### Activity\nA.\n### Activity\nB.\n",
        17,
        "second '### Activity'",
    ),
    "reflection not bullets": (
        HEADER + "\n## S\n\nT.\n\n### Reflection questions\nWhat now?\n",
        16,
        "reflection questions must be a bullet list",
    ),
    "reflection empty": (HEADER + "\n## S\n\nT.\n\n### Reflection questions\n\n", 15, "no questions under"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_validation_error(tmp_path: Path, case: str) -> None:
    text, line, message = ERROR_CASES[case]
    path = tmp_path / "broken.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_module(path)
    error = info.value
    assert (error.path, error.line) == (str(path), line), str(error)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes(b"---\nid: m\ntitle: caf\xe9\n")
    with pytest.raises(InputError, match="not valid UTF-8") as info:
        load_module(path)
    assert info.value.line == 3


def test_error_line_counts_crlf_files(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes((HEADER + "\n## S\n<!-- minutes: 0 -->\n\nT.\n").replace("\n", "\r\n").encode())
    with pytest.raises(InputError) as info:
        load_module(path)
    assert info.value.line == 12


# --- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("The L.O.T.U.S. steps and their questions", "the-lotus-steps-and-their-questions"),
        ("Welcome & purpose", "welcome-purpose"),
        ("Leaders' view: what next?", "leaders-view-what-next"),
        ("Chloë's pilot", "chloes-pilot"),
        ("Version 1.2 notes", "version-1-2-notes"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_estimate_minutes_rule() -> None:
    welcome = load_module(DEMO_V1).steps[0]
    # 8 words / 130 + 1 minute activity + 2 questions = 3.06 -> 4
    assert estimate_minutes(welcome) == 4
    closing = load_module(DEMO_V1).steps[2]
    assert estimate_minutes(closing) == 1
