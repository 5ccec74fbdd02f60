"""One contact in the console: every enriched field with its provider, confidence and time; HubSpot ids and link;
engagements; and erasure, which asks for a typed confirmation first."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Console, Workspace
from tests.e2e.test_enrichment import known_domains


def enriched_contact(workspace: Workspace, first: str, last: str, domain_index: int, *, sync: bool) -> dict[str, Any]:
    """A contact imported and enriched (and synced to the HubSpot fake, if asked), with an engagement."""
    email = f"{first}.{last}@{known_domains(12)[domain_index]}".lower()
    workspace.import_people(
        [
            {
                "Email": email,
                "First Name": first,
                "Last Name": last,
                "Job Title": "VP Sales",
                "Phone": "+44 20 7946 0000",
                "Tags": "webinar-2026",
            }
        ]
    )
    workspace.wait_statuses([email], {"enriched"})
    if sync:
        assert workspace.request("POST", "/sync", json={"emails": [email]}).status_code == 202
        workspace.wait_statuses([email], {"synced"})
    engagement = {"type": "meeting_booked", "details": {"subject": "Intro call"}}
    assert workspace.request("POST", f"/contacts/{email}/engagements", json=engagement).status_code == 201
    return workspace.api.contact(email)


def test_a_contact_shows_where_every_field_came_from(console: Console) -> None:
    workspace = console.workspace
    portal = random.randint(10_000_000, 99_999_999)
    assert workspace.request("PUT", "/settings/hubspot", json={"portal_id": portal}).status_code == 200
    contact = enriched_contact(workspace, "Ada", "Brook", 11, sync=False)
    email = contact["email"]

    page = console.open("#/contacts")
    page.locator(f'.contact-row[data-email="{email}"] .contact-link').click()
    expect(page.get_by_role("heading", name="Ada Brook")).to_be_visible()
    expect(page.locator(".contact-header .status")).to_have_text("Enriched")
    expect(page.locator(".contact-header")).to_contain_text("lifecycle: converted")  # the meeting advanced it
    expect(page.locator("#hubspot-card")).to_contain_text("Not in HubSpot yet")
    page.get_by_role("button", name="Sync to HubSpot").click()
    expect(page.locator(".toast").last).to_contain_text("Queued for sync to HubSpot")
    expect(page.locator(".contact-header .status")).to_have_text("Synced", timeout=60_000)  # by itself
    contact = workspace.api.contact(email)

    enrichment = contact["enrichment"]
    assert isinstance(enrichment, dict) and len(enrichment) >= 8
    rows = page.locator(".field-row")
    expect(rows).to_have_count(len(enrichment))
    for field, value in enrichment.items():
        row = page.locator(f'.field-row[data-field="{field}"]')
        expect(row.locator(".field-source")).to_have_text(value["provider"])
        meter = row.locator(".field-confidence .meter")
        assert meter.get_attribute("title") == f"confidence {value['confidence']}"
        shown = float(meter.locator(".meter-value").inner_text().rstrip("%"))
        assert abs(shown - value["confidence"] * 100) <= 0.5 + 1e-9
        assert row.locator(".field-time time").get_attribute("datetime") == value["fetched_at"]
    industry = page.locator('.field-row[data-field="industry"]')
    expect(industry.locator(".field-value")).to_contain_text(str(enrichment["industry"]["value"]))
    agreed = [f for f, v in enrichment.items() if v["agreed_by"]]
    assert agreed, "the sample providers agree on some company fields"
    expect(page.locator(f'.field-row[data-field="{agreed[0]}"] .agree')).to_contain_text("confirmed by")
    expect(page.locator("#run-card")).to_contain_text(" → ".join(contact["enrichment_meta"]["sources_asked"]))

    hubspot = contact["hubspot"]
    expect(page.locator("#hubspot-card .hubspot-id")).to_have_text(hubspot["contact_id"])
    link = page.get_by_role("link", name="Open in HubSpot ↗")
    assert link.get_attribute("href") == f"https://app.hubspot.com/contacts/{portal}/record/0-1/{hubspot['contact_id']}"
    assert link.get_attribute("rel") == "noopener noreferrer"
    expect(page.locator('#engagements-card .timeline-item[data-type="meeting_booked"]')).to_contain_text("Intro call")
    expect(page.locator("#sources-card")).to_contain_text("people.csv")
    console.shot("contact")


def test_erasing_a_contact_asks_first_then_leaves_nothing(console: Console) -> None:
    workspace = console.workspace
    contact = enriched_contact(workspace, "Erin", "Vale", 10, sync=True)
    email = contact["email"]
    page = console.open(f"#/contact/{email}")
    expect(page.locator(".contact-header .status")).to_have_text("Synced")

    page.get_by_role("button", name="Erase…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Erase {email}?")
    confirm = dialog.get_by_role("button", name="Erase permanently")
    expect(confirm).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert workspace.request("GET", f"/contacts/{email}").status_code == 200  # cancelled: nothing happened

    page.get_by_role("button", name="Erase…").click()
    dialog.get_by_label("confirmation").fill("eras")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("confirmation").fill("erase")
    dialog.get_by_label("Also delete the contact in HubSpot (GDPR delete)").check()
    expect(confirm).to_be_enabled()
    console.shot("contact-erase", full_page=False)
    confirm.click()
    expect(page.locator(".toast").last).to_contain_text(f"{email} was erased and suppressed. HubSpot: deleted.")
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    expect(page.locator(f'.contact-row[data-email="{email}"]')).to_have_count(0)

    assert workspace.request("GET", f"/contacts/{email}").status_code == 404
    assert console.workspace.runtime.hubspot is not None
    assert console.workspace.runtime.hubspot.get("contacts", contact["hubspot"]["contact_id"]) is None
    page.goto(workspace.url + f"#/contact/{email}")
    expect(page.locator(".empty")).to_contain_text("Contact not found")


@pytest.mark.parametrize("route", ["#/contact/nobody%40nowhere.example", "#/import/imp_00000000000000000000000000"])
def test_what_does_not_exist_says_so(console: Console, route: str) -> None:
    page = console.open(route)
    missing = "Contact not found" if "contact" in route else "Import not found"
    expect(page.get_by_role("heading", name=missing)).to_be_visible()


def test_the_hubspot_link_is_the_signed_in_workspaces(console: Console, other_workspace: Workspace) -> None:
    """The portal of the link comes from GET /settings of the workspace signed in: not kept from an earlier sign-in
    in the same tab, and asked again after a failure."""
    first, second = console.workspace, other_workspace
    portals = random.sample(range(10_000_000, 99_999_999), 2)
    for workspace, portal in zip((first, second), portals, strict=True):
        assert workspace.request("PUT", "/settings/hubspot", json={"portal_id": portal}).status_code == 200
    mine = enriched_contact(first, "Cleo", "Marsh", 9, sync=True)
    theirs = enriched_contact(second, "Dov", "Reyes", 8, sync=True)
    link = console.page.get_by_role("link", name="Open in HubSpot ↗")

    def href(contact: dict[str, Any], portal: int) -> str:
        return f"https://app.hubspot.com/contacts/{portal}/record/0-1/{contact['hubspot']['contact_id']}"

    # GET /settings fails: no link for now, and the next page asks again
    page = console.page
    settings = re.compile(r"/settings$")
    page.route(settings, lambda route: route.fulfill(status=503, json={"error": {"code": "busy", "message": "Busy."}}))
    console.open(f"#/contact/{mine['email']}")
    expect(page.locator("#hubspot-card .hubspot-id")).to_have_text(mine["hubspot"]["contact_id"])
    expect(link).to_have_count(0)
    page.unroute(settings)
    console.nav("Contacts")
    page.locator(f'.contact-row[data-email="{mine["email"]}"] .contact-link').click()
    expect(link).to_have_attribute("href", href(mine, portals[0]))

    # signed out, and in again with the other workspace's key, in the same tab: its portal
    page.get_by_role("button", name="Sign out").click()
    console.sign_in(second)
    console.go(f"#/contact/{theirs['email']}")
    expect(page.locator("#hubspot-card .hubspot-id")).to_have_text(theirs["hubspot"]["contact_id"])
    expect(link).to_have_attribute("href", href(theirs, portals[1]))
