"""The activity feed updates by itself: runs started and completed appear in their place without reloading, late or
in a burst."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from leadpipe.activity import ActivityEntry, ActivityLog
from tests.browser.conftest import Console, people_csv
from tests.e2e.test_enrichment import known_domains


def test_the_activity_feed_updates_live(console: Console) -> None:
    page = console.open("#/activity")
    expect(page.locator(".empty")).to_contain_text("No activity yet")
    expect(page.locator(".live")).to_contain_text("live")

    domain = known_domains(12)[3]
    people = [{"Email": f"feed{i}@{domain}", "First Name": f"Feed{i}", "Job Title": "CTO"} for i in range(3)]
    job = console.workspace.api.import_csv(people_csv(people), "feed.csv")  # from outside the page

    feed = page.locator("#activity-feed")
    imported = feed.locator('.feed-item[data-type="contacts.imported"]')
    expect(imported).to_have_count(1)
    expect(imported).to_contain_text("3 contacts")
    expect(imported.get_by_role("link", name=f"import {job['job_id']}")).to_be_visible()
    completed = feed.locator('.feed-item[data-type="enrichment.completed"]')
    expect(completed).to_have_count(1)
    expect(completed).to_contain_text("3 enriched")
    expect(feed.locator('.feed-item[data-type="enrichment.started"]')).to_have_count(1)
    # newest first, and what arrived while the page was open is marked as new
    types = feed.locator(".feed-item").evaluate_all("items => items.map(i => i.dataset.type)")
    assert types.index("enrichment.completed") < types.index("enrichment.started") < types.index("contacts.imported")
    assert feed.locator(".feed-new").count() == len(types)
    console.shot("activity")

    imported.get_by_role("link", name=f"import {job['job_id']}").click()
    expect(page.locator(".job-file")).to_have_text("feed.csv")


def test_late_and_bursting_events_all_reach_the_feed_in_order(console: Console) -> None:
    """Events are stored late and out of order (bus → queue → batch function, with retries), and many can arrive
    between two polls: each one shows, in its place."""
    workspace = console.workspace
    runtime = workspace.runtime
    assert runtime.provisioned is not None
    log = ActivityLog(runtime.client("dynamodb"), runtime.provisioned.ref("StateTable"))
    now = datetime.now(UTC)

    def event(n: int, at: datetime) -> ActivityEntry:
        return ActivityEntry(
            id=f"evt-{n:04d}",
            type="enrichment.completed",
            workspace=workspace.name,
            at=at,
            request_id=f"req-{n}",
            counts={"contacts": 1, "enriched": 1},
        )

    events = [event(i, now - timedelta(seconds=30 - i)) for i in range(3)]
    log.write(events)
    page = console.open("#/activity")
    items = page.locator("#activity-feed .feed-item")
    expect(items).to_have_count(3)

    late = event(100, now - timedelta(seconds=90))  # stored after newer ones were shown (a retried batch)
    burst = [event(200 + i, now + timedelta(milliseconds=10 * i)) for i in range(120)]  # more than a page
    log.write([late, *burst])
    events += [late, *burst]
    expect(items).to_have_count(len(events))
    shown = items.evaluate_all("items => items.map(i => i.dataset.id)")
    assert shown == [e.id for e in sorted(events, key=lambda e: e.at, reverse=True)]
    assert page.locator(f'.feed-item[data-id="{late.id}"]').get_attribute("class") == "feed-item tone-success feed-new"
