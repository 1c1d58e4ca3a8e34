"""Generate a realistic, deterministic demo store directory in the Shopify bulk-output JSONL shape.

Columns are drawn with numpy a chunk of customers at a time and written with polars' NDJSON writer,
so a million customers take seconds and memory stays flat. The data deliberately contains the traps a
real extraction has (children before parents, revised rows, bad phones) so the ingest is exercised.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

DEMO_CUSTOMERS = 2000
DEFAULT_AS_OF = datetime.date(2026, 11, 1)  # fixed, not today, so the demo reproduces byte for byte

CHUNK_CUSTOMERS = 200_000
HISTORY_DAYS = 3 * 365
LATE_DAYS = 5  # extraction happens after as_of: a few rows fall after it so as-of filtering is exercised
BLOCK_PARENTS = 2000  # parents written per block; their children follow the block, not each parent
SHOP_URL = "https://demo-store.myshopify.com"
CURRENCY = "EUR"

# Id bases make GIDs look like Shopify's 13-digit ids while staying unique across resources.
CUSTOMER_ID_BASE = 6_100_000_000_000
ORDER_ID_BASE = 5_200_000_000_000
LINE_ITEM_ID_BASE = 13_400_000_000_000
PRODUCT_ID_BASE = 8_300_000_000_000
VARIANT_ID_BASE = 45_000_000_000_000
COLLECTION_ID_BASE = 450_000_000_000
CHECKOUT_ID_BASE = 31_000_000_000_000
ORDER_NUMBER_START = 1001

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


# Mobile prefixes were checked with `phonenumbers`: every number drawn from them is valid for its region.
COUNTRIES: tuple[Country, ...] = (
    Country("IT", 0.40, "39", ("320", "327", "328", "329", "330", "333", "335", "338", "339", "340", "345",
                               "347", "348", "349", "366", "380", "389", "392", "393"),
            10, "", (3, 3, 4), (3, 7), ("it", "it", "it", "en"), "it",
            (("Milano", "MI", "20121"), ("Roma", "RM", "00184"), ("Napoli", "NA", "80133"),
             ("Torino", "TO", "10121"), ("Firenze", "FI", "50122"), ("Bologna", "BO", "40121"),
             ("Reggio Emilia", "RE", "42121"), ("San Lazzaro di Savena", "BO", "40068"),
             ("Bari", "BA", "70121"), ("Verona", "VR", "37121")),
            ("gmail.com", "libero.it", "hotmail.it", "yahoo.it", "outlook.it", "virgilio.it")),
    Country("US", 0.15, "1", ("212", "415", "310", "312", "617", "646", "718", "202", "305", "512", "206"),
            10, "", (3, 3, 4), (3, 3, 4), ("en-US", "en", "en-US", "es"), "en",
            (("New York City", "NY", "10001"), ("San Francisco", "CA", "94103"), ("Los Angeles", "CA", "90012"),
             ("Chicago", "IL", "60601"), ("Austin", "TX", "78701"), ("Boston", "MA", "02108"),
             ("Miami", "FL", "33101"), ("Seattle", "WA", "98101")),
            ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com")),
    Country("GB", 0.10, "44", ("7400", "7411", "7711", "7799", "7800", "7833", "7900", "7956", "7971"),
            10, "0", (5, 6), (4, 6), ("en-GB", "en"), "en",
            (("London", None, "SW1A 1AA"), ("Manchester", None, "M1 1AE"), ("Edinburgh", None, "EH1 1YZ"),
             ("Bristol", None, "BS1 4DJ"), ("Milton Keynes", None, "MK9 2FP")),
            ("gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com")),
    Country("DE", 0.10, "49", ("151", "152", "157", "159", "160", "162", "170", "171", "172", "175", "176",
                               "177", "178", "179"),
            11, "0", (4, 8), (3, 8), ("de", "de", "en"), "de",
            (("Berlin", None, "10115"), ("München", None, "80331"), ("Hamburg", None, "20095"),
             ("Frankfurt am Main", None, "60311"), ("Köln", None, "50667")),
            ("gmail.com", "gmx.de", "web.de", "t-online.de")),
    Country("FR", 0.08, "33", ("60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77"),
            9, "0", (2, 2, 2, 2, 2), (1, 2, 2, 2, 2), ("fr", "fr", "en"), "fr",
            (("Paris", None, "75001"), ("Lyon", None, "69001"), ("Marseille", None, "13001"),
             ("Aix-en-Provence", None, "13100"), ("Saint-Étienne", None, "42000")),
            ("gmail.com", "orange.fr", "free.fr", "laposte.net")),
    Country("ES", 0.07, "34", ("6", "71", "72", "73"),
            9, "", (3, 3, 3), (3, 2, 2, 2), ("es", "es", "ca", "en"), "es",
            (("Madrid", "M", "28013"), ("Barcelona", "B", "08001"), ("Valencia", "V", "46001"),
             ("Sevilla", "SE", "41001"), ("Palma de Mallorca", "PM", "07001")),
            ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net")),
    Country("CA", 0.05, "1", ("416", "604", "514", "403", "613", "647", "778"),
            10, "", (3, 3, 4), (3, 3, 4), ("en-CA", "fr-CA", "en"), "en",
            (("Toronto", "ON", "M5V 2T6"), ("Vancouver", "BC", "V6B 1A1"), ("Montréal", "QC", "H2Y 1C6"),
             ("Calgary", "AB", "T2P 1J9"), ("Ottawa", "ON", "K1P 1J1")),
            ("gmail.com", "yahoo.ca", "outlook.com", "rogers.com")),
    Country("AU", 0.05, "61", ("40", "41", "48", "49"),
            9, "0", (4, 3, 3), (3, 3, 3), ("en-AU", "en"), "en",
            (("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000"),
             ("Perth", "WA", "6000"), ("Gold Coast", "QLD", "4217")),
            ("gmail.com", "bigpond.com", "outlook.com", "optusnet.com.au")),
)

# (display name, ascii slug for the e-mail address)
FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (("Marco", "marco"), ("Giulia", "giulia"), ("Luca", "luca"), ("Francesca", "francesca"),
           ("Alessandro", "alessandro"), ("Chiara", "chiara"), ("Niccolò", "niccolo"), ("Sara", "sara"),
           ("Matteo", "matteo"), ("Martina", "martina"), ("Lorenzo", "lorenzo"), ("Elena", "elena")),
    "en": (("James", "james"), ("Emily", "emily"), ("Michael", "michael"), ("Olivia", "olivia"),
           ("David", "david"), ("Sophie", "sophie"), ("Daniel", "daniel"), ("Chloe", "chloe"),
           ("Jack", "jack"), ("Grace", "grace"), ("Liam", "liam"), ("Zoë", "zoe")),
    "de": (("Lukas", "lukas"), ("Anna", "anna"), ("Jonas", "jonas"), ("Lena", "lena"), ("Felix", "felix"),
           ("Jürgen", "juergen"), ("Hannah", "hannah"), ("Maximilian", "maximilian")),
    "fr": (("Louis", "louis"), ("Camille", "camille"), ("Hugo", "hugo"), ("Léa", "lea"),
           ("François", "francois"), ("Manon", "manon"), ("Jules", "jules"), ("Chloé", "chloe")),
    "es": (("Pablo", "pablo"), ("Lucía", "lucia"), ("Javier", "javier"), ("María", "maria"),
           ("José", "jose"), ("Carmen", "carmen"), ("Sergio", "sergio"), ("Paula", "paula")),
}
LAST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (("Rossi", "rossi"), ("Russo", "russo"), ("Ferrari", "ferrari"), ("Esposito", "esposito"),
           ("Bianchi", "bianchi"), ("Romano", "romano"), ("Colombo", "colombo"), ("De Luca", "deluca"),
           ("Ricci", "ricci"), ("Marino", "marino"), ("D'Angelo", "dangelo"), ("Conti", "conti")),
    "en": (("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
           ("Taylor", "taylor"), ("O'Brien", "obrien"), ("Wilson", "wilson"), ("Clarke", "clarke"),
           ("Martin", "martin"), ("Lee", "lee"), ("Walker", "walker"), ("Nguyen", "nguyen")),
    "de": (("Müller", "mueller"), ("Schmidt", "schmidt"), ("Schneider", "schneider"), ("Fischer", "fischer"),
           ("Weber", "weber"), ("Meyer", "meyer"), ("Wagner", "wagner"), ("Becker", "becker")),
    "fr": (("Martin", "martin"), ("Bernard", "bernard"), ("Dubois", "dubois"), ("Lefèvre", "lefevre"),
           ("Moreau", "moreau"), ("Laurent", "laurent"), ("Girard", "girard"), ("Roux", "roux")),
    "es": (("García", "garcia"), ("Fernández", "fernandez"), ("López", "lopez"), ("Martínez", "martinez"),
           ("Sánchez", "sanchez"), ("Pérez", "perez"), ("Gómez", "gomez"), ("Ruiz", "ruiz")),
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

SMS_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "REDACTED")
SMS_STATE_WEIGHTS = (0.55, 0.24, 0.12, 0.06, 0.03)
EMAIL_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "INVALID", "REDACTED")
EMAIL_STATE_WEIGHTS = (0.45, 0.34, 0.12, 0.03, 0.03, 0.03)
OPT_IN_LEVELS = ("SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN")
ACCOUNT_STATES = ("DISABLED", "ENABLED", "INVITED", "DECLINED")
ACCOUNT_STATE_WEIGHTS = (0.55, 0.38, 0.05, 0.02)

# UTC hour-of-day weights: a European shop, busy in the evening; 22-23 UTC is already tomorrow in Rome.
HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.3, 0.4, 0.8, 1.5, 3, 4, 5, 5, 5, 5, 5, 5, 5, 6, 7, 8, 8, 7, 5, 3, 2],
                        dtype=float)

PRODUCT_KINDS = (  # noun, productType, SKU stem, price range in cents
    ("Tee", "T-Shirts", "TEE", (1990, 3990)), ("Linen Shirt", "Shirts", "SHR", (4990, 8990)),
    ("Hoodie", "Sweatshirts", "HOD", (4990, 7990)), ("Sneakers", "Shoes", "SNK", (7990, 14990)),
    ("Tote Bag", "Bags", "TOT", (1490, 3490)), ("Cap", "Accessories", "CAP", (1490, 2990)),
    ("Scarf", "Accessories", "SCF", (1990, 4990)), ("Wool Sweater", "Knitwear", "SWT", (6990, 12990)),
    ("Chinos", "Trousers", "CHN", (4990, 8990)), ("Sunglasses", "Accessories", "SUN", (3990, 11990)),
    ("Dress", "Dresses", "DRS", (5990, 12990)), ("Rain Jacket", "Outerwear", "JKT", (8990, 19990)),
)
PRODUCT_ADJECTIVES = ("Classic", "Organic", "Vintage", "Everyday", "Riviera", "Alpine", "Urban", "Coastal",
                      "Heritage", "Essential", "Soft", "Bold", "Nomad", "Studio", "Sunset", "Milano")
PRODUCT_COLOURS = ("Black", "White", "Navy", "Sand", "Olive", "Terracotta", "Grey", "Sky")
VENDORS = ("Demo Store", "Atelier Roma", "Nordic Thread", "Costa Goods")
PRODUCT_TAGS = ("new", "sale", "organic-cotton", "Made in Italy", "gift", "limited", "unisex", "bestseller")
SIZES = ("S", "M", "L", "XL")
COLLECTIONS = (  # handle, title
    ("summer", "Summer"), ("winter-sale", "Winter Sale"), ("bestsellers", "Bestsellers"),
    ("new-arrivals", "New Arrivals"), ("accessories", "Accessories"), ("gifts-under-50", "Gifts under 50"),
    ("black-friday", "Black Friday"), ("outlet", "Outlet"), ("essentials", "Essentials"),
    ("made-in-italy", "Made in Italy"), ("back-to-school", "Back to School"), ("holiday", "Holiday"),
)

# Campaign name and how many days before as_of it went out (negative: after as_of).
CAMPAIGNS = (("black-friday", 338), ("winter-sale", 290), ("spring-sale", 215), ("summer-sale", 125),
             ("back-in-stock", 40), ("vip-preview", 6), ("flash-sale", -2))


def generate_store(out_dir: Path, customers: int, seed: int = 0, *,
                   as_of: datetime.date | None = None) -> dict[str, int]:
    """Write a demo store directory of `customers` customers with history up to `as_of`.

    The same (customers, seed, as_of) always gives byte-identical files. Returns how many distinct
    entities of each kind were written (revised duplicates count once), i.e. what a correct ingest keeps.
    """
    if customers < 0:
        raise ValueError(f"customers must be 0 or more, got {customers}")
    as_of = as_of or DEFAULT_AS_OF
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    end = int(datetime.datetime.combine(as_of + datetime.timedelta(days=1), datetime.time(),
                                        tzinfo=datetime.UTC).timestamp())
    catalog = _Catalog.build(np.random.default_rng([seed, 0]), customers, end)

    (out_dir / "shop.jsonl").write_text('{"name":"Demo Store","ianaTimezone":"Europe/Rome","currencyCode":"EUR"}\n')
    counts = {"customers": 0, "orders": 0, "line_items": 0, "products": catalog.products,
              "collections": len(COLLECTIONS), "abandoned_checkouts": 0, "sms_events": 0, "redactions": 0}
    files = ("customers", "orders", "products", "abandoned_checkouts", "sms_events", "redactions")
    handles = {name: open(out_dir / f"{name}.jsonl", "wb") for name in files}  # noqa: SIM115
    try:
        catalog.write(handles["products"], np.random.default_rng([seed, 1]))
        for chunk_no, start in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
            # One generator per chunk: the output depends only on the arguments, not on memory or timing.
            rng = np.random.default_rng([seed, 2, chunk_no])
            chunk = _Chunk(rng, start, min(CHUNK_CUSTOMERS, customers - start), end, catalog, counts)
            chunk.write(handles)
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def _gid(kind: str, number: pl.Expr) -> pl.Expr:
    return pl.lit(f"gid://shopify/{kind}/") + number.cast(pl.String)


def _ts(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds).dt.strftime(TS_FORMAT)


def _money(cents: pl.Expr) -> pl.Expr:
    return (cents // 100).cast(pl.String) + "." + (cents % 100).cast(pl.String).str.zfill(2)


def _pick(rng: np.random.Generator, options: tuple, size: int, weights: tuple | None = None) -> np.ndarray:
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return np.asarray(options)[rng.choice(len(options), size=size, p=p)]


def _times_of_day(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    hours = rng.choice(24, size=len(days), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return days * DAY + hours * 3600 + rng.integers(0, 3600, len(days))


def _write_blocks(handle: BinaryIO, parents: pl.DataFrame, parent_block: np.ndarray,
                  children: pl.DataFrame, child_slot: np.ndarray) -> None:
    """Write parent block b, then the children in slot b + 1; slot 0 comes before every parent.

    A child in a slot at or before its parent's block lands before its parent, as the spec allows.
    """
    parent_parts = parents.with_columns(_slot=pl.Series(parent_block)).partition_by(
        "_slot", maintain_order=True, include_key=False, as_dict=True)
    child_parts = children.with_columns(_slot=pl.Series(child_slot)).sort("_slot", maintain_order=True) \
        .partition_by("_slot", maintain_order=True, include_key=False, as_dict=True)
    blocks = int(parent_block.max(initial=-1)) + 1
    for slot in range(blocks + 1):
        if slot > 0 and (slot - 1,) in parent_parts:
            parent_parts[(slot - 1,)].write_ndjson(handle)
        if (slot,) in child_parts:
            child_parts[(slot,)].write_ndjson(handle)


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
    sku: np.ndarray
    title: np.ndarray
    popularity: np.ndarray  # probability of each product on a line item

    @classmethod
    def build(cls, rng: np.random.Generator, customers: int, end: int) -> "_Catalog":
        # A shop's catalogue grows far slower than its customer base.
        n = 200 + int(60 * np.log2(max(customers, 2000) / 2000))
        kind = rng.integers(0, len(PRODUCT_KINDS), n)
        adjective = _pick(rng, PRODUCT_ADJECTIVES, n)
        colour = _pick(rng, PRODUCT_COLOURS, n)
        noun = np.array([k[0] for k in PRODUCT_KINDS])[kind]
        title = np.char.add(np.char.add(np.char.add(adjective, " "), noun), np.char.add(" - ", colour))
        low = np.array([k[3][0] for k in PRODUCT_KINDS])[kind]
        high = np.array([k[3][1] for k in PRODUCT_KINDS])[kind]
        price = (rng.integers(low // 100, high // 100 + 1) * 100 + 90).astype(np.int64)
        sku = np.char.add(np.char.add(np.array([k[2] for k in PRODUCT_KINDS])[kind], "-"),
                          np.char.zfill(np.arange(n).astype(str), 4))
        popularity = 1.0 / np.arange(1, n + 1) ** 0.9
        popularity = rng.permutation(popularity / popularity.sum())
        tag_mask = rng.random((n, len(PRODUCT_TAGS))) < 0.18
        tags = pa.ListArray.from_arrays(
            np.concatenate([[0], np.cumsum(tag_mask.sum(axis=1))]).astype(np.int32),
            pa.array(np.broadcast_to(np.array(PRODUCT_TAGS), tag_mask.shape)[tag_mask]))
        updated = end - rng.integers(DAY, HISTORY_DAYS * DAY, n)
        number = np.arange(n)
        frame = pl.DataFrame({"n": number, "title": title, "kind": kind, "updated": updated,
                              "tags": pl.from_arrow(tags), "vendor": _pick(rng, VENDORS, n)}).select(
            id=_gid("Product", pl.col("n") + PRODUCT_ID_BASE),
            title=pl.col("title"),
            # The product number keeps handles unique even when two products share a title.
            handle=pl.col("title").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-") + "-"
            + pl.col("n").cast(pl.String),
            productType=pl.col("kind").replace_strict(range(len(PRODUCT_KINDS)), [k[1] for k in PRODUCT_KINDS]),
            vendor=pl.col("vendor"),
            tags=pl.col("tags"),
            updatedAt=_ts(pl.col("updated")),
        )
        in_collection = np.zeros((n, len(COLLECTIONS)), dtype=bool)
        per_product = rng.integers(1, 4, n)
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
        return cls(n, frame, product_collections, rng.integers(1, len(SIZES) + 1, n), price, sku, title,
                   popularity)

    def write(self, handle: BinaryIO, rng: np.random.Generator) -> None:
        n = self.products
        # A few products were extracted twice: an older version with other tags, placed anywhere.
        revised = np.flatnonzero(rng.random(n) < 0.03)
        stale = self.frame[revised].with_columns(
            tags=pl.lit(["sale"], dtype=pl.List(pl.String)),
            updatedAt=_ts(pl.col("updatedAt").str.to_datetime(TS_FORMAT).dt.epoch("s") - 30 * DAY))
        frame = pl.concat([self.frame, stale])
        block = np.concatenate([np.arange(n) // 50, rng.integers(0, (n - 1) // 50 + 1, len(revised))])
        order = np.argsort(block, kind="stable")
        parent_block = block[order]
        children = self.product_collections.drop("_product")
        product_block = np.arange(n) // 50
        child_slot = _child_slots(rng, product_block[self.product_collections["_product"].to_numpy()], 0.05)
        _write_blocks(handle, frame[order], parent_block, children, child_slot)


class _Chunk:
    """One slice of customers with their orders, checkouts, SMS events and redactions."""

    def __init__(self, rng: np.random.Generator, start: int, size: int, end: int, catalog: _Catalog,
                 counts: dict[str, int]) -> None:
        self.rng, self.start, self.size, self.end, self.catalog, self.counts = rng, start, size, end, catalog, counts

    def write(self, handles: dict[str, BinaryIO]) -> None:
        people = self._people()
        self._write_customers(handles["customers"], people)
        self._write_orders(handles["orders"], people)
        self._write_checkouts(handles["abandoned_checkouts"], people)
        self._write_sms_events(handles["sms_events"], people)
        self._write_redactions(handles["redactions"], people)

    def _people(self) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.size
        weights = np.array([c.weight for c in COUNTRIES])
        country = rng.choice(len(COUNTRIES), size=n, p=weights / weights.sum())
        prefix_len = np.array([len(c.mobile_prefixes[0]) for c in COUNTRIES])
        nsn = np.empty(n, dtype="U11")
        for k, c in enumerate(COUNTRIES):
            rows = np.flatnonzero(country == k)
            prefixes = _pick(rng, c.mobile_prefixes, len(rows))
            rest_len = c.nsn_length - np.char.str_len(prefixes)
            if c.calling_code == "1":  # NANP subscriber numbers cannot start with 0 or 1
                rest = rng.integers(2_000_000, 10_000_000, len(rows)).astype(str)
            else:
                rest = np.char.zfill((rng.random(len(rows)) * 10.0 ** rest_len).astype(np.int64).astype(str),
                                     rest_len.max(initial=prefix_len[k]))
                rest = np.array([r[-w:] for r, w in zip(rest, rest_len, strict=True)]) if len(set(rest_len)) > 1 \
                    else rest
            nsn[rows] = np.char.add(prefixes, rest)
        # Some people share a phone (a couple, a shop's landline): same number, maybe written differently.
        shared = np.flatnonzero(rng.random(n) < 0.02)
        source = rng.integers(0, n, len(shared))
        country[shared], nsn[shared] = country[source], nsn[source]
        created = self.end - DAY - (np.sqrt(rng.random(n)) * HISTORY_DAYS * DAY).astype(np.int64)[::-1] \
            if n else np.zeros(0, dtype=np.int64)
        created = rng.permutation(created) if n else created
        return {"country": country, "nsn": nsn, "created": created,
                "sms": _pick(rng, SMS_STATES, n, SMS_STATE_WEIGHTS),
                "has_phone": rng.random(n) >= 0.12,
                "phone_format": rng.choice(6, size=n, p=[0.30, 0.08, 0.08, 0.25, 0.23, 0.06])}
