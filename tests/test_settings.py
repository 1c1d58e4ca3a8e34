"""Settings with more to them than a name: the memory bound (down to every connection that builds), the limits dir."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import DEFAULT_BATCH_SIZE, DEFAULT_MEMORY_LIMIT, Settings, SettingsError, limits_dir_from
from pipeline.store.ingest import ingest_file
from pipeline.warehouse.build import open_build


def test_the_memory_bound_comes_from_the_environment_or_the_default() -> None:
    assert Settings.resolve(env={}).memory_limit == DEFAULT_MEMORY_LIMIT == "1GB"
    assert Settings.resolve(env={"SMSSEG_MEMORY_LIMIT": "2.5GiB"}).memory_limit == "2.5GiB"
    for bad in ("lots", "3000000", "GB"):
        with pytest.raises(SettingsError, match=f"SMSSEG_MEMORY_LIMIT '{bad}': .*e.g. 1GB"):
            Settings.resolve(env={"SMSSEG_MEMORY_LIMIT": bad})


def test_the_batch_size_comes_from_the_environment_or_the_default() -> None:
    assert Settings.resolve(env={}).batch_size == DEFAULT_BATCH_SIZE == 500
    assert Settings.resolve(env={"SMSSEG_BATCH_SIZE": "100"}).batch_size == 100
    for bad in ("0", "-5", "2.5", "1e3", "many", "\u00b2"):
        with pytest.raises(SettingsError, match=f"SMSSEG_BATCH_SIZE '{bad}': expected a whole number .* at least 1"):
            Settings.resolve(env={"SMSSEG_BATCH_SIZE": bad})


def test_the_limits_dir_comes_from_the_environment_or_the_data_dir_and_must_be_writable(tmp_path: Path) -> None:
    env = {"KLAVIYO_API_KEY": "k", "SMSSEG_DATA_DIR": str(tmp_path / "shop")}
    Settings.resolve(gateway="klaviyo", env=env)
    assert (tmp_path / "shop" / "limits").is_dir(), "made and checked when the settings are read"
    fleet = {"SMSSEG_LIMITS_DIR": str(tmp_path / "fleet")}
    assert limits_dir_from(tmp_path / "shop", fleet) == tmp_path / "fleet"

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    broken = {**env, "SMSSEG_LIMITS_DIR": str(blocker / "limits")}
    with pytest.raises(SettingsError, match=r"SMSSEG_LIMITS_DIR '.*a-file/limits': cannot write there \(Not a dir"):
        Settings.resolve(gateway="klaviyo", env=broken)
    assert Settings.resolve(gateway="file", env=broken).gateway == "file", "only Klaviyo's limits are kept there"


def test_the_build_warehouse_runs_within_the_bound(tmp_path: Path) -> None:
    with open_build(tmp_path, dt.date(2026, 10, 31), "300MB") as con:
        assert con.execute("select current_setting('memory_limit')").fetchall() == [("286.1 MiB",)]
    with open_build(tmp_path, dt.date(2026, 10, 31)) as con:
        assert con.execute("select current_setting('memory_limit')").fetchall() == [("953.6 MiB",)]


def test_extraction_runs_within_the_bound(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "sms_events.jsonl").write_text('{"phone": "+393331234567", "type": "sent"}\n' * 1000)
    with pytest.raises(duckdb.OutOfMemoryException):
        ingest_file(tmp_path / "store", "sms_events.jsonl", tmp_path / "raw", "1MB")
    assert not any((tmp_path / "raw").rglob("*.parquet"))
    assert ingest_file(tmp_path / "store", "sms_events.jsonl", tmp_path / "raw").rows == {"sms_events": 1000}
