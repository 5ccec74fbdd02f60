"""The change-polling pager against the local HubSpot fake over real HTTP, with the fake's search cap lowered to 50.

Records get their ``lastmodifieddate`` from the fake's clock: a test pins the clock to a chosen time, edits a contact
through ``PATCH /_fake/contacts/{id}`` (an edit "in HubSpot's UI"), and lets the clock go back to real time before
it polls, so the fake's search limit (5 a second) is counted in real time, as the client's limiter counts it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from leadpipe.changes.polling import ChangedContact, ChangePager, changed_since, to_epoch_ms
from leadpipe.enrichment.http import reset_rate_limits
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.hubspot.client import HubSpotClient
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.hubspot import FakeHubSpot

CAP = 50  # the fake's lowered result cap (HubSpot's is 10,000)
PAGE = 20
SEARCH = r"/crm/v3/objects/contacts/search$"


class PinnedClock:
    """Real time, unless ``pinned`` (epoch seconds): the fake then reads that."""

    def __init__(self) -> None:
        self.pinned: float | None = None
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return time.time() if self.pinned is None else self.pinned


class World:
    def __init__(self, fake: FakeHubSpot, clock: PinnedClock) -> None:
        self.fake = fake
        self.clock = clock
        # whole seconds, an hour back: every timestamp a test uses is in the past of the real clock
        self.base_ms = (int(time.time()) - 3600) * 1000
        self.http = httpx.Client(base_url=fake.url, timeout=10)

    def create(self, count: int) -> list[str]:
        """``count`` contacts, created three days before ``base_ms`` (outside every test's window)."""
        self.clock.pinned = self.base_ms / 1000 - 3 * 86_400
        ids: list[str] = []
        try:
            for start in range(0, count, 100):
                inputs = [
                    {"properties": {"email": f"p{i}@example.com", "firstname": f"P{i}"}}
                    for i in range(start, min(count, start + 100))
                ]
                response = self.http.post(
                    "/crm/v3/objects/contacts/batch/create",
                    json={"inputs": inputs},
                    headers={"Authorization": f"Bearer {self.fake.token}"},
                )
                assert response.status_code == 201, response.text
                ids += [r["id"] for r in response.json()["results"]]
        finally:
            self.clock.pinned = None
        return ids

    def touch(self, contact_id: str, at_ms: int | None) -> None:
        """An edit in HubSpot's UI at ``at_ms`` (None: now, in real time)."""
        self.clock.pinned = None if at_ms is None else at_ms / 1000
        try:
            response = self.http.patch(
                f"/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": f"title {time.time_ns()}"}}
            )
            assert response.status_code == 200, response.text
        finally:
            self.clock.pinned = None

    def modified_ms(self, contact_id: str) -> int:
        response = self.http.get(
            f"/crm/v3/objects/contacts/{contact_id}",
            params={"properties": "lastmodifieddate"},
            headers={"Authorization": f"Bearer {self.fake.token}"},
        )
        value = to_epoch_ms(response.json()["properties"]["lastmodifieddate"])
        assert value is not None
        return value

    def client(self, **kwargs: Any) -> HubSpotClient:
        return HubSpotClient(self.fake.token, base_url=self.fake.url, **kwargs)

    def searches(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.fake.calls(SEARCH, "POST")]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeHubSpot, PinnedClock]]:
    clock = PinnedClock()
    fake = FakeHubSpot(search_cap=CAP, clock=clock)
    fake.start()
    yield fake, clock
    fake.stop()


@pytest.fixture
def world(served: tuple[FakeHubSpot, PinnedClock]) -> Iterator[World]:
    fake, clock = served
    clock.pinned = None
    fake.reset()
    reset_rate_limits()
    w = World(fake, clock)
    yield w
    w.http.close()
    fake.clear_faults()
    reset_rate_limits()


class Bounded:
    """A client whose searches are counted, failing the test past ``most`` (a pager that loops fails, not hangs)."""

    def __init__(self, client: HubSpotClient, most: int) -> None:
        self.client = client
        self.most = most
        self.calls = 0

    def search(self, object_type: str, request: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        assert self.calls <= self.most, f"more than {self.most} searches: the pager is not making progress"
        return self.client.search(object_type, request)


def drain(pager: ChangePager) -> list[list[ChangedContact]]:
    return list(pager)


def flat(pages: list[list[ChangedContact]]) -> list[ChangedContact]:
    return [c for page in pages for c in page]


def assert_ascending(found: list[ChangedContact]) -> None:
    times = [c.modified_at_ms for c in found]
    assert times == sorted(times)


def assert_no_search_throttling(world: World, client: HubSpotClient) -> None:
    assert world.fake.throttled_by_policy.get("SECONDLY", 0) == 0
    assert client.search_http.throttled == 0


# ------------------------------------------------------------------------------------------------ tests


def test_distinct_timestamps_past_the_cap_every_contact_once_in_order(world: World) -> None:
    ids = world.create(240)
    changed = ids[:230]
    order = changed[:]
    random.Random(3).shuffle(order)  # modified order differs from record id order
    for n, contact_id in enumerate(order):
        world.touch(contact_id, world.base_ms + n * 1000)

    with world.client() as client:
        pager = changed_since(
            Bounded(client, most=30),
            since_ms=world.base_ms,
            lookback_ms=0,
            properties=["firstname"],
            cap=CAP,
            page_size=PAGE,
        )
        pages = drain(pager)
        assert_no_search_throttling(world, client)

    found = flat(pages)
    assert [c.id for c in found] == order  # each exactly once, in modified order
    assert_ascending(found)
    assert found[0].modified_at_ms == world.base_ms
    assert all({"email", "lastmodifieddate", "hs_object_id", "firstname"} <= set(c.properties) for c in found)
    assert found[5].properties["email"] == f"p{int(found[5].id) - 1}@example.com"
    assert pager.high_water_ms == world.base_ms + 229 * 1000
    assert all(len(page) <= PAGE for page in pages)
    # 230 records through a 50-result window: the pager restarted (four times at least) and was never refused
    assert pager.restarts >= 4
    assert pager.cap_refusals == 0
    assert pager.tie_queries == 0
    for body in world.searches():
        assert body["limit"] <= PAGE
        assert int(body.get("after") or 0) + body["limit"] <= CAP
        assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
        (flt,) = body["filterGroups"][0]["filters"]
        assert flt["propertyName"] == "lastmodifieddate" and flt["operator"] == "GTE"
        assert isinstance(flt["value"], str) and flt["value"].isdigit()  # epoch ms, as a string


def test_bulk_edit_on_one_timestamp_is_paged_by_record_id(world: World) -> None:
    ids = world.create(190)
    shuffled = ids[:]
    random.Random(5).shuffle(shuffled)
    before, bulk, after = shuffled[:30], shuffled[30:160], shuffled[160:]
    bulk_ms = world.base_ms + 60_000
    for n, contact_id in enumerate(before):
        world.touch(contact_id, world.base_ms + n * 1000)
    for contact_id in bulk:  # one bulk edit: 130 contacts, one lastmodifieddate, more than the cap of 50
        world.touch(contact_id, bulk_ms)
    for n, contact_id in enumerate(after):
        world.touch(contact_id, bulk_ms + 1000 + n * 1000)
    assert {world.modified_ms(i) for i in bulk[:3]} == {bulk_ms}

    with world.client() as client:
        bounded = Bounded(client, most=25)  # progress on every restart: a loop fails here
        pager = changed_since(bounded, since_ms=world.base_ms, lookback_ms=0, properties=[], cap=CAP, page_size=PAGE)
        pages = drain(pager)
        assert_no_search_throttling(world, client)

    found = flat(pages)
    got = [c.id for c in found]
    assert len(got) == len(set(got)) == 190
    assert got[:30] == before
    assert sorted(got[30:160], key=int) == sorted(bulk, key=int)
    assert got[160:] == after
    assert_ascending(found)
    assert pager.high_water_ms == bulk_ms + 30 * 1000
    # the bulk timestamp was paged inside, by hs_object_id, and the pager then went on strictly after it
    assert pager.tie_queries >= 3  # 130 records through a 50-result window
    bodies = world.searches()
    ties = [b for b in bodies if b["sorts"][0]["propertyName"] == "hs_object_id"]
    assert ties and all(
        b["filterGroups"][0]["filters"][0]
        == {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(bulk_ms)}
        for b in ties
    )
    assert any(
        f == {"propertyName": "hs_object_id", "operator": "GT", "value": f["value"]}
        for b in ties
        for f in b["filterGroups"][0]["filters"]
    )
    assert any(
        b["filterGroups"][0]["filters"][0]
        == {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(bulk_ms)}
        for b in bodies
    )


def test_lookback_window_and_until(world: World) -> None:
    ids = world.create(6)
    since = world.base_ms + 100_000
    lookback = 30_000
    times = {
        ids[0]: since - lookback - 1,  # before the lookback: not returned
        ids[1]: since - lookback,  # on its edge (GTE)
        ids[2]: since - 10_000,  # inside the lookback
        ids[3]: since + 5_000,
        ids[4]: since + 50_000,  # after ``until``
    }  # ids[5]: never edited since its creation, days earlier
    for contact_id, at in times.items():
        world.touch(contact_id, at)

    with world.client() as client:
        bounded = changed_since(
            client, since_ms=since, lookback_ms=lookback, properties=[], cap=CAP, until_ms=since + 20_000
        )
        assert [c.id for c in flat(drain(bounded))] == ids[1:4]
        assert bounded.high_water_ms == since + 20_000  # everything up to ``until`` was looked at

        unbounded = changed_since(client, since_ms=since, lookback_ms=lookback, properties=[], cap=CAP)
        found = flat(drain(unbounded))
        assert [c.id for c in found] == ids[1:5]
        assert [c.modified_at_ms for c in found] == [times[i] for i in ids[1:5]]
        assert unbounded.high_water_ms == since + 50_000

        # nothing changed since: the cursor stays where it was (never goes back into the lookback)
        quiet = changed_since(client, since_ms=since + 90_000, lookback_ms=lookback, properties=[], cap=CAP)
        assert drain(quiet) == []
        assert quiet.high_water_ms == since + 90_000


def test_search_calls_stay_within_five_a_second(world: World) -> None:
    ids = world.create(150)
    for n, contact_id in enumerate(ids):
        world.touch(contact_id, world.base_ms + n * 10)

    with world.client() as client:
        pager = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[], cap=CAP, page_size=PAGE)
        found = flat(drain(pager))
        assert_no_search_throttling(world, client)
        assert client.search_http.calls == pager.requests  # no retries were needed

    assert [c.id for c in found] == ids
    starts = sorted(r.at for r in world.fake.calls(SEARCH, "POST"))
    assert len(starts) >= 10  # enough calls that an unlimited pager would have sent more than 5 in a second
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= 5
    assert world.fake.peak_requests_per_second() <= 5


def test_failed_pages_are_retried_and_nothing_is_lost(world: World) -> None:
    ids = world.create(100)
    for n, contact_id in enumerate(ids):
        world.touch(contact_id, world.base_ms + n * 100)

    with world.client(timeout=0.5) as client:
        pager = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[], cap=CAP, page_size=PAGE)
        found: list[ChangedContact] = []
        faults: list[Fault] = []
        for number, page in enumerate(pager):
            found += page
            if number == 0:  # the next page fails once with a 500, then works
                faults.append(world.fake.inject(Fault(status=500, body={"status": "error"}, times=1, path=SEARCH)))
            if number == 2:  # and a later one answers after the client's timeout
                faults.append(world.fake.inject(Fault(timeout=1.0, times=1, path=SEARCH)))
        retried = client.search_http.calls - pager.requests

    assert [c.id for c in found] == ids
    assert pager.high_water_ms == world.base_ms + 99 * 100
    assert len(faults) == 2 and all(f.times == 0 for f in faults)  # both faults happened
    assert retried >= 2


def test_a_cap_refusal_restarts_instead_of_failing(world: World) -> None:
    ids = world.create(100)
    for n, contact_id in enumerate(ids):
        world.touch(contact_id, world.base_ms + n * 100)

    with world.client() as client:
        # the pager believes HubSpot's 10,000; the fake refuses past 50 with a 400
        pager = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[], page_size=PAGE)
        found = flat(drain(pager))

    assert [c.id for c in found] == ids
    assert pager.cap_refusals == 1  # learnt once, then stayed within it
    assert pager.cap < CAP


def test_a_first_page_refusal_is_raised(world: World) -> None:
    world.create(3)
    with world.client() as client:
        pager = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[])
        # a 400 on a query's first page is not the cap (nothing was paged yet): raised, not taken for a restart
        world.fake.inject(Fault(status=400, body={"status": "error", "message": "bad"}, times=1, path=SEARCH))
        with pytest.raises(ProviderError) as raised:
            drain(pager)
    assert raised.value.status == 400
    assert pager.requests == 1


def test_contacts_edited_during_the_poll_do_not_hide_others(world: World) -> None:
    ids = world.create(60)
    for n, contact_id in enumerate(ids):
        world.touch(contact_id, world.base_ms + n * 1000)

    with world.client() as client:
        pager = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[], cap=CAP, page_size=PAGE)
        found: list[ChangedContact] = []
        for number, page in enumerate(pager):
            found += page
            if number == 0:  # three contacts already returned are edited now: the rest move up three places
                for contact in page[:3]:
                    world.touch(contact.id, None)

    got = [c.id for c in found]
    assert set(got) == set(ids)  # with plain offset paging, the three after the first page would be skipped
    assert got[:60] == ids
    assert sorted(got[60:]) == sorted(ids[:3])  # found again with their new lastmodifieddate
    assert all(c.modified_at_ms > world.base_ms + 59_000 for c in found[60:])
    assert pager.shifts >= 1
    assert_ascending(found)


def test_lookback_finds_a_write_search_showed_late(world: World) -> None:
    late, seen = world.create(2)
    # ``late`` is modified first but search shows it only a second from now; ``seen`` is modified after it and shows
    # at once (HubSpot's index does not show writes in the order they happened)
    world.fake.search_lag = (time.time() + 1.0) - (world.base_ms + 1000) / 1000
    world.touch(late, world.base_ms + 1000)
    world.fake.search_lag = 0.0
    world.touch(seen, world.base_ms + 2000)

    with world.client() as client:
        first = changed_since(client, since_ms=world.base_ms, lookback_ms=0, properties=[], cap=CAP)
        assert [c.id for c in flat(drain(first))] == [seen]
        cursor = first.high_water_ms
        assert cursor == world.base_ms + 2000

        time.sleep(1.2)  # now search shows ``late`` too, behind the cursor
        without = changed_since(client, since_ms=cursor, lookback_ms=0, properties=[], cap=CAP)
        assert [c.id for c in flat(drain(without))] == [seen]  # lost without a lookback
        with_lookback = changed_since(client, since_ms=cursor, lookback_ms=5_000, properties=[], cap=CAP)
        assert [c.id for c in flat(drain(with_lookback))] == [late, seen]
        assert with_lookback.high_water_ms == cursor
