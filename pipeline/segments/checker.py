"""Type checking of a parsed query against the catalogue: one error per problem, each with a hint."""

import dataclasses
import difflib
import re

from pipeline.segments import tree as t
from pipeline.segments.catalogue import (
    ANNIVERSARY,
    ANNIVERSARY_DATES,
    ATTRIBUTES,
    EXAMPLES,
    FUNCTIONS,
    METAFIELD_LISTS,
    SEGMENT_NAME,
    Attribute,
    Param,
    metafield,
    shopify_only,
)
from pipeline.segments.errors import SegmentError, Source

PRODUCT_GID = re.compile(r"gid://shopify/Product/([0-9]{1,18})")
# The farthest a relative date may reach, so that resolving it always gives a real date.
RELATIVE_LIMITS = {"d": 366_000, "w": 52_000, "m": 12_000, "y": 1_000}


def check(node: t.Node, source: Source) -> list[SegmentError]:
    """Every type problem of the tree's conditions, in the order they appear."""
    errors: list[SegmentError] = []
    for condition in t.conditions(node):
        errors.extend(_check_condition(condition, source))
    return errors


def segment_references(node: t.Node) -> list[t.String]:
    """The segment names used in `segments CONTAINS 'name'` conditions, lowercased: CONTAINS ignores
    case, and segment names are lowercase."""
    return [
        dataclasses.replace(c.value, value=segment_name(c.value))
        for c in t.conditions(node)
        if isinstance(c, t.Contains) and c.attribute.text == "segments" and isinstance(c.value, t.String)
    ]


def segment_name(value: t.String) -> str:
    """The segment a `segments CONTAINS` value names: CONTAINS ignores case, and names are lowercase."""
    return value.value.lower()


def product_id(value: t.Value) -> int | None:
    """The numeric id of a product given as 42 or 'gid://shopify/Product/42'; None if it is neither."""
    if isinstance(value, t.Number) and value.value == value.value.to_integral_value() and value.value > 0:
        return int(value.value)
    if isinstance(value, t.String) and (m := PRODUCT_GID.fullmatch(value.value)):
        return int(m.group(1))
    return None


def suggest(name: str, known: list[str]) -> str:
    if name.lower() in known:
        return f"names are lowercase: {name.lower()}"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"known names: {', '.join(known)}"


def _check_condition(condition: t.Condition, source: Source) -> list[SegmentError]:
    if isinstance(condition, t.Matches | t.CalledWithValue):
        return _check_function(condition, source)
    name = condition.attribute
    if name.text == "metafields" or name.text.startswith("metafields."):
        return _check_metafield(condition, source)
    attribute = ATTRIBUTES.get(name.text)
    if attribute is None:
        if name.text in FUNCTIONS:
            return [
                source.error(
                    name.span.start,
                    name.span.end,
                    f"{name.text} is a function, not an attribute",
                    hint=f"write {name.text} MATCHES (param = value, ...)",
                )
            ]
        return [_unknown(name, "attribute", list(ATTRIBUTES), source)]
    span = condition.span
    if isinstance(condition, t.Contains):
        if attribute.type != "list":
            return [
                source.error(
                    span.start,
                    span.end,
                    f"CONTAINS needs a list attribute; {name.text} is {_a(attribute.type)}",
                    hint=_usage(attribute),
                )
            ]
        if attribute.element == "integer":
            return _check_id(source, name.text, condition.value)
        return _check_value(
            source, name.text, "segment" if attribute.element == "segment" else "list", (), condition.value
        )
    if isinstance(condition, t.IsNull):
        if attribute.element == "segment":
            return [
                source.error(
                    span.start,
                    span.end,
                    f"IS NULL does not apply to {name.text}",
                    hint="a customer's segments are only known one by one: use segments NOT "
                    "CONTAINS 'name' for each segment",
                )
            ]
        if attribute.type == "boolean":
            return [
                source.error(
                    span.start, span.end, f"{name.text} is never NULL: it is true or false", hint=_usage(attribute)
                )
            ]
        return []
    if attribute.type == "list":
        operator = _operator(condition)
        return [
            source.error(
                span.start, span.end, f"{operator} does not apply to {name.text}, a list", hint=_usage(attribute)
            )
        ]
    if isinstance(condition, t.In):
        if not attribute.takes_in:
            return [
                source.error(
                    span.start,
                    span.end,
                    f"{_operator(condition)} does not apply to {name.text}, {_a(attribute.type)}",
                    hint=_usage(attribute),
                )
            ]
        return [
            e for v in condition.values for e in _check_value(source, name.text, attribute.type, attribute.values, v)
        ]
    if isinstance(condition, t.Between):
        if attribute.type not in ("number", "integer", "date"):
            return [
                source.error(
                    span.start,
                    span.end,
                    f"BETWEEN needs a number or a date; {name.text} is {_a(attribute.type)}",
                    hint=_usage(attribute),
                )
            ]
        return [
            e
            for v in (condition.low, condition.high)
            for e in _check_value(source, name.text, attribute.type, attribute.values, v)
        ]
    if condition.op not in attribute.operators:
        return [
            source.error(
                span.start,
                span.end,
                f"{condition.op} does not apply to {name.text}, {_a(attribute.type)}",
                hint=_usage(attribute),
            )
        ]
    return _check_value(source, name.text, attribute.type, attribute.values, condition.value)


def _operator(condition: t.Condition) -> str:
    if isinstance(condition, t.In):
        return "NOT IN" if condition.negated else "IN"
    return "BETWEEN" if isinstance(condition, t.Between) else condition.op


def _unknown(name: t.Name, kind: str, known: list[str], source: Source) -> SegmentError:
    """An unknown name: a Shopify filter we cannot evaluate yet says what it needs; any other gets the
    closest known name."""
    if needs := shopify_only(name.text):
        return source.error(
            name.span.start,
            name.span.end,
            f"{name.text} is a Shopify filter smsseg cannot evaluate yet: it needs {needs}",
            hint="the README's segment language section lists these filters; remove the "
            "condition or build the segment in Shopify",
        )
    return source.error(name.span.start, name.span.end, f"unknown {kind} {name.text!r}", hint=suggest(name.text, known))


def _check_function(condition: t.Matches | t.CalledWithValue, source: Source) -> list[SegmentError]:
    name = condition.function
    if name.text == ANNIVERSARY:
        return _check_anniversary(condition, source)
    function = FUNCTIONS.get(name.text)
    if function is None:
        if name.text in ATTRIBUTES:
            return [
                source.error(
                    name.span.start,
                    name.span.end,
                    f"{name.text} is an attribute, not a function",
                    hint=f"functions are {', '.join(FUNCTIONS)}; {_usage(ATTRIBUTES[name.text])}",
                )
            ]
        return [_unknown(name, "function", list(FUNCTIONS), source)]
    if isinstance(condition, t.CalledWithValue):
        return [
            source.error(
                condition.span.start,
                condition.span.end,
                f"{name.text}(...) is compared with a value; it is true or false for a customer",
                hint=f"write {name.text} MATCHES (param = value, ...), or {name.text}(...) = true",
            )
        ]
    errors = []
    for param in condition.params:
        spec = function.params.get(param.name.text)
        if spec is None:
            errors.append(
                source.error(
                    param.name.span.start,
                    param.name.span.end,
                    f"unknown parameter {param.name.text!r} of {name.text}",
                    hint=suggest(param.name.text, list(function.params)),
                )
            )
            continue
        label = f"{name.text} {spec.name}"
        if spec.type == "coordinates":
            errors.extend(_check_coordinates(source, label, param))
            continue
        if isinstance(param, t.ParamIn):
            if not spec.takes_in:
                errors.append(
                    source.error(
                        param.span.start,
                        param.span.end,
                        f"{'NOT IN' if param.negated else 'IN'} does not apply to {label}",
                        hint=_param_usage(spec),
                    )
                )
                continue
            values = param.values
        elif isinstance(param, t.ParamBetween):
            if not spec.takes_between:
                errors.append(
                    source.error(
                        param.span.start, param.span.end, f"BETWEEN does not apply to {label}", hint=_param_usage(spec)
                    )
                )
                continue
            values = (param.low, param.high)
        else:
            if param.op not in spec.operators:
                errors.append(
                    source.error(
                        param.span.start,
                        param.span.end,
                        f"{param.op} does not apply to {label}",
                        hint=_param_usage(spec),
                    )
                )
                continue
            values = (param.value,)
        for value in values:
            errors.extend(_check_value(source, spec.name, spec.type, spec.values, value))
        if (
            spec.kind == "radius"
            and isinstance(param, t.ParamComparison)
            and isinstance(param.value, t.Number)
            and param.value.value < 0
        ):
            errors.append(
                source.error(
                    param.value.span.start, param.value.span.end, f"{label} is a distance: it cannot be negative"
                )
            )
    for group in function.required:
        given = [p for p in condition.params if p.name.text in group]
        if len(given) != 1:
            what = group[0] if len(group) == 1 else f"one of {', '.join(group)}"
            span = given[1].span if given[1:] else condition.span
            errors.append(
                source.error(
                    span.start,
                    span.end,
                    f"{name.text} takes {what}, not several" if given else f"{name.text} needs {what}",
                    hint=_function_usage(function.name),
                )
            )
    return errors


METAFIELD_USAGE = (
    "write metafields.<namespace>.<key> compared with a number, true or false, a date or a "
    "'string'; CONTAINS for a list; IS [NOT] NULL for whether the customer has it"
)


def _check_metafield(condition: t.Condition, source: Source) -> list[SegmentError]:
    """metafields.<namespace>.<key>: the value written says which kind of metafield it compares."""
    name, span = condition.attribute, condition.span
    if metafield(name.text) is None:
        return [
            source.error(
                name.span.start,
                name.span.end,
                f"{name.text!r} does not name a metafield",
                hint="a metafield filter is metafields.<namespace>.<key>, such as "
                "metafields.custom.vip; namespace and key are letters, digits, _ and -",
            )
        ]
    if isinstance(condition, t.IsNull):
        return []
    if isinstance(condition, t.In):
        return [
            source.error(
                span.start, span.end, f"{_operator(condition)} does not apply to a metafield", hint=METAFIELD_USAGE
            )
        ]
    values = (condition.low, condition.high) if isinstance(condition, t.Between) else (condition.value,)
    kinds = {metafield_kind(v) for v in values}
    if None in kinds or len(kinds) > 1:
        wrong = next((v for v in values if metafield_kind(v) is None), values[-1])
        return [
            source.error(
                wrong.span.start,
                wrong.span.end,
                f"{name.text} cannot be compared with {_describe(wrong)}",
                hint=METAFIELD_USAGE,
            )
        ]
    kind = kinds.pop()
    if isinstance(condition, t.Contains) and kind not in METAFIELD_LISTS:
        return [
            source.error(
                span.start,
                span.end,
                f"a metafield list holds numbers or strings, not {_describe(condition.value)}",
                hint=METAFIELD_USAGE,
            )
        ]
    ordered = kind in ("number", "date")
    if isinstance(condition, t.Between) and not ordered:
        return [source.error(span.start, span.end, "BETWEEN needs numbers or dates", hint=METAFIELD_USAGE)]
    if isinstance(condition, t.Comparison) and not ordered and condition.op not in ("=", "!="):
        return [
            source.error(
                span.start,
                span.end,
                f"{condition.op} does not apply to {_describe(condition.value)}",
                hint=f"compare {name.text} with = or !=",
            )
        ]
    return [e for v in values if kind == "date" for e in _check_value(source, name.text, "date", (), v)]


def metafield_kind(value: t.Value) -> str | None:
    """Which kind of metafield a value compares: number, boolean, date or string."""
    if isinstance(value, t.Number):
        return "number"
    if isinstance(value, t.Boolean):
        return "boolean"
    if isinstance(value, t.String):
        return "string"
    return "date" if isinstance(value, t.Date | t.DateTime | t.RelativeDate) else None


ANNIVERSARY_USAGE = "write anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +30d, or = today"


def _check_anniversary(condition: t.Matches | t.CalledWithValue, source: Source) -> list[SegmentError]:
    """anniversary(date: '<date>') = D, or BETWEEN a AND b: the date is a customer date or a date metafield."""
    span = condition.span
    if isinstance(condition, t.Matches):
        return [
            source.error(
                span.start, span.end, "anniversary(...) is compared with a date, not matched", hint=ANNIVERSARY_USAGE
            )
        ]
    if condition.op not in ("=", "BETWEEN"):
        return [
            source.error(
                span.start, span.end, f"{condition.op} does not apply to anniversary(...)", hint=ANNIVERSARY_USAGE
            )
        ]
    params = condition.params
    date = params[0] if len(params) == 1 and params[0].name.text == "date" else None
    if not isinstance(date, t.ParamComparison) or date.op != "=" or not isinstance(date.value, t.String):
        where = params[0].span if params else condition.function.span
        return [
            source.error(
                where.start, where.end, "anniversary needs date: '<the date>', and only that", hint=ANNIVERSARY_USAGE
            )
        ]
    if date.value.value not in ANNIVERSARY_DATES and metafield(date.value.value) is None:
        return [
            source.error(
                date.value.span.start,
                date.value.span.end,
                f"{_describe(date.value)} is not a date anniversary can take",
                hint=f"one of {', '.join(ANNIVERSARY_DATES)}, or a date metafield such as "
                "'metafields.facts.birth_date'",
            )
        ]
    errors = [e for v in condition.values for e in _check_value(source, "anniversary", "date", (), v)]
    for value in condition.values:
        if isinstance(value, t.DateTime) and value.value.tzinfo is not None:
            errors.append(
                source.error(
                    value.span.start,
                    value.span.end,
                    "anniversary compares days: a date-time with an offset is not one",
                    hint="write the day, such as 2026-10-01, or the shop's local time",
                )
            )
    return errors


def _check_id(source: Source, name: str, value: t.Value) -> list[SegmentError]:
    """A value for a list of ids (companies CONTAINS 42): a positive whole number (the parser keeps numbers
    to 18 digits, so it fits the warehouse's BIGINT)."""
    if isinstance(value, t.Number) and value.value == value.value.to_integral_value() and value.value > 0:
        return []
    return [
        source.error(
            value.span.start,
            value.span.end,
            f"{name} cannot contain {_describe(value)}",
            hint=f"{name} holds ids: write {name} CONTAINS 42, NOT CONTAINS or IS [NOT] NULL",
        )
    ]


def _check_coordinates(source: Source, label: str, param: t.Param) -> list[SegmentError]:
    """coordinates = (latitude, longitude): two numbers in degrees, on the globe."""
    usage = "write coordinates = (45.4215, -75.6972): latitude, then longitude, in degrees"
    if not isinstance(param, t.ParamIn) or param.negated or len(param.values) != 2:
        return [source.error(param.span.start, param.span.end, f"{label} is a point", hint=usage)]
    errors = []
    for value, limit, what in zip(param.values, (90, 180), ("latitude", "longitude"), strict=True):
        if not isinstance(value, t.Number) or abs(value.value) > limit:
            errors.append(
                source.error(
                    value.span.start,
                    value.span.end,
                    f"{label}: {_describe(value)} is not a {what}",
                    hint=f"a {what} is a number from -{limit} to {limit}; {usage}",
                )
            )
    return errors


def _function_usage(name: str) -> str:
    if name == "customer_within_distance":
        return "write customer_within_distance MATCHES (coordinates = (45.4215, -75.6972), distance_km = 25)"
    return f"write {name} MATCHES (param = value, ...)"


def _check_value(source: Source, name: str, type_: str, allowed: tuple[str, ...], value: t.Value) -> list[SegmentError]:
    span = value.span

    def wrong(message: str | None = None, hint: str | None = None) -> list[SegmentError]:
        return [
            source.error(
                span.start,
                span.end,
                message or f"{name} cannot be compared with {_describe(value)}",
                hint=hint or f"{name} expects {EXAMPLES[type_]}",
            )
        ]

    if type_ == "number":
        return [] if isinstance(value, t.Number) else wrong()
    if type_ == "integer":
        if not isinstance(value, t.Number):
            return wrong()
        return [] if value.value == value.value.to_integral_value() else wrong(f"{name} is a whole number")
    if type_ == "date":
        if isinstance(value, t.Date | t.DateTime):
            return []
        if isinstance(value, t.RelativeDate):
            limit = RELATIVE_LIMITS[value.unit]
            if abs(value.amount) > limit:
                return wrong(
                    f"relative date {value.text} is too far away",
                    hint=f"relative dates reach at most {limit} {_UNITS[value.unit]} (1000 years)",
                )
            return []
        return wrong()
    if type_ == "boolean":
        return [] if isinstance(value, t.Boolean) else wrong()
    if type_ == "product_id":
        return [] if product_id(value) is not None else wrong(f"{_describe(value)} is not a product id")
    if type_ == "id":
        # a number has at most 18 digits (the parser's rule), so a whole one fits the warehouse's BIGINT
        whole = isinstance(value, t.Number) and value.value == value.value.to_integral_value() and value.value > 0
        return [] if whole else wrong(f"{_describe(value)} is not an id")
    if not isinstance(value, t.String):
        return wrong()
    if type_ == "enum" and value.value not in allowed:
        close = difflib.get_close_matches(
            value.value.upper() if allowed[0].isupper() else value.value.lower(), allowed, n=1, cutoff=0.6
        )
        return wrong(
            f"{_describe(value)} is not a value of {name}",
            hint=(f"did you mean '{close[0]}'? " if close else "") + f"{name} is one of {', '.join(allowed)}",
        )
    if type_ == "segment" and not SEGMENT_NAME.fullmatch(segment_name(value)):
        return wrong(
            f"{_describe(value)} is not a segment name",
            hint="segment names are lowercase letters, digits and _, starting with a letter",
        )
    return []


_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}


def _a(type_: str) -> str:
    return {"integer": "an integer", "enum": "an enum"}.get(type_, f"a {type_}")


def _describe(value: t.Value) -> str:
    if isinstance(value, t.Number):
        return f"the number {value.text}"
    if isinstance(value, t.String):
        shown = value.value if len(value.value) <= 40 else value.value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, t.Date):
        return f"the date {value.value.isoformat()}"
    if isinstance(value, t.Boolean):
        return f"the value {'true' if value.value else 'false'}"
    return f"the date {value.text}"


def _usage(attribute: Attribute) -> str:
    if attribute.type == "list":
        return (
            f"{attribute.name} is a list: use {attribute.name} CONTAINS {_example(attribute)}, NOT CONTAINS or "
            "IS [NOT] NULL (empty)"
        )
    if attribute.type == "enum":
        return f"compare {attribute.name} with =, != or IN (...) to one of {', '.join(attribute.values)}"
    if attribute.type == "string":
        return f"compare {attribute.name} with =, != or IN (...) to {EXAMPLES['string']}"
    if attribute.type == "boolean":
        return f"compare {attribute.name} with = or != to true or false, e.g. {attribute.name} = true"
    return f"compare {attribute.name} with =, !=, >, >=, <, <= or BETWEEN to {EXAMPLES[attribute.type]}"


def _example(attribute: Attribute) -> str:
    return {"customer_countries": "'IT'", "customer_regions": "'IT-MI'", "customer_cities": "'IT-MI-Milano'"}.get(
        attribute.name, "'vip'"
    )


def _param_usage(param: Param) -> str:
    if param.type == "product_id":
        return "write id = 42, id != 42, id IN (42, 'gid://shopify/Product/43') or id NOT IN (...)"
    if param.aggregate or param.type in ("number", "date"):
        return f"compare {param.name} with =, !=, >, >=, <, <= or BETWEEN to {EXAMPLES[param.type]}"
    values = f" ({', '.join(param.values)})" if param.values else ""
    return f"compare {param.name} with =, !=, IN (...) or NOT IN (...) to {EXAMPLES[param.type]}{values}"
