"""Generate a realistic, deterministic demo store directory in the Shopify bulk-output JSONL shape.

Columns are drawn with numpy a chunk of customers at a time and written with polars' NDJSON writer,
so a million customers take seconds and memory stays flat. The data deliberately contains the traps a
real extraction has (children before parents, revised rows, bad phones) so the ingest is exercised.
"""

import datetime
import shutil
import zoneinfo
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

DEMO_CUSTOMERS = 2000
DEMO_SEED = 0
TIMEZONE = "Europe/Rome"  # the demo shop's: its end day is a local day, as every date of the language is

CHUNK_CUSTOMERS = 200_000
HISTORY_DAYS = 3 * 365
BLOCK_PARENTS = 10_000  # parents written per block; their children follow the block, not each parent
SHOP_URL = "https://demo-store.myshopify.com"
CURRENCY = "EUR"
# Gift cards are sold at a round price, alone, undiscounted and without shipping: what gives a shop
# customers who spent a round amount (every other price ends in .90).
GIFT_CARD_CENTS = 5000
GIFT_CARD_SHARE = 0.05

# Id bases make GIDs look like Shopify's 13-digit ids while staying unique across resources.
CUSTOMER_ID_BASE = 6_100_000_000_000
ORDER_ID_BASE = 5_200_000_000_000
LINE_ITEM_ID_BASE = 13_400_000_000_000
PRODUCT_ID_BASE = 8_300_000_000_000
VARIANT_ID_BASE = 45_000_000_000_000
COLLECTION_ID_BASE = 450_000_000_000
CHECKOUT_ID_BASE = 31_000_000_000_000
METAFIELD_ID_BASE = 27_000_000_000_000
ADDRESS_ID_BASE = 9_100_000_000_000
STORE_CREDIT_ID_BASE = 1_700_000_000
ORDER_NUMBER_START = 1001

EPOCH = datetime.date(1970, 1, 1)
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DAY = 86_400


@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    calling_code: str
    mobile_prefixes: tuple[str, ...]
    nsn_length: int
    trunk: str  # the national trunk prefix dialled before the number ("0" in GB, DE, FR, AU)
    national_groups: tuple[int, ...]  # digit groups of the national format, trunk included
    international_groups: tuple[int, ...]  # digit groups after "+cc " in the international format
    locales: tuple[str, ...]
    language: str
    cities: tuple[tuple[str, str | None, str], ...]  # city, provinceCode (None: no provinces), zip
    email_domains: tuple[str, ...]


# The Admin API's CustomerPredictedSpendTier and CustomerProductSubscriberStatus, as a shop has them:
# most customers without a subscription, a few without a predicted tier yet.
SPEND_TIERS = ("LOW", "MEDIUM", "HIGH", None)
SPEND_TIER_WEIGHTS = (0.55, 0.3, 0.1, 0.05)
SUBSCRIBER_STATES = ("NEVER_SUBSCRIBED", "ACTIVE", "PAUSED", "CANCELLED", "EXPIRED", "FAILED")
SUBSCRIBER_WEIGHTS = (0.88, 0.05, 0.02, 0.03, 0.01, 0.01)
COMPANIES = 400  # B2B companies; about 3% of customers are a contact of one (a few of two)

# Where each demo city is (degrees), for the default address's geocoding.
CITY_COORDINATES = {
    "Milano": (45.4642, 9.19),
    "Roma": (41.9028, 12.4964),
    "Napoli": (40.8518, 14.2681),
    "Torino": (45.0703, 7.6869),
    "Firenze": (43.7696, 11.2558),
    "Bologna": (44.4949, 11.3426),
    "Reggio Emilia": (44.6989, 10.6297),
    "San Lazzaro di Savena": (44.4706, 11.4085),
    "Bari": (41.1171, 16.8719),
    "Verona": (45.4384, 10.9916),
    "New York City": (40.7128, -74.006),
    "San Francisco": (37.7749, -122.4194),
    "Los Angeles": (34.0522, -118.2437),
    "Chicago": (41.8781, -87.6298),
    "Austin": (30.2672, -97.7431),
    "Boston": (42.3601, -71.0589),
    "Miami": (25.7617, -80.1918),
    "Seattle": (47.6062, -122.3321),
    "London": (51.5074, -0.1278),
    "Manchester": (53.4808, -2.2426),
    "Edinburgh": (55.9533, -3.1883),
    "Bristol": (51.4545, -2.5879),
    "Milton Keynes": (52.0406, -0.7594),
    "Berlin": (52.52, 13.405),
    "München": (48.1351, 11.582),
    "Hamburg": (53.5511, 9.9937),
    "Frankfurt am Main": (50.1109, 8.6821),
    "Köln": (50.9375, 6.9603),
    "Paris": (48.8566, 2.3522),
    "Lyon": (45.764, 4.8357),
    "Marseille": (43.2965, 5.3698),
    "Aix-en-Provence": (43.5297, 5.4474),
    "Saint-Étienne": (45.4397, 4.3872),
    "Madrid": (40.4168, -3.7038),
    "Barcelona": (41.3874, 2.1686),
    "Valencia": (39.4699, -0.3763),
    "Sevilla": (37.3891, -5.9845),
    "Palma de Mallorca": (39.5696, 2.6502),
    "Toronto": (43.6532, -79.3832),
    "Vancouver": (49.2827, -123.1207),
    "Montréal": (45.5019, -73.5674),
    "Calgary": (51.0447, -114.0719),
    "Ottawa": (45.4215, -75.6972),
    "Sydney": (-33.8688, 151.2093),
    "Melbourne": (-37.8136, 144.9631),
    "Brisbane": (-27.4698, 153.0251),
    "Perth": (-31.9505, 115.8605),
    "Gold Coast": (-28.0167, 153.4),
}

# Mobile prefixes were checked with `phonenumbers`: every number drawn from them is valid for its region.
COUNTRIES: tuple[Country, ...] = (
    Country(
        "IT",
        0.40,
        "39",
        (
            "320",
            "327",
            "328",
            "329",
            "330",
            "333",
            "335",
            "338",
            "339",
            "340",
            "345",
            "347",
            "348",
            "349",
            "366",
            "380",
            "389",
            "392",
            "393",
        ),
        10,
        "",
        (3, 3, 4),
        (3, 7),
        ("it", "it", "it", "en"),
        "it",
        (
            ("Milano", "MI", "20121"),
            ("Roma", "RM", "00184"),
            ("Napoli", "NA", "80133"),
            ("Torino", "TO", "10121"),
            ("Firenze", "FI", "50122"),
            ("Bologna", "BO", "40121"),
            ("Reggio Emilia", "RE", "42121"),
            ("San Lazzaro di Savena", "BO", "40068"),
            ("Bari", "BA", "70121"),
            ("Verona", "VR", "37121"),
        ),
        ("gmail.com", "libero.it", "hotmail.it", "yahoo.it", "outlook.it", "virgilio.it"),
    ),
    Country(
        "US",
        0.15,
        "1",
        ("212", "415", "310", "312", "617", "646", "718", "202", "305", "512", "206"),
        10,
        "",
        (3, 3, 4),
        (3, 3, 4),
        ("en-US", "en", "en-US", "es"),
        "en",
        (
            ("New York City", "NY", "10001"),
            ("San Francisco", "CA", "94103"),
            ("Los Angeles", "CA", "90012"),
            ("Chicago", "IL", "60601"),
            ("Austin", "TX", "78701"),
            ("Boston", "MA", "02108"),
            ("Miami", "FL", "33101"),
            ("Seattle", "WA", "98101"),
        ),
        ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"),
    ),
    Country(
        "GB",
        0.10,
        "44",
        ("7400", "7411", "7711", "7799", "7800", "7833", "7900", "7956", "7971"),
        10,
        "0",
        (5, 6),
        (4, 6),
        ("en-GB", "en"),
        "en",
        (
            ("London", None, "SW1A 1AA"),
            ("Manchester", None, "M1 1AE"),
            ("Edinburgh", None, "EH1 1YZ"),
            ("Bristol", None, "BS1 4DJ"),
            ("Milton Keynes", None, "MK9 2FP"),
        ),
        ("gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com"),
    ),
    Country(
        "DE",
        0.10,
        "49",
        ("151", "152", "157", "159", "160", "162", "170", "171", "172", "175", "176", "177", "178", "179"),
        11,
        "0",
        (4, 8),
        (3, 8),
        ("de", "de", "en"),
        "de",
        (
            ("Berlin", None, "10115"),
            ("München", None, "80331"),
            ("Hamburg", None, "20095"),
            ("Frankfurt am Main", None, "60311"),
            ("Köln", None, "50667"),
        ),
        ("gmail.com", "gmx.de", "web.de", "t-online.de"),
    ),
    Country(
        "FR",
        0.08,
        "33",
        ("60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77"),
        9,
        "0",
        (2, 2, 2, 2, 2),
        (1, 2, 2, 2, 2),
        ("fr", "fr", "en"),
        "fr",
        (
            ("Paris", None, "75001"),
            ("Lyon", None, "69001"),
            ("Marseille", None, "13001"),
            ("Aix-en-Provence", None, "13100"),
            ("Saint-Étienne", None, "42000"),
        ),
        ("gmail.com", "orange.fr", "free.fr", "laposte.net"),
    ),
    Country(
        "ES",
        0.07,
        "34",
        ("60", "61", "62", "63", "64", "65", "66", "67", "68", "69", "71", "72", "73"),
        9,
        "",
        (3, 3, 3),
        (3, 2, 2, 2),
        ("es", "es", "ca", "en"),
        "es",
        (
            ("Madrid", "M", "28013"),
            ("Barcelona", "B", "08001"),
            ("Valencia", "V", "46001"),
            ("Sevilla", "SE", "41001"),
            ("Palma de Mallorca", "PM", "07001"),
        ),
        ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net"),
    ),
    Country(
        "CA",
        0.05,
        "1",
        ("416", "604", "514", "403", "613", "647", "778"),
        10,
        "",
        (3, 3, 4),
        (3, 3, 4),
        ("en-CA", "fr-CA", "en"),
        "en",
        (
            ("Toronto", "ON", "M5V 2T6"),
            ("Vancouver", "BC", "V6B 1A1"),
            ("Montréal", "QC", "H2Y 1C6"),
            ("Calgary", "AB", "T2P 1J9"),
            ("Ottawa", "ON", "K1P 1J1"),
        ),
        ("gmail.com", "yahoo.ca", "outlook.com", "rogers.com"),
    ),
    Country(
        "AU",
        0.05,
        "61",
        ("40", "41", "42", "43"),
        9,
        "0",
        (4, 3, 3),
        (3, 3, 3),
        ("en-AU", "en"),
        "en",
        (
            ("Sydney", "NSW", "2000"),
            ("Melbourne", "VIC", "3000"),
            ("Brisbane", "QLD", "4000"),
            ("Perth", "WA", "6000"),
            ("Gold Coast", "QLD", "4217"),
        ),
        ("gmail.com", "bigpond.com", "outlook.com", "optusnet.com.au"),
    ),
)

# (display name, ascii slug for the e-mail address)
FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (
        ("Marco", "marco"),
        ("Giulia", "giulia"),
        ("Luca", "luca"),
        ("Francesca", "francesca"),
        ("Alessandro", "alessandro"),
        ("Chiara", "chiara"),
        ("Niccolò", "niccolo"),
        ("Sara", "sara"),
        ("Matteo", "matteo"),
        ("Martina", "martina"),
        ("Lorenzo", "lorenzo"),
        ("Elena", "elena"),
    ),
    "en": (
        ("James", "james"),
        ("Emily", "emily"),
        ("Michael", "michael"),
        ("Olivia", "olivia"),
        ("David", "david"),
        ("Sophie", "sophie"),
        ("Daniel", "daniel"),
        ("Chloe", "chloe"),
        ("Jack", "jack"),
        ("Grace", "grace"),
        ("Liam", "liam"),
        ("Zoë", "zoe"),
    ),
    "de": (
        ("Lukas", "lukas"),
        ("Anna", "anna"),
        ("Jonas", "jonas"),
        ("Lena", "lena"),
        ("Felix", "felix"),
        ("Jürgen", "juergen"),
        ("Hannah", "hannah"),
        ("Maximilian", "maximilian"),
    ),
    "fr": (
        ("Louis", "louis"),
        ("Camille", "camille"),
        ("Hugo", "hugo"),
        ("Léa", "lea"),
        ("François", "francois"),
        ("Manon", "manon"),
        ("Jules", "jules"),
        ("Chloé", "chloe"),
    ),
    "es": (
        ("Pablo", "pablo"),
        ("Lucía", "lucia"),
        ("Javier", "javier"),
        ("María", "maria"),
        ("José", "jose"),
        ("Carmen", "carmen"),
        ("Sergio", "sergio"),
        ("Paula", "paula"),
    ),
}
LAST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (
        ("Rossi", "rossi"),
        ("Russo", "russo"),
        ("Ferrari", "ferrari"),
        ("Esposito", "esposito"),
        ("Bianchi", "bianchi"),
        ("Romano", "romano"),
        ("Colombo", "colombo"),
        ("De Luca", "deluca"),
        ("Ricci", "ricci"),
        ("Marino", "marino"),
        ("D'Angelo", "dangelo"),
        ("Conti", "conti"),
    ),
    "en": (
        ("Smith", "smith"),
        ("Johnson", "johnson"),
        ("Williams", "williams"),
        ("Brown", "brown"),
        ("Taylor", "taylor"),
        ("O'Brien", "obrien"),
        ("Wilson", "wilson"),
        ("Clarke", "clarke"),
        ("Martin", "martin"),
        ("Lee", "lee"),
        ("Walker", "walker"),
        ("Nguyen", "nguyen"),
    ),
    "de": (
        ("Müller", "mueller"),
        ("Schmidt", "schmidt"),
        ("Schneider", "schneider"),
        ("Fischer", "fischer"),
        ("Weber", "weber"),
        ("Meyer", "meyer"),
        ("Wagner", "wagner"),
        ("Becker", "becker"),
    ),
    "fr": (
        ("Martin", "martin"),
        ("Bernard", "bernard"),
        ("Dubois", "dubois"),
        ("Lefèvre", "lefevre"),
        ("Moreau", "moreau"),
        ("Laurent", "laurent"),
        ("Girard", "girard"),
        ("Roux", "roux"),
    ),
    "es": (
        ("García", "garcia"),
        ("Fernández", "fernandez"),
        ("López", "lopez"),
        ("Martínez", "martinez"),
        ("Sánchez", "sanchez"),
        ("Pérez", "perez"),
        ("Gómez", "gomez"),
        ("Ruiz", "ruiz"),
    ),
}

# Each tag with the spellings merchants actually end up with, so tag matching must ignore case.
CUSTOMER_TAGS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.06, ("VIP", "vip", "Vip")),
    (0.04, ("wholesale", "Wholesale")),
    (0.25, ("newsletter", "Newsletter", "NEWSLETTER")),
    (0.05, ("b2b", "B2B")),
    (0.08, ("instagram", "Instagram")),
    (0.04, ("loyalty-gold", "Loyalty Gold")),
)

SMS_EVENT_KINDS = ("sent", "delivered", "clicked", "converted", "opted_out")  # in the order they happen
SMS_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "REDACTED")
SMS_STATE_WEIGHTS = (0.55, 0.24, 0.12, 0.06, 0.03)
EMAIL_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "INVALID")  # REDACTED: see _people
EMAIL_STATE_WEIGHTS = (0.46, 0.35, 0.13, 0.03, 0.03)
OPT_IN_LEVELS = ("SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN")
FINANCIAL_STATUSES = ("PAID", "PARTIALLY_REFUNDED", "REFUNDED", "PENDING", "AUTHORIZED", "VOIDED")
PAID, PARTIALLY_REFUNDED, REFUNDED, PENDING, AUTHORIZED, VOIDED = range(len(FINANCIAL_STATUSES))
ACCOUNT_STATES = ("DISABLED", "ENABLED", "INVITED", "DECLINED")
ACCOUNT_STATE_WEIGHTS = (0.55, 0.38, 0.05, 0.02)

# UTC hour-of-day weights: a European shop, busy in the evening; 22-23 UTC is already tomorrow in Rome.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.4, 0.8, 1.5, 3, 4, 5, 5, 5, 5, 5, 5, 5, 6, 7, 8, 8, 7, 5, 3, 2], dtype=float
)

PRODUCT_KINDS = (  # noun, productType, SKU stem, price range in cents
    ("Tee", "T-Shirts", "TEE", (1990, 3990)),
    ("Linen Shirt", "Shirts", "SHR", (4990, 8990)),
    ("Hoodie", "Sweatshirts", "HOD", (4990, 7990)),
    ("Sneakers", "Shoes", "SNK", (7990, 14990)),
    ("Tote Bag", "Bags", "TOT", (1490, 3490)),
    ("Cap", "Accessories", "CAP", (1490, 2990)),
    ("Scarf", "Accessories", "SCF", (1990, 4990)),
    ("Wool Sweater", "Knitwear", "SWT", (6990, 12990)),
    ("Chinos", "Trousers", "CHN", (4990, 8990)),
    ("Sunglasses", "Accessories", "SUN", (3990, 11990)),
    ("Dress", "Dresses", "DRS", (5990, 12990)),
    ("Rain Jacket", "Outerwear", "JKT", (8990, 19990)),
)
PRODUCT_ADJECTIVES = (
    "Classic",
    "Organic",
    "Vintage",
    "Everyday",
    "Riviera",
    "Alpine",
    "Urban",
    "Coastal",
    "Heritage",
    "Essential",
    "Soft",
    "Bold",
    "Nomad",
    "Studio",
    "Sunset",
    "Milano",
)
PRODUCT_COLOURS = ("Black", "White", "Navy", "Sand", "Olive", "Terracotta", "Grey", "Sky")
VENDORS = ("Demo Store", "Atelier Roma", "Nordic Thread", "Costa Goods")
PRODUCT_TAGS = ("new", "sale", "organic-cotton", "Made in Italy", "gift", "limited", "unisex", "bestseller")
SIZES = ("S", "M", "L", "XL")
COLLECTIONS = (  # handle, title
    ("summer", "Summer"),
    ("winter-sale", "Winter Sale"),
    ("bestsellers", "Bestsellers"),
    ("new-arrivals", "New Arrivals"),
    ("accessories", "Accessories"),
    ("gifts-under-50", "Gifts under 50"),
    ("black-friday", "Black Friday"),
    ("outlet", "Outlet"),
    ("essentials", "Essentials"),
    ("made-in-italy", "Made in Italy"),
    ("back-to-school", "Back to School"),
    ("holiday", "Holiday"),
)

# SMS campaigns of the year before the end day: seasonal ones on their (month, day), and a newsletter
# on the first of every month, so every 30 days hold a send. All go out at 10:00 in the shop.
SEASONAL_CAMPAIGNS = {
    (1, 7): "winter-sale",
    (3, 21): "spring-sale",
    (6, 21): "summer-sale",
    (9, 15): "back-in-stock",
    (11, 27): "black-friday",
}
MONTHLY_CAMPAIGN = "newsletter"
CAMPAIGN_REACH = 0.3  # the share of texted numbers each send reaches


def today() -> datetime.date:
    """The default end day: today where the demo shop is."""
    return datetime.datetime.now(zoneinfo.ZoneInfo(TIMEZONE)).date()


# Shopify Email campaigns: the marketing activity's id and the (month, day) it goes out, at 09:00 in the
# shop, on the latest such day up to the end day; a store generated later repeats the same events.
EMAIL_ACTIVITIES = (
    (5_240_029_206, (2, 10)),
    (1_932_881_090, (6, 29)),
    (3_250_045_832, (9, 22)),
    (4_410_502_117, (11, 15)),
    (6_021_774_305, (12, 3)),
)
EMAIL_REACH = 0.6  # the share of email subscribers each campaign is sent to
# Of a delivered email, the share that each later event follows (clicked: of those opened).
EMAIL_OPENED, EMAIL_CLICKED, EMAIL_SPAM, EMAIL_UNSUBSCRIBED, EMAIL_BOUNCED = 0.4, 0.25, 0.004, 0.01, 0.03
STOREFRONT_DAYS = 90  # the storefront events kept: views of the last 90 days
STOREFRONT_DAILY_VIEWERS = 0.015  # the share of customers who browse on a given day


def generate_store(
    out_dir: Path, customers: int, seed: int = 0, *, end_day: datetime.date | None = None
) -> dict[str, int]:
    """Write a demo store directory of `customers` customers whose history ends on `end_day`.

    `end_day` (default today) is a day in the shop's time zone: every record, and every change to
    one, happened on or before it, so a run evaluated that day sees the whole store and an earlier
    day sees what was true then. The same (customers, seed, end_day) always gives byte-identical
    files. Returns how many distinct entities of each kind were written (revised duplicates count
    once), i.e. what a correct ingest keeps.
    """
    if customers < 0:
        raise ValueError(f"customers must be 0 or more, got {customers}")
    end_day = end_day or today()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    end = int(
        datetime.datetime.combine(
            end_day + datetime.timedelta(days=1), datetime.time(), tzinfo=zoneinfo.ZoneInfo(TIMEZONE)
        ).timestamp()
    )
    catalog = _Catalog.build(np.random.default_rng([seed, 0]), customers, end)
    sends, email_sends = _campaign_sends(end_day), _email_sends(end_day)

    shop = f'{{"name":"Demo Store","ianaTimezone":"{TIMEZONE}","currencyCode":"{CURRENCY}"}}\n'
    (out_dir / "shop.jsonl").write_text(shop, encoding="utf-8")
    counts = {
        "customers": 0,
        "orders": 0,
        "line_items": 0,
        "products": catalog.products,
        "collections": len(COLLECTIONS),
        "abandoned_checkouts": 0,
        "sms_events": 0,
        "redactions": 0,
        "shopify_email_events": 0,
        "storefront_events": 0,
        "customer_metafields": 0,
        "store_credit_accounts": 0,
        "customer_addresses": 0,
    }
    with _Files(out_dir) as files:
        catalog.write(files, np.random.default_rng([seed, 1]))
        for chunk_no, start in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
            # One generator per chunk: the output depends only on the arguments, not on memory or timing.
            rng = np.random.default_rng([seed, 2, chunk_no])
            chunk = _Chunk(
                rng,
                start,
                min(CHUNK_CUSTOMERS, customers - start),
                end,
                catalog,
                counts,
                sends,
                email_sends,
                (seed, chunk_no),
                np.random.default_rng([seed, 3, chunk_no]),
            )
            chunk.write(files)
            files.wait_for_previous_chunk()
    return counts


class _Files:
    """The store's JSONL files, appended to by one background thread.

    Encoding and disk writes are most of the work; polars releases the GIL while it writes, so the
    next chunk is generated meanwhile. One worker keeps every file's appends in submission order.
    """

    NAMES = (
        "customers",
        "orders",
        "products",
        "abandoned_checkouts",
        "sms_events",
        "redactions",
        "shopify_email_events",
        "storefront_events",
    )

    def __init__(self, out_dir: Path) -> None:
        self._handles = {name: open(out_dir / f"{name}.jsonl", "wb") for name in self.NAMES}  # noqa: SIM115
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._current: list[Future] = []
        self._previous: list[Future] = []

    def append(self, name: str, frame: pl.DataFrame) -> None:
        self._current.append(self._pool.submit(frame.write_ndjson, self._handles[name]))

    def wait_for_previous_chunk(self) -> None:
        """Bound memory to two chunks in flight: the one being written and the one just made."""
        for future in self._previous:
            future.result()
        self._previous, self._current = self._current, []

    def __enter__(self) -> "_Files":
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for future in self._previous + self._current:
                future.result()
        finally:
            self._pool.shutdown(cancel_futures=True)
            for handle in self._handles.values():
                handle.close()


def _gid(kind: str, number: pl.Expr) -> pl.Expr:
    return pl.lit(f"gid://shopify/{kind}/") + number.cast(pl.String)


def _ts(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds).dt.strftime(TS_FORMAT)


def _money(cents: pl.Expr) -> pl.Expr:
    return (cents // 100).cast(pl.String) + "." + (cents % 100).cast(pl.String).str.zfill(2)


def _choose(rng: np.random.Generator, options: tuple, size: int, weights: tuple | None = None) -> np.ndarray:
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return rng.choice(len(options), size=size, p=p)


def _pick(rng: np.random.Generator, options: tuple, size: int, weights: tuple | None = None) -> pl.Series:
    # Gathering from a tiny Series is far cheaper than turning a numpy string array into one.
    return pl.Series(options, dtype=pl.String).gather(_choose(rng, options, size, weights))


def _pick_within(rng: np.random.Generator, group: np.ndarray, sizes: list[int]) -> np.ndarray:
    """For each row, a uniform index into the flattened options of its own group."""
    sizes_ = np.asarray(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes_)[:-1]])
    return starts[group] + (rng.random(len(group)) * sizes_[group]).astype(np.int64)


def _times_of_day(rng: np.random.Generator, days: np.ndarray, end: int) -> np.ndarray:
    """A busy-hour time on each UTC day; one that falls at or after `end` goes back a day instead."""
    hours = rng.choice(24, size=len(days), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    moments = days * DAY + hours * 3600 + rng.integers(0, 3600, len(days))
    return np.where(moments >= end, moments - DAY, moments)


def _write_blocks(
    files: _Files,
    name: str,
    parents: pl.DataFrame,
    parent_block: np.ndarray,
    children: pl.DataFrame,
    child_slot: np.ndarray,
) -> None:
    """Write parent block b, then the children in slot b + 1; slot 0 comes before every parent.

    A child in a slot at or before its parent's block lands before its parent, as the spec allows.
    """
    parent_parts = parents.with_columns(_slot=pl.Series(parent_block)).partition_by(
        "_slot", maintain_order=True, include_key=False, as_dict=True
    )
    child_parts = (
        children.with_columns(_slot=pl.Series(child_slot))
        .sort("_slot", maintain_order=True)
        .partition_by("_slot", maintain_order=True, include_key=False, as_dict=True)
    )
    blocks = int(parent_block.max(initial=-1)) + 1
    for slot in range(blocks + 1):
        if slot > 0 and (slot - 1,) in parent_parts:
            files.append(name, parent_parts[(slot - 1,)])
        if (slot,) in child_parts:
            files.append(name, child_parts[(slot,)])


def _child_slots(rng: np.random.Generator, parent_block: np.ndarray, early_share: float) -> np.ndarray:
    """Children follow their parent's block, except a share moved one to three blocks earlier."""
    slots = parent_block + 1
    early = rng.random(len(slots)) < early_share
    slots[early] = np.maximum(parent_block[early] - rng.integers(0, 3, early.sum()), 0)
    return slots


def _random_tokens(rng: np.random.Generator, size: int, length: int) -> np.ndarray:
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    raw = alphabet[rng.integers(0, 16, (size, length))]
    return raw.view(f"S{length}").ravel().astype(f"U{length}")


@dataclass
class _Catalog:
    """Products with their variants' prices, and each product's collections."""

    products: int
    frame: pl.DataFrame
    product_collections: pl.DataFrame
    variants: np.ndarray  # variants per product
    price: np.ndarray  # cents per product
    sku: pl.Series
    title: pl.Series
    popularity: np.ndarray  # probability of each product on a line item
    gift_card: int  # the gift card's product number: bought only alone, in gift card orders

    @classmethod
    def build(cls, rng: np.random.Generator, customers: int, end: int) -> "_Catalog":
        # A shop's catalogue grows far slower than its customer base.
        n = 200 + int(60 * np.log2(max(customers, 2000) / 2000))
        kind = rng.integers(0, len(PRODUCT_KINDS), n)
        adjective = np.array(PRODUCT_ADJECTIVES)[_choose(rng, PRODUCT_ADJECTIVES, n)]
        colour = np.array(PRODUCT_COLOURS)[_choose(rng, PRODUCT_COLOURS, n)]
        noun = np.array([k[0] for k in PRODUCT_KINDS])[kind]
        title = np.char.add(np.char.add(np.char.add(adjective, " "), noun), np.char.add(" - ", colour))
        low = np.array([k[3][0] for k in PRODUCT_KINDS])[kind]
        high = np.array([k[3][1] for k in PRODUCT_KINDS])[kind]
        price = (rng.integers(low // 100, high // 100 + 1) * 100 + 90).astype(np.int64)
        popularity = 1.0 / np.arange(1, n + 1) ** 0.9
        popularity = rng.permutation(popularity / popularity.sum())
        # The gift card comes last, never drawn for an ordinary line.
        gift_card, n = n, n + 1
        kind = np.append(kind, len(PRODUCT_KINDS))
        title = np.append(title, "Gift Card")
        price = np.append(price, GIFT_CARD_CENTS)
        popularity = np.append(popularity, 0.0)
        stems = [k[2] for k in PRODUCT_KINDS] + ["GFT"]
        sku = np.char.add(np.char.add(np.array(stems)[kind], "-"), np.char.zfill(np.arange(n).astype(str), 4))
        tag_mask = rng.random((n, len(PRODUCT_TAGS))) < 0.18
        tag_mask[gift_card] = False
        tags = pa.ListArray.from_arrays(
            np.concatenate([[0], np.cumsum(tag_mask.sum(axis=1))]).astype(np.int32),
            pa.array(np.broadcast_to(np.array(PRODUCT_TAGS), tag_mask.shape)[tag_mask]),
        )
        updated = end - rng.integers(DAY, HISTORY_DAYS * DAY, n)
        number = np.arange(n)
        frame = pl.DataFrame(
            {
                "n": number,
                "title": title,
                "kind": kind,
                "updated": updated,
                "tags": pl.from_arrow(tags),
                "vendor": _pick(rng, VENDORS, n),
            }
        ).select(
            id=_gid("Product", pl.col("n") + PRODUCT_ID_BASE),
            title=pl.col("title"),
            # The product number keeps handles unique even when two products share a title.
            handle=pl.col("title").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-")
            + "-"
            + pl.col("n").cast(pl.String),
            productType=pl.col("kind").replace_strict(
                range(len(PRODUCT_KINDS) + 1), [k[1] for k in PRODUCT_KINDS] + ["Gift Cards"]
            ),
            vendor=pl.col("vendor"),
            tags=pl.col("tags"),
            updatedAt=_ts(pl.col("updated")),
        )
        in_collection = np.zeros((n, len(COLLECTIONS)), dtype=bool)
        per_product = rng.integers(1, 4, n)
        per_product[gift_card] = 0
        order = np.argsort(rng.random((n, len(COLLECTIONS))), axis=1)
        for k in range(3):
            chosen = per_product > k
            in_collection[np.flatnonzero(chosen), order[chosen, k]] = True
        product_of, collection_of = np.nonzero(in_collection)
        handles, titles = zip(*COLLECTIONS, strict=True)
        product_collections = pl.DataFrame({"c": collection_of, "p": product_of}).select(
            id=_gid("Collection", pl.col("c") + COLLECTION_ID_BASE),
            handle=pl.Series(np.array(handles)[collection_of]),
            title=pl.Series(np.array(titles)[collection_of]),
            __parentId=_gid("Product", pl.col("p") + PRODUCT_ID_BASE),
        )
        product_collections = product_collections.with_columns(_product=pl.Series(product_of))
        variants = rng.integers(1, len(SIZES) + 1, n)
        variants[gift_card] = 1
        return cls(
            n, frame, product_collections, variants, price, pl.Series(sku), pl.Series(title), popularity, gift_card
        )

    def write(self, files: _Files, rng: np.random.Generator) -> None:
        n = self.products
        # A few products were extracted twice: an older version with other tags, placed anywhere.
        revised = np.flatnonzero(rng.random(n) < 0.03)
        stale = self.frame[revised].with_columns(
            tags=pl.lit(["sale"], dtype=pl.List(pl.String)),
            updatedAt=_ts(pl.col("updatedAt").str.to_datetime(TS_FORMAT).dt.epoch("s") - 30 * DAY),
        )
        frame = pl.concat([self.frame, stale])
        block = np.concatenate([np.arange(n) // 50, rng.integers(0, (n - 1) // 50 + 1, len(revised))])
        order = np.argsort(block, kind="stable")
        parent_block = block[order]
        children = self.product_collections.drop("_product")
        product_block = np.arange(n) // 50
        child_slot = _child_slots(rng, product_block[self.product_collections["_product"].to_numpy()], 0.05)
        _write_blocks(files, "products", frame[order], parent_block, children, child_slot)


class _Chunk:
    """One slice of customers with their orders, checkouts, SMS events and redactions."""

    def __init__(
        self,
        rng: np.random.Generator,
        start: int,
        size: int,
        end: int,
        catalog: _Catalog,
        counts: dict[str, int],
        sends: list[tuple[str, int, int]],
        email_sends: list[tuple[int, int, int]],
        key: tuple[int, int],
        statistics_rng: np.random.Generator,
    ) -> None:
        self.rng, self.start, self.size, self.end = rng, start, size, end
        self.catalog, self.counts = catalog, counts
        self.sends, self.email_sends = sends, email_sends
        self.key = key  # (seed, chunk number), which a send's draws start from
        # Its own generator, so that adding these fields left every other value of the store as it was.
        self.statistics_rng = statistics_rng

    def write(self, files: _Files) -> None:
        people = self._people()
        self._write_customers(files, people)
        self._write_orders(files, people)
        self._write_checkouts(files, people)
        self._write_sms_events(files, people)
        self._write_redactions(files, people)
        self._write_email_events(files, people)
        self._write_storefront_events(files, people)

    def _people(self) -> pl.DataFrame:
        """Everything about the chunk's customers, one row each, before it is shaped as JSON."""
        rng, n = self.rng, self.size
        weights = np.array([c.weight for c in COUNTRIES])
        country = rng.choice(len(COUNTRIES), size=n, p=weights / weights.sum())
        prefix = _pick_within(rng, country, [len(c.mobile_prefixes) for c in COUNTRIES])
        rest_len = np.array([c.nsn_length - len(c.mobile_prefixes[0]) for c in COUNTRIES])[country]
        nanp = np.array([c.calling_code == "1" for c in COUNTRIES])[country]
        # NANP subscriber numbers cannot start with 0 or 1.
        rest = np.where(
            nanp,
            2_000_000 + (rng.random(n) * 8_000_000).astype(np.int64),
            (rng.random(n) * 10.0**rest_len).astype(np.int64),
        )
        # Some people share a phone (a couple, a family): the same number, maybe written differently.
        shared = np.flatnonzero(rng.random(n) < 0.02)
        source = rng.integers(0, max(n, 1), len(shared))
        for column in (country, prefix, rest, rest_len):
            column[shared] = column[source]
        prefixes = pl.Series([p for c in COUNTRIES for p in c.mobile_prefixes])
        nsn = prefixes.gather(prefix) + pl.Series(rest).cast(pl.String).str.zfill(pl.Series(rest_len))

        # The store grows: more customers joined recently than three years ago.
        created = self.end - DAY - (HISTORY_DAYS * DAY * (1 - np.sqrt(rng.random(n)))).astype(np.int64)
        created = created - rng.integers(0, DAY, n)
        updated = created + (rng.random(n) ** 2 * (self.end - created)).astype(np.int64)

        languages = list(FIRST_NAMES)
        language = np.array([languages.index(c.language) for c in COUNTRIES])[country]
        first = _pick_within(rng, language, [len(FIRST_NAMES[lang]) for lang in languages])
        last = _pick_within(rng, language, [len(LAST_NAMES[lang]) for lang in languages])
        first_names, first_slugs = zip(*(x for lang in languages for x in FIRST_NAMES[lang]), strict=True)
        last_names, last_slugs = zip(*(x for lang in languages for x in LAST_NAMES[lang]), strict=True)
        domain = _pick_within(rng, country, [len(c.email_domains) for c in COUNTRIES])
        locale = _pick_within(rng, country, [len(c.locales) for c in COUNTRIES])

        tags = [
            pl.when(pl.Series(rng.random(n) < p)).then(pl.Series(_pick(rng, spellings, n)))
            for p, spellings in CUSTOMER_TAGS
        ]
        frame = pl.DataFrame(
            {
                "number": CUSTOMER_ID_BASE + self.start + np.arange(n),
                "country": country,
                "nsn": nsn,
                "created": created,
                "updated": updated,
                "first": pl.Series(first_names).gather(first),
                "last": pl.Series(last_names).gather(last),
                "first_slug": pl.Series(first_slugs).gather(first),
                "last_slug": pl.Series(last_slugs).gather(last),
                "domain": pl.Series([d for c in COUNTRIES for d in c.email_domains]).gather(domain),
                "locale": pl.Series([loc for c in COUNTRIES for loc in c.locales]).gather(locale),
                "has_name": rng.random(n) >= 0.03,
                "has_email": rng.random(n) >= 0.08,
                "email_style": rng.integers(0, 4, n),
                "email_state": _pick(rng, EMAIL_STATES, n, EMAIL_STATE_WEIGHTS),
                "state": _pick(rng, ACCOUNT_STATES, n, ACCOUNT_STATE_WEIGHTS),
                "has_phone": rng.random(n) >= 0.12,
                "phone_format": rng.choice(6, size=n, p=[0.30, 0.08, 0.08, 0.25, 0.23, 0.06]),
                "sms": _pick(rng, SMS_STATES, n, SMS_STATE_WEIGHTS),
                "opt_in_level": _pick(rng, OPT_IN_LEVELS, n, (0.6, 0.3, 0.1)),
                "sms_updated": created + (rng.random(n) * (updated - created)).astype(np.int64),
                "addresses": self._addresses(country),
            }
        )
        return frame.with_columns(**self._statistics()).with_columns(
            tags=pl.concat_list(tags).list.drop_nulls(),
            # A customer whose SMS consent was redacted had the e-mail consent redacted with it.
            email_state=pl.when(pl.col("sms") == "REDACTED").then(pl.lit("REDACTED")).otherwise(pl.col("email_state")),
        )

    def _statistics(self) -> dict[str, pl.Series]:
        """What the Admin API computes or links for each customer: predicted spend tier, product
        subscriptions, B2B companies, and the default address's geocoding offset."""
        rng, n = self.statistics_rng, self.size
        company = rng.integers(1, COMPANIES + 1, n)
        contacts = np.where(rng.random(n) < 0.03, np.where(rng.random(n) < 0.1, 2, 1), 0)
        offsets = np.concatenate([[0], np.cumsum(contacts)]).astype(np.int32)
        # a second company is the next one: a contact never lists the same company twice
        owned = np.repeat(company, contacts) + np.arange(offsets[-1]) - np.repeat(offsets[:-1], contacts)
        return {
            "spend_tier": _pick(rng, SPEND_TIERS, n, SPEND_TIER_WEIGHTS),
            "subscriber": _pick(rng, SUBSCRIBER_STATES, n, SUBSCRIBER_WEIGHTS),
            "companies": pl.Series(pa.ListArray.from_arrays(offsets, pa.array(owned, pa.int64()))),
            # Shopify leaves an address it could not geocode without coordinates.
            "geocoded": rng.random(n) >= 0.1,
            "lat_offset": pl.Series(rng.normal(0, 0.02, n)),
            "lng_offset": pl.Series(rng.normal(0, 0.02, n)),
        }

    def _addresses(self, country: np.ndarray) -> pl.Series:
        rng, n = self.rng, len(country)
        count = rng.choice(4, size=n, p=[0.08, 0.65, 0.20, 0.07])
        owner = np.repeat(np.arange(n), count)
        first = np.concatenate([[0], np.cumsum(count)])[:-1]
        where = country[owner].copy()
        # A second or third address is sometimes abroad (a holiday home, a gift to a friend).
        abroad = rng.random(len(owner)) < 0.15
        abroad[first[count > 0]] = False
        where[abroad] = rng.integers(0, len(COUNTRIES), abroad.sum())
        cities = [(k, *city) for k, c in enumerate(COUNTRIES) for city in c.cities]
        city_start = np.cumsum([0] + [len(c.cities) for c in COUNTRIES])[:-1]
        city_count = np.array([len(c.cities) for c in COUNTRIES])
        city = city_start[where] + (rng.random(len(where)) * city_count[where]).astype(np.int64)
        _, names, provinces, zips = zip(*cities, strict=True)
        codes = np.array([c.code for c in COUNTRIES])
        structs = pa.StructArray.from_arrays(
            [
                pa.array(codes[where]),
                pa.array(np.array(provinces, dtype=object)[city]),
                pa.array(np.array(names)[city]),
                pa.array(np.array(zips)[city]),
            ],
            names=["countryCodeV2", "provinceCode", "city", "zip"],
        )
        offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int32)
        return pl.Series("addresses", pa.ListArray.from_arrays(offsets, structs))

    def _write_customers(self, files: _Files, people: pl.DataFrame) -> None:
        rng, n = self.rng, self.size
        self.counts["customers"] += n
        # A few customers were extracted twice; the older copy still had an extra tag and, for the
        # ones who later unsubscribed or confirmed, the consent state before that change.
        long_lived = (people["updated"] - people["created"] > 2 * DAY).to_numpy()
        revised = np.flatnonzero((rng.random(n) < 0.03) & long_lived)
        stale = (
            people[revised]
            .with_columns(
                updated=pl.col("created") + (pl.col("updated") - pl.col("created")) // 2,
                tags=pl.col("tags").list.concat(pl.lit(["prospect"])),
                sms=pl.col("sms").replace({"UNSUBSCRIBED": "SUBSCRIBED", "SUBSCRIBED": "PENDING"}),
            )
            .with_columns(sms_updated=pl.min_horizontal("sms_updated", "updated"))
        )
        position = np.concatenate([np.arange(n) * 2, rng.integers(0, n, len(revised)) * 2 + 1])
        rows = pl.concat([people, stale]).with_columns(_position=pl.Series(position)).sort("_position")
        files.append("customers", rows.select(**_customer_fields()))
        self._write_customer_children(files, people)

    def _write_customer_children(self, files: _Files, people: pl.DataFrame) -> None:
        """Metafields (a birth date, loyalty points, a VIP flag), store credit accounts and addresses: lines
        after the chunk's customers, as a bulk query's nested connections come. Some birthdays are Feb 29."""
        rng, n = self.statistics_rng, self.size
        born = rng.integers(-7300, 13500, n)  # days since 1970: 1950 to 2006
        leap_days = np.array([(datetime.date(1952 + 4 * k, 2, 29) - EPOCH).days for k in range(14)])
        born = np.where(rng.random(n) < 0.01, leap_days[rng.integers(0, len(leap_days), n)], born)
        fields = (
            ("facts", "birth_date", "date", pl.Series(born).cast(pl.Date).dt.strftime("%Y-%m-%d"), 0.3),
            ("custom", "loyalty_points", "number_integer", pl.Series(rng.integers(0, 5000, n)).cast(pl.String), 0.2),
            ("custom", "vip", "boolean", pl.Series(rng.random(n) < 0.3).cast(pl.String).str.to_lowercase(), 0.1),
        )
        metafields = pl.concat(
            [
                pl.DataFrame({"number": people["number"], "value": values})
                .filter(pl.Series(rng.random(n) < share))
                .with_columns(namespace=pl.lit(namespace), key=pl.lit(key), type=pl.lit(type_))
                for namespace, key, type_, values, share in fields
            ]
        )
        first = METAFIELD_ID_BASE + self.counts["customer_metafields"]
        self.counts["customer_metafields"] += len(metafields)
        files.append(
            "customers",
            metafields.select(
                __typename=pl.lit("Metafield"),
                id=_gid("Metafield", first + pl.int_range(pl.len(), dtype=pl.Int64)),
                namespace="namespace",
                key="key",
                type="type",
                value="value",
                __parentId=_gid("Customer", pl.col("number")),
            ),
        )

        has_credit = rng.random(n) < 0.05
        k = int(has_credit.sum())
        accounts = pl.DataFrame(
            {
                "number": people["number"].filter(pl.Series(has_credit)),
                # a fifth have spent it all
                "cents": np.where(rng.random(k) < 0.2, 0, rng.integers(100, 20_000, k)),
                "currency": _pick(rng, ("EUR", "USD"), k, (0.9, 0.1)),
            }
        )
        first = STORE_CREDIT_ID_BASE + self.counts["store_credit_accounts"]
        self.counts["store_credit_accounts"] += k
        files.append(
            "customers",
            accounts.select(
                __typename=pl.lit("StoreCreditAccount"),
                id=_gid("StoreCreditAccount", first + pl.int_range(pl.len(), dtype=pl.Int64)),
                balance=pl.struct(amount=_money(pl.col("cents")), currencyCode=pl.col("currency")),
                __parentId=_gid("Customer", pl.col("number")),
            ),
        )
        self._write_addresses(files, people)

    def _write_addresses(self, files: _Files, people: pl.DataFrame) -> None:
        """Every address of each customer (Customer.addressesV2), the default one first, geocoded as
        defaultAddress is; another address near its own city's point, or, a tenth of them, not geocoded."""
        rng = self.statistics_rng
        rows = (
            people.select("number", "addresses", "geocoded", "lat_offset", "lng_offset")
            .with_columns(position=pl.int_ranges(pl.col("addresses").list.len()))
            .explode("addresses", "position")
            .filter(pl.col("addresses").is_not_null())
        )
        k, is_default = len(rows), pl.col("position") == 0
        rows = rows.with_columns(
            geocoded=pl.when(is_default).then(pl.col("geocoded")).otherwise(pl.Series(rng.random(k) >= 0.1)),
            lat_offset=pl.when(is_default).then(pl.col("lat_offset")).otherwise(pl.Series(rng.normal(0, 0.02, k))),
            lng_offset=pl.when(is_default).then(pl.col("lng_offset")).otherwise(pl.Series(rng.normal(0, 0.02, k))),
        )
        first = ADDRESS_ID_BASE + self.counts["customer_addresses"]
        self.counts["customer_addresses"] += k
        # Shopify's ids of a customer's addresses carry the model in a query string
        number = (first + pl.int_range(pl.len(), dtype=pl.Int64)).cast(pl.String)
        files.append(
            "customers",
            rows.select(
                __typename=pl.lit("MailingAddress"),
                id=pl.lit("gid://shopify/MailingAddress/") + number + pl.lit("?model_name=CustomerAddress"),
                address=_geocoded(pl.col("addresses")),
                __parentId=_gid("Customer", pl.col("number")),
            ).unnest("address"),
        )

    def _write_orders(self, files: _Files, people: pl.DataFrame) -> None:
        rng, catalog = self.rng, self.catalog
        created = people["created"].to_numpy()
        # Negative binomial with mean 4: a third never ordered, a few ordered twenty times or more.
        per_customer = rng.negative_binomial(0.5, 0.5 / 4.5, self.size)
        owner = np.repeat(np.arange(self.size), per_customer)
        guests = int(len(owner) * 0.05)
        customer_number = np.concatenate([people["number"].to_numpy()[owner], np.full(guests, -1)])
        since = np.concatenate([created[owner], np.full(guests, self.end - HISTORY_DAYS * DAY)])
        n = len(customer_number)
        moment = since + (rng.random(n) * (self.end - since)).astype(np.int64)
        processed = np.maximum(_times_of_day(rng, moment // DAY, self.end), since + 60)

        gift = rng.random(n) < GIFT_CARD_SHARE  # one gift card, alone in its order
        lines_per_order = np.where(gift, 1, 1 + rng.poisson(1.5, n))
        order_of_line = np.repeat(np.arange(n), lines_per_order)
        product = rng.choice(catalog.products, size=len(order_of_line), p=catalog.popularity)
        gift_line = gift[order_of_line]
        product[gift_line] = catalog.gift_card
        variant = (rng.random(len(product)) * catalog.variants[product]).astype(np.int64)
        quantity = np.where(gift_line, 1, rng.geometric(0.7, len(product)))
        line_total = catalog.price[product] * quantity
        subtotal = np.bincount(order_of_line, weights=line_total, minlength=n).astype(np.int64)
        discounted = (rng.random(n) < 0.1) & ~gift
        total = np.where(discounted, subtotal * 9 // 10, subtotal) + np.where(subtotal < 5000, 490, 0)

        status = _choose(rng, FINANCIAL_STATUSES, n, (0.88, 0.04, 0.03, 0.03, 0.02, 0))
        cancelled = rng.random(n) < 0.03
        status[cancelled] = rng.choice([REFUNDED, VOIDED], cancelled.sum())
        current = np.where(np.isin(status, (REFUNDED, VOIDED)), 0, total)
        partial = status == PARTIALLY_REFUNDED
        current[partial] = total[partial] - total[partial] * rng.integers(10, 60, partial.sum()) // 100
        cancelled_at = np.where(cancelled, processed + rng.integers(3600, 3 * DAY, n), -1)
        cancelled_at[cancelled_at + 60 >= self.end] = -1  # not cancelled yet by the end day
        refund_delay = np.where(partial | (status == REFUNDED), rng.integers(DAY, 30 * DAY, n), 0)
        # A change still to come after the end day has not happened: the last update is before it.
        updated = np.minimum(
            np.maximum(processed + rng.integers(60, 3 * DAY, n) + refund_delay, cancelled_at + 60), self.end - 1
        )

        number = self.counts["orders"] + np.arange(n)
        orders = pl.DataFrame(
            {
                "number": number,
                "customer": customer_number,
                "processed": processed,
                "created": processed + rng.integers(0, 5, n),
                "updated": updated,
                "cancelled_at": cancelled_at,
                "test": rng.random(n) < 0.02,
                "status": pl.Series(FINANCIAL_STATUSES).gather(status),
                "total": total,
                "current": current,
                "current_known": rng.random(n) >= 0.01,
            }
        )
        # Revised orders: the older copy was still paid (or pending) in full, before the cancellation
        # or refund that the later copy records.
        revised = np.flatnonzero(rng.random(n) < 0.02)
        stale = orders[revised].with_columns(
            updated=pl.col("processed") + (pl.col("updated") - pl.col("processed")) // 2,
            cancelled_at=pl.lit(-1, dtype=pl.Int64),
            current=pl.col("total"),
            status=pl.when(pl.col("status") == "PAID").then(pl.lit("PENDING")).otherwise(pl.lit("PAID")),
        )
        block = np.arange(n) // BLOCK_PARENTS
        parent_block = np.concatenate([block, rng.integers(0, block.max(initial=0) + 1, len(revised))])
        order = np.argsort(parent_block, kind="stable")
        parents = pl.concat([orders, stale])[order].select(**_order_fields())

        first_line = self.counts["line_items"]
        lines = pl.DataFrame(
            {
                "number": LINE_ITEM_ID_BASE + first_line + np.arange(len(product)),
                "product": product,
                "variant": variant,
                "quantity": quantity,
                "total": line_total,
                "sku": catalog.sku.gather(product) + "-" + pl.Series(SIZES).gather(variant),
                "title": catalog.title.gather(product),
                "order": ORDER_ID_BASE + number[order_of_line],
            }
        ).select(
            id=_gid("LineItem", pl.col("number")),
            product=pl.struct(id=_gid("Product", pl.col("product") + PRODUCT_ID_BASE)),
            variant=pl.struct(id=_gid("ProductVariant", VARIANT_ID_BASE + pl.col("product") * 10 + pl.col("variant"))),
            sku=pl.col("sku"),
            title=pl.col("title"),
            quantity=pl.col("quantity"),
            originalTotalSet=pl.struct(
                shopMoney=pl.struct(amount=_money(pl.col("total")), currencyCode=pl.lit(CURRENCY))
            ),
            __parentId=_gid("Order", pl.col("order")),
        )
        _write_blocks(
            files, "orders", parents, parent_block[order], lines, _child_slots(rng, block[order_of_line], 0.01)
        )
        self.counts["orders"] += n
        self.counts["line_items"] += len(product)

    def _write_checkouts(self, files: _Files, people: pl.DataFrame) -> None:
        rng = self.rng
        # About one customer in ten left a cart; some left two, and a few guests left one too.
        owners = np.flatnonzero(rng.random(self.size) < 0.10)
        owners = np.sort(np.concatenate([owners, owners[rng.random(len(owners)) < 0.15]]))
        guests = int(self.size * 0.01)
        customer = np.concatenate([people["number"].to_numpy()[owners], np.full(guests, -1)])
        since = np.concatenate([people["created"].to_numpy()[owners], np.full(guests, self.end - HISTORY_DAYS * DAY)])
        n = len(customer)
        created = since + (rng.random(n) * (self.end - since)).astype(np.int64)
        recent = rng.random(n) < 0.45  # abandoned-cart audiences look at the last few weeks
        created[recent] = np.maximum(self.end - rng.integers(60, 30 * DAY, recent.sum()), since[recent] + 60)
        completed = np.where(rng.random(n) < 0.2, created + rng.integers(3600, 5 * DAY, n), -1)
        completed[completed >= self.end] = -1  # still open on the end day
        number = CHECKOUT_ID_BASE + self.counts["abandoned_checkouts"] + np.arange(n)
        files.append(
            "abandoned_checkouts",
            pl.DataFrame(
                {
                    "number": number,
                    "customer": customer,
                    "created": created,
                    "completed": completed,
                    "updated": np.maximum(np.minimum(created + rng.integers(60, 3600, n), self.end - 1), completed),
                    "token": _random_tokens(rng, n, 32),
                    "total": rng.integers(19, 300, n) * 100 + 90,
                }
            ).select(
                id=_gid("AbandonedCheckout", pl.col("number")),
                createdAt=_ts(pl.col("created")),
                updatedAt=_ts(pl.col("updated")),
                completedAt=pl.when(pl.col("completed") >= 0).then(_ts(pl.col("completed"))),
                abandonedCheckoutUrl=pl.lit(f"{SHOP_URL}/checkouts/") + pl.col("token") + "/recover",
                customer=_customer_ref(),
                totalPriceSet=pl.struct(
                    shopMoney=pl.struct(amount=_money(pl.col("total")), currencyCode=pl.lit(CURRENCY))
                ),
            ),
        )
        self.counts["abandoned_checkouts"] += n

    def _write_sms_events(self, files: _Files, people: pl.DataFrame) -> None:
        rng = self.rng
        # The gateway only ever saw valid, subscribed numbers; shared numbers are one recipient.
        reachable = pl.col("has_phone") & (pl.col("sms") == "SUBSCRIBED") & (pl.col("phone_format") < 5)
        phones = people.filter(reachable).select(_e164()).unique(maintain_order=True).to_series().to_numpy()
        phones = phones[rng.random(len(phones)) < 0.3]
        parts = []
        for number, (_, sent_at, day) in enumerate(self.sends):
            # Each send draws from its own day, not from the chunk's sequence: a store generated a day
            # later holds the same events (which staging then keeps once) and only the newer ones more.
            send_rng = np.random.default_rng([*self.key, 3, day])
            reached = np.flatnonzero(send_rng.random(len(phones)) < CAMPAIGN_REACH)
            sent = sent_at + send_rng.integers(0, 3600, len(reached))
            delivered = send_rng.random(len(sent)) < 0.95
            clicked = delivered & (send_rng.random(len(sent)) < 0.15)
            converted = clicked & (send_rng.random(len(sent)) < 0.25)
            opted_out = delivered & (send_rng.random(len(sent)) < 0.02)
            steps = (
                (0, np.ones(len(sent), dtype=bool), 0, 1),
                (1, delivered, 1, 60),
                (2, clicked, 60, 7200),
                (3, converted, 7200, DAY),
                (4, opted_out, 60, 3600),
            )
            for kind, happened, low, high in steps:
                idx = np.flatnonzero(happened)
                parts.append(
                    (
                        reached[idx],
                        np.full(len(idx), kind),
                        np.full(len(idx), number),
                        sent[idx] + send_rng.integers(low, high, len(idx)),
                    )
                )
        phone_of, kind, send, moment = (np.concatenate(column) for column in zip(*parts, strict=True))
        before = moment < self.end  # a send's later steps, or the end day's send, may not have happened yet
        order = np.lexsort((send[before], phone_of[before], moment[before]))
        row = np.flatnonzero(before)[order]
        names = np.array([name for name, _, _ in self.sends])
        files.append(
            "sms_events",
            pl.DataFrame(
                {
                    "phone": phones[phone_of[row]],
                    "type": np.array(SMS_EVENT_KINDS)[kind[row]],
                    "campaign": names[send[row]],
                    "occurredAt": moment[row],
                },
                # numpy's arrays of Python strings: an empty one (a tiny shop that texted no one) has no type
                schema_overrides={"phone": pl.String, "type": pl.String, "campaign": pl.String},
            ).with_columns(occurredAt=_ts(pl.col("occurredAt"))),
        )
        self.counts["sms_events"] += len(row)

    def _write_redactions(self, files: _Files, people: pl.DataFrame) -> None:
        rng = self.rng
        # A few customers asked to be forgotten; some of them still carry their data in customers.jsonl.
        asked = (rng.random(self.size) < 0.003) | (
            (people["sms"] == "REDACTED").to_numpy() & (rng.random(self.size) < 0.3)
        )
        rows = people.filter(pl.Series(asked))
        requested = np.maximum(self.end - rng.integers(DAY, 300 * DAY, len(rows)), rows["created"].to_numpy() + DAY)
        files.append(
            "redactions",
            rows.select(
                customer=pl.struct(id=_gid("Customer", pl.col("number"))), requestedAt=_ts(pl.Series(requested))
            ),
        )
        self.counts["redactions"] += len(rows)

    def _write_email_events(self, files: _Files, people: pl.DataFrame) -> None:
        """Shopify Email campaigns to the email subscribers: delivered or bounced, then opened, clicked, marked
        as spam or unsubscribed; one line an event, in time order, none after the end day."""
        subscribed = (people["has_email"] & (people["email_state"] == "SUBSCRIBED")).to_numpy()
        numbers, created = people["number"].to_numpy()[subscribed], people["created"].to_numpy()[subscribed]
        parts = []
        for activity, went_out, day in self.email_sends:
            # each campaign draws from its own day, as the SMS sends do: a store generated later repeats it
            send_rng = np.random.default_rng([*self.key, 4, day])
            person = np.flatnonzero((send_rng.random(len(numbers)) < EMAIL_REACH) & (created < went_out))
            sent = went_out + send_rng.integers(0, 4 * 3600, len(person))
            bounced = send_rng.random(len(sent)) < EMAIL_BOUNCED
            delivered = ~bounced
            opened = delivered & (send_rng.random(len(sent)) < EMAIL_OPENED)
            clicked = opened & (send_rng.random(len(sent)) < EMAIL_CLICKED)
            spam = delivered & (send_rng.random(len(sent)) < EMAIL_SPAM)
            unsubscribed = delivered & (send_rng.random(len(sent)) < EMAIL_UNSUBSCRIBED)
            steps = (
                ("bounced", bounced, 1, 60),
                ("delivered", delivered, 1, 60),
                ("opened", opened, 60, 2 * DAY),
                ("clicked", clicked, 2 * DAY, 2 * DAY + 600),
                ("marked_as_spam", spam, 60, DAY),
                ("unsubscribed", unsubscribed, DAY, 2 * DAY),
            )
            for kind, happened, low, high in steps:
                idx = np.flatnonzero(happened)
                parts.append(
                    (
                        person[idx],
                        np.full(len(idx), kind),
                        np.full(len(idx), activity),
                        sent[idx] + send_rng.integers(low, high, len(idx)),
                    )
                )
        if not parts:
            return
        person, kind, activity, moment = (np.concatenate(column) for column in zip(*parts, strict=True))
        before = np.flatnonzero(moment < self.end)  # a campaign's later steps may not have happened yet
        order = before[np.lexsort((person[before], moment[before]))]
        files.append(
            "shopify_email_events",
            pl.DataFrame(
                {
                    "customer": numbers[person[order]],
                    "type": kind[order],
                    "activity": activity[order],
                    "occurredAt": moment[order],
                }
            ).select(
                customer=pl.struct(id=_gid("Customer", pl.col("customer"))),
                type=pl.col("type"),
                marketingActivity=pl.struct(id=_gid("MarketingActivity", pl.col("activity"))),
                occurredAt=_ts(pl.col("occurredAt")),
            ),
        )
        self.counts["shopify_email_events"] += len(order)

    def _write_storefront_events(self, files: _Files, people: pl.DataFrame) -> None:
        """Products (popular ones most) and collections viewed on each of the last 90 days, none after the end
        day; each day draws from its own generator, so a store generated a day later repeats the same views."""
        created = people["created"].to_numpy()
        end_day = self.end // DAY
        parts = []
        for day in range(end_day - STOREFRONT_DAYS + 1, end_day + 1):
            day_rng = np.random.default_rng([*self.key, 5, day])
            person = np.flatnonzero(day_rng.random(self.size) < STOREFRONT_DAILY_VIEWERS)
            person = np.repeat(person, day_rng.integers(1, 4, len(person)))
            moment = day * DAY + day_rng.integers(0, DAY, len(person))
            collection = day_rng.random(len(person)) < 0.25
            product = day_rng.choice(self.catalog.products, size=len(person), p=self.catalog.popularity)
            handle = day_rng.integers(0, len(COLLECTIONS), len(person))
            seen = (moment > created[person]) & (moment < self.end)
            parts.append((person[seen], moment[seen], collection[seen], product[seen], handle[seen]))
        person, moment, collection, product, handle = (np.concatenate(c) for c in zip(*parts, strict=True))
        order = np.lexsort((person, moment))
        files.append(
            "storefront_events",
            pl.DataFrame(
                {
                    "customer": people["number"].to_numpy()[person][order],
                    "collection": collection[order],
                    "product": product[order],
                    "handle": handle[order],
                    "occurredAt": moment[order],
                }
            ).select(
                customer=pl.struct(id=_gid("Customer", pl.col("customer"))),
                type=pl.when(pl.col("collection"))
                .then(pl.lit("collection_viewed"))
                .otherwise(pl.lit("product_viewed")),
                product=pl.when(~pl.col("collection")).then(
                    pl.struct(id=_gid("Product", pl.col("product") + PRODUCT_ID_BASE))
                ),
                collection=pl.when(pl.col("collection")).then(
                    pl.struct(id=_gid("Collection", pl.col("handle") + COLLECTION_ID_BASE))
                ),
                occurredAt=_ts(pl.col("occurredAt")),
            ),
        )
        self.counts["storefront_events"] += len(person)


def _campaign_sends(end_day: datetime.date) -> list[tuple[str, int, int]]:
    """(campaign, send time, day number) of every send in the year up to `end_day`, oldest first."""
    sends = []
    for back in range(364, -1, -1):
        day = end_day - datetime.timedelta(days=back)
        name = SEASONAL_CAMPAIGNS.get((day.month, day.day)) or (MONTHLY_CAMPAIGN if day.day == 1 else None)
        if name:
            at = datetime.datetime.combine(day, datetime.time(10), tzinfo=zoneinfo.ZoneInfo(TIMEZONE))
            sends.append((name, int(at.timestamp()), day.toordinal()))
    return sends


def _email_sends(end_day: datetime.date) -> list[tuple[int, int, int]]:
    """(activity id, send time, day number) of each Shopify Email campaign: its latest day up to `end_day`."""
    sends = []
    for activity, (month, day) in EMAIL_ACTIVITIES:
        sent = datetime.date(end_day.year, month, day)
        if sent > end_day:
            sent = sent.replace(year=end_day.year - 1)
        at = datetime.datetime.combine(sent, datetime.time(9), tzinfo=zoneinfo.ZoneInfo(TIMEZONE))
        sends.append((activity, int(at.timestamp()), sent.toordinal()))
    return sends


def _customer_ref() -> pl.Expr:
    """customer{id}, null for a guest (customer number -1)."""
    return pl.when(pl.col("customer") >= 0).then(pl.struct(id=_gid("Customer", pl.col("customer"))))


def _order_fields() -> dict[str, pl.Expr]:
    return {
        "id": _gid("Order", ORDER_ID_BASE + pl.col("number")),
        "name": pl.lit("#") + (ORDER_NUMBER_START + pl.col("number")).cast(pl.String),
        "customer": _customer_ref(),
        "createdAt": _ts(pl.col("created")),
        "processedAt": _ts(pl.col("processed")),
        "updatedAt": _ts(pl.col("updated")),
        "cancelledAt": pl.when(pl.col("cancelled_at") >= 0).then(_ts(pl.col("cancelled_at"))),
        "test": pl.col("test"),
        "displayFinancialStatus": pl.col("status"),
        "currencyCode": pl.lit(CURRENCY),
        "totalPriceSet": pl.struct(shopMoney=pl.struct(amount=_money(pl.col("total")), currencyCode=pl.lit(CURRENCY))),
        "currentTotalPriceSet": pl.when(pl.col("current_known")).then(
            pl.struct(shopMoney=pl.struct(amount=_money(pl.col("current")), currencyCode=pl.lit(CURRENCY)))
        ),
    }


def _by_country(make: Callable[[Country], pl.Expr]) -> pl.Expr:
    expr = pl.when(pl.col("country") == 0).then(make(COUNTRIES[0]))
    for k, c in enumerate(COUNTRIES[1:], start=1):
        expr = expr.when(pl.col("country") == k).then(make(c))
    return expr


def _grouped(digits: pl.Expr, groups: tuple[int, ...], separator: str) -> pl.Expr:
    starts = np.cumsum((0, *groups))
    return pl.concat_str(
        [digits.str.slice(int(s), g) for s, g in zip(starts, groups, strict=False)], separator=separator
    )


def _e164() -> pl.Expr:
    return (_by_country(lambda c: pl.lit("+" + c.calling_code)) + pl.col("nsn")).alias("phone")


def _phone_number() -> pl.Expr:
    """The phone as a customer typed it: national or international, spaced or not, sometimes broken."""
    national = _by_country(lambda c: pl.lit(c.trunk)) + pl.col("nsn")
    us_style = pl.concat_str(
        [
            pl.lit("("),
            pl.col("nsn").str.slice(0, 3),
            pl.lit(") "),
            pl.col("nsn").str.slice(3, 3),
            pl.lit("-"),
            pl.col("nsn").str.slice(6),
        ]
    )
    spaced = _by_country(
        lambda c: (
            us_style if c.calling_code == "1" else _grouped(pl.lit(c.trunk) + pl.col("nsn"), c.national_groups, " ")
        )
    )
    dashed = _by_country(lambda c: _grouped(pl.lit(c.trunk) + pl.col("nsn"), c.national_groups, "-"))
    international = _by_country(
        lambda c: pl.lit(f"+{c.calling_code} ") + _grouped(pl.col("nsn"), c.international_groups, " ")
    )
    # Too few digits for any plan: what a typo or a truncated form field leaves behind.
    broken = _by_country(lambda c: pl.lit(f"+{c.calling_code} ")) + pl.col("nsn").str.slice(0, 5)
    return (
        pl.when(pl.col("phone_format") == 0)
        .then(spaced)
        .when(pl.col("phone_format") == 1)
        .then(national)
        .when(pl.col("phone_format") == 2)
        .then(dashed)
        .when(pl.col("phone_format") == 3)
        .then(international)
        .when(pl.col("phone_format") == 4)
        .then(_e164())
        .otherwise(broken)
    )


def _email() -> pl.Expr:
    first, last, number = pl.col("first_slug"), pl.col("last_slug"), pl.col("number") % 10_000_000
    # The customer number keeps addresses unique, as Shopify requires, without looking generated.
    local = (
        pl.when(pl.col("email_style") == 0)
        .then(first + "." + last + number.cast(pl.String))
        .when(pl.col("email_style") == 1)
        .then(first + last + number.cast(pl.String))
        .when(pl.col("email_style") == 2)
        .then(first.str.slice(0, 1) + last + number.cast(pl.String))
        .otherwise(first.str.to_titlecase() + "." + last.str.to_titlecase() + number.cast(pl.String))
    )
    return local + "@" + pl.col("domain")


def _customer_fields() -> dict[str, pl.Expr]:
    subscribed_once = pl.col("sms") != "NOT_SUBSCRIBED"
    return {
        "id": _gid("Customer", pl.col("number")),
        "firstName": pl.when(pl.col("has_name")).then(pl.col("first")),
        "lastName": pl.when(pl.col("has_name")).then(pl.col("last")),
        "createdAt": _ts(pl.col("created")),
        "updatedAt": _ts(pl.col("updated")),
        "state": pl.col("state"),
        "locale": pl.col("locale"),
        "tags": pl.col("tags"),
        "defaultEmailAddress": pl.when(pl.col("has_email")).then(
            pl.struct(emailAddress=_email(), marketingState=pl.col("email_state"))
        ),
        "defaultPhoneNumber": pl.when(pl.col("has_phone")).then(
            pl.struct(
                phoneNumber=_phone_number(),
                marketingState=pl.col("sms"),
                marketingOptInLevel=pl.when(subscribed_once).then(pl.col("opt_in_level")),
                marketingUpdatedAt=pl.when(subscribed_once).then(_ts(pl.col("sms_updated"))),
            )
        ),
        "defaultAddress": _geocoded(pl.col("addresses").list.first()),
        "statistics": pl.struct(predictedSpendTier=pl.col("spend_tier")),
        "productSubscriberStatus": pl.col("subscriber"),
        "companyContactProfiles": pl.col("companies").list.eval(
            pl.struct(company=pl.struct(id=pl.lit("gid://shopify/Company/") + pl.element().cast(pl.String)))
        ),
    }


def _geocoded(address: pl.Expr) -> pl.Expr:
    """The address with its city's coordinates, a little apart for each customer; null ones (both keys
    there, as in a bulk query's answer) when Shopify could not geocode it."""
    city = address.struct.field("city")
    latitude = city.replace_strict(
        {c: xy[0] for c, xy in CITY_COORDINATES.items()}, default=None, return_dtype=pl.Float64
    ) + pl.col("lat_offset")
    longitude = city.replace_strict(
        {c: xy[1] for c, xy in CITY_COORDINATES.items()}, default=None, return_dtype=pl.Float64
    ) + pl.col("lng_offset")
    return address.struct.with_fields(
        latitude=pl.when(pl.col("geocoded")).then(latitude.round(6)),
        longitude=pl.when(pl.col("geocoded")).then(longitude.round(6)),
    )


def demo_store(data_dir: Path, end_day: datetime.date | None = None) -> Path:
    """The built-in demo store whose history ends on `end_day` (default today in the demo shop's time
    zone), generated once that day and reused; the folders of earlier days are removed, so a demo left
    running for weeks keeps one store and no segment empties because its data stopped on the first day.
    """
    end_day = end_day or today()
    prefix = f"demo-{DEMO_CUSTOMERS}-{DEMO_SEED}"
    target = data_dir / "source" / f"{prefix}-{end_day.isoformat()}"
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate_store(tmp, customers=DEMO_CUSTOMERS, seed=DEMO_SEED, end_day=end_day)
        tmp.rename(target)
    for old in target.parent.glob(f"{prefix}*"):  # the folder without a day is an older release's
        if old != target:
            shutil.rmtree(old)
    return target
