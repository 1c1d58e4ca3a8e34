"""Text of a query → typed tree: a hand-written tokenizer and a recursive-descent parser.

One method per grammar rule (query, or_expr, and_expr, term, condition, params, value). Recursion
grows only with parentheses, which are capped at MAX_NESTING; AND and OR chains are loops, so a
thousand clauses are one flat node. After a syntax error in one condition the parser skips to the
next AND or OR and goes on, so one run reports every broken condition.

Besides the spec's grammar it reads what a merchant pastes from Shopify: the editor's full text
`FROM customers SHOW ... WHERE <query> ORDER BY ...`, the deprecated `fn(param: value) = true`
form, named dates such as `30_days_ago`, date-times, and dotted filter names such as
`shopify_email.opened` (which the checker then accepts or explains).
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

# Shopify's filters have dotted names (shopify_email.opened, metafields.custom.vip).
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?(?![\w.:+-])")
# A date-time written another way (2026-10-01T10, 2026-10-01T10:00+2): caught whole, with its own hint
_BAD_DATETIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}T[\w:.+-]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w.])")
# A date written another way (2026/10/01, 2026-10-1, 01.10.2026): caught whole, before it reads as numbers
_LOOSE_DATE = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?![\w.])")
_RELATIVE = re.compile(r"[+-](\d+)([dwmy])(?![\w.])")
# Shopify's deprecated named dates: 7_days_ago, 30_days_ago, 90_days_ago, 12_months_ago (any number is read)
_NAMED_DATE = re.compile(r"(\d+)_(day|week|month|year)s?_ago(?![\w.])", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(\d+)(?:\.(\d+))?(?![\w.])")
_BAD_NUMBER = re.compile(r"[+-]?\.?\d[\w.]*")
_WHITESPACE = re.compile(r"\s+")

VALUE_HINT = (
    "a value is a number (100, 59.90), a 'string', a date (2026-01-31), a date and time "
    "(2026-01-31T10:00:00), a relative date (-30d, -2w, -3m, -1y), today or yesterday"
)
DATETIME_HINT = "a date and time is written 2026-10-01T10:00:00, optionally with an offset: Z or +02:00"


@dataclass(frozen=True)
class Token:
    kind: str  # word, keyword, number, string, date, datetime, relative, op, (, ), ",", ":", end
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


class _Abort(Exception):
    """A syntax error after which nothing more can be read: the errors so far are the answer."""


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
        if c in "(),:":
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
            errors.append(
                source.error(
                    pos,
                    end,
                    "strings are written in single quotes",
                    hint="write 'like this'; a quote inside is \\' and a backslash \\\\",
                )
            )
            pos = end
        elif m := _WORD.match(text, pos):
            word = m.group()
            if word.lower() in KEYWORDS:
                add("keyword", pos, m.end(), word=word.lower())
            else:
                add("word", pos, m.end())
            pos = m.end()
        elif m := _DATETIME.match(text, pos):
            try:
                add("datetime", pos, m.end(), dt.datetime.fromisoformat(m.group()))
            except ValueError:
                errors.append(source.error(pos, m.end(), f"{m.group()} is not a date and time", hint=DATETIME_HINT))
            pos = m.end()
        elif m := _BAD_DATETIME.match(text, pos):
            errors.append(source.error(pos, m.end(), f"{m.group()} is not a date and time", hint=DATETIME_HINT))
            pos = m.end()
        elif m := _DATE.match(text, pos):
            try:
                add("date", pos, m.end(), dt.date.fromisoformat(m.group()))
            except ValueError:
                errors.append(
                    source.error(
                        pos, m.end(), f"{m.group()} is not a date", hint="dates are YYYY-MM-DD, such as 2026-01-31"
                    )
                )
            pos = m.end()
        elif m := _LOOSE_DATE.match(text, pos):
            errors.append(source.error(pos, m.end(), f"{m.group()} is not a date", hint=_date_hint(m)))
            pos = m.end()
        elif m := _RELATIVE.match(text, pos):
            amount = int(m.group(1)) * (-1 if c == "-" else 1)
            add("relative", pos, m.end(), (amount, m.group(2)))
            pos = m.end()
        elif m := _NAMED_DATE.match(text, pos):
            add("relative", pos, m.end(), (-int(m.group(1)), m.group(2)[0].lower()))
            pos = m.end()
        elif m := _NUMBER.match(text, pos):
            integer, fraction = m.group(1), m.group(2) or ""
            if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS or len(fraction) > MAX_FRACTION_DIGITS:
                errors.append(
                    source.error(
                        pos,
                        m.end(),
                        "number too long",
                        hint=f"numbers have at most {MAX_INTEGER_DIGITS} digits before the "
                        f"decimal point and {MAX_FRACTION_DIGITS} after it",
                    )
                )
            else:
                add("number", pos, m.end(), Decimal(m.group()))
            pos = m.end()
        elif m := _BAD_NUMBER.match(text, pos):
            errors.append(
                source.error(
                    pos,
                    m.end(),
                    f"{m.group()!r} is not a number, date or relative date",
                    hint="numbers look like 100 or 59.90, dates like 2026-01-31, relative "
                    "dates like -30d, -2w, -3m or -1y",
                )
            )
            pos = m.end()
        else:
            errors.append(
                source.error(
                    pos,
                    pos + 1,
                    f"unexpected character {c!r}",
                    hint="a query is conditions joined by AND and OR, such as "
                    "amount_spent > 100 AND customer_tags CONTAINS 'vip'",
                )
            )
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
            following = text[pos + 1 : pos + 2]
            if following in ("'", "\\"):
                chars.append(following)
                pos += 2
                continue
            errors.append(
                source.error(
                    pos,
                    pos + 2,
                    f"unknown escape \\{following}" if following else "a backslash ends the query",
                    hint="inside a string, \\' is a quote and \\\\ a backslash; nothing else is escaped",
                )
            )
            pos += 2
            continue
        chars.append(c)
        pos += 1
    errors.append(
        source.error(
            start,
            start + 1,
            "string not closed",
            hint="end the string with a single quote; a quote inside it is written \\'",
        )
    )
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
        return None, [
            source.error(
                MAX_QUERY_LENGTH,
                MAX_QUERY_LENGTH + 1,
                f"the query is {len(source.text):,} characters long; at most {MAX_QUERY_LENGTH:,}",
                hint="split it into segments and combine them with segments CONTAINS 'name'",
            )
        ]
    tokens, errors = tokenize(source)
    if errors:
        return None, errors
    parser = _Parser(source, tokens)
    try:
        return parser.query(), parser.errors
    except _Abort:
        return None, parser.errors


class _Parser:
    def __init__(self, source: Source, tokens: list[Token]):
        self.source, self.tokens, self.pos, self.errors = source, tokens, 0, []
        self.resumed_at: int | None = None
        self.editor = False  # the query came as FROM customers ... WHERE ...: ORDER BY may follow it

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

    def is_word(self, *words: str, at: int = 0) -> bool:
        """Whether the token (`at` tokens ahead) is one of the words, in any case: the editor's
        FROM, SHOW, WHERE, ORDER BY, LIMIT and the values true and false are words, not keywords,
        so that they stay free as names everywhere else."""
        token = self.tokens[min(self.pos + at, len(self.tokens) - 1)]
        return token.kind == "word" and token.text.lower() in words

    def fail(self, token: Token, message: str, hint: str = "") -> _Stop:
        return _Stop(self.source.error(token.start, max(token.end, token.start + 1), message, hint), token.start)

    def abort(self, token: Token, message: str, hint: str = "") -> _Abort:
        self.errors.append(self.source.error(token.start, max(token.end, token.start + 1), message, hint))
        return _Abort()

    # query := [ FROM customers [ SHOW name ("," name)* ] WHERE ] or_expr [ ORDER BY name [ASC | DESC] ]
    def query(self) -> t.Node | None:
        if self.token.kind == "end":
            raise self.abort(self.token, "empty query", hint="write a condition such as amount_spent > 100")
        if self.is_word("from"):
            self.editor_header()
        node = self.or_expr(0)
        if self.editor:
            self.editor_footer()
        return node

    def editor_header(self) -> None:
        """FROM customers [SHOW columns] WHERE: the frame Shopify's editor puts around a query. The
        columns only choose what the editor displays, so they are read and left aside."""
        self.advance()
        if not self.is_word("customers"):
            raise self.abort(
                self.token,
                f"expected customers after FROM, found {self.token.describe()}",
                hint="a segment is a set of customers: FROM customers WHERE <query>",
            )
        self.advance()
        if self.is_word("show"):
            self.advance()
            while True:
                if self.token.kind != "word" or self.is_word("where"):
                    raise self.abort(
                        self.token,
                        f"expected a column name after SHOW, found {self.token.describe()}",
                        hint="SHOW lists columns separated by commas: SHOW customer_name, amount_spent",
                    )
                self.advance()
                if self.token.kind != ",":
                    break
                self.advance()
        if not self.is_word("where"):
            raise self.abort(
                self.token,
                f"expected WHERE, found {self.token.describe()}",
                hint="write FROM customers WHERE <query>, or the query alone",
            )
        where = self.advance()
        if self.token.kind == "end":
            raise self.abort(where, "WHERE without a query", hint="write a condition such as amount_spent > 100")
        self.editor = True

    def at_editor_footer(self) -> bool:
        return self.is_word("limit") or (self.is_word("order") and self.is_word("by", at=1))

    def editor_footer(self) -> None:
        """ORDER BY only orders the editor's list: a segment is a set, so it is read and left aside.
        LIMIT would drop matching customers, so it is refused."""
        if self.is_word("order"):  # and_expr stopped here, so BY follows
            self.advance()
            self.advance()
            if self.token.kind != "word":
                raise self.abort(
                    self.token,
                    f"expected a column name after ORDER BY, found {self.token.describe()}",
                    hint="write ORDER BY updated_at, or leave ORDER BY out",
                )
            self.advance()
            if self.is_word("asc", "desc"):
                self.advance()
        if self.is_word("limit"):
            raise self.abort(
                self.token,
                "LIMIT does not apply to a segment",
                hint="a segment holds every customer who matches: remove LIMIT",
            )
        if self.token.kind != "end":
            raise self.abort(
                self.token,
                f"expected the end of the query, found {self.token.describe()}",
                hint="after WHERE <query> only ORDER BY <column> may follow",
            )

    # or_expr := and_expr ( OR and_expr )*
    def or_expr(self, depth: int) -> t.Node | None:
        items = [self.and_expr(depth)]
        while self.is_keyword("or"):
            self.advance()
            items.append(self.and_expr(depth))
        return _join(t.Or, items)

    # and_expr := term ( AND term )*
    def and_expr(self, depth: int) -> t.Node | None:
        items = [self.term(depth)]
        while True:
            token = self.token
            if self.is_keyword("and"):
                self.advance()
                items.append(self.term(depth))
            elif (
                self.is_keyword("or")
                or token.kind == "end"
                or (token.kind == ")" and depth > 0)
                or (self.editor and depth == 0 and self.at_editor_footer())
            ):
                return _join(t.And, items)
            else:
                message = (
                    "')' without a matching '('"
                    if token.kind == ")"
                    else f"expected AND, OR or the end of the query, found {token.describe()}"
                )
                self.errors.append(
                    self.source.error(token.start, token.end, message, hint="join conditions with AND or OR")
                )
                self.advance()
                self.skip_condition()

    # term := "(" or_expr ")" | condition
    def term(self, depth: int) -> t.Node | None:
        if self.token.kind != "(":
            return self.recovering_condition()
        opening = self.token
        if depth >= MAX_NESTING:
            raise self.abort(
                opening,
                "parentheses nested too deep",
                hint=f"at most {MAX_NESTING} levels; AND and OR take any number of conditions without them",
            )
        self.advance()
        node = self.or_expr(depth + 1)
        if self.token.kind == ")":
            self.advance()
        else:
            self.errors.append(
                self.source.error(opening.start, opening.end, "'(' is never closed", hint="add the matching ')'")
            )
        return node

    def recovering_condition(self) -> t.Condition | None:
        """A condition, or None after recording its syntax error and skipping to the next AND or OR."""
        start = self.pos
        try:
            return self.condition()
        except _Stop as stop:
            # A condition that fails on the very token a skip stopped after is the same problem
            # seen again (as in `x BETWEEN 1 OR 2`): one error is enough.
            if stop.offset != self.resumed_at:
                self.errors.append(stop.error)
            self.pos = start
            self.skip_condition()
            self.resumed_at = self.tokens[self.pos + 1].start if self.is_keyword("and", "or") else None
            return None

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
            raise self.fail(
                token,
                f"expected {what}, found {token.describe()}",
                hint="a condition starts with an attribute such as amount_spent or a function such as orders_placed",
            )
        self.advance()
        return t.Name(token.text, t.Span(token.start, token.end))

    # condition := name cmp value | name BETWEEN value AND value | name [NOT] CONTAINS value
    #            | name [NOT] IN "(" values ")" | name IS [NOT] NULL | name [NOT] MATCHES params
    #            | name call_params ( ("=" | "!=") (true | false) | cmp value | BETWEEN value AND value )
    def condition(self) -> t.Condition:
        name = self.name("an attribute or function name")
        start, token = name.span.start, self.token
        if token.kind == "(":
            return self.call(name)
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
        if self.is_keyword("in"):
            values, end = self.in_values(name.text)
            return t.In(name, values, negated, t.Span(start, end))
        if negated:
            raise self.fail(
                self.token,
                f"expected CONTAINS, MATCHES or IN after NOT, found {self.token.describe()}",
                hint="NOT is only written as NOT CONTAINS, NOT MATCHES, NOT IN or IS NOT NULL",
            )
        if self.is_keyword("is"):
            self.advance()
            negated = self.is_keyword("not")
            if negated:
                self.advance()
            end = self.token
            if not self.is_keyword("null"):
                raise self.fail(
                    end,
                    f"expected NULL after IS{' NOT' if negated else ''}, found {end.describe()}",
                    hint="IS is only written as IS NULL or IS NOT NULL",
                )
            self.advance()
            return t.IsNull(name, negated, t.Span(start, end.end))
        raise self.fail(
            token,
            f"expected an operator after {name.text}, found {token.describe()}",
            hint="operators are =, !=, >, >=, <, <=, BETWEEN, CONTAINS, NOT CONTAINS, IN, NOT IN, "
            "IS NULL, IS NOT NULL, MATCHES and NOT MATCHES",
        )

    def call(self, name: t.Name) -> t.Condition:
        """The deprecated form: `fn(p: v, ...) = true` is `fn MATCHES (...)`, `= false` is NOT MATCHES."""
        params = self.call_params(name.text)
        start, token = name.span.start, self.token
        if token.kind == "op":
            self.advance()
            value = self.value(f"after {name.text}(...) {token.text}")
            if isinstance(value, t.Boolean) and token.value in ("=", "!="):
                negated = value.value != (token.value == "=")
                return t.Matches(name, params, negated, t.Span(start, value.span.end))
            return t.CalledWithValue(name, t.Span(start, value.span.end), params, token.value, (value,))
        if self.is_keyword("between"):
            self.advance()
            low, high = self.between(f"{name.text}(...)")
            return t.CalledWithValue(name, t.Span(start, high.span.end), params, "BETWEEN", (low, high))
        raise self.fail(
            token,
            f"expected = true or = false after {name.text}(...), found {token.describe()}",
            hint=f"write {name.text} MATCHES (param = value, ...), or the older {name.text}(param: value) = true",
        )

    # call_params := "(" [ name ":" ( value | "(" value ("," value)* ")" ) ( "," ... )* ] ")"
    def call_params(self, function: str) -> tuple[t.Param, ...]:
        self.advance()
        params: list[t.Param] = []
        while self.token.kind != ")":
            if params:
                if self.token.kind != ",":
                    raise self.fail(
                        self.token,
                        f"expected ',' or ')' in the parameters of {function}, found {self.token.describe()}",
                        hint="separate parameters with commas: (id: 42, date: -30d)",
                    )
                self.advance()
            name = self.name("a parameter name")
            if self.token.kind != ":":
                raise self.fail(
                    self.token,
                    f"expected ':' after {name.text}, found {self.token.describe()}",
                    hint=f"in {function}(...) a parameter is written name: value; or write "
                    f"{function} MATCHES ({name.text} = value)",
                )
            self.advance()
            params.append(self.call_param(name))
        self.advance()
        return tuple(params)

    def call_param(self, name: t.Name) -> t.Param:
        """`name: value` is name = value, `name: (a, b)` is name IN (a, b); an offset such as
        `date: -30d` or `date: 30_days_ago` means since that day (>=), as it reads."""
        start = name.span.start
        if self.token.kind == "(":
            values, end = self.value_list(f"in {name.text}: (...)")
            return t.ParamIn(name, values, False, t.Span(start, end))
        value = self.value(f"after {name.text}:")
        since = isinstance(value, t.RelativeDate) and value.text.lower() not in ("today", "yesterday")
        return t.ParamComparison(name, ">=" if since else "=", value, t.Span(start, value.span.end))

    def between(self, name: str) -> tuple[t.Value, t.Value]:
        low = self.value(f"after {name} BETWEEN")
        if not self.is_keyword("and"):
            raise self.fail(
                self.token,
                f"expected AND in {name} BETWEEN ... AND ..., found {self.token.describe()}",
                hint="BETWEEN takes two values: BETWEEN 10 AND 20 (both included)",
            )
        self.advance()
        return low, self.value(f"after {name} BETWEEN ... AND")

    # params := "(" [ param ( "," param )* ] ")"     -- MATCHES () is "any row at all"
    def params(self, function: str) -> tuple[tuple[t.Param, ...], int]:
        if self.token.kind != "(":
            raise self.fail(
                self.token,
                f"expected '(' after {function} MATCHES, found {self.token.describe()}",
                hint=f"write {function} MATCHES (param = value, ...)",
            )
        self.advance()
        params = []
        if self.token.kind == ")":
            return (), self.advance().end
        while True:
            params.append(self.param())
            token = self.advance()
            if token.kind == ")":
                return tuple(params), token.end
            if token.kind != ",":
                raise self.fail(
                    token,
                    f"expected ',' or ')' in the parameters of {function}, found {token.describe()}",
                    hint="separate parameters with commas: (date >= -30d, count >= 2)",
                )

    # param := name cmp value | name "=" "(" values ")" | name BETWEEN value AND value | name [NOT] IN "(" values ")"
    def param(self) -> t.Param:
        name = self.name("a parameter name")
        start, token = name.span.start, self.token
        if token.kind == "op":
            self.advance()
            if token.value == "=" and self.token.kind == "(":
                # `coordinates = (45.39, -75.74)`, `id = (42, 43)`: one of the listed values
                values, end = self.value_list(f"in {name.text} = (...)")
                return t.ParamIn(name, values, False, t.Span(start, end))
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
            raise self.fail(
                self.token,
                f"expected an operator after {name.text}, found {self.token.describe()}",
                hint="parameters take =, !=, >, >=, <, <=, BETWEEN, IN (...) or NOT IN (...)",
            )
        values, end = self.in_values(name.text)
        return t.ParamIn(name, values, negated, t.Span(start, end))

    def in_values(self, name: str) -> tuple[tuple[t.Value, ...], int]:
        """IN ( value, ... ), from the IN keyword; the values and the offset after ')'."""
        self.advance()
        if self.token.kind != "(":
            raise self.fail(
                self.token, f"expected '(' after IN, found {self.token.describe()}", hint="write IN ('a', 'b')"
            )
        return self.value_list(f"in {name} IN (...)")

    def value_list(self, where: str) -> tuple[tuple[t.Value, ...], int]:
        """( value, ... ), from the '('; the values and the offset after ')'."""
        self.advance()
        values = [self.value(where)]
        while self.token.kind == ",":
            self.advance()
            values.append(self.value(where))
        end = self.token
        if end.kind != ")":
            raise self.fail(
                end,
                f"expected ',' or ')' in IN (...), found {end.describe()}",
                hint="separate values with commas: IN ('a', 'b')",
            )
        self.advance()
        return tuple(values), end.end

    # value := number | string | date | datetime | relative | today | yesterday | true | false
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
        if token.kind == "datetime":
            self.advance()
            return t.DateTime(token.value, token.text, span)
        if token.kind == "relative":
            self.advance()
            amount, unit = token.value
            return t.RelativeDate(amount, unit, token.text, span)
        if self.is_word("today", "yesterday"):
            self.advance()
            return t.RelativeDate(0 if token.text.lower() == "today" else -1, "d", token.text, span)
        if self.is_word("true", "false"):
            self.advance()
            return t.Boolean(token.text.lower() == "true", span)
        if self.is_keyword("null"):
            hint = "test for a missing value with IS NULL or IS NOT NULL"
        elif token.kind == "word":
            hint = f"strings are written in single quotes: '{token.text}'"
        else:
            hint = VALUE_HINT
        raise self.fail(token, f"expected a value {where}, found {token.describe()}", hint=hint)


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
