"""The shops file and the many-shops settings: each mistake named by file, shop and field, with what to do."""

from pathlib import Path

import pytest

from pipeline.fleet.shops import Shop, ShopsFileError, load_shops
from pipeline.settings import Settings, SettingsError


def shops(tmp_path: Path, text: str) -> list[Shop]:
    path = tmp_path / "shops.yaml"
    path.write_text(text)
    return load_shops(path)


def test_a_shop_s_folder_source_and_definitions_are_its_own(tmp_path: Path) -> None:
    (tmp_path / "stores" / "rome").mkdir(parents=True)
    (rome, big) = shops(
        tmp_path,
        "shops:\n"
        "  - name: rome-store\n    source: jsonl:stores/rome\n    segments_dir: defs/rome\n"
        "  - name: big-shop\n    source: shopify\n    gateway: klaviyo\n"
        "    env: {SHOPIFY_STORE: BIG_STORE, SHOPIFY_ACCESS_TOKEN: BIG_TOKEN, KLAVIYO_API_KEY: BIG_KLAVIYO}\n",
    )
    assert rome.source == f"jsonl:{tmp_path / 'stores' / 'rome'}"  # relative to the file, as its reader reads it
    assert rome.segments_dir == tmp_path / "defs" / "rome"
    fleet = Settings(data_dir=tmp_path / "data", segments_dir=tmp_path / "segment_defs")
    settings = rome.settings(fleet, env={"SMSSEG_SHOPS": "elsewhere/shops.yaml"})  # a shop is one shop
    assert settings.shops_file is None
    assert settings.data_dir == tmp_path / "data" / "shops" / "rome-store"
    assert settings.segments_dir == tmp_path / "defs" / "rome"

    env = {"BIG_STORE": "big.myshopify.com", "BIG_TOKEN": "t", "BIG_KLAVIYO": "pk_x", "KLAVIYO_API_KEY": "other"}
    settings = big.settings(fleet, env=env)
    assert settings.segments_dir == tmp_path / "segment_defs"  # the fleet's, when the shop names none
    # every shop on one Klaviyo account paces itself in the fleet's one limits directory, not its own
    assert settings.limits_dir == tmp_path / "data" / "limits" == rome.settings(fleet, env={}).limits_dir
    assert settings.variable("KLAVIYO_API_KEY") == "BIG_KLAVIYO" and settings.variable("SMS_GATEWAY_URL") == (
        "SMS_GATEWAY_URL"
    )
    with pytest.raises(SettingsError, match="shop big-shop: gateway klaviyo needs BIG_KLAVIYO in the environment"):
        big.settings(fleet, env={k: v for k, v in env.items() if k != "BIG_KLAVIYO"})
    with pytest.raises(SettingsError, match="shop big-shop: source shopify needs BIG_TOKEN"):
        big.settings(fleet, env={k: v for k, v in env.items() if k != "BIG_TOKEN"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shops: [", r"shops.yaml: not valid YAML"),
        ("name: rome\n", r"shops.yaml: expected a mapping with a non-empty list `shops:`"),
        ("shops: []\n", r"shops.yaml: expected a mapping with a non-empty list `shops:`"),
        ("shops:\n  - rome\n", r"shops.yaml: shop 1: expected a mapping with name and source, found str"),
        ("shops:\n  - {name: Rome Store, source: demo}\n", r"shop 1: name 'Rome Store': expected lowercase letters"),
        ("shops:\n  - {name: rome-, source: demo}\n", r"shop 1: name 'rome-'"),
        ("shops:\n  - {source: demo}\n", r"shop 1: name None"),
        ("shops:\n  - {name: rome, sorce: demo}\n", r"shop 1: unknown field 'sorce'; a shop has name, source"),
        ("shops:\n  - {name: rome}\n", r"shop rome: source: expected demo, jsonl:DIR or shopify"),
        (
            "shops:\n  - {name: rome, source: demo}\n  - {name: rome, source: demo}\n",
            r"shop 2: name 'rome' is used twice",
        ),
        ("shops:\n  - {name: rome, source: demo, gateway: 3}\n", r"shop rome: gateway: expected file, http"),
        ("shops:\n  - {name: rome, source: demo, env: KEY}\n", r"shop rome: env: expected a mapping"),
        (
            "shops:\n  - {name: rome, source: demo, env: {KLAVIYO_API_KEY: pk_live_0123}}\n",
            r"shop rome: env: KLAVIYO_API_KEY: expected the NAME of an environment variable.*never holds a secret",
        ),
        (
            "shops:\n  - {name: rome, source: demo, env: {DATABASE_URL: ROME_DB}}\n",
            r"shop rome: env: 'DATABASE_URL' is not a shop's variable",
        ),
    ],
)
def test_a_broken_shops_file_is_named_with_the_shop_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ShopsFileError, match=message):
        shops(tmp_path, text)


def test_a_shop_whose_store_folder_is_missing_fails_naming_the_shop(tmp_path: Path) -> None:
    (rome,) = shops(tmp_path, "shops:\n  - {name: rome, source: jsonl:stores/rome}\n")
    with pytest.raises(SettingsError, match=r"shop rome: source 'jsonl:.*stores/rome'.* is not a directory"):
        rome.settings(Settings(data_dir=tmp_path / "data"), env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMSSEG_SHOPS": "nowhere.yaml"}, r"shops file 'nowhere.yaml' \(--shops or SMSSEG_SHOPS\): no such file"),
        ({"SMSSEG_DASK_SCHEDULER": "127.0.0.1:8786"}, r"SMSSEG_DASK_SCHEDULER '127.0.0.1:8786': expected a Dask"),
        ({"SMSSEG_WORKERS": "0"}, r"SMSSEG_WORKERS '0': expected a whole number of worker processes, at least 1"),
        ({"SMSSEG_WORKERS": "two"}, r"SMSSEG_WORKERS 'two'"),
    ],
)
def test_a_broken_many_shops_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.resolve(env=env)


def test_many_shops_settings_resolve() -> None:
    settings = Settings.resolve(env={"SMSSEG_DASK_SCHEDULER": "tcp://10.0.0.5:8786", "SMSSEG_WORKERS": "8"})
    assert (settings.dask_scheduler, settings.workers, settings.shops_file) == ("tcp://10.0.0.5:8786", 8, None)


@pytest.mark.parametrize("flag", [["--source", "demo"], ["--ack-swing", "winback_90d"]])
def test_one_shop_flags_are_refused_beside_a_shops_file(tmp_path: Path, flag: list[str], capsys) -> None:
    from pipeline.cli import main

    shops_file = tmp_path / "shops.yaml"
    shops_file.write_text("shops:\n  - {name: rome, source: demo}\n")
    assert main(["run", "--shops", str(shops_file), "--data-dir", str(tmp_path / "data"), *flag]) == 2
    assert f"{flag[0]} is one shop's" in capsys.readouterr().out
    assert not (tmp_path / "data").exists()  # refused before anything ran


def test_a_shop_s_day_that_has_not_begun_is_refused_naming_the_shop(tmp_path: Path) -> None:
    import datetime as dt

    from pipeline.fleet.definitions import run_shop_night

    (tmp_path / "stores" / "rome").mkdir(parents=True)
    (rome,) = shops(tmp_path, "shops:\n  - {name: rome, source: jsonl:stores/rome}\n")
    with pytest.raises(SettingsError, match=r"shop rome: --as-of 2999-01-01: that day has not begun"):
        run_shop_night(rome, Settings(data_dir=tmp_path / "data"), {}, dt.date(2999, 1, 1))
    assert not (tmp_path / "data" / "shops" / "rome" / "dagster").exists()  # refused before any run
