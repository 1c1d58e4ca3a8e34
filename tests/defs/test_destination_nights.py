"""Five nights through the nightly job to Klaviyo and to Shopify customer tags, with opt-outs, a
redaction, a shared number and consent changes: after each night the destination holds exactly the
audience worked out by hand below, and a night with no change sends nothing at all."""

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from pipeline.audience.gateways import AudienceGateway
from pipeline.audience.klaviyo import KlaviyoGateway
from pipeline.audience.klaviyo_emulator import KlaviyoEmulator
from pipeline.audience.shopify_tags import ShopifyTagsGateway
from pipeline.settings import Settings
from pipeline.shopify.emulator import ShopifyEmulator
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, gid, redaction, sms_event

FIRST_NIGHT = dt.date(2026, 11, 2)
VIPS = "name: vips\nquery: customer_tags CONTAINS 'vip'\nsms:\n  export: true\n"
KEY, TOKEN = "pk_nights", "shpat_nights"


def store(night: int) -> Store:
    """Customers 1-8 are VIPs, 9 is not. What changes each night is in the comments."""
    later = f"{FIRST_NIGHT + dt.timedelta(days=night - 1)}T08:00:00Z"
    people = {
        1: customer(1, phone="+393470000001", tags=["vip"]),
        2: customer(2, phone="347 000 0002", tags=["vip"]),  # national: read in its address country, IT
        3: customer(3, phone="+393470000003", tags=["vip"]),
        4: customer(4, phone="+39 347 000 0003", tags=["vip"]),  # 3's number: 3 has it while 3 may be texted
        5: customer(5, phone="12", tags=["vip"]),  # not a number
        6: customer(6, phone="+393470000006", tags=["vip"], sms_state="PENDING"),
        7: customer(7, phone="+393470000007", tags=["vip"], sms_state="UNSUBSCRIBED"),
        8: customer(8, phone="(212) 555-0188", tags=["vip"], country="US", province="NY", city="New York"),
        9: customer(9, phone="+393470000009", tags=[]),
    }
    events, redactions = [], []
    if night >= 2:  # 1 opts out, the number written with 00 rather than +
        events.append(sms_event("00393470000001", "opted_out", "2026-11-02T20:00:00Z"))
    if night >= 3:  # 3 asks to be forgotten: the shared number passes to 4
        redactions.append(redaction(3, "2026-11-03T20:00:00Z"))
    if night >= 4:  # 6 confirms, 8 unsubscribes
        people[6] = customer(6, phone="+393470000006", tags=["vip"], updated=later)
        people[8] = customer(
            8,
            phone="(212) 555-0188",
            tags=["vip"],
            country="US",
            province="NY",
            city="New York",
            sms_state="UNSUBSCRIBED",
            updated=later,
        )
    return Store(customers=list(people.values()), sms_events=events, redactions=redactions)


# night -> {E.164 number: the customer it goes to}, worked out by hand from the comments in `store`
EXPECTED = {
    1: {"+393470000001": 1, "+393470000002": 2, "+393470000003": 3, "+12125550188": 8},
    2: {"+393470000002": 2, "+393470000003": 3, "+12125550188": 8},
    3: {"+393470000002": 2, "+393470000003": 4, "+12125550188": 8},
    4: {"+393470000002": 2, "+393470000003": 4, "+393470000006": 6},
    5: {"+393470000002": 2, "+393470000003": 4, "+393470000006": 6},
}


@dataclass
class Destination:
    gateway: AudienceGateway
    held: Callable[[], object]  # what the destination holds, to compare with `expected`
    expected: Callable[[dict[str, int]], object]  # the same view of a night's EXPECTED
    changes: Callable[[], int]  # requests so far that could change anything at the destination
    on_redaction: Callable[[int], None]  # what the shop itself does when it erases a customer


@contextmanager
def klaviyo(store_dir: Path) -> Iterator[Destination]:
    """A list per segment: the numbers on it, each with the Shopify customer id its profile carries."""
    with KlaviyoEmulator(KEY, rate_limits=False) as server:

        def held() -> dict[str, int]:
            return {phone: int(server.profiles[pid]["external_id"]) for phone, pid in server.members("vips").items()}

        changing = ("create_list", "bulk_import_profiles", "remove_profiles_from_list")
        yield Destination(
            KlaviyoGateway(url=server.url, api_key=KEY),
            held,
            lambda expected: expected,
            lambda: sum(server.received[op] for op in changing),
            lambda n: None,
        )


@contextmanager
def shopify_tags(store_dir: Path) -> Iterator[Destination]:
    """A tag per segment on the shop's customers (their numbers are the shop's own): who carries it.

    A redacted customer is erased from the shop too, as Shopify does on customers/redact.
    """
    with ShopifyEmulator(store_dir, TOKEN) as server:

        def held() -> set[int]:
            return {int(record["id"].rsplit("/", 1)[1]) for record in server.customer_tags.tagged("smsseg:vips")}

        yield Destination(
            ShopifyTagsGateway(store=server.url, token=TOKEN),
            held,
            lambda expected: set(expected.values()),
            lambda: len(server.requests),
            lambda n: server.customer_tags.delete(gid("Customer", n)),
        )


@pytest.mark.parametrize("destination", [klaviyo, shopify_tags], ids=["klaviyo", "shopify-tags"])
def test_five_nights_hold_the_audience_worked_out_by_hand(tmp_path: Path, destination) -> None:
    store_dir, defs = tmp_path / "store", tmp_path / "defs"
    store(1).write(store_dir)
    defs.mkdir()
    (defs / "vips.yaml").write_text(VIPS)
    settings = Settings(
        source=f"jsonl:{store_dir}", data_dir=tmp_path / "data", segments_dir=defs, swing_threshold=10.0
    )  # this store's audience moves by a third a night: not a swing here
    with destination(store_dir) as to, dg.DagsterInstance.ephemeral() as instance:
        for night in range(1, 6):
            store(night).write(store_dir)
            if night == 3:
                to.on_redaction(3)
            before = to.changes()
            result = run_nightly_job(
                settings,
                resources={"gateway": to.gateway},
                instance=instance,
                as_of=FIRST_NIGHT + dt.timedelta(days=night - 1),
            )
            assert result.success, f"night {night} failed"
            assert to.held() == to.expected(EXPECTED[night]), f"night {night}"
            if night == 5:
                assert to.changes() == before, "a night with no change changed something at the destination"
            else:
                assert to.changes() > before, f"night {night} changed nothing"
