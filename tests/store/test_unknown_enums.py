"""A Shopify enum value we do not know (Shopify adds values over API versions) stops nothing: the night
runs, the run log says how many lines and where the first is, and it never counts as consent."""

import datetime as dt
from pathlib import Path

import duckdb

from pipeline.settings import Settings
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer
from tests.oracle import Oracle

AS_OF = dt.date(2026, 10, 31)


def unknown_values_store(directory: Path) -> Path:
    return Store(
        customers=[
            customer(1),
            customer(
                2,
                phone="+393471234568",
                sms_state="MAYBE_LATER",
                email_state="DOUBLE_CONFIRMED",
                state="ZOMBIE",
                spend_tier="ULTRA",
                subscriber="GIFTED",
            ),
            customer(3, phone="+393471234569", sms_state="subscribed", email_state="INVALID"),
        ]
    ).write(directory)


def test_unknown_values_are_warned_about_in_the_run_log_and_never_consent(tmp_path: Path) -> None:
    store, data = unknown_values_store(tmp_path / "store"), tmp_path / "data"
    logs: list[str] = []
    settings = Settings(source=f"jsonl:{store}", data_dir=data, segments_dir=data / "none")
    assert run_nightly_job(settings, log_lines=logs, as_of=AS_OF).success
    warnings = [line for line in logs if "Shopify's reference does not list" in line]
    assert sorted(w.split(" Kept as it is")[0] for w in warnings) == [
        "customers.jsonl: 1 Customer line(s) have a defaultEmailAddress.marketingState that Shopify's reference "
        "does not list, the first at line 2: 'DOUBLE_CONFIRMED'.",
        "customers.jsonl: 1 Customer line(s) have a defaultPhoneNumber.marketingState that Shopify's reference "
        "does not list, the first at line 2: 'MAYBE_LATER'.",
        "customers.jsonl: 1 Customer line(s) have a productSubscriberStatus that Shopify's reference does not "
        "list, the first at line 2: 'GIFTED'.",
        "customers.jsonl: 1 Customer line(s) have a state that Shopify's reference does not list, "
        "the first at line 2: 'ZOMBIE'.",
        "customers.jsonl: 1 Customer line(s) have a statistics.predictedSpendTier that Shopify's reference does "
        "not list, the first at line 2: 'ULTRA'.",
    ]
    assert not any("+39347" in line for line in logs), "a phone number reached the run log"

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        statuses = con.execute(
            "select customer_id, sms_subscription_status, email_subscription_status, "
            "customer_account_status from marts.customers order by customer_id"
        ).fetchall()
    # An unknown marketing state and email's INVALID are no consent; Shopify's values are read in upper case.
    assert statuses == [
        (1, "SUBSCRIBED", "SUBSCRIBED", "ENABLED"),
        (2, "NOT_SUBSCRIBED", "NOT_SUBSCRIBED", "ZOMBIE"),
        (3, "SUBSCRIBED", "NOT_SUBSCRIBED", "ENABLED"),
    ]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        shopify_own = con.execute(
            "select predicted_spend_tier, product_subscription_status from marts.customers where customer_id = 2"
        ).fetchall()
    assert shopify_own == [(None, None)]  # kept in staging as it is, no value to the segment language
    oracle = Oracle(store, AS_OF).customers
    assert (
        oracle.select(
            "customer_id", "sms_subscription_status", "email_subscription_status", "customer_account_status"
        ).rows()
        == statuses
    )
