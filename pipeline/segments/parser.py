"""Text of a query → typed tree: a hand-written tokenizer and a parser with no recursion.

Parentheses are handled with an explicit stack, so neither a thousand OR clauses nor deep nesting
reaches Python's recursion limit. After a syntax error in one condition the parser skips to the
next AND or OR and goes on, so one run reports every broken condition.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from pipeline.segments import tree as t
from pipeline.segments.errors import SegmentError, Source

KEYWORDS = {"and", "or", "not", "between", "contains", "is", "null", "matches", "in"}
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 10
# Deeper groups would only come from a generator gone wrong, and every later stage (sqlglot's
# renderer, DuckDB's binder) recurses once per level.
MAX_NESTING = 50
# A query past this is generated, not written: a merchant's longest real ones are a few hundred
# characters. Compiling grows faster than the text (3,000 conditions, 178 KB: 1.5 s; 1.4 MB: 77 s);
# within this (about a thousand conditions) a query compiles in about 0.3 s.
MAX_QUERY_LENGTH = 50_000

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w.])")
# A date written another way (2026/10/01, 2026-10-1, 01.10.2026): caught whole, before it reads as numbers
_LOOSE_DATE = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?![\w.])")
_RELATIVE = re.compile(r"[+-](\d+)([dwmy])(?![\w.])")
_NUMBER = re.compile(r"[+-]?(\d+)(?:\.(\d+))?(?![\w.])")
_BAD_NUMBER = re.compile(r"[+-]?\.?\d[\w.]*")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Token:
    kind: str  # word, keyword, number, string, date, relative, op, (, ), ",", end
    text: str  # the source text; for a keyword, lowercased
    value: object
    start: int
    end: int
    line: int
    column: int

    def describe(self) -> str:
        return "the end of the query" if self.kind == "end" else repr(self.text)


class _Stop(Exception):
    """A syntax error in the current condition; the parser resumes at the next AND or OR."""

    def __init__(self, error: SegmentError, offset: int):
        self.error, self.offset = error, offset


def tokenize(source: Source) -> tuple[list[Token], list[SegmentError]]:
    text, tokens, errors, pos = source.text, [], [], 0

    def add(kind: str, start: int, end: int, value: object = None, word: str | None = None) -> None:
        line, column = source.locate(start)
        tokens.append(Token(kind, word if word is not None else text[start:end], value, start, end, line, column))

    # Stop at the first bad character: what follows it is seldom meant as tokens, and reporting
    # each fragment would give many errors for one problem.
    while not errors:
        if m := _WHITESPACE.match(text, pos):
            pos = m.end()
        if pos >= len(text):
            add("end", pos, pos)
            return tokens, errors
        c = text[pos]
        if c in "(),":
            add(c, pos, pos + 1)
            pos += 1
        elif op := next((o for o in OPERATORS if text.startswith(o, pos)), None):
            add("op", pos, pos + len(op), op)
            pos += len(op)
        elif c == "'":
            pos = _string(source, pos, add, errors)
        elif c == '"':
            end = text.find('"', pos + 1)
            end = len(text) if end < 0 else end + 1
            errors.append(source.error(pos, end, "strings are written in single quotes",
                                       hint="write 'like this'; a quote inside is \\' and a backslash \\\\"))
            pos = end
        elif m := _WORD.match(text, pos):
            word = m.group()
            if word.lower() in KEYWORDS:
                add("keyword", pos, m.end(), word=word.lower())
            else:
                add("word", pos, m.end())
            pos = m.end()
        elif m := _DATE.match(text, pos):
            try:
                add("date", pos, m.end(), dt.date.fromisoformat(m.group()))
            except ValueError:
                errors.append(source.error(pos, m.end(), f"{m.group()} is not a date",
                                           hint="dates are YYYY-MM-DD, such as 2026-01-31"))
            pos = m.end()
        elif m := _LOOSE_DATE.match(text, pos):
            errors.append(source.error(pos, m.end(), f"{m.group()} is not a date", hint=_date_hint(m)))
            pos = m.end()
        elif m := _RELATIVE.match(text, pos):
            amount = int(m.group(1)) * (-1 if c == "-" else 1)
            add("relative", pos, m.end(), (amount, m.group(2)))
            pos = m.end()
        elif m := _NUMBER.match(text, pos):
            integer, fraction = m.group(1), m.group(2) or ""
            if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
                errors.append(source.error(pos, m.end(), "number too long",
                                           hint=f"numbers have at most {MAX_INTEGER_DIGITS} digits before the "
                                                f"decimal point and {MAX_FRACTION_DIGITS} after it"))
            else:
                add("number", pos, m.end(), Decimal(m.group()))
            pos = m.end()
        elif m := _BAD_NUMBER.match(text, pos):
            errors.append(source.error(pos, m.end(), f"{m.group()!r} is not a number, date or relative date",
                                       hint="numbers look like 100 or 59.90, dates like 2026-01-31, relative "
                                            "dates like -30d, -2w, -3m or -1y"))
            pos = m.end()
        else:
            errors.append(source.error(pos, pos + 1, f"unexpected character {c!r}",
                                       hint="a query is conditions joined by AND and OR, such as "
                                            "amount_spent > 100 AND customer_tags CONTAINS 'vip'"))
    return tokens, errors


def _string(source: Source, start: int, add, errors: list[SegmentError]) -> int:
    """Reads a quoted string from `start` (its opening quote); returns the offset after it."""
    text, chars, pos = source.text, [], start + 1
    while pos < len(text):
        c = text[pos]
        if c == "'":
            add("string", start, pos + 1, "".join(chars))
            return pos + 1
        if c == "\\":
            following = text[pos + 1:pos + 2]
            if following in ("'", "\\"):
                chars.append(following)
                pos += 2
                continue
            errors.append(source.error(pos, pos + 2, f"unknown escape \\{following}" if following else
                                       "a backslash ends the query",
                                       hint="inside a string, \\' is a quote and \\\\ a backslash; "
                                            "nothing else is escaped"))
            pos += 2
            continue
        chars.append(c)
        pos += 1
    errors.append(source.error(start, start + 1, "string not closed",
                               hint="end the string with a single quote; a quote inside it is written \\'"))
    return pos


def _date_hint(m: re.Match) -> str:
    """How to write a loosely written date: the ISO form when it reads as year, month, day."""
    year, month, day = m.group(1), m.group(3), m.group(4)
    if len(year) == 4:
        try:
            return f"dates are YYYY-MM-DD: write {dt.date(int(year), int(month), int(day)).isoformat()}"
        except ValueError:
            pass
    return "dates are YYYY-MM-DD, such as 2026-01-31"


def parse(source: Source) -> tuple[t.Node | None, list[SegmentError]]:
    """The tree of a query and every syntax error found; the tree holds the conditions that parsed."""
    if len(source.text) > MAX_QUERY_LENGTH:
        return None, [source.error(MAX_QUERY_LENGTH, MAX_QUERY_LENGTH + 1,
                                   f"the query is {len(source.text):,} characters long; at most "
                                   f"{MAX_QUERY_LENGTH:,}",
                                   hint="split it into segments and combine them with segments CONTAINS 'name'")]
    tokens, errors = tokenize(source)
    if errors:
        return None, errors
    return _Parser(source, tokens).parse()


class _Parser:
    def __init__(self, source: Source, tokens: list[Token]):
        self.source, self.tokens, self.pos, self.errors = source, tokens, 0, []
        self.resumed_at: int | None = None

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.text in words

    def fail(self, token: Token, message: str, hint: str = "") -> _Stop:
        return _Stop(self.source.error(token.start, max(token.end, token.start + 1), message, hint), token.start)

    def parse(self) -> tuple[t.Node | None, list[SegmentError]]:
        if self.token.kind == "end":
            self.errors.append(self.source.error(0, 0, "empty query", hint="write a condition such as "
                                                                          "amount_spent > 100"))
            return None, self.errors
        # Each frame is one parenthesised group: its finished OR items, the AND items of the
        # current OR item, and the token that opened it.
        frames: list[tuple[list, list, Token | None]] = [([], [], None)]
        expect_term = True
        while True:
            if expect_term:
                if self.token.kind == "(":
                    if len(frames) > MAX_NESTING:
                        token = self.token
                        self.errors.append(self.source.error(token.start, token.end, "parentheses nested too deep",
                                                             hint=f"at most {MAX_NESTING} levels; AND and OR "
                                                                  "take any number of conditions without them"))
                        return None, self.errors
                    frames.append(([], [], self.advance()))
                    continue
                start = self.pos
                try:
                    frames[-1][1].append(self.condition())
                except _Stop as stop:
                    # A condition that fails on the very token a skip stopped after is the same
                    # problem seen again (as in `x BETWEEN 1 OR 2`): one error is enough.
                    if stop.offset != self.resumed_at:
                        self.errors.append(stop.error)
                    self.pos = start
                    self.skip_condition()
                    self.resumed_at = self.tokens[self.pos + 1].start if self.is_keyword("and", "or") else None
                expect_term = False
                continue
            token = self.token
            if self.is_keyword("and"):
                self.advance()
                expect_term = True
            elif self.is_keyword("or"):
                self.advance()
                or_items, and_items, _ = frames[-1]
                or_items.append(_and(and_items))
                and_items.clear()
                expect_term = True
            elif token.kind == ")" and len(frames) > 1:
                self.advance()
                or_items, and_items, _ = frames.pop()
                group = _or([*or_items, _and(and_items)])
                if group is not None:
                    frames[-1][1].append(group)
            elif token.kind == "end":
                while len(frames) > 1:
                    or_items, and_items, opening = frames.pop()
                    self.errors.append(self.source.error(opening.start, opening.end, "'(' is never closed",
                                                         hint="add the matching ')'"))
                    frames[-1][1].append(_or([*or_items, _and(and_items)]))
                or_items, and_items, _ = frames[0]
                return _or([*or_items, _and(and_items)]), self.errors
            else:
                message = ("')' without a matching '('" if token.kind == ")" else
                           f"expected AND, OR or the end of the query, found {token.describe()}")
                self.errors.append(self.source.error(token.start, token.end, message,
                                                     hint="join conditions with AND or OR"))
                self.advance()
                self.skip_condition()

    def skip_condition(self) -> None:
        """Skips to the next AND or OR outside the parentheses opened from here (a MATCHES list), or
        to a ')' closing the enclosing group."""
        depth = 0
        while self.token.kind != "end":
            if depth == 0 and (self.is_keyword("and", "or") or self.token.kind == ")"):
                return
            depth += {"(": 1, ")": -1}.get(self.token.kind, 0)
            self.advance()

    def name(self, what: str) -> t.Name:
        token = self.token
        if token.kind != "word":
            raise self.fail(token, f"expected {what}, found {token.describe()}",
                            hint="a condition starts with an attribute such as amount_spent or a function "
                                 "such as orders_placed")
        self.advance()
        return t.Name(token.text, t.Span(token.start, token.end))

    def condition(self) -> t.Condition:
        name = self.name("an attribute or function name")
        start, token = name.span.start, self.token
        if token.kind == "op":
            self.advance()
            value = self.value(f"after {name.text} {token.text}")
            return t.Comparison(name, token.value, value, t.Span(start, value.span.end))
        if self.is_keyword("between"):
            self.advance()
            low, high = self.between(name.text)
            return t.Between(name, low, high, t.Span(start, high.span.end))
        negated = self.is_keyword("not")
        if negated:
            self.advance()
        if self.is_keyword("contains"):
            self.advance()
            value = self.value(f"after {name.text} {'NOT ' if negated else ''}CONTAINS")
            return t.Contains(name, value, negated, t.Span(start, value.span.end))
        if self.is_keyword("matches"):
            self.advance()
            params, end = self.params(name.text)
            return t.Matches(name, params, negated, t.Span(start, end))
        if negated:
            raise self.fail(self.token, f"expected CONTAINS or MATCHES after NOT, found {self.token.describe()}",
                            hint="NOT is only written as NOT CONTAINS, NOT MATCHES, NOT IN or IS NOT NULL")
        if self.is_keyword("is"):
            self.advance()
            negated = self.is_keyword("not")
            if negated:
                self.advance()
            end = self.token
            if not self.is_keyword("null"):
                raise self.fail(end, f"expected NULL after IS{' NOT' if negated else ''}, found {end.describe()}",
                                hint="IS is only written as IS NULL or IS NOT NULL")
            self.advance()
            return t.IsNull(name, negated, t.Span(start, end.end))
        raise self.fail(token, f"expected an operator after {name.text}, found {token.describe()}",
                        hint="operators are =, !=, >, >=, <, <=, BETWEEN, CONTAINS, NOT CONTAINS, "
                             "IS NULL, IS NOT NULL, MATCHES and NOT MATCHES")

    def between(self, name: str) -> tuple[t.Value, t.Value]:
        low = self.value(f"after {name} BETWEEN")
        if not self.is_keyword("and"):
            raise self.fail(self.token, f"expected AND in {name} BETWEEN ... AND ..., found "
                                        f"{self.token.describe()}", hint="BETWEEN takes two values: "
                                                                         "BETWEEN 10 AND 20 (both included)")
        self.advance()
        return low, self.value(f"after {name} BETWEEN ... AND")

    def params(self, function: str) -> tuple[tuple[t.Param, ...], int]:
        if self.token.kind != "(":
            raise self.fail(self.token, f"expected '(' after {function} MATCHES, found {self.token.describe()}",
                            hint=f"write {function} MATCHES (param = value, ...)")
        self.advance()
        params = []
        while True:
            params.append(self.param())
            token = self.advance()
            if token.kind == ")":
                return tuple(params), token.end
            if token.kind != ",":
                raise self.fail(token, f"expected ',' or ')' in the parameters of {function}, found "
                                       f"{token.describe()}", hint="separate parameters with commas: "
                                                                   "(date >= -30d, count >= 2)")

    def param(self) -> t.Param:
        name = self.name("a parameter name")
        start, token = name.span.start, self.token
        if token.kind == "op":
            self.advance()
            value = self.value(f"after {name.text} {token.text}")
            return t.ParamComparison(name, token.value, value, t.Span(start, value.span.end))
        if self.is_keyword("between"):
            self.advance()
            low, high = self.between(name.text)
            return t.ParamBetween(name, low, high, t.Span(start, high.span.end))
        negated = self.is_keyword("not")
        if negated:
            self.advance()
        if not self.is_keyword("in"):
            raise self.fail(self.token, f"expected an operator after {name.text}, found {self.token.describe()}",
                            hint="parameters take =, !=, >, >=, <, <=, BETWEEN, IN (...) or NOT IN (...)")
        self.advance()
        if self.token.kind != "(":
            raise self.fail(self.token, f"expected '(' after IN, found {self.token.describe()}",
                            hint="write IN ('a', 'b')")
        self.advance()
        values = [self.value(f"in {name.text} IN (...)")]
        while self.token.kind == ",":
            self.advance()
            values.append(self.value(f"in {name.text} IN (...)"))
        end = self.token
        if end.kind != ")":
            raise self.fail(end, f"expected ',' or ')' in IN (...), found {end.describe()}",
                            hint="separate values with commas: IN ('a', 'b')")
        self.advance()
        return t.ParamIn(name, tuple(values), negated, t.Span(start, end.end))

    def value(self, where: str) -> t.Value:
        token = self.token
        span = t.Span(token.start, token.end)
        if token.kind == "number":
            self.advance()
            return t.Number(token.value, token.text, span)
        if token.kind == "string":
            self.advance()
            return t.String(token.value, span)
        if token.kind == "date":
            self.advance()
            return t.Date(token.value, span)
        if token.kind == "relative":
            self.advance()
            amount, unit = token.value
            return t.RelativeDate(amount, unit, token.text, span)
        if token.kind == "word" and token.text.lower() in ("today", "yesterday"):
            self.advance()
            return t.RelativeDate(0 if token.text.lower() == "today" else -1, "d", token.text, span)
        if self.is_keyword("null"):
            hint = "test for a missing value with IS NULL or IS NOT NULL"
        elif token.kind == "word":
            hint = f"strings are written in single quotes: '{token.text}'"
        else:
            hint = "a value is a number (100, 59.90), a 'string', a date (2026-01-31), a relative date " \
                   "(-30d, -2w, -3m, -1y), today or yesterday"
        raise self.fail(token, f"expected a value {where}, found {token.describe()}", hint=hint)


def _and(items: list[t.Node]) -> t.Node | None:
    return _join(t.And, items)


def _or(items: list[t.Node | None]) -> t.Node | None:
    return _join(t.Or, items)


def _join(kind: type, items: list[t.Node | None]) -> t.Node | None:
    """One node for the items; nested nodes of the same kind are merged, so parentheses that group
    nothing new leave no trace."""
    flat = []
    for item in items:
        if item is None:
            continue
        flat.extend(item.items if isinstance(item, kind) else [item])
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else kind(tuple(flat))
