"""Why a segment has no member, when a cause can be named from the query's tree and the warehouse.

A condition is blamed only when, alone, it matches no customer; then one of three causes is named:
its date window starts after the latest data of the kind it filters, a value it asks for no row
has (with the closest value that exists), or a segment it requires is itself empty. Every check is
the compiler's own predicate or a query built from catalogue names: no query text reaches the SQL.
An empty segment for any other reason (no customer spent exactly 50) gets no explanation.
"""

import datetime as dt
import difflib
from collections.abc import Mapping

import duckdb
from sqlglot import exp

from pipeline.segments import tree as t
from pipeline.segments.catalogue import ATTRIBUTES, CUSTOMERS, FUNCTIONS
from pipeline.segments.checker import product_id, segment_name
from pipeline.segments.compiler import CUSTOMER, predicate, render
from pipeline.segments.definitions import SegmentDefinition
from pipeline.sqlbuild import column, identifier, qualified

# What the latest value of a date attribute or a function's date is the latest of.
DATED = {
    "last_order_date": "order",
    "first_order_date": "first order",
    "customer_added_date": "customer added",
    "abandoned_checkout_date": "abandoned checkout",
    "orders_placed": "order",
    "products_purchased": "order",
    "sms_events": "SMS event",
}
# A list or text attribute's values, as a reason names them ("no customer has the tag 'vip'").
VALUED = {
    "customer_tags": "tag",
    "customer_countries": "country",
    "customer_regions": "region",
    "customer_cities": "city",
    "customer_email_domain": "email domain",
    "customer_language": "language",
}
# A function's filter, as a reason names it ("no customer bought a product in the collection 'sumer'").
FILTERED = {
    ("products_purchased", "id"): "no customer bought the product",
    ("products_purchased", "tag"): "no customer bought a product tagged",
    ("products_purchased", "collection"): "no customer bought a product in the collection",
    ("products_purchased", "collection_id"): "no customer bought a product in the collection",
    ("sms_events", "type"): "no customer's number has an SMS event of type",
    ("sms_events", "campaign"): "no customer's number has an SMS event of the campaign",
}


def empty_reason(
    con: duckdb.DuckDBPyConnection,
    query: SegmentDefinition | t.Node,
    as_of: dt.date,
    definitions: Mapping[str, SegmentDefinition] | None = None,
) -> str | None:
    """Why the segment `query` (a definition, or a checked tree) matches no customer as of `as_of`, or
    None when no cause can be named. `definitions` lets a required empty segment give its own reason.

    `con` holds marts.* as of `as_of` and the views of the segments the query uses.
    """
    if isinstance(query, SegmentDefinition):
        query = query.tree
    return _Explainer(con, as_of, definitions or {}).reason(query)


class _Explainer:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, as_of: dt.date, definitions: Mapping[str, SegmentDefinition]
    ) -> None:
        self.con, self.as_of, self.definitions = con, as_of, definitions

    def reason(self, node: t.Node) -> str | None:
        if isinstance(node, t.And):  # one member that matches nobody empties the whole
            return next((r for r in map(self.reason, node.items) if r is not None), None)
        if isinstance(node, t.Or):  # every member must be empty, each for a reason
            reasons = [self.reason(item) for item in node.items]
            return None if None in reasons else " and ".join(reasons)
        if getattr(node, "negated", False) or self._anyone(predicate(node, self.as_of)):
            return None
        if isinstance(node, t.Matches):
            return self._matches(node)
        if node.attribute.text == "segments":
            return self._segment(node.value)
        if isinstance(node, t.Comparison | t.Between) and node.attribute.text in DATED:
            return self._window(node.attribute.text, CUSTOMERS, ATTRIBUTES[node.attribute.text].column, [node])
        if (
            isinstance(node, t.Contains | t.Comparison)
            and node.attribute.text in VALUED
            and getattr(node, "op", "=") == "="
        ):
            attribute = ATTRIBUTES[node.attribute.text]
            return f"no customer has the {VALUED[attribute.name]} '{node.value.value}'" + self._closest(
                node.value.value, CUSTOMERS, attribute.column, attribute.type == "list"
            )
        return None

    def _matches(self, node: t.Matches) -> str | None:
        function = FUNCTIONS[node.function.text]
        dates = [p for p in node.params if function.params[p.name.text].type == "date"]
        if dates:
            reason = self._window(function.name, function.table, function.params["date"].column, dates)
            if reason:
                return reason
        for param in node.params:
            spec = function.params[param.name.text]
            lead = FILTERED.get((function.name, spec.name))
            negated = param.negated if isinstance(param, t.ParamIn) else getattr(param, "op", "=") != "="
            if lead is None or negated:
                continue
            alone = t.Matches(node.function, (param,), False, node.span)
            if self._anyone(predicate(alone, self.as_of)):
                continue
            values = param.values if isinstance(param, t.ParamIn) else (param.value,)
            if spec.type == "product_id":
                return f"{lead} {' or '.join(str(product_id(v)) for v in values)}"
            shown = " or ".join(f"'{v.value}'" if isinstance(v, t.String) else v.text for v in values)
            hint = (
                self._closest(values[0].value, function.table, spec.column, spec.kind == "list")
                if len(values) == 1 and isinstance(values[0], t.String)
                else ""
            )
            return f"{lead} {shown}{hint}"
        return None

    def _window(self, kind: str, table_name: str, column_name: str, conditions: list) -> str | None:
        """The start of the dates the conditions allow, when it is after the latest such date of `table_name`."""
        start = max((s for s in map(self._start, conditions) if s is not None), default=None)
        if start is None:
            return None
        latest_date = exp.select(exp.Max(this=column(column_name))).from_(qualified(table_name))
        latest = self.con.execute(render(latest_date)).fetchall()[0][0]
        noun = DATED.get(kind, f"{kind} event")  # shopify_email.opened, storefront_event.product_viewed
        if latest is None:
            return f"there is no {noun} as of {self.as_of}, and this segment's window starts on {start}"
        if latest < start:
            return f"no {noun} on or after {start}, the start of this segment's window; the latest {noun} is {latest}"
        return None

    def _start(self, condition) -> dt.date | None:
        """The earliest date a date condition (or a function's date parameter) allows, if it has one."""
        if isinstance(condition, t.Between | t.ParamBetween):
            return self._day(condition.low)
        if isinstance(condition, t.Comparison | t.ParamComparison) and condition.op in (">", ">=", "="):
            day = self._day(condition.value)
            return day + dt.timedelta(days=1) if day and condition.op == ">" else day
        return None

    def _day(self, value: t.Value) -> dt.date | None:
        """The day a date value stands for; None for an instant with an offset, whose day depends on the
        shop's zone, which the explanation does not read."""
        if isinstance(value, t.DateTime):
            return None if value.value.tzinfo else value.value.date()
        return value.value if isinstance(value, t.Date) else value.resolve(self.as_of)

    def _segment(self, value: t.String) -> str:
        name = segment_name(value)
        reason = f"the segment {name} it requires is empty"
        used = self.definitions.get(name)
        why = used and empty_reason(self.con, used, self.as_of, self.definitions)
        return f"{reason}: {why}" if why else reason

    def _anyone(self, condition: exp.Expression) -> bool:
        """Whether any customer satisfies `condition` (a predicate over marts.customers)."""
        rows = exp.select(exp.Literal.number(1)).from_(qualified(CUSTOMERS).as_(identifier(CUSTOMER))).where(condition)
        return self.con.execute(render(exp.select(exp.Exists(this=rows)))).fetchall()[0][0]

    def _closest(self, value: str, table_name: str, column_name: str, is_list: bool) -> str:
        """'; did you mean ...?' with the existing value closest to `value`, ignoring case, or ''."""
        values = exp.Unnest(expressions=[column(column_name)]) if is_list else column(column_name)
        query = exp.select(values.as_(identifier("value"))).distinct().from_(qualified(table_name))
        known = [row[0] for row in self.con.execute(render(query)).fetchall() if row[0] is not None]
        spelled = {str(v).lower(): str(v) for v in sorted(known, key=str)}
        close = difflib.get_close_matches(value.lower(), list(spelled), n=1, cutoff=0.6)
        return f"; did you mean '{spelled[close[0]]}'?" if close else ""
