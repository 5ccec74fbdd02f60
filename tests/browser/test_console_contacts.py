"""The contacts table: cursor pagination, the filters (status, domain, tag, quality), user data shown as text, and
enrich / sync of a selection."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Console, roster, wait_until
from tests.e2e.test_enrichment import known_domains

HOSTILE = '<img src=x onerror="window.__xss=1">'


def test_contacts_filter_page_and_act_on_a_selection(console: Console) -> None:
    first, second = known_domains(12)[9:11]
    people = roster([first], 30, tags=("webinar-2026", "trade-show", "trade-show"))
    for person in people[20:]:
        person["Email"] = person["Email"].replace(first, second)
    mallory = {
        "Email": f"mallory@{second}",
        "First Name": HOSTILE,
        "Last Name": "<b>bold</b>",
        "Job Title": "<script>window.__xss=2</script>",
        "Tags": "trade-show",
    }
    workspace = console.workspace
    workspace.import_people([mallory], "mallory.csv")  # first, so the oldest: on the second page
    workspace.import_people(people, "team.csv")
    people.append(mallory)
    workspace.wait_statuses([p["Email"] for p in people], {"enriched"})

    page = console.open("#/contacts")
    rows = page.locator(".contact-row")
    expect(rows).to_have_count(25)
    expect(page.locator(".pager-text")).to_have_text("Page 1 · contacts 1\u201325")
    console.shot("contacts")
    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(6)
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_role("button", name="← Previous").click()
    expect(rows).to_have_count(25)
    first_page = {rows.nth(i).get_attribute("data-email") for i in range(25)}
    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(6)
    second_page = {rows.nth(i).get_attribute("data-email") for i in range(6)}
    assert first_page | second_page == {p["Email"] for p in people} and not first_page & second_page

    # user data is text, never markup
    row = page.locator(f'.contact-row[data-email="mallory@{second}"]')
    expect(row.locator(".contact-link")).to_have_text(f"{HOSTILE} <b>bold</b>")
    expect(row).to_contain_text("<script>window.__xss=2</script>")
    assert page.evaluate("window.__xss") is None and page.locator(".contacts-table img, .contacts-table b").count() == 0

    # filters, kept in the address so a filtered view can be shared or reloaded
    page.get_by_placeholder("Company domain").fill(second)
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(11)
    assert page.url.endswith(f"#/contacts?domain={second}")
    page.get_by_placeholder("Tag").fill("webinar-2026")
    page.get_by_role("button", name="Apply filters").click()
    alpha = {p["Email"] for p in people if p["Tags"] == "webinar-2026" and p["Email"].endswith(second)}
    expect(rows).to_have_count(len(alpha))
    assert {rows.nth(i).get_attribute("data-email") for i in range(len(alpha))} == alpha
    page.get_by_role("link", name="Reset").click()
    expect(rows).to_have_count(25)
    page.get_by_label("status").select_option("synced")
    expect(page.locator(".empty")).to_contain_text("No contacts match these filters")
    page.get_by_label("status").select_option("enriched")
    expect(rows).to_have_count(25)
    page.get_by_label("quality").select_option("high")  # the API's min_quality / max_quality
    high = [c["email"] for c in workspace.api.contacts(status="enriched", min_quality=0.7, limit=25)["items"]]
    expect(rows).to_have_count(len(high))
    qualities = [float(q) for q in page.locator(".contact-row .meter-value").all_inner_texts()]
    assert qualities and all(q >= 0.7 for q in qualities)
    page.get_by_label("quality").select_option("low")
    low = workspace.api.contacts(status="enriched", max_quality=0.4, limit=25)["items"]
    if low:
        expect(rows).to_have_count(len(low))
    else:
        expect(page.locator(".empty")).to_contain_text("No contacts match these filters")
    assert page.url.endswith("quality=low")

    # select two rows, sync them to HubSpot: their status moves on in the table by itself
    page.get_by_role("link", name="Reset").click()
    expect(rows).to_have_count(25)
    chosen = [rows.nth(i).get_attribute("data-email") for i in (1, 2)]
    for email in chosen:
        page.get_by_label(f"select {email}").check()
    expect(page.locator(".selection-count")).to_have_text("2 selected")
    console.shot("contacts-selection")
    page.locator("#sync-selected").click()
    expect(page.locator(".toast")).to_contain_text("2 contacts queued for sync to HubSpot")
    for email in chosen:
        expect(page.locator(f'.contact-row[data-email="{email}"] .status')).to_have_text("Synced", timeout=60_000)
    assert all(workspace.api.contact(e)["hubspot"]["contact_id"] for e in chosen)
    assert workspace.api.contact(rows.nth(0).get_attribute("data-email") or "")["status"] == "enriched"

    # and enrich one again: it goes back through the waterfall (a new enrichment request)
    before = workspace.api.contact(chosen[0])["enrichment_meta"]["request_id"]
    page.get_by_label(f"select {chosen[0]}").check()
    page.locator("#enrich-selected").click()
    expect(page.locator(".toast").last).to_contain_text("1 contact queued for enrichment")
    wait_until(
        lambda: workspace.api.contact(chosen[0]),
        lambda c: c["enrichment_meta"]["request_id"] != before and c["status"] in {"enriched", "synced"},
        what="the second enrichment",
    )


def test_only_the_latest_load_draws_the_table(console: Console) -> None:
    """A refresh of page 1 still on its way when Next is clicked: its answer must not land under "Page 2". And the
    2 s refresh does not start a load over one in flight."""
    workspace = console.workspace
    domain = known_domains(12)[8]
    people = roster([domain], 30)
    workspace.import_people(people, "late.csv")
    workspace.wait_statuses([p["Email"] for p in people], {"enriched"})

    page = console.page
    console.record_calls()
    page.clock.install()
    console.open("#/contacts")
    rows = page.locator(".contact-row")
    expect(rows).to_have_count(25)
    first_page = set(rows.evaluate_all("rows => rows.map(r => r.dataset.email)"))
    console.pause_clock()

    console.hold(r"/contacts\?(?!.*cursor=)")  # the first page's answers come late
    chosen = rows.nth(0).get_attribute("data-email")
    page.get_by_label(f"select {chosen}").check()
    page.locator("#enrich-selected").click()  # then the table is loaded again (quietly), and followed every 2 s
    expect(page.locator(".toast")).to_contain_text("1 contact queued for enrichment")
    page.wait_for_function("window.__held.length === 1")
    for _ in range(3):
        console.tick(2000)
    assert console.matched() == 1  # no refresh started over the load in flight

    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(5)
    expect(page.locator(".pager-text")).to_have_text("Page 2 · contacts 26\u201330")
    console.release()  # page 1's answer arrives now
    console.settle()
    assert page.locator(".pager-text").inner_text() == "Page 2 · contacts 26\u201330"
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.email)"))
    assert len(shown) == 5 and not shown & first_page


def test_imported_contacts_are_not_refreshed_when_the_workspace_does_not_enrich_on_import(console: Console) -> None:
    """With enrichment on import off, an imported contact waits for someone: the table and the contact page do not
    refresh it every 2 s. A row just acted on is followed until it has changed, and no longer."""
    workspace = console.workspace
    answer = workspace.request("PUT", "/settings", json={"auto_enrich_on_import": False})
    assert answer.status_code == 200, answer.text
    people = roster([known_domains(12)[7]], 3)
    emails = [p["Email"] for p in people]
    workspace.import_people(people, "waiting.csv")
    workspace.wait_statuses(emails, {"imported"})

    page = console.page
    console.record_calls()
    page.clock.install()
    console.open("#/contacts")
    rows = page.locator(".contact-row")
    expect(rows).to_have_count(3)
    expect(page.locator('.contact-row .status[data-status="imported"]')).to_have_count(3)
    console.pause_clock()
    for _ in range(3):
        console.tick(2000)
    assert console.calls("/contacts?") == 1

    page.get_by_label(f"select {emails[0]}").check()
    page.locator("#enrich-selected").click()
    expect(page.locator(".toast")).to_contain_text("1 contact queued for enrichment")
    workspace.wait_statuses(emails[:1], {"enriched"})
    console.tick(2000)
    expect(page.locator(f'.contact-row[data-email="{emails[0]}"] .status')).to_have_text("Enriched")
    loads = console.calls("/contacts?")
    for _ in range(3):
        console.tick(2000)
    assert console.calls("/contacts?") == loads  # the row acted on has changed: no more refreshing

    console.go(f"#/contact/{emails[1]}")
    expect(page.locator(".contact-header .status")).to_have_text("Imported")
    for _ in range(3):
        console.tick(2000)
    assert console.calls("/engagements") == 1
