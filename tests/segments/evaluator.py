"""An independent evaluator of the typed tree: plain Python over the oracle's frames.

It restates the spec's semantics itself (it reads neither the compiler nor the catalogue's column
mapping): each condition is the set of customers it holds for, AND is intersection, OR is union,
NOT MATCHES is the complement over all customers.
"""

import calendar
import datetime as dt
import json
import math
import re
from collections import defaultdict
from decimal import Decimal

from pipeline.segments import tree as t
from tests.oracle import Oracle

NUMBERS = {"amount_spent", "number_of_orders", "average_order_value"}
DATES = {"first_order_date", "last_order_date", "customer_added_date", "abandoned_checkout_date", "sms_consent_date"}
ENUMS = {
    "sms_subscription_status",
    "email_subscription_status",
    "customer_account_status",
    "rfm_group",
    "predicted_spend_tier",
    "product_subscription_status",
}
TEXTS = {"customer_email_domain", "customer_language"}
LISTS = {"customer_tags", "customer_countries", "customer_regions", "customer_cities"}
ID_LISTS = {"companies"}
EARTH_KM = 6371.0088
MILE_KM = 1.609344


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Through the chord between the two points as 3D unit vectors (not the haversine the compiler uses)."""

    def unit(lat: float, lng: float) -> tuple[float, float, float]:
        phi, lam = math.radians(lat), math.radians(lng)
        return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)

    chord = math.dist(unit(*a), unit(*b))
    return 2 * EARTH_KM * math.asin(min(1.0, chord / 2))


NAMED_DATE = re.compile(r"(\d+)_(day|week|month|year)s?_ago")


def day_of(value: t.Value, as_of: dt.date, zone: dt.tzinfo) -> dt.date:
    """The day a date value stands for. A date-time is the day it falls on in the shop's zone; without
    an offset it is already the shop's local time."""
    if isinstance(value, t.Date):
        return value.value
    if isinstance(value, t.DateTime):
        moment = value.value
        return moment.astimezone(zone).date() if moment.tzinfo else moment.date()
    text = value.text.lower()
    if text in ("today", "yesterday"):
        return as_of - dt.timedelta(days=text == "yesterday")
    if named := NAMED_DATE.fullmatch(text):
        n, unit = -int(named.group(1)), named.group(2)[0]
    else:
        n, unit = int(text[:-1]), text[-1]
    if unit in "dw":
        return as_of + dt.timedelta(days=n * (7 if unit == "w" else 1))
    month_index = as_of.month - 1 + n * (12 if unit == "y" else 1)
    year = as_of.year + month_index // 12
    month = month_index % 12 + 1
    return dt.date(year, month, min(as_of.day, calendar.monthrange(year, month)[1]))


def plain(value: t.Value, as_of: dt.date, zone: dt.tzinfo):
    """The Python value a literal stands for."""
    if isinstance(value, t.Number):
        return Decimal(value.text)
    if isinstance(value, t.String):
        return value.value
    return day_of(value, as_of, zone)


def holds(left, op: str, right) -> bool:
    """A comparison; anything compared with a missing value is false, != included."""
    if left is None or right is None:
        return False
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def product_number(value) -> int:
    return int(value) if isinstance(value, Decimal) else int(value.rsplit("/", 1)[1])


class Evaluator:
    def __init__(self, oracle: Oracle, as_of: dt.date, segments: dict[str, set[int]] | None = None):
        self.as_of = as_of
        self.zone = oracle.tz
        self.segments = segments or {}
        self.customers = {row["customer_id"]: row for row in oracle.customers.to_dicts()}
        # every geocoded address of each customer (none for a redacted one)
        self.points = oracle.points
        self.reachable = oracle.reachable
        self.orders, self.lines, self.events = defaultdict(list), defaultdict(list), defaultdict(list)
        self.credits = defaultdict(list)
        for row in oracle.store_credit.to_dicts():
            self.credits[row["customer_id"]].append(row)
        self.metafields = {
            (row["customer_id"], row["namespace"], row["key"]): row for row in oracle.metafields.to_dicts()
        }
        for row in oracle.orders.to_dicts():
            self.orders[row["customer_id"]].append(row)
        for row in oracle.lines.to_dicts():
            self.lines[row["customer_id"]].append(row)
        for row in oracle.events.to_dicts():
            self.events[row["phone_e164"]].append(row)
        # shopify_email.<type> and storefront_event.<type>: the customer's events of that type
        self.customer_events = defaultdict(list)
        for family, frame in (("shopify_email", oracle.email_events), ("storefront_event", oracle.storefront_events)):
            for row in frame.to_dicts():
                self.customer_events[(row["customer_id"], f"{family}.{row['event_type']}")].append(row)

    def members(self, node: t.Node) -> set[int]:
        if isinstance(node, t.And):
            result = set(self.customers)
            for item in node.items:
                result &= self.members(item)
            return result
        if isinstance(node, t.Or):
            return set().union(*(self.members(item) for item in node.items))
        if isinstance(node, t.Matches):
            found = {cid for cid in self.customers if self.matches(node, cid)}
            return set(self.customers) - found if node.negated else found
        if isinstance(node, t.CalledWithValue):
            return {cid for cid in self.customers if self.anniversary(node, cid)}
        return {cid for cid, row in self.customers.items() if self.condition(node, cid, row)}

    def condition(self, c: t.Condition, cid: int, row: dict) -> bool:
        name = c.attribute.text
        if name.startswith("metafields."):
            return self.metafield(c, cid)
        if name == "segments":
            inside = cid in self.segments[c.value.value]
            return not inside if c.negated else inside
        if name == "can_receive_sms":  # = true, != false: reachable; = false, != true: the others
            return (cid in self.reachable) == ((c.op == "=") == c.value.value)
        if isinstance(c, t.IsNull):
            # A list is missing when it holds nothing.
            missing = not row[name] if name in LISTS | ID_LISTS else row[name] is None
            return not missing if c.negated else missing
        if name in ID_LISTS:
            inside = int(c.value.value) in row[name]
            return not inside if c.negated else inside
        if name in LISTS:
            inside = c.value.value.lower() in [x.lower() for x in row[name]]
            return not inside if c.negated else inside
        value = row[name].lower() if name in TEXTS and row[name] is not None else row[name]

        def literal(v: t.Value):
            x = plain(v, self.as_of, self.zone)
            return x.lower() if name in TEXTS else x

        if isinstance(c, t.In):
            if value is None:
                return False
            inside = value in {literal(v) for v in c.values}
            return not inside if c.negated else inside
        if isinstance(c, t.Between):
            return holds(value, ">=", literal(c.low)) and holds(value, "<=", literal(c.high))
        return holds(value, c.op, literal(c.value))

    def matches(self, m: t.Matches, cid: int) -> bool:
        name = m.function.text
        if name == "customer_within_distance":
            return self.within(m, self.points[cid])
        if name == "store_credit_accounts":
            kept = [
                r
                for r in self.credits[cid]
                if all(
                    self.value_holds(
                        r["balance"] if p.name.text == "balance" else r["currency"], p, lower=p.name.text == "currency"
                    )
                    for p in m.params
                )
            ]
            return bool(kept)
        if name == "products_purchased":
            rows, totals = (
                self.lines[cid],
                {
                    "count": lambda rs: len({r["order_id"] for r in rs}),
                    "quantity": lambda rs: sum(r["quantity"] for r in rs),
                },
            )
        elif name == "orders_placed":
            rows, totals = (
                self.orders[cid],
                {"count": len, "sum_amount": lambda rs: sum((r["amount"] for r in rs), Decimal(0))},
            )
        elif name == "sms_events":
            phone = self.customers[cid]["phone_e164"]
            rows, totals = (self.events[phone] if phone else []), {"count": len}
        else:
            rows, totals = self.customer_events[(cid, name)], {"count": len}
        filters = [p for p in m.params if p.name.text not in totals]
        kept = [r for r in rows if all(self.row_holds(name, p, r) for p in filters)]
        aggregates = [p for p in m.params if p.name.text in totals]
        if not aggregates:
            return bool(kept)
        return all(self.value_holds(totals[p.name.text](kept), p, lower=False) for p in aggregates)

    def metafield_value(self, cid: int, name: str, kind: str):
        """The customer's metafield read as `kind` (number, boolean, date, string, numbers, strings) when
        its type is that kind; None when it is absent, of another type, or does not read."""
        _, namespace, key = name.split(".")
        row = self.metafields.get((cid, namespace, key))
        if row is None:
            return None
        kind_of_type = {
            "number_integer": "number",
            "number_decimal": "number",
            "boolean": "boolean",
            "date": "date",
            "date_time": "date",
            "single_line_text_field": "string",
            "multi_line_text_field": "string",
            "list.single_line_text_field": "strings",
            "list.number_integer": "numbers",
            "list.number_decimal": "numbers",
        }
        if kind_of_type.get(row["type"]) != kind:
            return None
        text = row["value"]
        try:
            if kind == "number":
                return Decimal(text)
            if kind == "boolean":
                return {"true": True, "false": False}.get(text.strip().lower())
            if kind == "date":
                if row["type"] == "date":
                    return dt.date.fromisoformat(text)
                return dt.datetime.fromisoformat(text).astimezone(self.zone).date()
            if kind == "string":
                return text.lower()
            items = json.loads(text)
            return [x.lower() for x in items] if kind == "strings" else [Decimal(str(x)) for x in items]
        except (ValueError, ArithmeticError):
            return None

    def metafield(self, c: t.Condition, cid: int) -> bool:
        name = c.attribute.text
        _, namespace, key = name.split(".")
        if isinstance(c, t.IsNull):
            present = (cid, namespace, key) in self.metafields
            return present if c.negated else not present
        if isinstance(c, t.Contains):
            wanted = plain(c.value, self.as_of, self.zone)
            items = self.metafield_value(cid, name, "strings" if isinstance(wanted, str) else "numbers") or []
            inside = (wanted.lower() if isinstance(wanted, str) else wanted) in items
            return not inside if c.negated else inside
        first = c.low if isinstance(c, t.Between) else c.value
        if isinstance(first, t.Boolean):
            kind = "boolean"
        else:
            kind = {Decimal: "number", str: "string"}.get(type(plain(first, self.as_of, self.zone)), "date")

        def literal(v: t.Value):
            if isinstance(v, t.Boolean):
                return v.value
            x = plain(v, self.as_of, self.zone)
            return x.lower() if kind == "string" else x

        value = self.metafield_value(cid, name, kind)
        if isinstance(c, t.Between):
            return holds(value, ">=", literal(c.low)) and holds(value, "<=", literal(c.high))
        return holds(value, c.op, literal(c.value))

    def anniversary(self, c: t.CalledWithValue, cid: int) -> bool:
        """Some year's anniversary of the date (Feb 28 for a Feb 29 in a year without one) is within the days."""
        source = c.params[0].value.value
        if source.startswith("metafields."):
            born = self.metafield_value(cid, source, "date")
        else:
            born = self.customers[cid][source]
        low, high = (day_of(v, self.as_of, self.zone) for v in (c.values[0], c.values[-1]))
        if born is None:
            return False
        for year in range(low.year, high.year + 1):
            day = min(born.day, calendar.monthrange(year, born.month)[1])
            if low <= dt.date(year, born.month, day) <= high:
                return True
        return False

    @staticmethod
    def within(m: t.Matches, points: list[tuple[float, float]]) -> bool:
        """Shopify's "customer address within distance": any address of the customer, not only the default."""
        params = {p.name.text: p for p in m.params}
        centre = tuple(float(v.value) for v in params["coordinates"].values)
        if "distance_km" in params:
            radius = float(params["distance_km"].value.value)
        else:
            radius = float(params["distance_mi"].value.value) * MILE_KM
        return any(great_circle_km(point, centre) <= radius for point in points)

    def row_holds(self, function: str, p: t.Param, row: dict) -> bool:
        param = p.name.text
        if param == "date":
            return self.value_holds(row["event_date"] if "event_date" in row else row["order_date"], p, lower=False)
        # the one id a row carries: a line's or a view's product, a view's collection, an email's activity
        one_id = param in ("id", "product_id", "activity_id")
        if one_id or (param == "collection_id" and function != "products_purchased"):
            key = {"id": "collection_id" if function.endswith("collection_viewed") else "product_id"}.get(param, param)
            wanted = {
                product_number(plain(v, self.as_of, self.zone))
                for v in (p.values if isinstance(p, t.ParamIn) else (p.value,))
            }
            if row[key] is None:  # a deleted product, a view or an email without one: none we can name, in or out
                return False
            negated = p.negated if isinstance(p, t.ParamIn) else p.op == "!="
            return (row[key] in wanted) != negated
        if param in ("tag", "collection", "collection_id"):
            items = row[
                {"tag": "product_tags", "collection": "collection_handles", "collection_id": "collection_ids"}[param]
            ]
            values = [plain(v, self.as_of, self.zone) for v in (p.values if isinstance(p, t.ParamIn) else (p.value,))]
            wanted = {int(v) for v in values} if param == "collection_id" else {v.lower() for v in values}
            any_in = bool(wanted & {x.lower() if isinstance(x, str) else x for x in items})
            negated = p.negated if isinstance(p, t.ParamIn) else p.op == "!="
            return not any_in if negated else any_in
        if param == "amount":
            return self.value_holds(row["amount"], p, lower=False)
        if param == "type":
            return self.value_holds(row["event_type"], p, lower=False)
        return self.value_holds(row["campaign"], p, lower=True)

    def value_holds(self, value, p: t.Param, *, lower: bool) -> bool:
        def lit(v: t.Value):
            x = plain(v, self.as_of, self.zone)
            return x.lower() if lower else x

        if value is None:
            return False
        value = value.lower() if lower else value
        if isinstance(p, t.ParamBetween):
            return lit(p.low) <= value <= lit(p.high)
        if isinstance(p, t.ParamIn):
            inside = value in {lit(v) for v in p.values}
            return not inside if p.negated else inside
        return holds(value, p.op, lit(p.value))
