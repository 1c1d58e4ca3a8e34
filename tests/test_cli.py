"""The `smsseg` command's own flags."""

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import duckdb

from pipeline.settings import PROJECT_DIR


def test_version_names_the_engines_an_analyst_must_match() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--version"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert shown == f"smsseg {version('smsseg')} (duckdb {version('duckdb')}, dagster {version('dagster')})"


def smsseg(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=PROJECT_DIR,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shell_runs_sql_on_the_live_warehouse_read_only(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema marts; create table marts.customers as select range as customer_id from range(3)")
    given = smsseg("shell", "--data-dir", str(tmp_path), "select count(*) as customers from marts.customers")
    assert given.returncode == 0 and "customers" in given.stdout and "│         3 │" in given.stdout
    piped = smsseg("shell", "--data-dir", str(tmp_path), stdin="select 41 + 1 as answer;\n")
    assert piped.returncode == 0 and "│     42 │" in piped.stdout
    write = smsseg("shell", "--data-dir", str(tmp_path), "drop table marts.customers")
    assert write.returncode == 1 and "read-only mode" in write.stdout
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.customers").fetchall() == [(3,)]
    missing = smsseg("shell", "--data-dir", str(tmp_path / "none"), "select 1")
    assert missing.returncode == 1 and "no warehouse yet. Run `smsseg run` first." in missing.stdout


def test_demo_generate_ends_the_store_on_the_day_given(tmp_path: Path) -> None:
    written = smsseg("demo", "generate", "--customers", "50", "--out", str(tmp_path), "--end-day", "2026-10-31")
    assert written.returncode == 0, written.stderr
    lines = [json.loads(line) for line in (tmp_path / "customers.jsonl").read_text().splitlines()]
    updated = [line["updatedAt"] for line in lines if "__parentId" not in line]  # not a metafield's line
    assert "2026-10-01" < max(updated) < "2026-10-31T23:00:00Z"  # the 31st ends at 23:00 UTC in Rome
    wrong = smsseg("demo", "generate", "--customers", "5", "--out", str(tmp_path / "x"), "--end-day", "31/10/2026")
    assert wrong.returncode == 2 and "--end-day: '31/10/2026': expected a date such as 2026-10-31" in wrong.stderr
    assert not (tmp_path / "x").exists()
