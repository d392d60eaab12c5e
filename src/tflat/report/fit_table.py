"""A plain text table that fits the width it is given: the layout of every terminal table.

Rich's own Table takes most of a second for a few hundred rows and, on a narrow terminal,
shrinks every column ("0…" would mislead). :class:`FitTable` instead keeps each column at its
content's width and, when the table is too wide, takes the columns' stated steps in order:
drop a column (``Column.drop``) or narrow a name column to the room left (``Column.shrink``,
never a number), and only then lets rich crop the line ends. Numbers are never cut.
Rendering is linear in the rows: ten thousand rows take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Columns between two cells.
GAP = 2
#: The narrowest a shrinking column gets (its cells end in "…").
MIN_SHRINK = 8


@dataclass(frozen=True)
class Column:
    """One column: ``align`` "left" or "right"; ``drop`` and ``shrink`` are its steps in the
    order a too-wide table gives way (smaller first; None: never): dropped whole, or narrowed
    to the room left but not below ``min_width`` (a name, never a number); ``style`` colours
    its non-empty cells."""

    name: str
    align: str = "left"
    drop: int | None = None
    shrink: int | None = None
    style: str = ""
    min_width: int = MIN_SHRINK


def layout(
    columns: Sequence[Column], widths: Sequence[int], max_width: int
) -> tuple[list[int], list[int]]:
    """The kept column indices and their widths for ``max_width``: the steps of the columns
    (``drop``, ``shrink`` down to ``min_width``) are taken in order until the table fits; then
    shrinking columns go down to MIN_SHRINK."""
    keep = list(range(len(columns)))
    widths = list(widths)

    def total() -> int:
        return sum(widths[i] for i in keep) + GAP * (len(keep) - 1)

    steps = [(c.drop, 1, i) for i, c in enumerate(columns) if c.drop is not None]
    steps += [(c.shrink, 0, i) for i, c in enumerate(columns) if c.shrink is not None]
    for _, is_drop, i in sorted(steps):
        if total() <= max_width:
            break
        if i not in keep:
            continue
        if is_drop:
            keep.remove(i)
        else:
            floor = min(widths[i], columns[i].min_width)
            widths[i] = max(floor, widths[i] - (total() - max_width))
    for i in keep:  # the last resort: every shrinking column down to MIN_SHRINK
        if columns[i].shrink is not None and total() > max_width:
            widths[i] = max(min(widths[i], MIN_SHRINK), widths[i] - (total() - max_width))
    return keep, widths


class FitTable:
    """A title, a header, rows of plain-text cells and optional rule lines before some rows
    (``sections``: row indices); rendered by rich at the console's width."""

    def __init__(
        self,
        title: str,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        sections: Sequence[int] = (),
    ) -> None:
        self.title, self.columns, self.rows, self.sections = title, columns, rows, set(sections)

    def natural_width(self) -> int:
        """The width that shows every column whole."""
        widths = self._widths()
        return sum(widths) + GAP * (len(widths) - 1)

    def _widths(self) -> list[int]:
        widths = [len(c.name) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                if len(cell) > widths[i]:
                    widths[i] = len(cell)
        return widths

    def __rich_console__(self, console: Any, options: Any) -> Any:
        # Segments, one per line and style, rather than one big rich Text: rich would wrap and
        # crop a Text of ten thousand lines cell by cell (seconds); here each line is built
        # once at its final width.
        from rich.segment import Segment
        from rich.style import Style

        max_width = int(options.max_width)
        keep, widths = layout(self.columns, self._widths(), max_width)
        aligns = [(i, widths[i], self.columns[i].align == "right") for i in keep]
        gap = " " * GAP

        def line(cells: Sequence[str]) -> str:
            out = []
            for i, w, right in aligns:
                cell = cells[i]
                if len(cell) > w:
                    cell = cell[: w - 1] + "…"
                out.append(cell.rjust(w) if right else cell.ljust(w))
            return fit(gap.join(out).rstrip())

        def fit(text: str) -> str:
            return text if len(text) <= max_width else text[: max_width - 1] + "…"

        # the first styled column (the flag) is coloured from where it starts to the line's end
        styled = [(i, sum(widths[j] + GAP for j in keep[:n])) for n, i in enumerate(keep)
                  if self.columns[i].style]  # fmt: skip
        bold, newline = Style(bold=True), Segment.line()
        rule = fit(gap.join("─" * widths[i] for i in keep))
        yield Segment(fit(self.title), bold)
        yield newline
        yield Segment(line([c.name for c in self.columns]), bold)
        yield newline
        yield Segment(rule)
        yield newline
        for n, row in enumerate(self.rows):
            if n in self.sections:
                yield Segment(rule)
                yield newline
            text = line(row)
            for i, at in styled[:1]:
                if row[i] and at < len(text):
                    yield Segment(text[:at])
                    yield Segment(text[at:], Style.parse(self.columns[i].style))
                    break
            else:
                yield Segment(text)
            yield newline
        yield newline  # a blank line after the table, before what follows
