"""An independent answer: customer attributes computed in plain Python straight from a store directory.

It shares no code with the ingest, the sql/ models or the attribute catalogue. It restates the
spec's rules (latest updatedAt wins, counted orders, local dates, RFM, redaction) its own way,
so a mistake in either shows up as a difference. It reads one store directory (one batch).
"""

import csv
import datetime as dt
import json
import re
import zoneinfo
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import phonenumbers
import polars as pl

# The marketing states a customer row keeps; any other (email's INVALID, a value Shopify adds later) is no consent.
STATES = {"SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED"}
SPEND_TIERS = {"HIGH", "MEDIUM", "LOW"}
# Customer.productSubscriberStatus -> product_subscription_status: the language's SUBSCRIBED is ACTIVE.
SUBSCRIBERS = {
    "ACTIVE": "SUBSCRIBED",
    "PAUSED": "PAUSED",
    "CANCELLED": "CANCELLED",
    "EXPIRED": "EXPIRED",
    "FAILED": "FAILED",
    "NEVER_SUBSCRIBED": "NEVER_SUBSCRIBED",
}
ADDRESS_FIELDS = ("customer_id", "is_default", "country", "province", "city", "zip", "latitude", "longitude")
RFM_GRID = {  # R score -> groups for FM scores 1..5, as documented in the README
    5: ["NEW", "PROMISING", "ACTIVE", "LOYAL", "CHAMPIONS"],
    4: ["PROMISING", "PROMISING", "ACTIVE", "LOYAL", "CHAMPIONS"],
    3: ["NEEDS_ATTENTION", "NEEDS_ATTENTION", "NEEDS_ATTENTION", "LOYAL", "LOYAL"],
    2: ["ALMOST_LOST", "ALMOST_LOST", "AT_RISK", "AT_RISK", "PREVIOUSLY_LOYAL"],
    1: ["DORMANT", "DORMANT", "ALMOST_LOST", "PREVIOUSLY_LOYAL", "PREVIOUSLY_LOYAL"],
}


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(text) for text in path.read_text().splitlines() if text.strip()]


def _num(gid: str | None) -> int | None:
    return None if gid is None else int(gid.rsplit("/", 1)[1])


def _ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _get(obj: dict | None, *path: str):
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key)
    return obj


def _latest(records: list[dict]) -> dict[str, dict]:
    """id -> the record with the latest updatedAt; a later line wins a tie."""
    best: dict[str, tuple] = {}
    for i, rec in enumerate(records):
        key = (_ts(rec.get("updatedAt")) or dt.datetime.min.replace(tzinfo=dt.UTC), i)
        if rec["id"] not in best or key >= best[rec["id"]][0]:
            best[rec["id"]] = (key, rec)
    return {k: v[1] for k, v in best.items()}


def _score(values: dict[int, object]) -> dict[int, int]:
    """ceil(5 * share of values at or below each one), exactly."""
    ordered = sorted(values.values())
    n = len(ordered)
    out = {}
    for cid, v in values.items():
        at_or_below = sum(1 for x in ordered if x <= v)
        out[cid] = -(-5 * at_or_below // n)
    return out


class Oracle:
    """Frames `customers` (the marts.customers columns), `orders`, `lines` and `events` as of a date."""

    def __init__(self, store_dir: Path, as_of: dt.date, suppressions_csv: Path | None = None) -> None:
        self.as_of = as_of
        shop = _lines(store_dir / "shop.jsonl")[0]
        self.tz = zoneinfo.ZoneInfo(shop.get("ianaTimezone") or "UTC")
        self._orders(store_dir)
        self._products(store_dir)
        self._customers(store_dir)
        self._events(store_dir)
        self._customer_events(store_dir)
        self._reachable(store_dir, suppressions_csv)

    def local(self, value: str | None) -> dt.date | None:
        ts = _ts(value)
        return None if ts is None else ts.astimezone(self.tz).date()

    def _orders(self, store_dir: Path) -> None:
        records = _lines(store_dir / "orders.jsonl")
        parents = [r for r in records if "__parentId" not in r and r.get("__typename", "Order") == "Order"]
        children = [r for r in records if "__parentId" in r and r.get("__typename", "LineItem") == "LineItem"]
        self.counted: dict[str, dict] = {}
        for gid, o in _latest(parents).items():
            day = self.local(o.get("processedAt") or o.get("createdAt"))
            cancelled = self.local(o.get("cancelledAt"))
            if o.get("test") or day > self.as_of or (cancelled is not None and cancelled <= self.as_of):
                continue
            amount = _get(o, "currentTotalPriceSet", "shopMoney", "amount") or _get(
                o, "totalPriceSet", "shopMoney", "amount"
            )
            self.counted[gid] = {
                "order_id": _num(gid),
                "customer_id": _num(_get(o, "customer", "id")),
                "order_date": day,
                "amount": Decimal(amount),
            }
        self.line_items: dict[str, dict] = {}
        for li in children:  # the last line of an id wins
            if li["__parentId"] in self.counted:
                self.line_items[li["id"]] = li

    def _products(self, store_dir: Path) -> None:
        records = _lines(store_dir / "products.jsonl")
        products = _latest([r for r in records if "__parentId" not in r])
        self.product_tags = {_num(g): sorted(t.lower() for t in (p.get("tags") or [])) for g, p in products.items()}
        self.collections: dict[int, set] = defaultdict(set)
        for c in (r for r in records if "__parentId" in r):
            if c["__parentId"] in products:
                self.collections[_num(c["__parentId"])].add((c["handle"].lower(), _num(c["id"])))

    def _customers(self, store_dir: Path) -> None:
        redacted = {_num(_get(r, "customer", "id")) for r in _lines(store_dir / "redactions.jsonl")}
        checkouts = _latest(_lines(store_dir / "abandoned_checkouts.jsonl"))
        open_checkouts: dict[int, tuple] = {}
        for gid, c in checkouts.items():
            cid, created, completed = (
                _num(_get(c, "customer", "id")),
                self.local(c["createdAt"]),
                self.local(c.get("completedAt")),
            )
            if cid is None or created > self.as_of or (completed is not None and completed <= self.as_of):
                continue
            key = (_ts(c["createdAt"]), _num(gid))
            if cid not in open_checkouts or key > open_checkouts[cid][0]:
                open_checkouts[cid] = (key, created, c.get("abandonedCheckoutUrl"))

        lines = _lines(store_dir / "customers.jsonl")
        latest = _latest([r for r in lines if "__parentId" not in r])
        # deleted in Shopify: a customers/delete webhook, or (a Shopify download) missing from its id sweep
        deleted = {_num(_get(r, "customer", "id")) for r in _lines(store_dir / "deletions.jsonl")}
        if (store_dir / "customer_ids.jsonl").exists():
            deleted |= {_num(g) for g in latest} - {_num(r["id"]) for r in _lines(store_dir / "customer_ids.jsonl")}
        people = {}
        for gid, c in latest.items():
            if self.local(c["createdAt"]) <= self.as_of and _num(gid) not in deleted:
                people[_num(gid)] = c
        per_customer = defaultdict(list)
        for o in self.counted.values():
            if o["customer_id"] in people:
                per_customer[o["customer_id"]].append(o)
        stats = {
            cid: {
                "amount_spent": sum(o["amount"] for o in os_),
                "number_of_orders": len(os_),
                "first_order_date": min(o["order_date"] for o in os_),
                "last_order_date": max(o["order_date"] for o in os_),
            }
            for cid, os_ in per_customer.items()
        }
        r = _score({cid: s["last_order_date"] for cid, s in stats.items()})
        f = _score({cid: s["number_of_orders"] for cid, s in stats.items()})
        m = _score({cid: s["amount_spent"] for cid, s in stats.items()})

        # Customer.addressesV2: lines of the customer's batch (the oracle reads one batch, one file)
        listed: dict[int, list[dict]] = defaultdict(list)
        for line in lines:
            if "__parentId" in line and (line.get("__typename") or line["id"].split("/")[3]) == "MailingAddress":
                listed[_num(line["__parentId"])].append(line)
        rows, address_rows = [], []
        self.points: dict[int, list[tuple[float, float]]] = {}
        self.default_country: dict[int, str | None] = {}
        for cid, c in people.items():
            gone = cid in redacted
            email = (_get(c, "defaultEmailAddress", "emailAddress") or "").strip() or None
            phone = (_get(c, "defaultPhoneNumber", "phoneNumber") or "").strip() or None
            country = (_get(c, "defaultAddress", "countryCodeV2") or "").strip().upper() or None
            self.default_country[cid] = country
            s = stats.get(cid)
            n = s["number_of_orders"] if s else 0
            spent = s["amount_spent"] if s else Decimal("0")
            places = [c.get("defaultAddress")] + list(c.get("addresses") or []) + listed.get(cid, [])
            mine = [] if gone else self._addresses(cid, c.get("defaultAddress"), c.get("addresses"), listed[cid])
            address_rows += mine
            self.points[cid] = sorted({(a["latitude"], a["longitude"]) for a in mine if a["latitude"] is not None})
            countries, regions, cities = set(), set(), set()
            for a in places:
                ctry = ((a or {}).get("countryCodeV2") or "").strip().upper()
                if not ctry:
                    continue
                prov = (a.get("provinceCode") or "").strip().upper()
                city = (a.get("city") or "").strip()
                countries.add(ctry)
                if prov:
                    regions.add(f"{ctry}-{prov}")
                if city:
                    cities.add("-".join(x for x in (ctry, prov, city.replace(" ", "")) if x))
            checkout = open_checkouts.get(cid)
            rows.append(
                {
                    "customer_id": cid,
                    "first_name": None if gone else c.get("firstName"),
                    "last_name": None if gone else c.get("lastName"),
                    "email": None if gone else email,
                    "phone": None if gone else phone,
                    "phone_e164": None if gone else self.e164(phone, country),
                    "sms_subscription_status": self._status(
                        gone, phone, _get(c, "defaultPhoneNumber", "marketingState")
                    ),
                    "email_subscription_status": self._status(
                        gone, email, _get(c, "defaultEmailAddress", "marketingState")
                    ),
                    "customer_account_status": (c.get("state") or "").upper() or None,
                    "customer_language": c.get("locale"),
                    "customer_email_domain": None
                    if gone or not email or "@" not in email
                    else email.rsplit("@", 1)[1].lower(),
                    "customer_added_date": self.local(c["createdAt"]),
                    "amount_spent": spent,
                    "number_of_orders": n,
                    "average_order_value": (spent / n).quantize(Decimal("0.0001"), ROUND_HALF_UP) if n else None,
                    "first_order_date": s["first_order_date"] if s else None,
                    "last_order_date": s["last_order_date"] if s else None,
                    "abandoned_checkout_date": checkout[1] if checkout else None,
                    "abandoned_checkout_url": None if gone or not checkout else checkout[2],
                    "customer_tags": [] if gone else list(c.get("tags") or []),
                    "customer_countries": [] if gone else sorted(countries),
                    "customer_regions": [] if gone else sorted(regions),
                    "customer_cities": [] if gone else sorted(cities),
                    "rfm_group": RFM_GRID[r[cid]][(f[cid] + m[cid]) // 2 - 1] if s else "PROSPECTS",
                    "predicted_spend_tier": self._enum(_get(c, "statistics", "predictedSpendTier"), SPEND_TIERS),
                    "product_subscription_status": SUBSCRIBERS.get((c.get("productSubscriberStatus") or "").upper()),
                    "companies": [] if gone else self._companies(c.get("companyContactProfiles")),
                    "latitude": None if gone else self._point(c.get("defaultAddress"))[0],
                    "longitude": None if gone else self._point(c.get("defaultAddress"))[1],
                    "sms_consent_date": None
                    if gone or not phone
                    else self.local(_get(c, "defaultPhoneNumber", "marketingUpdatedAt")),
                    "is_redacted": gone,
                    "as_of": self.as_of,
                }
            )
        self._customer_children([r for r in lines if "__parentId" in r], people, redacted)
        self.addresses = pl.DataFrame(
            address_rows,
            schema={
                "customer_id": pl.Int64,
                "is_default": pl.Boolean,
                "country": pl.String,
                "province": pl.String,
                "city": pl.String,
                "zip": pl.String,
                "latitude": pl.Float64,
                "longitude": pl.Float64,
            },
        )
        self.customers = pl.DataFrame(
            rows,
            schema_overrides={
                "amount_spent": pl.Decimal(38, 4),
                "average_order_value": pl.Decimal(18, 4),
                "customer_tags": pl.List(pl.String),
                "customer_countries": pl.List(pl.String),
                "customer_regions": pl.List(pl.String),
                "customer_cities": pl.List(pl.String),
                "companies": pl.List(pl.Int64),
                "latitude": pl.Float64,
                "longitude": pl.Float64,
                "sms_consent_date": pl.Date,
            },
            infer_schema_length=None,
        ).sort("customer_id")
        self.orders = pl.DataFrame(
            list(self.counted.values()),
            schema={"order_id": pl.Int64, "customer_id": pl.Int64, "order_date": pl.Date, "amount": pl.Decimal(18, 4)},
        )
        lines = []
        for li in self.line_items.values():
            o = self.counted[li["__parentId"]]
            pid = _num(_get(li, "product", "id"))
            cols = sorted(self.collections.get(pid, set()))
            lines.append(
                {
                    "line_id": _num(li["id"]),
                    "order_id": o["order_id"],
                    "customer_id": o["customer_id"],
                    "order_date": o["order_date"],
                    "product_id": pid,
                    "quantity": li.get("quantity") or 0,
                    "product_tags": self.product_tags.get(pid, []),
                    "collection_handles": sorted({h for h, _ in cols}),
                    "collection_ids": sorted({i for _, i in cols}),
                }
            )
        self.lines = pl.DataFrame(
            lines,
            schema={
                "line_id": pl.Int64,
                "order_id": pl.Int64,
                "customer_id": pl.Int64,
                "order_date": pl.Date,
                "product_id": pl.Int64,
                "quantity": pl.Int64,
                "product_tags": pl.List(pl.String),
                "collection_handles": pl.List(pl.String),
                "collection_ids": pl.List(pl.Int64),
            },
        )

    def _customer_children(self, children: list[dict], people: dict[int, dict], redacted: set[int]) -> None:
        """Metafields (the last line of a namespace.key; none for a redacted customer) and store credit
        accounts (the last line of an id) of the customers known on the date, as the lines give them."""
        metafields, credits = {}, {}
        for child in children:
            cid = _num(child["__parentId"])
            kind = child.get("__typename") or child["id"].split("/")[3]
            if cid not in people:
                continue
            if kind == "Metafield" and cid not in redacted:
                metafields[(cid, child["namespace"], child["key"])] = {
                    "customer_id": cid,
                    "namespace": child["namespace"],
                    "key": child["key"],
                    "type": child["type"],
                    "value": child["value"],
                }
            elif kind == "StoreCreditAccount":
                credits[child["id"]] = {
                    "customer_id": cid,
                    "balance": Decimal(child["balance"]["amount"]),
                    "currency": child["balance"]["currencyCode"].strip().upper(),
                }
        self.metafields = pl.DataFrame(
            list(metafields.values()),
            schema={
                "customer_id": pl.Int64,
                "namespace": pl.String,
                "key": pl.String,
                "type": pl.String,
                "value": pl.String,
            },
        )
        self.store_credit = pl.DataFrame(
            list(credits.values()),
            schema={"customer_id": pl.Int64, "balance": pl.Decimal(18, 4), "currency": pl.String},
        )

    @staticmethod
    def _enum(value: str | None, known: set[str]) -> str | None:
        value = (value or "").upper()
        return value if value in known else None

    @staticmethod
    def _companies(contacts: list | None) -> list[int]:
        ids = set()
        for contact in contacts or []:
            company = _get(contact, "company", "id") or ""
            kind, _, number = company.removeprefix("gid://shopify/").partition("/")
            if kind == "Company" and number.isdigit() and 0 < int(number) < 2**63:
                ids.add(int(number))
        return sorted(ids)

    @classmethod
    def _addresses(cls, cid: int, default: dict | None, inline: list | None, listed: list[dict]) -> list[dict]:
        """The customer's distinct addresses (the default first, flagged), text trimmed, codes in upper case.
        The deprecated inline list has no coordinates, and repeats the default, which is not another address."""

        def clean(value: str | None, upper: bool = False) -> str | None:
            value = (value or "").strip()
            return (value.upper() if upper else value) or None

        def place(a: dict) -> tuple:
            return (
                clean(a.get("countryCodeV2"), upper=True),
                clean(a.get("provinceCode"), upper=True),
                clean(a.get("city")),
                clean(a.get("zip")),
            )

        located = [(True, default, cls._point(default))] if default is not None else []
        located += [(False, a, (None, None)) for a in inline or [] if default is None or place(a) != place(default)]
        located += [(False, a, cls._point(a)) for a in listed]
        seen: dict[tuple, dict] = {}
        for is_default, a, point in located:
            key = (*place(a), *point)
            if any(v is not None for v in key):
                seen.setdefault(key, dict(zip(ADDRESS_FIELDS, (cid, is_default, *key), strict=True)))
        return list(seen.values())

    @staticmethod
    def _point(address: dict | None) -> tuple[float | None, float | None]:
        """An address's coordinates, when both are there and on the globe."""
        lat, lng = _get(address, "latitude"), _get(address, "longitude")
        if lat is None or lng is None or abs(float(lat)) > 90 or abs(float(lng)) > 180:
            return None, None
        return float(lat), float(lng)

    @staticmethod
    def _status(gone: bool, contact: str | None, state: str | None) -> str:
        if gone:
            return "REDACTED"
        if contact is None:
            return "NOT_SUBSCRIBED"
        state = (state or "").upper()
        return state if state in STATES else "NOT_SUBSCRIBED"

    @staticmethod
    def e164(phone: str | None, region: str | None) -> str | None:
        if not phone:
            return None
        try:
            number = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def _reachable(self, store_dir: Path, suppressions_csv: Path | None) -> None:
        """`reachable`: who an SMS export of every customer texts, by the spec's rules read afresh: consent,
        a valid number, not redacted, not suppressed (an opt-out of any date, or a line of suppressions.csv,
        in whatever spelling: written with + or 00 it is that number for everyone, written nationally it is
        the number a customer of its region would have), one customer a number (the lowest id)."""
        written = [
            e["phone"]
            for e in _lines(store_dir / "sms_events.jsonl")
            if e.get("type", "").strip().lower() == "opted_out"
        ]
        if suppressions_csv is not None and suppressions_csv.exists():
            with open(suppressions_csv, newline="") as f:
                written += [row["phone"] for row in csv.DictReader(f)]

        def suppressed(number: str, region: str | None) -> bool:
            for phone in written:
                international = re.match(r"\s*(\+|00)", phone)
                if international:
                    reading = self.e164("+" + phone[international.end() :], None)
                else:
                    reading = self.e164(phone.strip(), region)
                if reading == number:
                    return True
            return False

        owners: dict[str, int] = {}
        for row in self.customers.sort("customer_id").to_dicts():
            number, cid = row["phone_e164"], row["customer_id"]
            if row["is_redacted"] or row["sms_subscription_status"] != "SUBSCRIBED" or number is None:
                continue
            if number not in owners and not suppressed(number, self.default_country[cid]):
                owners[number] = cid
        self.reachable = set(owners.values())

    def _events(self, store_dir: Path) -> None:
        events = set()
        for e in _lines(store_dir / "sms_events.jsonl"):
            day = self.local(e.get("occurredAt"))
            if day is not None and day <= self.as_of:
                events.add((e["phone"].strip(), (e.get("type") or "").strip().lower(), e.get("campaign"), day))
        self.events = pl.DataFrame(
            sorted(events, key=str),
            orient="row",
            schema={"phone_e164": pl.String, "event_type": pl.String, "campaign": pl.String, "event_date": pl.Date},
        )

    def _customer_events(self, store_dir: Path) -> None:
        """Shopify Email and storefront events (keyed by customer, not phone) on or before as_of. An event
        repeated, even with its instant written in another offset, is one event."""
        email, views = set(), set()
        for e in _lines(store_dir / "shopify_email_events.jsonl"):
            if self.local(e["occurredAt"]) <= self.as_of:
                email.add(
                    (
                        _num(e["customer"]["id"]),
                        e["type"].strip().lower(),
                        _num(_get(e, "marketingActivity", "id")),
                        _ts(e["occurredAt"]),
                    )
                )
        for e in _lines(store_dir / "storefront_events.jsonl"):
            if self.local(e["occurredAt"]) <= self.as_of:
                views.add(
                    (
                        _num(e["customer"]["id"]),
                        e["type"].strip().lower(),
                        _num(_get(e, "product", "id")),
                        _num(_get(e, "collection", "id")),
                        _ts(e["occurredAt"]),
                    )
                )

        def frame(rows: set, names: list[str]) -> pl.DataFrame:
            dated = [
                (*row[:-1], row[-1].astimezone(dt.UTC), row[-1].astimezone(self.tz).date())
                for row in sorted(rows, key=str)
            ]
            types = {"event_type": pl.String, "occurred_at": pl.Datetime("us", "UTC"), "event_date": pl.Date}
            columns = (*names, "occurred_at", "event_date")
            return pl.DataFrame(dated, orient="row", schema={n: types.get(n, pl.Int64) for n in columns})

        self.email_events = frame(email, ["customer_id", "event_type", "activity_id"])
        self.storefront_events = frame(views, ["customer_id", "event_type", "product_id", "collection_id"])
