"""Phone normalisation: the same E.164 as phonenumbers' own formatter, in parallel too, parsed once across runs."""

from pathlib import Path

import duckdb
import phonenumbers
import pytest

from pipeline.audience.phones import _workers, normalise_many, refresh_phone_table, to_e164
from pipeline.store.demo import generate_store

# Shapes customers type, and shapes that break: national with its trunk 0, an Italian fixed line that
# keeps its leading 0, "(0)" after the country code, an extension, letters, too short, not a number.
EXAMPLES = [
    ("+39 347 123 4567", None), ("347 1234567", "IT"), ("06 1234 5678", "IT"), ("+39 06 1234 5678", "US"),
    ("+44 (0) 20 7946 0958", None), ("020 7946 0958", "GB"), ("07700 900123", "gb"),
    ("(415) 555-2671 ext. 12", "US"), ("1-800-FLOWERS", "US"), ("+1 415 555 2671", None),
    ("0171 8895130", "DE"), ("+49 171 8895130", "IT"), ("12", "IT"), ("phone", "IT"), ("", "IT"),
    ("+999 123 456", None), ("555 0100", None),
]


def reference(phone: str | None, region: str | None) -> str | None:
    """phonenumbers' documented path, formatter included."""
    try:
        number = phonenumbers.parse(phone or "", region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def demo_pairs(tmp_path: Path) -> list[tuple[str, str | None]]:
    generate_store(tmp_path / "store", 2000, seed=5)
    return duckdb.connect().execute(
        "select defaultPhoneNumber.phoneNumber, defaultAddress.countryCodeV2 from read_json(?) "
        "where defaultPhoneNumber.phoneNumber is not null", [str(tmp_path / "store" / "customers.jsonl")]).fetchall()


@pytest.mark.parametrize(("phone", "region"), EXAMPLES)
def test_examples_match_the_formatter(phone: str, region: str | None) -> None:
    assert to_e164(phone, region) == reference(phone, region)


def test_demo_numbers_match_the_formatter_and_the_pool(tmp_path: Path) -> None:
    pairs = demo_pairs(tmp_path)
    expected = [reference(phone, region) for phone, region in pairs]
    assert None in expected and len({e for e in expected if e}) > 1000  # valid and broken numbers both
    assert [to_e164(phone, region) for phone, region in pairs] == expected
    with _workers(len(pairs) * 100) as pool:
        assert pool is not None
        assert normalise_many(pairs, pool) == expected


def test_refresh_parses_each_number_once_and_forgets_numbers_no_one_has(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(f"attach '{tmp_path / 'state.duckdb'}' as state")
    con.execute("create schema staging")
    con.execute("create table staging.stg_customers (phone varchar, default_country varchar)")
    con.execute("insert into staging.stg_customers values ('347 1234567', 'IT'), ('347 1234567', 'IT'), "
                "('+44 20 7946 0958', null), ('12', 'IT'), (null, 'IT')")
    first = refresh_phone_table(con)
    assert first == {"numbers": 3, "parsed_now": 3, "valid": 2, "invalid": 1}
    assert sorted(con.execute("select phone, phone_e164 from staging.stg_phone_numbers").fetchall(),
                  key=str) == sorted([("347 1234567", "+393471234567"), ("+44 20 7946 0958", "+442079460958"),
                                      ("12", None)], key=str)
    assert refresh_phone_table(con)["parsed_now"] == 0
    con.execute("update staging.stg_customers set phone = '348 7654321' where phone = '12'")
    assert refresh_phone_table(con)["parsed_now"] == 1
    assert con.execute("select count(*) from state.phone_cache where phone = '12'").fetchall() == [(0,)]
