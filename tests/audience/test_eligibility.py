"""Eligibility on a hand-made store: every exclusion reason, normalisation, one number one recipient."""

import datetime as dt
from pathlib import Path

import pytest

from pipeline.audience.eligibility import AudienceError, eligible_audience
from pipeline.warehouse.reach import read_suppressions_csv
from tests.audience.conftest import SEGMENT, mobile
from tests.fixtures.stores import Store, address, checkout, customer, redaction, sms_event


def eligible_rows(con) -> list[tuple]:
    return con.execute(
        "select phone, customer_id, first_name, country from audience_eligible order by phone"
    ).fetchall()


def test_each_exclusion_reason_counted_once_under_the_first(audience_db, tmp_path: Path):
    store = Store(
        customers=[
            customer(1, phone=mobile(1)),  # eligible
            customer(2, phone=mobile(2), sms_state="PENDING"),  # no_consent: never confirmed
            customer(3, phone=mobile(3), sms_state="UNSUBSCRIBED"),  # no_consent
            customer(4, phone="12345"),  # bad_phone
            customer(5, phone="12345", sms_state="UNSUBSCRIBED"),  # no_consent comes first
            customer(6, phone=mobile(6)),  # suppressed by an opted_out event
            customer(7, phone=mobile(7)),  # suppressed by the CSV, written in national format
            customer(8, phone=mobile(8)),  # redacted (the mart also marks its consent REDACTED)
            customer(9, phone=mobile(1)),  # duplicate of 1
            customer(10, phone=None),  # no phone at all: the mart says NOT_SUBSCRIBED
        ],
        sms_events=[
            sms_event(mobile(6), "opted_out", "2026-09-01T10:00:00Z"),
            sms_event(mobile(1), "delivered", "2026-09-01T10:00:00Z"),
        ],
        redactions=[redaction(8)],
    )
    csv = tmp_path / "suppressions.csv"
    csv.write_text("phone,reason\n+39 347 000 0007,complaint\n\n")
    con = audience_db(store)
    result = eligible_audience(con, SEGMENT, suppressions_csv=csv)
    assert result.members == 10
    assert result.excluded == {"redacted": 1, "no_consent": 4, "bad_phone": 1, "suppressed": 2, "duplicate": 1}
    assert result.eligible == 1
    assert eligible_rows(con) == [(mobile(1), 1, "Ada", "IT")]


def test_an_opt_out_after_the_evaluation_date_still_suppresses_the_number(audience_db):
    """A backfill evaluates the segment as of an earlier day, but never texts who has since said stop."""
    store = Store(
        customers=[customer(1, phone=mobile(1)), customer(2, phone=mobile(2))],
        sms_events=[sms_event(mobile(2), "opted_out", "2026-10-20T10:00:00Z")],
    )
    con = audience_db(store, as_of=dt.date(2026, 10, 1))
    assert con.execute("select count(*) from marts.sms_events").fetchall() == [(0,)]  # not yet, for segments
    result = eligible_audience(con, SEGMENT)
    assert result.excluded["suppressed"] == 1
    assert [r[1] for r in eligible_rows(con)] == [1]


def test_an_opt_out_in_any_spelling_suppresses_the_customer_whose_number_it_is(audience_db, tmp_path: Path):
    """The gateway and the merchant do not always write E.164: the opt-out must still match."""
    store = Store(
        customers=[
            customer(1, phone=mobile(1)),  # eligible
            customer(2, phone=mobile(2)),  # opted out as 0039 347 ...
            customer(3, phone="347 000 0003", country="IT"),  # opted out as 347 000 0003, read in Italy
            customer(4, phone="(212) 555-0144", country="US", province="NY", city="New York"),  # (212) 555-0144
            customer(5, phone=mobile(5)),  # opted out without the +: 39 347 ...
            customer(6, phone="+49 30 1234567", country="DE", province=None, city="Berlin"),  # 030 1234567 in DE
            # 347 000 0003 read where this customer lives (Germany) is not their Italian number
            customer(7, phone="+39 347 000 0003", country="DE", province=None, city="Berlin"),
            customer(8, phone=mobile(8)),  # the CSV lists it as 0039 347 000 0008
        ],
        sms_events=[
            sms_event("0039 347 000 0002", "opted_out", "2026-09-01T10:00:00Z"),
            sms_event("347 000 0003", "opted_out", "2026-09-01T10:00:00Z"),
            sms_event("(212) 555-0144", "opted_out", "2026-09-01T10:00:00Z"),
            sms_event("39" + mobile(5)[3:], "opted_out", "2026-09-01T10:00:00Z"),
            sms_event("030 1234567", "opted_out", "2026-09-01T10:00:00Z"),
        ],
    )
    csv = tmp_path / "suppressions.csv"
    csv.write_text("phone\n0039 347 000 0008\n")
    con = audience_db(store)
    result = eligible_audience(con, SEGMENT, suppressions_csv=csv)
    assert [r[1] for r in eligible_rows(con)] == [1, 7]
    assert result.excluded["suppressed"] == 6
    suppressed = set(con.execute("select phone, region from audience_suppressed").fetchall())
    assert {
        ("+12125550144", "US"),
        ("+393470000002", None),
        ("+393470000003", "IT"),
        ("+393470000005", "IT"),
        ("+393470000008", None),
        ("+49301234567", "DE"),
    } <= suppressed
    assert ("+393470000003", "DE") not in suppressed


def test_redacted_is_its_own_reason_when_consent_survives(audience_db):
    """The mart already withdraws a redacted customer's consent; the check still stands on its own."""
    con = audience_db(Store(customers=[customer(1, phone=mobile(1)), customer(2, phone=mobile(2))]))
    con.execute("update marts.customers set is_redacted = true where customer_id = 2")
    result = eligible_audience(con, SEGMENT)
    assert result.excluded["redacted"] == 1
    assert [r[1] for r in eligible_rows(con)] == [1]


def test_national_numbers_read_in_the_default_address_country(audience_db):
    store = Store(
        customers=[
            customer(1, phone="347 123 4567", country="IT"),
            customer(2, phone="030 1234567", country="DE", province=None, city="Berlin"),
            customer(3, phone="(201) 555-0123", country="US", province="NJ", city="Newark"),
            customer(4, phone="347 123 4568", country=None),  # no region to read it in: bad phone
        ]
    )
    con = audience_db(store)
    result = eligible_audience(con, SEGMENT)
    assert result.excluded["bad_phone"] == 1
    assert eligible_rows(con) == [
        ("+12015550123", 3, "Ada", "US"),
        ("+393471234567", 1, "Ada", "IT"),
        ("+49301234567", 2, "Ada", "DE"),
    ]


def test_shared_number_goes_to_the_lowest_eligible_customer_id(audience_db):
    store = Store(
        customers=[
            customer(5, phone=mobile(1), first="Eve"),
            customer(3, phone="347 000 0001", first="Cal"),  # the same number, national format
            customer(2, phone=mobile(1), first="Bea", sms_state="UNSUBSCRIBED"),  # lower, but not eligible
            customer(9, phone=mobile(1), first="Ivo"),
        ]
    )
    con = audience_db(store)
    result = eligible_audience(con, SEGMENT)
    assert eligible_rows(con) == [(mobile(1), 3, "Cal", "IT")]
    assert result.excluded["duplicate"] == 2
    assert result.excluded["no_consent"] == 1


def test_country_is_the_default_address_then_another_then_the_phone_region(audience_db):
    store = Store(
        customers=[
            customer(1, phone="+4915112345678", country=None),
            customer(2, phone=mobile(2), country=None, addresses=[address("FR", None, "Paris")]),
            customer(3, phone=mobile(3), country="IT", addresses=[address("DE", None, "Berlin")]),
        ]
    )
    con = audience_db(store)
    eligible_audience(con, SEGMENT)
    assert {r[1]: r[3] for r in eligible_rows(con)} == {1: "DE", 2: "FR", 3: "IT"}


def test_extra_fields_are_carried_and_unknown_ones_refused(audience_db):
    store = Store(
        customers=[customer(1, phone=mobile(1))],
        abandoned_checkouts=[checkout(70, 1, created="2026-10-30T10:00:00Z", url="https://s/70")],
    )
    con = audience_db(store)
    result = eligible_audience(con, SEGMENT, fields=("abandoned_checkout_url", "rfm_group"))
    assert result.fields == ("abandoned_checkout_url", "rfm_group")
    assert con.execute("select abandoned_checkout_url, rfm_group from audience_eligible").fetchall() == [
        ("https://s/70", "PROSPECTS")
    ]
    with pytest.raises(AudienceError, match="unknown field 'checkout_link'"):
        eligible_audience(con, SEGMENT, fields=("checkout_link",))
    with pytest.raises(AudienceError, match="already sent"):
        eligible_audience(con, SEGMENT, fields=("first_name",))


def test_malformed_suppressions_csv_names_file_and_line(tmp_path: Path):
    path = tmp_path / "suppressions.csv"
    path.write_text("phone,reason\n+393471234567,asked\n+393471234568,a,b\n")
    with pytest.raises(AudienceError, match=r"suppressions.csv:3: 3 values, expected 2"):
        read_suppressions_csv(path)
    path.write_text("phone\n+393471234567\nnot a number\n")
    with pytest.raises(AudienceError, match=r"suppressions.csv:3: 'not a number' is not a valid phone"):
        read_suppressions_csv(path)
    path.write_text("phone\n0039 347 123 4567\n347 123 4567\n")
    with pytest.raises(AudienceError, match=r"suppressions.csv:3: '347 123 4567' is not a valid phone"):
        read_suppressions_csv(path)
    path.write_text("number,why\n")
    with pytest.raises(AudienceError, match=r"suppressions.csv:1: header number,why"):
        read_suppressions_csv(path)
    assert read_suppressions_csv(tmp_path / "absent.csv") == []


def test_segment_names_that_would_escape_a_path_are_refused(audience_db):
    con = audience_db(Store(customers=[customer(1)]))
    with pytest.raises(AudienceError, match="segment name"):
        eligible_audience(con, "../etc")
