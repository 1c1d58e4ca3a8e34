"""Errors a merchant can fix: where (file:line:column), the line with a caret under the text, and a hint.

A query is parsed from its text, but errors point into the file the merchant edits: `Source` maps
an offset in the query text to a line and column of that file.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """The text the parser reads, and where each of its characters sits in the file shown in errors.

    `positions[i]` is the (line, column) of character i of `text` in `lines`, both 1-based. Without
    `positions` the text is the file itself (a query given on the command line).
    """

    name: str
    text: str
    lines: tuple[str, ...] = ()
    positions: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def of_query(cls, text: str, name: str = "<query>") -> "Source":
        return cls(name=name, text=text, lines=tuple(text.split("\n")))

    def locate(self, offset: int) -> tuple[int, int]:
        """(line, column) of a text offset; the end of the text is just after its last character."""
        if self.positions is not None:
            if not self.positions:
                return (1, 1)
            if offset < len(self.positions):
                return self.positions[offset]
            line, column = self.positions[-1]
            return (line, column + 1)
        before = self.text[:offset]
        line = before.count("\n") + 1
        return (line, offset - (before.rfind("\n") + 1) + 1)

    def error(self, start: int, end: int, message: str, hint: str = "") -> "SegmentError":
        """An error about text[start:end]; the caret spans it as far as it stays on one line."""
        line, column = self.locate(start)
        last_line, last_column = self.locate(max(start, end - 1))
        width = last_column - column + 1 if last_line == line and end > start else 1
        source_line = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return SegmentError(
            file=self.name,
            line=line,
            column=column,
            message=message,
            hint=hint,
            source_line=source_line,
            width=max(1, width),
        )


@dataclass(frozen=True)
class SegmentError:
    """One problem in one place. `definitions` names the segments it belongs to when that is not
    only the one of its file (a cycle belongs to every segment in it)."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    source_line: str = ""
    width: int = 1
    definitions: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.source_line:
            gutter = " " * len(str(self.line))
            # Tabs stay tabs under the caret so it lines up whatever the terminal's tab width.
            pad = "".join(c if c == "\t" else " " for c in self.source_line[: self.column - 1])
            text += f"\n {self.line} | {self.source_line}\n {gutter} | {pad}{'^' * self.width}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SegmentErrors(ValueError):
    """Raised with every problem found, not only the first."""

    def __init__(self, errors: Sequence[SegmentError]):
        self.errors = list(errors)
        super().__init__("\n\n".join(str(e) for e in self.errors))
