"""The activity feed updates by itself: runs started and completed appear at the top without reloading."""

from __future__ import annotations

from playwright.sync_api import expect

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
