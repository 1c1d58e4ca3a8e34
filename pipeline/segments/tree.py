"""The typed tree of a query: what the parser produces and the checker, compiler and tests read.

Every node keeps the span (start and end offsets in the query text) of the text it came from, so
that any later stage can point at it. AND and OR are flat n-ary nodes: a thousand OR clauses are
one node with a thousand items, not a thousand-deep chain.
"""

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Name:
    text: str
    span: Span


@dataclass(frozen=True)
class Number:
    value: Decimal
    text: str
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Date:
    value: dt.date
    span: Span


@dataclass(frozen=True)
class RelativeDate:
    """`-90d`, `+2w`, `-3m`, `today` (0 days), `yesterday` (-1 day), Shopify's deprecated named dates
    `30_days_ago` (-30 days), `12_months_ago`: a date once the evaluation date is known."""

    amount: int
    unit: str  # d, w, m or y
    text: str
    span: Span

    def resolve(self, as_of: dt.date) -> dt.date:
        if self.unit == "d":
            return as_of + dt.timedelta(days=self.amount)
        if self.unit == "w":
            return as_of + dt.timedelta(weeks=self.amount)
        months = as_of.year * 12 + as_of.month - 1 + (self.amount if self.unit == "m" else 12 * self.amount)
        year, month = divmod(months, 12)
        # Calendar steps land on the same day of the month, or its last day when the month is shorter.
        day = min(as_of.day, calendar.monthrange(year, month + 1)[1])
        return dt.date(year, month + 1, day)


@dataclass(frozen=True)
class DateTime:
    """`2026-10-01T10:00:00`, with or without an offset (`Z`, `+02:00`); without one it is the shop's local time."""

    value: dt.datetime
    text: str
    span: Span


@dataclass(frozen=True)
class Boolean:
    """`true` or `false`: what the deprecated `fn(param: value) = true` form compares with."""

    value: bool
    span: Span


Value = Number | String | Date | DateTime | RelativeDate | Boolean


@dataclass(frozen=True)
class Comparison:
    attribute: Name
    op: str  # =, !=, >, >=, <, <=
    value: Value
    span: Span


@dataclass(frozen=True)
class Between:
    attribute: Name
    low: Value
    high: Value
    span: Span


@dataclass(frozen=True)
class Contains:
    attribute: Name
    value: Value
    negated: bool
    span: Span


@dataclass(frozen=True)
class In:
    attribute: Name
    values: tuple[Value, ...]
    negated: bool
    span: Span


@dataclass(frozen=True)
class IsNull:
    attribute: Name
    negated: bool
    span: Span


@dataclass(frozen=True)
class ParamComparison:
    name: Name
    op: str
    value: Value
    span: Span


@dataclass(frozen=True)
class ParamBetween:
    name: Name
    low: Value
    high: Value
    span: Span


@dataclass(frozen=True)
class ParamIn:
    name: Name
    values: tuple[Value, ...]
    negated: bool
    span: Span


Param = ParamComparison | ParamBetween | ParamIn


@dataclass(frozen=True)
class Matches:
    function: Name
    params: tuple[Param, ...]
    negated: bool
    span: Span


@dataclass(frozen=True)
class CalledWithValue:
    """`fn(param: value) op x` or `fn(...) BETWEEN a AND b`: a function compared with a value, as
    `anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +30d` is written. `values` is
    (x,) with `op`, or (a, b) with op "BETWEEN"."""

    function: Name
    span: Span
    params: tuple[Param, ...] = ()
    op: str = "="
    values: tuple[Value, ...] = ()


@dataclass(frozen=True)
class And:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Node", ...]


Condition = Comparison | Between | Contains | In | IsNull | Matches | CalledWithValue
Node = Condition | And | Or


def conditions(node: Node) -> list[Condition]:
    """Every condition of a tree, left to right, without recursion (trees may be deep)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, And | Or):
            stack.extend(reversed(item.items))
        else:
            found.append(item)
    return found
