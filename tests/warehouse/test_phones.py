"""Phone normalisation: the same E.164 as phonenumbers' own formatter, plain numbers read from its metadata,
each number parsed once across runs."""

from pathlib import Path

import duckdb
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.phones import to_e164
from pipeline.phones.numbering import NotPlain, plain_e164
from pipeline.store.demo import generate_store
from pipeline.warehouse.phones import refresh_phone_table

# Shapes customers type, and shapes that break: national with its trunk 0, an Italian fixed line that
# keeps its leading 0, "(0)" after the country code, an extension, letters, too short, not a number.
EXAMPLES = [
    ("+39 347 123 4567", None),
    ("347 1234567", "IT"),
    ("06 1234 5678", "IT"),
    ("+39 06 1234 5678", "US"),
    ("+44 (0) 20 7946 0958", None),
    ("020 7946 0958", "GB"),
    ("07700 900123", "gb"),
    ("(415) 555-2671 ext. 12", "US"),
    ("1-800-FLOWERS", "US"),
    ("+1 415 555 2671", None),
    ("0171 8895130", "DE"),
    ("+49 171 8895130", "IT"),
    ("12", "IT"),
    ("phone", "IT"),
    ("", "IT"),
    ("+999 123 456", None),
    ("555 0100", None),
]

# Plain numbers (digits, spaces, dashes, dots, brackets, a leading +) that take each path of
# phonenumbers' parse and validity check, all of which `numbering` must take the same way; with the
# E.164 a person reading the numbering plans expects.
PLAIN_EXAMPLES = [
    ("+39 347 123 4567", "US", "+393471234567"),  # a + and a calling code: the region is not read
    ("347-123-4567", "IT", "+393471234567"),
    ("(415) 555.2671", "US", "+14155552671"),
    ("416 555 2671", "CA", "+14165552671"),
    ("06 1234 5678", "IT", "+390612345678"),  # an Italian fixed line keeps its leading 0
    ("07400 123456", "GB", "+447400123456"),
    ("+44 07400 123456", None, "+447400123456"),  # national prefix 0
    ("+44 (0) 20 7946 0958", None, "+442079460958"),
    ("8 912 345 67 89", "RU", "+79123456789"),  # national prefix 8
    ("1 415 555 2671", "US", "+14155552671"),  # national prefix 1
    ("39 347 123 4567", "IT", "+393471234567"),
    ("44 7400 123456", "GB", "+447400123456"),  # own code, no +
    ("7 808 823 4567", "RU", "+78088234567"),  # 8 is the national prefix, but only 808... is a number
    ("27 00 61 123 4586", "ZA", "+27611234586"),  # too long to be national: the code goes, then both 0s
    ("1831 2 9876 5432", "AU", "+61298765432"),  # a national prefix pattern with a group: 1831 goes
    ("797123", "JE", "+441534797123"),  # a transform rule: a Jersey local number gains 1534
    ("+1 613 555 0123", None, "+16135550123"),
    ("+1 264 497 1234", None, "+12644971234"),  # +1 is shared
    ("+7 701 234 5678", None, "+77012345678"),  # +7: Kazakhstan by its leading digits
    ("+39 06 698 12345", None, "+390669812345"),  # +39: the Vatican by its leading digits
    ("+44 1534 456789", None, "+441534456789"),  # +44: Jersey by validity
    ("07700 900123", "GB", None),  # the UK's range for drama: no such number
    ("347 123 4567", None, None),
    ("347 123 4567", "XX", None),  # no region, or an unknown one
    ("347 123 4567", "it", "+393471234567"),
    ("+39 347 123 45678 9999", None, None),  # too long for any Italian number
    ("1234", "IT", None),
    ("+1 2345", None, None),
    ("12345", "GB", None),
    ("+212 5", None, None),
]
# Numbers only phonenumbers' general parser reads: `numbering` says so and to_e164 asks it.
NOT_PLAIN_EXAMPLES = [
    ("0039 347 123 4567", "IT"),
    ("011 39 347 123 4567", "US"),
    ("00000", "GB"),  # an IDD prefix
    ("+800 1234 5678", None),  # a non-geographic calling code
    ("+0 347 123 4567", "IT"),
    ("++39 347 123 4567", None),
    ("+999 123 456", None),
    ("1-800-FLOWERS", "US"),
    ("(415) 555-2671 ext. 12", "US"),
    ("tel:+39-347-123-4567", None),
    ("３４７ １２３ ４５６７", "IT"),
    ("123", "IT"),
    ("+39 347 123 4567 8901 2345 6", None),
]
EXAMPLE_NUMBERS = [
    (region, number)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in phonenumbers.PhoneNumberType.values()
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
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


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str | None]:
    """A number as someone might write it: a real plan's example, perhaps mistyped, after any of the
    prefixes people put in front, split by separators, read in its own region or another."""
    region, example = draw(st.sampled_from(EXAMPLE_NUMBERS))
    digits = list(phonenumbers.national_significant_number(example))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(digits) - 1))
        edit = draw(st.sampled_from(["replace", "insert", "delete"]))
        if edit == "delete":
            del digits[at]
        elif edit == "replace":
            digits[at] = draw(st.sampled_from("0123456789"))
        else:
            digits.insert(at, draw(st.sampled_from("0123456789")))
    code = str(example.country_code)
    national_prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
    prefix = draw(
        st.sampled_from(
            [
                "",
                "+" + code,
                "+" + code + "0",
                "+" + code + "1",
                "+" + code + "8",
                code,
                national_prefix,
                "00" + code,
                "011" + code,
                "8" + code,
            ]
        )
    )
    written = ""
    for char in prefix + "".join(digits):
        written += draw(st.sampled_from(["", "", "", " ", "-", ".", "(", ")"])) + char
    read_in = draw(st.sampled_from([region, region, None, "XX", draw(st.sampled_from(EXAMPLE_NUMBERS))[0]]))
    return written, read_in


def demo_pairs(tmp_path: Path) -> list[tuple[str, str | None]]:
    generate_store(tmp_path / "store", 2000, seed=5)
    return (
        duckdb.connect()
        .execute(
            "select defaultPhoneNumber.phoneNumber, defaultAddress.countryCodeV2 from read_json(?) "
            "where defaultPhoneNumber.phoneNumber is not null",
            [str(tmp_path / "store" / "customers.jsonl")],
        )
        .fetchall()
    )


@pytest.mark.parametrize(("phone", "region"), EXAMPLES)
def test_examples_match_the_formatter(phone: str, region: str | None) -> None:
    assert to_e164(phone, region) == reference(phone, region)


@pytest.mark.parametrize(("phone", "region", "e164"), PLAIN_EXAMPLES)
def test_plain_numbers_are_read_from_the_metadata_as_phonenumbers_reads_them(
    phone: str, region: str | None, e164: str | None
) -> None:
    assert plain_e164(phone, region) == reference(phone, region) == e164


@pytest.mark.parametrize(("phone", "region"), NOT_PLAIN_EXAMPLES)
def test_other_numbers_are_left_to_phonenumbers(phone: str, region: str | None) -> None:
    with pytest.raises(NotPlain):
        plain_e164(phone, region)
    assert to_e164(phone, region) == reference(phone, region)


@settings(max_examples=3000, deadline=None)
@given(written_numbers())
def test_reading_plain_numbers_agrees_with_phonenumbers(number: tuple[str, str | None]) -> None:
    phone, region = number
    try:
        read = plain_e164(phone, region)
    except NotPlain:
        return
    assert read == reference(phone, region)


def test_demo_numbers_match_the_formatter(tmp_path: Path) -> None:
    pairs = demo_pairs(tmp_path)
    expected = [reference(phone, region) for phone, region in pairs]
    assert None in expected and len({e for e in expected if e}) > 1000  # valid and broken numbers both
    assert [plain_e164(phone, region) for phone, region in pairs] == expected  # none needs the general parser
    assert [to_e164(phone, region) for phone, region in pairs] == expected


def test_refresh_parses_each_number_once_and_forgets_numbers_no_one_has(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("attach ? as state", [str(tmp_path / "state.duckdb")])
    con.execute("create schema staging")
    con.execute("create table staging.stg_customers (phone varchar, default_country varchar)")
    con.execute(
        "insert into staging.stg_customers values ('347 1234567', 'IT'), ('347 1234567', 'IT'), "
        "('+44 20 7946 0958', null), ('12', 'IT'), (null, 'IT')"
    )
    first = refresh_phone_table(con)
    assert first == {"numbers": 3, "parsed_now": 3, "valid": 2, "invalid": 1}
    assert sorted(con.execute("select phone, phone_e164 from staging.stg_phone_numbers").fetchall(), key=str) == sorted(
        [("347 1234567", "+393471234567"), ("+44 20 7946 0958", "+442079460958"), ("12", None)], key=str
    )
    assert refresh_phone_table(con)["parsed_now"] == 0
    con.execute("update staging.stg_customers set phone = '348 7654321' where phone = '12'")
    assert refresh_phone_table(con)["parsed_now"] == 1
    assert con.execute("select count(*) from state.phone_cache where phone = '12'").fetchall() == [(0,)]
