"""YAML mistakes in plain words, with the file and line, from every place that reads YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from personasim.errors import InputError
from personasim.inputs.module_loader import load_module
from personasim.llm.costs import PriceTable
from personasim.llm.settings import read_settings_file
from personasim.run.suite import load_suite
from personasim.yaml_errors import load_yaml

JARGON = ("<block end>", "<block mapping start>", "expected", "while parsing", "while scanning", "token")

CASES = {
    "indentation": ("name: x\npersonas: [a]\n  modules: [b]\n", 3, "the indentation does not line up"),
    "colon in value": ("name: x\ndescription: v1: v2\n", 2, "put a value that contains ': ' in quotes"),
    "tab": ("name: x\n\tmodel: y\n", 2, "a tab character: YAML indents with spaces only"),
    "unclosed quote": ('name: "x\nmodel: y\n', 1, "the quote opened on this line is never closed"),
    "unclosed list": ("personas: [a, b\nmodules: [c]\n", 2, "the '[' list opened at line 1 is not closed"),
    "list item for a key": ("name: x\n- a\n", 2, "a '- ' list item among 'key: value' lines"),
    "no colon": ("name: x\nfoo\nbar: y\n", 2, "this line is neither 'key: value' nor a '- ' list item"),
    "backtick": ("name: `x`\n", 1, "a value cannot start with '`': put the value in quotes"),
    "alias": ("name: *x\n", 1, "a value that starts with '*' is read as a reference"),
}


@pytest.mark.parametrize(("text", "line", "plain"), CASES.values(), ids=CASES)
def test_plain_message_with_the_line(text: str, line: int, plain: str) -> None:
    with pytest.raises(InputError) as caught:
        load_yaml(text, "f.yaml")
    assert (caught.value.path, caught.value.line) == ("f.yaml", line)
    assert caught.value.message.startswith("invalid YAML") and plain in caught.value.message
    assert not any(word in caught.value.message for word in JARGON)


def test_the_message_quotes_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^f.yaml:3: invalid YAML at 'modules: \[b\]': "):
        load_yaml("name: x\npersonas: [a]\n  modules: [b]\n", "f.yaml")


def test_every_yaml_reader_uses_the_plain_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npersonas: [a]\n  modules: [b]\n", encoding="utf-8")
    for read in (load_suite, read_settings_file):
        with pytest.raises(InputError, match=rf"^{bad}:3: invalid YAML at .*: the indentation does not line up"):
            read(bad)
    with pytest.raises(InputError, match=rf"^{bad}:3: invalid YAML in price table at .*the indentation"):
        PriceTable.from_file(bad)
    module = tmp_path / "m.md"
    module.write_text("---\nid: m\ntitle: a: b\nversion: v1\n---\n\n## Step\n\nText.\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{module}:3: invalid YAML in front matter at 'title: a: b': a second"):
        load_module(module)
