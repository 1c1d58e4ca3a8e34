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
from dataclasses import dataclass, field
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
    shops_file: Path | None = None  # many shops: the shops file (docs/deploy.md); None: the one shop above
    dask_scheduler: str | None = None  # many shops: an existing Dask scheduler; None: a local cluster
    limits_dir: Path | None = None  # where processes on one destination account share its rate limits
    workers: int = 2  # many shops: the local cluster's worker processes, so the shops run at once at most
    # where a shop of many keeps its secrets: SHOPIFY_STORE -> ROME_SHOPIFY_STORE (names, never values)
    variables: Mapping[str, str] = field(default_factory=dict)

    def variable(self, name: str) -> str:
        """The environment variable that holds `name` for this shop: its own name unless the shops file says."""
        return self.variables.get(name, name)

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
        shops: str | None = None,
        variables: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> "Settings":
        """Settings from flags (the keyword arguments), then the environment, then the defaults."""
        env = os.environ if env is None else env
        variables = dict(variables or {})

        def variable(name: str) -> str:
            return variables.get(name, name)

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
            for name in ("SHOPIFY_STORE", "SHOPIFY_ACCESS_TOKEN"):
                if not env.get(variable(name)):
                    raise SettingsError(
                        f"source shopify needs {variable(name)} in the environment "
                        "(the shop, e.g. my-shop.myshopify.com, and its Admin API access token)"
                    )
        if gateway not in GATEWAYS:
            raise SettingsError(
                f"gateway {gateway!r} (--gateway or SMSSEG_GATEWAY): expected one of {', '.join(GATEWAYS)}"
            )
        if gateway == "http":
            for name in ("SMS_GATEWAY_URL", "SMS_GATEWAY_TOKEN"):
                if not env.get(variable(name)):
                    raise SettingsError(
                        f"gateway http needs {variable(name)} in the environment "
                        "(the gateway's base URL and its bearer token)"
                    )
        if gateway == "klaviyo" and not env.get(variable("KLAVIYO_API_KEY")):
            raise SettingsError(
                f"gateway klaviyo needs {variable('KLAVIYO_API_KEY')} in the environment (a private API key "
                "with the scopes lists:read, lists:write, profiles:read and profiles:write)"
            )
        limits_dir = limits_dir_from(data_dir_from(data_dir, env), env)
        if gateway == "klaviyo":
            usable_limits_dir(limits_dir)
        if gateway == "shopify-tags":
            missing = [variable(v) for v in ("SHOPIFY_STORE", "SHOPIFY_ACCESS_TOKEN") if not env.get(variable(v))]
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
            shops_file=shops_file_from(shops, env),
            dask_scheduler=dask_scheduler_from(env),
            workers=workers_from(env),
            limits_dir=limits_dir,
            variables=variables,
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


def shops_file_from(flag: str | None, env: Mapping[str, str]) -> Path | None:
    """--shops or SMSSEG_SHOPS: the shops file of a many-shops run, or None for the one shop."""
    value = flag or env.get("SMSSEG_SHOPS")
    if not value:
        return None
    path = Path(value).resolve()
    if not path.is_file():
        raise SettingsError(f"shops file {value!r} (--shops or SMSSEG_SHOPS): no such file. See docs/deploy.md")
    return path


def dask_scheduler_from(env: Mapping[str, str]) -> str | None:
    """SMSSEG_DASK_SCHEDULER: the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786."""
    value = env.get("SMSSEG_DASK_SCHEDULER")
    if not value:
        return None
    if not re.fullmatch(r"(tcp|tls|inproc|ws|wss|ucx)://[^\s/]+(:[0-9]+)?/?", value):
        raise SettingsError(
            f"SMSSEG_DASK_SCHEDULER {value!r}: expected a Dask scheduler address such as tcp://127.0.0.1:8786 "
            "(what `dask scheduler` prints); unset it to run the shops on a local cluster"
        )
    return value


def workers_from(env: Mapping[str, str]) -> int:
    """SMSSEG_WORKERS: how many shops a local cluster runs at once (its worker processes)."""
    value = env.get("SMSSEG_WORKERS") or str(Settings.workers)
    if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) < 1:
        raise SettingsError(
            f"SMSSEG_WORKERS {value!r}: expected a whole number of worker processes, at least 1 "
            f"(default {Settings.workers}); each runs one shop's night at a time"
        )
    return int(value)


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


def refuse_future(day: dt.date, today: dt.date, flag: str) -> None:
    """SettingsError, naming `flag`, for a day that has not begun where the shop is (`today` there)."""
    if day > today:
        raise SettingsError(
            f"{flag} {day}: that day has not begun in the shop's time zone (today is {today}); "
            "a day is evaluated from the day itself on"
        )


def today_in(timezone: str) -> dt.date:
    """The evaluation date when none is given: today where the shop is."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()
