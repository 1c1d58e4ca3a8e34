"""`smsseg segments check|sql|preview` through their argparse subparsers."""

import argparse
import shutil
from pathlib import Path

import pytest

from pipeline.segments import docs_table
from pipeline.segments.catalogue import ATTRIBUTES, FUNCTIONS
from pipeline.segments.commands import register
from tests.segments.conftest import Built


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="smsseg")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_check_shipped_definitions(capsys: pytest.CaptureFixture) -> None:
    assert run("segments", "check") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) >= 14 and all(line.startswith("ok ") for line in out)
    assert any(line.startswith("ok abandoned_checkout_1d (exported)") for line in out)


def test_check_reports_every_error_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nquery: amount_spend > 1\n")
    (tmp_path / "b.yaml").write_text("name: b\nquery: amount_spent > 1\nsms: {exprt: true}\n")
    (tmp_path / "c.yaml").write_text("name: c\nquery: amount_spent > 1\n")
    monkeypatch.setenv("SMSSEG_SEGMENTS_DIR", str(tmp_path))
    assert run("segments", "check") == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/a.yaml:2:8: unknown attribute 'amount_spend'" in out
    assert f"{tmp_path}/b.yaml:3:7: unknown key 'exprt' in the sms" in out
    assert f"ok c: {tmp_path}/c.yaml" in out and out.rstrip().endswith("2 error(s)")


def test_sql_of_a_definition_and_of_a_query(capsys: pytest.CaptureFixture) -> None:
    assert run("segments", "sql", "winback_90d", "--as-of", "2026-05-31") == 0
    out = capsys.readouterr().out
    assert out.startswith('CREATE OR REPLACE VIEW "segments"."winback_90d" AS') and "CAST('2026-03-02' AS DATE)" in out
    assert run("segments", "sql", "--query", "customer_tags CONTAINS 'x'", "--dialect", "spark") == 0
    assert "TRANSFORM(`customers`.`customer_tags`, `item` -> LOWER(`item`))" in capsys.readouterr().out
    assert run("segments", "sql", "--query", "amount_spnt > 1") == 1
    assert "did you mean amount_spent?" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        run("segments", "sql", "--query", "amount_spent > 1", "--dialect", "postgress")
    assert exit_.value.code == 2
    assert "Unknown dialect 'postgress'. Did you mean postgres?" in capsys.readouterr().err
    assert run("segments", "sql", "nope") == 1
    assert "no segment named 'nope'" in capsys.readouterr().out


def test_preview_counts_and_samples(varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    assert run("segments", "preview", "--query", "amount_spent = 59.90", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"1 customer(s) match as of {varied.as_of}"
    assert out[2].startswith("30 | ")
    assert run("segments", "preview", "--query", "amount_spent > 0", "--limit", "2", "--data-dir", str(tmp_path)) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert run("segments", "preview", "--query", "x", "--data-dir", str(tmp_path / "none")) == 1


def test_docs_table_lists_the_catalogue() -> None:
    table = docs_table()
    assert all(f"| `{name}` |" in table for name in ATTRIBUTES)
    assert all(f"| `{f}` | `{p}` |" in table for f in FUNCTIONS for p in FUNCTIONS[f].params)
    assert "| `sms_subscription_status` | enum: SUBSCRIBED, NOT_SUBSCRIBED" in table


def test_preview_a_definition_by_name(varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "fifty.yaml").write_text("name: fifty\nquery: amount_spent = 59.90\n")
    (defs / "broken.yaml").write_text("name: broken\nquery: amount_spnt = 1\n")
    assert run("segments", "preview", "fifty", "--segments-dir", str(defs), "--data-dir", str(tmp_path)) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"1 customer(s) match as of {varied.as_of}"
    assert run("segments", "preview", "broken", "--segments-dir", str(defs), "--data-dir", str(tmp_path)) == 1
    assert f"{defs}/broken.yaml:2:8: unknown attribute 'amount_spnt'" in capsys.readouterr().out
    assert run("segments", "preview", "fifti", "--segments-dir", str(defs), "--data-dir", str(tmp_path)) == 1
    assert "no segment named 'fifti'; known: broken, fifty" in capsys.readouterr().out


def test_preview_of_a_segment_the_warehouse_lacks_is_an_error_not_a_traceback(
    varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    query = "amount_spent > 0 AND segments CONTAINS 'does_not_exist'"
    assert run("segments", "preview", "--query", query, "--data-dir", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert out.startswith("<query>:1:40: no segment named 'does_not_exist' in the warehouse\n")
    assert "hint: the warehouse has no segments yet" in out and "Traceback" not in out


def test_preview_refuses_a_day_the_warehouse_does_not_hold(
    varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    assert (
        run(
            "segments",
            "preview",
            "--query",
            "customer_added_date > today",
            "--as-of",
            "2025-01-01",
            "--data-dir",
            str(tmp_path),
        )
        == 1
    )
    out = capsys.readouterr().out
    assert out.startswith(f"--as-of 2025-01-01: the warehouse holds the data as of {varied.as_of}")
    assert "smsseg run --as-of 2025-01-01" in out
    assert (
        run(
            "segments",
            "preview",
            "--query",
            "amount_spent = 59.90",
            "--as-of",
            varied.as_of.isoformat(),
            "--data-dir",
            str(tmp_path),
        )
        == 0
    )


def test_check_takes_segments_dir_like_the_other_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nquery: amount_spend > 1\n")
    assert run("segments", "check", "--segments-dir", str(tmp_path)) == 1
    assert f"{tmp_path}/a.yaml:2:8: unknown attribute 'amount_spend'" in capsys.readouterr().out
    assert run("segments", "check", str(tmp_path), "--segments-dir", "segment_defs") == 2
    assert "two definitions directories given" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "first_line"),
    [
        ("segments CONTAINS 'does_not_exist'", "<query>:1:19: no segment named 'does_not_exist' in the warehouse"),
        (
            "created_by_app_id = 580111",
            "<query>:1:1: created_by_app_id is a Shopify filter smsseg cannot "
            "evaluate yet: it needs the app that created each customer",
        ),
        ("FROM customers WHERE amount_spent > 1 LIMIT 5", "<query>:1:39: LIMIT does not apply to a segment"),
    ],
)
def test_preview_of_a_query_it_cannot_run_is_an_error_not_a_traceback(
    varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture, query: str, first_line: str
) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    assert run("segments", "preview", "--query", query, "--data-dir", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert out.startswith(first_line) and "Traceback" not in out


def test_preview_of_a_pasted_editor_query(varied: Built, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    query = "FROM customers SHOW customer_name WHERE amount_spent = 59.90 ORDER BY updated_at"
    assert run("segments", "preview", "--query", query, "--data-dir", str(tmp_path)) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"1 customer(s) match as of {varied.as_of}"
