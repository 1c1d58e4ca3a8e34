"""The `smsseg` command's own flags."""

import subprocess
import sys
from importlib.metadata import version

from pipeline.settings import PROJECT_DIR


def test_version_names_the_engines_an_analyst_must_match() -> None:
    shown = subprocess.run([sys.executable, "-m", "pipeline.cli", "--version"], cwd=PROJECT_DIR,
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert shown == f"smsseg {version('smsseg')} (duckdb {version('duckdb')}, dagster {version('dagster')})"
