"""Tables that never split a word: a rich table sized so every word stays whole, one block per row
when even that does not fit the terminal, and plain tab-separated lines when the output is not a
terminal (a pipe, a file, a CI log), untruncated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

Cell = str | Text
_WIDE = 100_000  # measure without the terminal's limit


@dataclass(frozen=True)
class Col:
    """A column: `whole` ones (ids, refs, numbers) are never wrapped; the others wrap between words."""

    header: str
    whole: bool = False
    justify: Literal["left", "right"] = "left"


def print_table(console: Console, columns: Sequence[Col | str], rows: Sequence[Sequence[Cell]], *,
                title: str | None = None, caption: str | None = None, **style: Any) -> None:  # fmt: skip
    """Print `rows` under `columns` on `console` (`style`: rich Table options such as `box`)."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    texts = [[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row] for row in rows]
    if not console.is_terminal:
        _plain(console, cols, texts, title, caption)
        return
    table = fitted_table(console, cols, texts, title=title, caption=caption, **style)
    if table is None:
        _vertical(console, cols, texts, title, caption)
    else:
        console.print(table)


_BASE = {"box": box.SIMPLE_HEAD, "pad_edge": False, "show_edge": False}
_SPACINGS = ({"collapse_padding": True}, {"padding": (0, 0)})  # two spaces between columns, else one


def fitted_table(console: Console, cols: list[Col], rows: list[list[Text]], *, title: str | None = None,
                 caption: str | None = None, **style: Any) -> Table | None:  # fmt: skip
    """The table at widths where no word is split (two spaces between columns, else one), or None
    when the terminal is too narrow for that."""
    widest = [max([_width(Text(c.header))] + [_width(row[i]) for row in rows]) for i, c in enumerate(cols)]
    narrowest = [w if c.whole else max([_longest_word(Text(c.header))] + [_longest_word(row[i]) for row in rows])
                 for i, (c, w) in enumerate(zip(cols, widest, strict=True))]  # fmt: skip
    for spacing in _SPACINGS:
        options = {**_BASE, **spacing, **style}
        table = _table(cols, rows, widest, title, caption, options)
        overhead = Measurement.get(console, console.options.update_width(_WIDE), table).maximum - sum(widest)
        room = console.width - overhead
        if sum(widest) <= room:
            return table
        if sum(narrowest) <= room:
            return _table(cols, rows, _share(widest, narrowest, room), title, caption, options)
    return None


def _share(widest: list[int], narrowest: list[int], room: int) -> list[int]:
    """Every column its narrowest width, the rest of the room shared in proportion to what each lacks."""
    spare, lacking = room - sum(narrowest), [w - n for w, n in zip(widest, narrowest, strict=True)]
    total = sum(lacking) or 1
    widths = [n + spare * gap // total for n, gap in zip(narrowest, lacking, strict=True)]
    return [min(w, top) for w, top in zip(widths, widest, strict=True)]


def _table(cols: list[Col], rows: list[list[Text]], widths: list[int], title: str | None, caption: str | None,
           options: dict[str, Any]) -> Table:  # fmt: skip
    table = Table(title=title, caption=caption, **options)
    for col, width in zip(cols, widths, strict=True):
        table.add_column(col.header, justify=col.justify, width=width, no_wrap=col.whole, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _plain(console: Console, cols: list[Col], rows: list[list[Text]], title: str | None, caption: str | None) -> None:
    lines = [title] if title else []
    lines += ["\t".join(c.header for c in cols)]
    lines += ["\t".join(" ".join(cell.plain.split()) for cell in row) for row in rows]
    lines += [caption] if caption else []
    console.file.write("".join(f"{line}\n" for line in lines))
    console.file.flush()


def _vertical(
    console: Console, cols: list[Col], rows: list[list[Text]], title: str | None, caption: str | None
) -> None:
    """One block per row: the first cell as its heading, then `header: value` lines, values wrapped
    between words under themselves."""
    if title:
        console.print(Text(title, style="bold"))
    for row in rows:
        heading = row[0].copy()
        heading.stylize("bold")
        console.print(heading)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for col, cell in zip(cols[1:], row[1:], strict=True):
            grid.add_row(f"{col.header}:", cell)
        console.print(Padding(grid, (0, 0, 0, 2)))
    if caption:
        console.print(Text(caption))


def _width(text: Text) -> int:
    return max((Text(line).cell_len for line in text.plain.splitlines()), default=0)


def _longest_word(text: Text) -> int:
    return max((Text(word).cell_len for word in text.plain.split()), default=0)
