"""The `smsseg` command's own flags."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import duckdb

from pipeline.settings import PROJECT_DIR


def test_version_names_the_engines_an_analyst_must_match() -> None:
    shown = subprocess.run([sys.executable, "-m", "pipeline.cli", "--version"], cwd=PROJECT_DIR,
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert shown == f"smsseg {version('smsseg')} (duckdb {version('duckdb')}, dagster {version('dagster')})"


def smsseg(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=PROJECT_DIR, input=stdin,
                          capture_output=True, text=True, timeout=60)


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
