"""The shops file: every shop one smsseg runs for, each a one-shop smsseg of its own under <data-dir>/shops/<name>/.

    shops:
      - name: rome-store              # [a-z0-9-], unique: its folder and its Dagster partition
        source: jsonl:stores/rome     # demo | jsonl:DIR (relative to this file) | shopify
        segments_dir: segments/rome   # optional; default the one segments directory
        gateway: klaviyo              # optional; default SMSSEG_GATEWAY
        env:                          # optional: which variables hold this shop's secrets (names only)
          KLAVIYO_API_KEY: ROME_KLAVIYO_API_KEY

A shop's settings are resolved as one shop's are (`Settings.resolve`), so a shop is checked, and fails,
exactly as `smsseg run` on its own would.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.settings import Settings, SettingsError

SHOP_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
FIELDS = ("name", "source", "segments_dir", "gateway", "env")
# the variables a shop may point elsewhere: its secrets and the addresses that go with them
VARIABLES = (
    "SHOPIFY_STORE",
    "SHOPIFY_ACCESS_TOKEN",
    "SHOPIFY_API_VERSION",
    "SMS_GATEWAY_URL",
    "SMS_GATEWAY_TOKEN",
    "KLAVIYO_API_KEY",
    "KLAVIYO_API_URL",
    "KLAVIYO_REVISION",
)


@dataclass(frozen=True)
class Shop:
    name: str
    source: str
    segments_dir: Path | None = None
    gateway: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)  # SHOPIFY_STORE -> ROME_SHOPIFY_STORE

    def data_dir(self, top: Path) -> Path:
        return top / "shops" / self.name

    def settings(self, fleet: Settings, env: Mapping[str, str]) -> Settings:
        """This shop's one-shop settings: its folder, source and definitions, the fleet's other settings."""
        # shops on one destination account share its rate limits: every shop is given the fleet's directory;
        # and a shop is one shop, whatever SMSSEG_SHOPS says
        env = {k: v for k, v in env.items() if k != "SMSSEG_SHOPS"}
        env["SMSSEG_LIMITS_DIR"] = env.get("SMSSEG_LIMITS_DIR") or str(fleet.data_dir / "limits")
        try:
            return Settings.resolve(
                source=self.source,
                data_dir=str(self.data_dir(fleet.data_dir)),
                segments_dir=str(self.segments_dir or fleet.segments_dir),
                gateway=self.gateway or fleet.gateway,
                as_of=fleet.as_of.isoformat() if fleet.as_of else None,
                dry_run=fleet.dry_run,
                variables=self.variables,
                env=env,
            )
        except SettingsError as e:
            raise SettingsError(f"shop {self.name}: {e}") from None


class ShopsFileError(SettingsError):
    """A shops file we cannot use; the message names the file, the shop and the field."""


def load_shops(path: Path) -> list[Shop]:
    """The shops of `path`, in its order; ShopsFileError naming the file, shop and field of any mistake."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ShopsFileError(f"{path}: no such shops file (--shops or SMSSEG_SHOPS)") from None
    except yaml.YAMLError as e:
        raise ShopsFileError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(document, dict) or not isinstance(document.get("shops"), list) or not document["shops"]:
        raise ShopsFileError(f"{path}: expected a mapping with a non-empty list `shops:` (see docs/deploy.md)")
    shops, seen = [], set()
    for n, entry in enumerate(document["shops"], start=1):
        shop = _shop(path, n, entry)
        if shop.name in seen:
            raise ShopsFileError(f"{path}: shop {n}: name {shop.name!r} is used twice; each shop needs its own")
        seen.add(shop.name)
        shops.append(shop)
    return shops


def _shop(path: Path, n: int, entry: object) -> Shop:
    where = f"{path}: shop {n}"
    if not isinstance(entry, dict):
        raise ShopsFileError(f"{where}: expected a mapping with name and source, found {type(entry).__name__}")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ShopsFileError(f"{where}: unknown field {unknown[0]!r}; a shop has {', '.join(FIELDS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not SHOP_NAME.fullmatch(name):
        raise ShopsFileError(
            f"{where}: name {name!r}: expected lowercase letters, digits and dashes, e.g. rome-store "
            "(it names the shop's folder and its Dagster partition)"
        )
    where = f"{path}: shop {name}"
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise ShopsFileError(f"{where}: source: expected demo, jsonl:DIR or shopify")
    if source.startswith("jsonl:"):  # a store directory relative to the shops file, as a user reads it
        source = "jsonl:" + str((path.parent / source.removeprefix("jsonl:")).resolve())
    segments_dir = entry.get("segments_dir")
    if segments_dir is not None and not isinstance(segments_dir, str):
        raise ShopsFileError(f"{where}: segments_dir: expected a directory path")
    gateway = entry.get("gateway")
    if gateway is not None and not isinstance(gateway, str):
        raise ShopsFileError(f"{where}: gateway: expected file, http, klaviyo or shopify-tags")
    variables = entry.get("env") or {}
    if not isinstance(variables, dict):
        raise ShopsFileError(f"{where}: env: expected a mapping such as KLAVIYO_API_KEY: ROME_KLAVIYO_API_KEY")
    for variable, name_of_it in variables.items():
        if variable not in VARIABLES:
            raise ShopsFileError(f"{where}: env: {variable!r} is not a shop's variable; one of {', '.join(VARIABLES)}")
        if not isinstance(name_of_it, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name_of_it):
            raise ShopsFileError(
                f"{where}: env: {variable}: expected the NAME of an environment variable, e.g. "
                f"ROME_{variable}; the file never holds a secret itself"
            )
    return Shop(
        name=name,
        source=source,
        segments_dir=(path.parent / segments_dir).resolve() if segments_dir else None,
        gateway=gateway,
        variables=dict(variables),
    )
