"""The one place that ties the language to the warehouse: each attribute's type and marts.customers
column, each function's table and parameters. The checker, the compiler, error hints and the README's
docs table all read it.
"""

import re
from dataclasses import dataclass

from pipeline.warehouse.reach import REACHABLE

CUSTOMERS = "marts.customers"
SHOP = "staging.stg_shop"  # the shop's time zone, for date-times written with an offset

# What a segment may be called: it names the view segments.<name>, a directory under data/exports and a
# destination's list, so it stays a plain lowercase identifier.
SEGMENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

# What each value type accepts, as said in type errors ("amount_spent expects a number such as 100").
EXAMPLES = {
    "number": "a number such as 100 or 59.90",
    "integer": "a whole number such as 3",
    "date": "a date such as 2026-01-31 or -30d",
    "enum": "one of its values in single quotes",
    "string": "a string in single quotes such as 'it'",
    "list": "a string in single quotes such as 'vip'",
    "product_id": "a product id such as 42 or 'gid://shopify/Product/42'",
    "id": "an id, a whole number such as 5240029206",
    "segment": "the name of another segment in single quotes such as 'vip'",
    "coordinates": "a latitude and a longitude in degrees such as (45.4215, -75.6972)",
    "boolean": "true or false",
}

COMPARE = ("=", "!=", ">", ">=", "<", "<=")
EQUALITY = ("=", "!=")

SUBSCRIPTION_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED")


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # number, integer, date, enum, string, list, boolean
    column: str | None  # in marts.customers; None for `segments` (the segments schema) and a boolean
    meaning: str
    values: tuple[str, ...] = ()  # allowed values of an enum
    element: str = "string"  # what a list holds: string, integer (ids), or segment (names of segments)
    members: str | None = None  # a boolean's table: the customer_id of every customer it is true for

    @property
    def operators(self) -> tuple[str, ...]:
        """The comparison operators that make sense for the type (BETWEEN goes with ordering)."""
        return COMPARE if self.type in ("number", "integer", "date") else EQUALITY

    @property
    def takes_in(self) -> bool:
        """Whether IN (...) and NOT IN (...) apply: a choice among values, not a range or a list."""
        return self.type in ("enum", "string", "integer")


ATTRIBUTES = {
    a.name: a
    for a in (
        Attribute("amount_spent", "number", "amount_spent", "sum of order totals of the customer's counted orders"),
        Attribute("number_of_orders", "integer", "number_of_orders", "count of counted orders"),
        Attribute(
            "average_order_value",
            "number",
            "average_order_value",
            "amount_spent / number_of_orders, NULL without orders",
        ),
        Attribute("first_order_date", "date", "first_order_date", "first counted order, NULL without orders"),
        Attribute("last_order_date", "date", "last_order_date", "last counted order, NULL without orders"),
        Attribute("customer_added_date", "date", "customer_added_date", "customer createdAt"),
        Attribute(
            "abandoned_checkout_date",
            "date",
            "abandoned_checkout_date",
            "latest checkout created on or before the evaluation date and not completed by its end",
        ),
        Attribute(
            "sms_subscription_status",
            "enum",
            "sms_subscription_status",
            "SMS consent; NOT_SUBSCRIBED when there is no phone",
            SUBSCRIPTION_STATES,
        ),
        Attribute(
            "email_subscription_status",
            "enum",
            "email_subscription_status",
            "email consent; NOT_SUBSCRIBED when there is no email",
            SUBSCRIPTION_STATES,
        ),
        Attribute(
            "customer_account_status",
            "enum",
            "customer_account_status",
            "account state",
            ("ENABLED", "DISABLED", "INVITED", "DECLINED"),
        ),
        Attribute("customer_email_domain", "string", "customer_email_domain", "part after @, lowercase"),
        Attribute("customer_language", "string", "customer_language", "locale, e.g. 'it' or 'en-US'"),
        Attribute("customer_tags", "list", "customer_tags", "customer tags"),
        Attribute("customer_countries", "list", "customer_countries", "ISO country codes of the addresses, e.g. 'IT'"),
        Attribute("customer_regions", "list", "customer_regions", "country-province, e.g. 'IT-MI', 'US-NY'"),
        Attribute(
            "customer_cities",
            "list",
            "customer_cities",
            "country-province-city without spaces, e.g. 'US-NY-NewYorkCity'",
        ),
        Attribute(
            "rfm_group",
            "enum",
            "rfm_group",
            "recency x frequency-monetary group",
            (
                "CHAMPIONS",
                "LOYAL",
                "ACTIVE",
                "NEW",
                "PROMISING",
                "NEEDS_ATTENTION",
                "AT_RISK",
                "ALMOST_LOST",
                "PREVIOUSLY_LOYAL",
                "DORMANT",
                "PROSPECTS",
            ),
        ),
        Attribute("segments", "list", None, "names of the other segments the customer belongs to", element="segment"),
        # From the Admin API's Customer (2026-10): statistics, productSubscriberStatus, companyContactProfiles.
        Attribute(
            "predicted_spend_tier",
            "enum",
            "predicted_spend_tier",
            "Shopify's predicted spend tier; NULL when Shopify has none",
            ("HIGH", "MEDIUM", "LOW"),
        ),
        Attribute(
            "product_subscription_status",
            "enum",
            "product_subscription_status",
            "product subscription contracts (Shopify's ACTIVE is SUBSCRIBED)",
            ("SUBSCRIBED", "PAUSED", "CANCELLED", "EXPIRED", "FAILED", "NEVER_SUBSCRIBED"),
        ),
        Attribute(
            "companies", "list", "companies", "ids of the B2B companies the customer is a contact of", element="integer"
        ),
        # Beyond Shopify, for SMS.
        Attribute(
            "sms_consent_date",
            "date",
            "sms_consent_date",
            "day the SMS consent last changed (marketingUpdatedAt); NULL without a phone",
        ),
        Attribute(
            "can_receive_sms",
            "boolean",
            None,
            "an export of every customer would text them: SMS consent, a valid number, not suppressed or "
            "redacted, and the lowest such customer_id of those sharing the number",
            members=REACHABLE,
        ),
    )
}


@dataclass(frozen=True)
class Param:
    """A parameter of a function: a filter on the function's rows, or an aggregate over the rows
    that pass the filters.

    `kind` says how `column` is read: `scalar` compares the column, `list` tests membership in a
    list column, `sum` compares the sum of the column, `count` the number of distinct values of the
    column (of rows, when column is None); `point` and `radius` are customer_within_distance's centre
    and distance (`= 25` is "within 25").
    """

    name: str
    type: str  # number, integer, date, enum, string, product_id, id (a whole number compared only for equality)
    column: str | None
    kind: str  # scalar, list, sum, count
    meaning: str
    values: tuple[str, ...] = ()
    lowercase: bool = False  # the column already holds lowercase text: only the value is lowered

    @property
    def aggregate(self) -> bool:
        return self.kind in ("sum", "count")

    @property
    def operators(self) -> tuple[str, ...]:
        if self.kind in ("point", "radius"):
            return ("=",)
        return COMPARE if self.takes_between else EQUALITY

    @property
    def takes_between(self) -> bool:
        """Whether it is ordered: a list parameter (a collection id too) only tests membership, a
        distance is a radius."""
        return self.type in ("number", "integer", "date") and self.kind not in ("list", "radius")

    @property
    def takes_in(self) -> bool:
        """Whether IN (...) and NOT IN (...) apply: lists of values, not ranges."""
        return self.type not in ("date", "number", "coordinates") and not self.aggregate


@dataclass(frozen=True)
class Function:
    name: str
    table: str
    # How a row belongs to a customer: (column of the table, column of marts.customers).
    join: tuple[str, str]
    meaning: str
    params: dict[str, Param]
    # Only the table's rows of this event_type: one events table serves a family of functions
    # (shopify_email.opened and shopify_email.clicked read marts.shopify_email_events).
    event_type: str | None = None
    # Groups of parameters of which a condition must give exactly one each.
    required: tuple[tuple[str, ...], ...] = ()


def _params(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in params}


FUNCTIONS = {
    f.name: f
    for f in (
        Function(
            "products_purchased",
            "marts.order_lines",
            ("customer_id", "customer_id"),
            "counted orders with line items that satisfy every parameter",
            _params(
                Param("id", "product_id", "product_id", "scalar", "product id"),
                Param("tag", "string", "product_tags", "list", "a product tag", lowercase=True),
                Param(
                    "collection",
                    "string",
                    "collection_handles",
                    "list",
                    "a collection handle the product belongs to",
                    lowercase=True,
                ),
                Param("collection_id", "integer", "collection_ids", "list", "a collection id"),
                Param("date", "date", "order_date", "scalar", "local date of the order"),
                Param("quantity", "integer", "quantity", "sum", "total units of the matching line items"),
                Param("count", "integer", "order_id", "count", "number of distinct orders with a matching line"),
            ),
        ),
        Function(
            "orders_placed",
            "marts.orders",
            ("customer_id", "customer_id"),
            "counted orders filtered by date and amount",
            _params(
                Param("date", "date", "order_date", "scalar", "local date of the order"),
                Param("amount", "number", "amount", "scalar", "order total"),
                Param("count", "integer", "order_id", "count", "number of matching orders"),
                Param("sum_amount", "number", "amount", "sum", "summed total of the matching orders"),
            ),
        ),
        Function(
            "sms_events",
            "marts.sms_events",
            ("phone_e164", "phone_e164"),
            "SMS gateway events of the customer's phone number",
            _params(
                Param(
                    "type",
                    "enum",
                    "event_type",
                    "scalar",
                    "event type",
                    ("sent", "delivered", "clicked", "converted", "opted_out"),
                ),
                Param("campaign", "string", "campaign", "scalar", "campaign name"),
                Param("date", "date", "event_date", "scalar", "local date of the event"),
                Param("count", "integer", None, "count", "number of matching events"),
            ),
        ),
        Function(
            "store_credit_accounts",
            "marts.store_credit_accounts",
            ("customer_id", "customer_id"),
            "the customer's store credit accounts",
            _params(
                Param("balance", "number", "balance", "scalar", "balance of an account, in its currency"),
                Param("currency", "string", "currency_code", "scalar", "currency of an account, e.g. 'EUR'"),
            ),
        ),
        # Any of the customer's addresses, as Shopify's "Customer address within distance": compiled apart,
        # its parameters being the point and the radius rather than filters on the rows.
        Function(
            "customer_within_distance",
            "marts.customer_addresses",
            ("customer_id", "customer_id"),
            "one of the customer's addresses is within a distance of a point (great-circle)",
            _params(
                Param("coordinates", "coordinates", None, "point", "latitude and longitude of the centre"),
                Param("distance_km", "number", None, "radius", "within this many kilometres"),
                Param("distance_mi", "number", None, "radius", "within this many miles"),
            ),
            required=(("coordinates",), ("distance_km", "distance_mi")),
        ),
    )
}


# Shopify Email and storefront events (inbox files; the Admin API exports neither): one function per
# event, named as Shopify names it, with the parameters its segment query language reference documents.
EMAIL_EVENTS = {
    "bounced": "Shopify Email bounced: the receiving server returned the email",
    "clicked": "Shopify Email clicked: the customer clicked a link or image in the email",
    "delivered": "Shopify Email delivered: the receiving server accepted the email",
    "marked_as_spam": "Shopify Email marked as spam: the customer reported the email as spam or junk",
    "opened": "Shopify Email opened: the customer opened the email",
    "unsubscribed": "Shopify Email unsubscribed: the customer asked to leave the mailing list",
}


def _email_params() -> dict[str, Param]:
    return _params(
        Param("activity_id", "id", "activity_id", "scalar", "the Shopify Email marketing activity id"),
        Param("date", "date", "event_date", "scalar", "local date of the event"),
        Param("count", "integer", None, "count", "number of matching events"),
    )


def _viewed_params(thing: str, type_: str, column: str) -> dict[str, Param]:
    # The help center writes product_id / collection_id, ShopifyQL's table of semi-joins writes id.
    return _params(
        Param(f"{thing}_id", type_, column, "scalar", f"the {thing} viewed"),
        Param("id", type_, column, "scalar", f"the {thing} viewed (the same as {thing}_id)"),
        Param("date", "date", "event_date", "scalar", "local date of the view"),
        Param("count", "integer", None, "count", "number of matching views"),
    )


EVENT_FUNCTIONS = (
    *(
        Function(
            f"shopify_email.{event}",
            "marts.shopify_email_events",
            ("customer_id", "customer_id"),
            meaning,
            _email_params(),
            event_type=event,
        )
        for event, meaning in EMAIL_EVENTS.items()
    ),
    Function(
        "storefront_event.product_viewed",
        "marts.storefront_events",
        ("customer_id", "customer_id"),
        "storefront product views",
        _viewed_params("product", "product_id", "product_id"),
        event_type="product_viewed",
    ),
    Function(
        "storefront_event.collection_viewed",
        "marts.storefront_events",
        ("customer_id", "customer_id"),
        "storefront collection views",
        _viewed_params("collection", "id", "collection_id"),
        event_type="collection_viewed",
    ),
)
FUNCTIONS |= {f.name: f for f in EVENT_FUNCTIONS}

# Shopify's filters that need data smsseg does not extract yet, with what they need: a query naming
# one is a definition error that says so, never a silently empty segment. Dotted families are keyed
# by their prefix (shopify_email.opened, metafields.custom.vip).
SHOPIFY_ONLY = {
    # The Admin API 2026-10 Customer has no such field; its events name an app by title, not by id.
    "created_by_app_id": "the app that created each customer, which the Admin API does not give",
}


# Customer metafields: `metafields.<namespace>.<key>`, compared by the kind of value written (a number,
# true or false, a date, a string), each kind in its own column of marts.customer_metafields.
METAFIELDS = "marts.customer_metafields"
METAFIELD_NAME = re.compile(r"metafields\.([A-Za-z0-9_-]{1,255})\.([A-Za-z0-9_-]{1,64})")
METAFIELD_COLUMNS = {"number": "value_number", "boolean": "value_boolean", "date": "value_date", "string": "value_text"}
METAFIELD_LISTS = {"number": "value_numbers", "string": "value_texts"}


def metafield(name: str) -> tuple[str, str] | None:
    """(namespace, key) of a metafield filter's name, or None if it is not one."""
    found = METAFIELD_NAME.fullmatch(name)
    return (found.group(1), found.group(2)) if found else None


# anniversary(date: '<a date>') = D or BETWEEN a AND b: the dates whose anniversaries it can take.
ANNIVERSARY = "anniversary"
ANNIVERSARY_DATES = ("customer_added_date",)  # and any date metafield, 'metafields.facts.birth_date'


def shopify_only(name: str) -> str | None:
    """What a Shopify filter we cannot evaluate yet needs, or None if the name is not one of them."""
    return SHOPIFY_ONLY.get(name.split(".", 1)[0])


# Columns of marts.customers a definition may send with each member (`sms.fields`).
CUSTOMER_COLUMNS = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_e164",
    "sms_subscription_status",
    "email_subscription_status",
    "customer_account_status",
    "customer_language",
    "customer_email_domain",
    "customer_added_date",
    "amount_spent",
    "number_of_orders",
    "average_order_value",
    "first_order_date",
    "last_order_date",
    "abandoned_checkout_date",
    "abandoned_checkout_url",
    "customer_tags",
    "customer_countries",
    "customer_regions",
    "customer_cities",
    "rfm_group",
    "predicted_spend_tier",
    "product_subscription_status",
    "companies",
    "sms_consent_date",
)

# What the gateway gets for every member of an exported audience (phone: the E.164 number), so no
# `sms.fields` entry; the fields come after them.
MEMBER_COLUMNS = ("phone", "customer_id", "first_name", "last_name", "country")

# What every segment view holds: who the member is and what a message usually needs.
VIEW_COLUMNS = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone_e164",
    "sms_subscription_status",
    "amount_spent",
    "number_of_orders",
    "last_order_date",
)


def docs_table() -> str:
    """The README's reference of attributes and functions, in Markdown."""
    rows = ["| attribute | type | meaning |", "| --- | --- | --- |"]
    for a in ATTRIBUTES.values():
        kind = f"enum: {', '.join(a.values)}" if a.values else a.type
        rows.append(f"| `{a.name}` | {kind} | {a.meaning} |")
    rows += ["", "| function | parameter | type | operators | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in FUNCTIONS.values():
        for p in f.params.values():
            kind = f"enum: {', '.join(p.values)}" if p.values else p.type
            ops = list(p.operators) + (["BETWEEN"] if p.takes_between else [])
            ops += ["IN", "NOT IN"] if p.takes_in else []
            rows.append(f"| `{f.name}` | `{p.name}` | {kind} | {' '.join(ops)} | {p.meaning} |")
    return "\n".join(rows) + "\n"
