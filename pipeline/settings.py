"""Run settings: flags, then environment variables, then defaults; every bad value named.

Tokens are not settings: the Shopify and gateway clients read them from the environment
themselves, so they never pass through run config, logs or the Dagster UI.
"""

import datetime as dt
import os
import re
import tempfile
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

PROJECT_DIR = Path(__file__).resolve().parents[1]
# DuckDB's memory bound in every step that reads or builds the data: beyond it, joins and sorts
# spill to disk rather than grow. 1GB keeps a shop of a million customers under 2 GB in all.
DEFAULT_MEMORY_LIMIT = "1GB"
# The most phone numbers one gateway request carries: the gateway API's own limit, unless a gateway says otherwise.
DEFAULT_BATCH_SIZE = 500
SOURCES = ("demo", "jsonl:DIR", "shopify")
GATEWAYS = ("file", "http", "klaviyo", "shopify-tags")


class SettingsError(ValueError):
    """A setting with a value we cannot use; the message names the flag or variable."""


@dataclass(frozen=True)
class Settings:
    source: str = "demo"
    data_dir: Path = PROJECT_DIR / "data"
    segments_dir: Path = PROJECT_DIR / "segment_defs"
    gateway: str = "file"
    as_of: dt.date | None = None  # None: today in the shop's time zone, decided when the run starts
    first_day: dt.date | None = None  # the first day the partitions offer; None: the shop's first order
    dry_run: bool = False
    swing_threshold: float = 0.5
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    batch_size: int = DEFAULT_BATCH_SIZE

    @classmethod
    def resolve(
        cls,
        *,
        source: str | None = None,
        data_dir: str | None = None,
        segments_dir: str | None = None,
        gateway: str | None = None,
        as_of: str | None = None,
        dry_run: bool = False,
        env: dict[str, str] | None = None,
    ) -> "Settings":
        """Settings from flags (the keyword arguments), then the environment, then the defaults."""
        env = os.environ if env is None else env
        source = source or env.get("SMSSEG_SOURCE") or cls.source
        gateway = gateway or env.get("SMSSEG_GATEWAY") or cls.gateway
        if not (source in ("demo", "shopify") or (source.startswith("jsonl:") and len(source) > 6)):
            raise SettingsError(
                f"source {source!r} (--source or SMSSEG_SOURCE): expected one of "
                f"{', '.join(SOURCES)}, e.g. jsonl:/path/to/store"
            )
        if source.startswith("jsonl:") and not Path(source[6:]).is_dir():
            raise SettingsError(
                f"source {source!r}: {source[6:]} is not a directory. "
                "Point jsonl: at a store directory holding customers.jsonl, orders.jsonl, ..."
            )
        if source == "shopify":
            for variable in ("SHOPIFY_STORE", "SHOPIFY_ACCESS_TOKEN"):
                if not env.get(variable):
                    raise SettingsError(
                        f"source shopify needs {variable} in the environment "
                        "(the shop, e.g. my-shop.myshopify.com, and its Admin API access token)"
                    )
        if gateway not in GATEWAYS:
            raise SettingsError(
                f"gateway {gateway!r} (--gateway or SMSSEG_GATEWAY): expected one of {', '.join(GATEWAYS)}"
            )
        if gateway == "http":
            for variable in ("SMS_GATEWAY_URL", "SMS_GATEWAY_TOKEN"):
                if not env.get(variable):
                    raise SettingsError(
                        f"gateway http needs {variable} in the environment "
                        "(the gateway's base URL and its bearer token)"
                    )
        if gateway == "klaviyo" and not env.get("KLAVIYO_API_KEY"):
            raise SettingsError(
                "gateway klaviyo needs KLAVIYO_API_KEY in the environment (a private API key "
                "with the scopes lists:read, lists:write, profiles:read and profiles:write)"
            )
        if gateway == "klaviyo":
            usable_limits_dir(limits_dir_from(data_dir_from(data_dir, env), env))
        if gateway == "shopify-tags":
            missing = [v for v in ("SHOPIFY_STORE", "SHOPIFY_ACCESS_TOKEN") if not env.get(v)]
            if missing:
                raise SettingsError(
                    f"gateway shopify-tags needs {' and '.join(missing)} in the environment (the shop, "
                    "e.g. my-shop.myshopify.com, and an Admin API token with the write_customers "
                    "scope)"
                )
        threshold = env.get("SMSSEG_SWING_THRESHOLD") or str(cls.swing_threshold)
        try:
            swing_threshold = float(threshold)
        except ValueError:
            swing_threshold = -1.0
        if not swing_threshold > 0:
            raise SettingsError(
                f"SMSSEG_SWING_THRESHOLD {threshold!r}: expected a share above 0, "
                "e.g. 0.5 to hold exports whose segment grows or shrinks by more than half"
            )
        return cls(
            source=source,
            data_dir=data_dir_from(data_dir, env),
            segments_dir=segments_dir_from(segments_dir, env),
            gateway=gateway,
            as_of=parse_as_of(as_of or env.get("SMSSEG_AS_OF")),
            first_day=parse_day(env.get("SMSSEG_FIRST_DAY"), "SMSSEG_FIRST_DAY"),
            dry_run=dry_run,
            swing_threshold=swing_threshold,
            memory_limit=memory_limit_from(env),
            batch_size=batch_size_from(env),
        )


def data_dir_from(flag: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """--data-dir, SMSSEG_DATA_DIR, or data/: for every command, including those that need no other setting."""
    return Path(flag or env.get("SMSSEG_DATA_DIR") or Settings.data_dir).resolve()


def limits_dir_from(data_dir: Path, env: Mapping[str, str] = os.environ) -> Path:
    """SMSSEG_LIMITS_DIR, or <data-dir>/limits: where the processes using one destination account share its rate limits.

    Several shops on one account (each with its own data dir) share its limits only when they are
    given the same directory: a fleet passes its top data dir's.
    """
    return Path(env.get("SMSSEG_LIMITS_DIR") or data_dir / "limits").resolve()


def usable_limits_dir(path: Path) -> Path:
    """`path`, made if missing, once a file can be written in it; else SettingsError naming SMSSEG_LIMITS_DIR."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise SettingsError(
            f"SMSSEG_LIMITS_DIR {str(path)!r}: cannot write there ({e.strerror}). Point it at a directory "
            "this user can write, the same one for every process (and machine) using the same Klaviyo "
            "account; by default it is <data-dir>/limits."
        ) from None
    return path


def segments_dir_from(flag: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """--segments-dir, SMSSEG_SEGMENTS_DIR, or segment_defs/."""
    return Path(flag or env.get("SMSSEG_SEGMENTS_DIR") or Settings.segments_dir).resolve()


def memory_limit_from(env: Mapping[str, str]) -> str:
    """SMSSEG_MEMORY_LIMIT, or the default: a bound DuckDB understands (1GB, 2.5GiB, 60%), or SettingsError."""
    value = env.get("SMSSEG_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    with duckdb.connect() as con:
        try:
            con.execute("set memory_limit = ?", [value])
        except duckdb.Error as e:
            raise SettingsError(
                f"SMSSEG_MEMORY_LIMIT {value!r}: {e}. Give DuckDB's memory bound as an amount "
                "with its unit, e.g. 1GB (the default) or 4GB for a shop of several million "
                "customers."
            ) from None
    return value


def batch_size_from(env: Mapping[str, str]) -> int:
    """SMSSEG_BATCH_SIZE, or the default: how many numbers a gateway request carries at most."""
    value = env.get("SMSSEG_BATCH_SIZE") or str(DEFAULT_BATCH_SIZE)
    if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) < 1:
        raise SettingsError(
            f"SMSSEG_BATCH_SIZE {value!r}: expected a whole number of phone numbers, at least 1 "
            f"(default {DEFAULT_BATCH_SIZE}). Lower it when the gateway refuses batches as too "
            "large."
        )
    return int(value)


def parse_as_of(value: str | None) -> dt.date | None:
    return parse_day(value, "as-of", " (--as-of or SMSSEG_AS_OF)")


def parse_day(value: str | None, name: str, where: str = "") -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"{name} {value!r}{where}: expected a date such as 2026-10-31") from None


def today_in(timezone: str) -> dt.date:
    """The evaluation date when none is given: today where the shop is."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()
