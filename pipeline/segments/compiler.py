"""Checked tree → sqlglot expressions: a predicate over marts.customers, a query, a segment view.

Values become sqlglot literals and names come only from the catalogue, so no text of a query is
ever formatted into SQL. AND/OR chains are built as balanced binary trees: a thousand OR clauses
are ten levels deep, which every renderer and DuckDB's binder handle.
"""

import calendar
import datetime as dt
from collections.abc import Callable, Sequence

import duckdb
from sqlglot import exp

from pipeline.segments import tree as t
from pipeline.segments.catalogue import (
    ANNIVERSARY_DATES,
    ATTRIBUTES,
    CUSTOMERS,
    FUNCTIONS,
    METAFIELD_COLUMNS,
    METAFIELD_LISTS,
    METAFIELDS,
    SHOP,
    VIEW_COLUMNS,
    Function,
    Param,
    metafield,
)
from pipeline.segments.checker import check, metafield_kind, product_id, segment_name
from pipeline.segments.definitions import SegmentDefinition
from pipeline.segments.errors import SegmentErrors, Source
from pipeline.segments.parser import parse
from pipeline.sqlbuild import column, count_rows, identifier, qualified, table, temp
from pipeline.warehouse.build import built_as_of, stamp, transaction
from pipeline.warehouse.reach import ensure_reachable

CUSTOMER = "customers"  # alias of marts.customers in compiled queries
ITEM = "item"  # the lambda variable that lowercases list items

_COMPARE: dict[str, Callable[..., exp.Expression]] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    ">": exp.GT,
    ">=": exp.GTE,
    "<": exp.LT,
    "<=": exp.LTE,
}


def parse_checked(query: str, source: Source | None = None) -> t.Node:
    """The tree of a query that parses and type-checks; raises SegmentErrors with every problem."""
    source = source or Source.of_query(query)
    node, errors = parse(source)
    if node is not None:
        errors += check(node, source)
    if errors:
        raise SegmentErrors(sorted(errors, key=lambda e: (e.line, e.column)))
    return node


def compile_query(query: str, as_of: dt.date, *, source: str = "<query>") -> exp.Select:
    """SELECT customer_id FROM marts.customers WHERE <the query>, as of a date."""
    return select_members(parse_checked(query, Source.of_query(query, source)), as_of)


def select_members(node: t.Node, as_of: dt.date) -> exp.Select:
    return (
        exp.select(column("customer_id", CUSTOMER))
        .from_(qualified(CUSTOMERS).as_(identifier(CUSTOMER)))
        .where(predicate(node, as_of))
    )


def segment_view(defn: SegmentDefinition, as_of: dt.date) -> exp.Create:
    """CREATE OR REPLACE VIEW segments.<name>: the members, with the columns messages need and the
    definition's `sms.fields`."""
    members = select_members(defn.tree, as_of)
    columns = list(VIEW_COLUMNS) + [f for f in defn.fields if f not in VIEW_COLUMNS]
    select = (
        exp.select(*(column(c) for c in columns))
        .from_(qualified(CUSTOMERS))
        .where(exp.In(this=column("customer_id"), query=members.subquery()))
    )
    return exp.Create(this=segment_table(defn.name), kind="VIEW", replace=True, expression=select)


def tables_read(defn: SegmentDefinition) -> set[str]:
    """The schema-qualified tables and views the segment's view reads (other segments' views among them),
    its own view aside. They do not depend on the day; a day of the epoch stands in for any."""
    view = segment_view(defn, dt.date(1970, 1, 1))
    return {f"{t.db}.{t.name}" for t in view.expression.find_all(exp.Table)}


def reads_reachability(defn: SegmentDefinition) -> bool:
    """Whether the definition reads can_receive_sms (audience.sms_reachable, which the view's step builds
    from the consent and phone tables of the build)."""
    return any(
        isinstance(c, t.Comparison) and (attribute := ATTRIBUTES.get(c.attribute.text)) and attribute.members
        for c in t.conditions(defn.tree)
    )


def segment_table(name: str) -> exp.Table:
    return table(name, "segments")


def render(expr: exp.Expression, dialect: str = "duckdb", *, pretty: bool = False) -> str:
    return expr.sql(dialect=dialect, pretty=pretty)


MEMBERS_TABLE = "segment_members"


def create_segment_view(con: duckdb.DuckDBPyConnection, defn: SegmentDefinition, as_of: dt.date) -> int:
    """Creates (or replaces) the view segments.<name>; returns how many customers it holds.

    Its customer ids are kept in the temp table segment_members, so the membership history reads
    them without evaluating the segment a second time.
    """
    _create_view(con, defn, as_of)
    con.execute(render(temp(MEMBERS_TABLE, exp.select(column("customer_id")).from_(segment_table(defn.name)))))
    return con.execute(render(count_rows(table(MEMBERS_TABLE)))).fetchall()[0][0]


def bring_views_to_day(con: duckdb.DuckDBPyConnection, definitions: list[SegmentDefinition], day: dt.date) -> list[str]:
    """Recreates, as of `day`, the views of `definitions` the build holds as of another day; returns their names.

    Before a live day is published: a backfill, or a segment whose asset failed tonight, may have left
    a view of another day's relative dates in the build.
    """
    ensure_reachable(con, day)  # the published warehouse has can_receive_sms of its day for previews
    stamps = built_as_of(con)
    stale = [d for d in definitions if stamps.get(f"segments.{d.name}") != day]
    for definition in stale:
        _create_view(con, definition, day)
    return [d.name for d in stale]


def _create_view(con: duckdb.DuckDBPyConnection, defn: SegmentDefinition, day: dt.date) -> None:
    """The view segments.<name> as of `day`, stamped with it (pipeline/warehouse/build.py built_as_of).

    A definition that reads can_receive_sms first has its table as of `day`; one that does not, does not
    wait for it (nor fail on an unreadable suppressions.csv, which the exports report)."""
    if reads_reachability(defn):
        ensure_reachable(con, day)
    with transaction(con):  # one commit, not two: each writes and syncs the WAL (3-5 ms)
        con.execute(render(segment_view(defn, day)))
        stamp(con, f"segments.{defn.name}", day)


METAFIELD = "customer_metafields"  # alias of marts.customer_metafields


def _metafield_rows(namespace: str, key: str) -> list[exp.Expression]:
    """The filters that pick the customer's metafield namespace.key."""
    return [
        exp.EQ(this=column("customer_id", METAFIELD), expression=column("customer_id", CUSTOMER)),
        exp.EQ(this=column("namespace", METAFIELD), expression=exp.Literal.string(namespace)),
        exp.EQ(this=column("key", METAFIELD), expression=exp.Literal.string(key)),
    ]


def _metafield_condition(condition: t.Condition, as_of: dt.date) -> exp.Expression:
    """EXISTS over the customer's metafield: IS NULL is its absence; a comparison reads the column of the
    kind of value written (a metafield of another type has NULL there, so it does not match)."""
    namespace, key = metafield(condition.attribute.text)
    filters = _metafield_rows(namespace, key)
    if isinstance(condition, t.Contains):
        kind = metafield_kind(condition.value)
        items = column(METAFIELD_LISTS[kind], METAFIELD)
        filters.append(exp.ArrayContains(this=items, expression=_metafield_value(kind, condition.value, as_of)))
    elif isinstance(condition, t.Between):
        kind = metafield_kind(condition.low)
        filters.append(
            exp.Between(
                this=column(METAFIELD_COLUMNS[kind], METAFIELD),
                low=_metafield_value(kind, condition.low, as_of),
                high=_metafield_value(kind, condition.high, as_of),
            )
        )
    elif isinstance(condition, t.Comparison):
        kind = metafield_kind(condition.value)
        filters.append(
            _COMPARE[condition.op](
                this=column(METAFIELD_COLUMNS[kind], METAFIELD),
                expression=_metafield_value(kind, condition.value, as_of),
            )
        )
    rows = exp.select(exp.Literal.number(1)).from_(qualified(METAFIELDS).as_(identifier(METAFIELD)))
    found = exp.Exists(this=rows.where(balanced(exp.And, filters)))
    # IS NULL: the customer has no such metafield; NOT CONTAINS: none that contains the value
    absent = (
        condition.negated
        if isinstance(condition, t.Contains)
        else (isinstance(condition, t.IsNull) and not condition.negated)
    )
    return negate(found) if absent else found


def _metafield_value(kind: str, value: t.Value, as_of: dt.date) -> exp.Expression:
    if kind == "boolean":
        return exp.Boolean(this=value.value)
    literal = _literal(value, as_of)
    # text metafields are kept lowercase: strings compare case-insensitively
    return exp.Lower(this=literal) if kind == "string" else literal


def _anniversary(condition: t.CalledWithValue, as_of: dt.date) -> exp.Expression:
    """The date's anniversary falls on one of the days from a to b (= D is D to D). The days are known
    when the query compiles, so they become ranges of month*100+day: a customer's date matches when its
    month and day are in one. A Feb 29 date has its anniversary on Feb 28 in other years."""
    (date_param,) = condition.params
    source = date_param.value.value
    low = _day(condition.values[0], as_of)
    high = _day(condition.values[-1], as_of)

    def code(date: exp.Expression) -> exp.Expression:
        return exp.Add(
            this=exp.Mul(this=exp.Month(this=date), expression=exp.Literal.number(100)), expression=exp.Day(this=date)
        )

    if source in ANNIVERSARY_DATES:
        month_day = code(column(ATTRIBUTES[source].column, CUSTOMER))
    else:
        namespace, key = metafield(source)
        month_day = (
            exp.select(code(column("value_date", METAFIELD)))
            .from_(qualified(METAFIELDS).as_(identifier(METAFIELD)))
            .where(balanced(exp.And, _metafield_rows(namespace, key)))
            .subquery()
        )
    ranges = anniversary_ranges(low, high)
    if not ranges:
        return exp.false()
    return exp.Coalesce(
        this=exp.Paren(
            this=balanced(
                exp.Or,
                [exp.Between(this=month_day, low=exp.Literal.number(a), high=exp.Literal.number(b)) for a, b in ranges],
            )
        ),
        expressions=[exp.false()],
    )


def anniversary_ranges(low: dt.date, high: dt.date) -> list[tuple[int, int]]:
    """The month*100+day codes celebrated on the days from low to high, as inclusive ranges: each day's
    own code, and 229 on Feb 28 of a year without a Feb 29."""
    codes: set[int] = set()
    day = low
    while day <= high and len(codes) < 366:
        codes.add(day.month * 100 + day.day)
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            codes.add(229)
        day += dt.timedelta(days=1)
    ranges: list[tuple[int, int]] = []
    for code in sorted(codes):
        # consecutive in a leap year's calendar, where every code is a day
        if ranges and _next_code(ranges[-1][1]) == code:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _next_code(code: int) -> int:
    following = dt.date(2000, code // 100, code % 100) + dt.timedelta(days=1)
    return following.month * 100 + following.day


def _day(value: t.Value, as_of: dt.date) -> dt.date:
    """The day a date value stands for (the checker refuses a date-time with an offset here: its day
    depends on the shop's zone, which the compiled query only reads when it runs)."""
    if isinstance(value, t.DateTime):
        return value.value.date()
    return value.value if isinstance(value, t.Date) else value.resolve(as_of)


def predicate(node: t.Node, as_of: dt.date) -> exp.Expression:
    if isinstance(node, t.And):
        return balanced(exp.And, [predicate(item, as_of) for item in node.items])
    if isinstance(node, t.Or):
        return balanced(exp.Or, [predicate(item, as_of) for item in node.items])
    if isinstance(node, t.Matches):
        return _matches(node, as_of)
    if isinstance(node, t.CalledWithValue):
        return _anniversary(node, as_of)
    return _attribute_condition(node, as_of)


def balanced(kind: type[exp.Connector], items: Sequence[exp.Expression]) -> exp.Expression:
    """items joined by AND or OR as a balanced tree; an OR inside an AND keeps its parentheses."""
    level = [exp.Paren(this=i) if kind is exp.And and isinstance(i, exp.Or) else i for i in items]
    while len(level) > 1:
        level = [
            kind(this=level[i], expression=level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def negate(expr: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Paren(this=expr) if isinstance(expr, exp.Connector) else expr)


def _attribute_condition(condition: t.Condition, as_of: dt.date) -> exp.Expression:
    if condition.attribute.text.startswith("metafields."):
        return _metafield_condition(condition, as_of)
    attribute = ATTRIBUTES[condition.attribute.text]
    if attribute.element == "segment":
        members = exp.select(column("customer_id")).from_(segment_table(segment_name(condition.value)))
        found = exp.In(this=column("customer_id", CUSTOMER), query=members.subquery())
        return negate(found) if condition.negated else found
    if attribute.members:
        # true for the customers of its table; `= false` and `!= true` are everyone else
        members = exp.select(column("customer_id")).from_(qualified(attribute.members))
        found = exp.In(this=column("customer_id", CUSTOMER), query=members.subquery())
        return negate(found) if (condition.op == "=") != condition.value.value else found
    field = column(attribute.column, CUSTOMER)
    if isinstance(condition, t.Contains) and attribute.element == "integer":
        found = exp.ArrayContains(this=field, expression=exp.Literal.number(str(condition.value.value)))
        return negate(found) if condition.negated else found
    if isinstance(condition, t.Contains):
        # Customer lists keep the merchant's case; lower every item and the value.
        items = exp.Transform(
            this=field,
            expression=exp.Lambda(this=exp.Lower(this=column(ITEM)), expressions=[identifier(ITEM)]),
        )
        found = exp.ArrayContains(this=items, expression=exp.Lower(this=_literal(condition.value, as_of)))
        return negate(found) if condition.negated else found
    if isinstance(condition, t.IsNull):
        # A list is missing when it is empty: the marts keep no NULL lists, but a NULL is missing too.
        missing = (
            exp.EQ(
                this=exp.Coalesce(this=exp.ArraySize(this=field), expressions=[exp.Literal.number(0)]),
                expression=exp.Literal.number(0),
            )
            if attribute.type == "list"
            else exp.Is(this=field, expression=exp.Null())
        )
        return negate(missing) if condition.negated else missing
    if attribute.type == "string":
        field = exp.Lower(this=field)
    if isinstance(condition, t.In):
        found = exp.In(this=field, expressions=[_value(attribute.type, v, as_of) for v in condition.values])
        return negate(found) if condition.negated else found
    if isinstance(condition, t.Between):
        return exp.Between(
            this=field,
            low=_value(attribute.type, condition.low, as_of),
            high=_value(attribute.type, condition.high, as_of),
        )
    return _COMPARE[condition.op](this=field, expression=_value(attribute.type, condition.value, as_of))


def _matches(condition: t.Matches, as_of: dt.date) -> exp.Expression:
    """EXISTS over the function's rows of the customer that pass the filters; with aggregate
    parameters the subquery aggregates those rows with no GROUP BY, so it yields one row even when
    there are none, and HAVING tests the totals: count = 0 holds for customers without any row."""
    function = FUNCTIONS[condition.function.text]
    alias = function.table.split(".")[1]
    row_column, customer_column = function.join
    filters = [exp.EQ(this=column(row_column, alias), expression=column(customer_column, CUSTOMER))]
    totals = []
    if function.name == "customer_within_distance":  # its parameters are a point and a radius, not row filters
        filters += _within_distance(condition, alias)
    else:
        if function.event_type:
            filters.append(exp.EQ(this=column("event_type", alias), expression=exp.Literal.string(function.event_type)))
        for param in condition.params:
            spec = function.params[param.name.text]
            (totals if spec.aggregate else filters).append(_param(function, spec, param, alias, as_of))
    rows = exp.select(exp.Literal.number(1)).from_(qualified(function.table).as_(identifier(alias)))
    rows = rows.where(balanced(exp.And, filters))
    if totals:
        rows = rows.having(balanced(exp.And, totals))
    found = exp.Exists(this=rows)
    return negate(found) if condition.negated else found


EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius
KM_PER_MILE = 1.609344


def _within_distance(condition: t.Matches, alias: str) -> list[exp.Expression]:
    """The filters of an address (a row of `alias`) within the radius of the point: the haversine
    great-circle distance, which needs no care at the antimeridian (sin² of half the longitude step is
    the same either way round). An address that is not geocoded is within no distance."""
    params = {p.name.text: p for p in condition.params}
    latitude, longitude = (float(v.value) for v in params["coordinates"].values)
    radius_param = params.get("distance_km") or params["distance_mi"]
    radius_km = float(radius_param.value.value) * (KM_PER_MILE if radius_param.name.text == "distance_mi" else 1)

    def radians(e: exp.Expression) -> exp.Expression:
        return exp.Radians(this=e)

    def squared_sine_of_half(step: exp.Expression) -> exp.Expression:
        return exp.Pow(
            this=exp.Sin(this=exp.Div(this=exp.Paren(this=step), expression=exp.Literal.number(2))),
            expression=exp.Literal.number(2),
        )

    lat = radians(column("latitude", alias))
    lng = radians(column("longitude", alias))
    centre_lat, centre_lng = radians(exp.Literal.number(latitude)), radians(exp.Literal.number(longitude))
    haversine = exp.Add(
        this=squared_sine_of_half(exp.Sub(this=lat, expression=centre_lat)),
        expression=exp.Mul(
            this=exp.Mul(this=exp.Cos(this=lat), expression=exp.Cos(this=centre_lat)),
            expression=squared_sine_of_half(exp.Sub(this=lng, expression=centre_lng)),
        ),
    )
    # least(1, ...): rounding can lift the haversine of antipodes just past 1, where asin(sqrt) is NaN
    distance = exp.Mul(
        this=exp.Literal.number(2 * EARTH_RADIUS_KM),
        expression=exp.Asin(
            this=exp.Sqrt(this=exp.Least(this=exp.Literal.number(1), expressions=[haversine], ignore_nulls=True))
        ),
    )
    return [
        # DuckDB's least() skips a NULL: an address without coordinates is ruled out first
        exp.Not(this=exp.Is(this=column("latitude", alias), expression=exp.Null())),
        exp.LTE(this=distance, expression=exp.Literal.number(radius_km)),
    ]


def _param(function: Function, spec: Param, param: t.Param, alias: str, as_of: dt.date) -> exp.Expression:
    field = column(spec.column, alias) if spec.column else None
    if spec.kind == "count":
        subject = exp.Count(this=exp.Distinct(expressions=[field]) if field else exp.Star())
    elif spec.kind == "sum":
        subject = exp.Coalesce(this=exp.Sum(this=field), expressions=[exp.Literal.number(0)])
    elif spec.kind == "list":
        return _list_param(spec, param, field, as_of)
    elif spec.type == "string":
        subject = exp.Lower(this=field)
    else:
        subject = field
    if isinstance(param, t.ParamBetween):
        return exp.Between(
            this=subject, low=_value(spec.type, param.low, as_of), high=_value(spec.type, param.high, as_of)
        )
    if isinstance(param, t.ParamIn):
        found = exp.In(this=subject, expressions=[_value(spec.type, v, as_of) for v in param.values])
        return negate(found) if param.negated else found
    return _COMPARE[param.op](this=subject, expression=_value(spec.type, param.value, as_of))


def _list_param(spec: Param, param: t.Param, field: exp.Expression, as_of: dt.date) -> exp.Expression:
    """tag, collection, collection_id: the line's product is (=, IN) or is not (!=, NOT IN) in them."""
    values = param.values if isinstance(param, t.ParamIn) else (param.value,)
    found = balanced(exp.Or, [exp.ArrayContains(this=field, expression=_value(spec.type, v, as_of)) for v in values])
    negated = param.negated if isinstance(param, t.ParamIn) else param.op == "!="
    return negate(found) if negated else found


def _value(type_: str, value: t.Value, as_of: dt.date) -> exp.Expression:
    if type_ == "product_id":
        return exp.Literal.number(product_id(value))
    literal = _literal(value, as_of)
    # Strings compare case-insensitively; lowercase list columns are already lowered by the marts.
    return exp.Lower(this=literal) if type_ == "string" else literal


def _literal(value: t.Value, as_of: dt.date) -> exp.Expression:
    if isinstance(value, t.Number):
        # A number literal, so DuckDB reads it as an exact DECIMAL (59.90 is DECIMAL(4,2)).
        return exp.Literal.number(str(value.value))
    if isinstance(value, t.String):
        return exp.Literal.string(value.value)
    if isinstance(value, t.DateTime) and value.value.tzinfo is not None:
        return _local_day(value.value)
    if isinstance(value, t.DateTime):
        # Without an offset the time is the shop's own: its day is the date as written.
        day = value.value.date()
    else:
        day = value.value if isinstance(value, t.Date) else value.resolve(as_of)
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("date"))


def _local_day(moment: dt.datetime) -> exp.Expression:
    """The shop-local day of an instant. Every date of the warehouse is a whole day in the shop's time
    zone, so an instant compares as the day it falls on there; the zone is read from the warehouse
    (staging.stg_shop) when the view runs, so the compiled query needs no zone and never goes stale."""
    zone = exp.select(column("shop_timezone")).from_(qualified(SHOP)).subquery()
    instant = exp.cast(exp.Literal.string(moment.isoformat()), exp.DataType.build("timestamptz"))
    return exp.cast(exp.AtTimeZone(this=instant, zone=zone), exp.DataType.build("date"))
