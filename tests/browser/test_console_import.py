"""Bulk import in the console: a CSV goes through the presigned upload (a cross-origin PUT to storage, allowed by
the bucket's CORS rule) and the page follows it live to synced, with the invalid rows and their reasons."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import Console, people_csv
from tests.e2e.test_enrichment import known_domains


def stat(console: Console, name: str) -> str:
    return console.page.locator(f'.stat[data-stat="{name}"] .stat-value').inner_text()


def test_a_csv_dropped_in_the_console_is_imported_enriched_and_synced(console: Console, tmp_path: Path) -> None:
    domains = known_domains(12)[6:9]
    people = [
        {
            "Email": f"buyer{i}@{domains[i % 3]}",
            "First Name": f"Buyer{i}",
            "Last Name": "Lane",
            "Job Title": "Head of Sales",
        }
        for i in range(6)
    ]
    people.insert(2, {"Email": "not-an-email", "First Name": "Bad", "Last Name": "Row", "Job Title": "x"})
    people.append({"Email": "", "First Name": "No", "Last Name": "Email", "Job Title": "y"})
    upload = tmp_path / "q3-leads.csv"
    upload.write_bytes(people_csv(people))

    page = console.open("#/overview")
    # this workspace syncs enriched contacts to HubSpot on its own: switched on here, in the console
    sync_switch = page.get_by_role("switch", name="Sync after enrichment")
    expect(sync_switch).not_to_be_checked()
    sync_switch.click()
    expect(page.locator(".toast")).to_contain_text("Sync after enrichment: on")
    assert console.workspace.request("GET", "/settings").json()["automation"]["auto_sync_after_enrich"]["value"]

    console.nav("Import")
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()
    expect(page.locator("#recent-imports")).to_contain_text("No imports yet")
    page.locator("#csv-file").set_input_files(str(upload))

    expect(page).to_have_url(re.compile(r"#/import/imp_[0-9a-z]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".job-file")).to_have_text("q3-leads.csv")
    expect(page.locator('.stat[data-stat="rows"] .stat-value')).to_have_text("8")
    assert (stat(console, "valid"), stat(console, "invalid"), stat(console, "imported")) == ("6", "2", "6")
    errors = page.locator(".error-row")
    expect(errors).to_have_count(2)
    assert [errors.nth(i).get_attribute("data-code") for i in range(2)] == ["invalid_email", "missing_email"]
    assert [errors.nth(i).get_attribute("data-row") for i in range(2)] == ["4", "9"]  # as a spreadsheet numbers them
    expect(errors.first).to_contain_text("not-an-email")

    # live: enrichment, then the automatic sync, without reloading the page
    expect(page.locator('.stat[data-stat="enriched"] .stat-value')).to_have_text("6", timeout=60_000)
    expect(page.locator('.stat[data-stat="synced"] .stat-value')).to_have_text("6", timeout=60_000)
    expect(page.locator('.step[data-step="synced"]')).to_have_attribute("data-state", "done")
    expect(page.locator(".job-pipeline .legend-item[data-status='synced'] .legend-value")).to_have_text("6")
    console.shot("import")

    job = console.workspace.api.job(job_id)
    assert job["source"] == "upload" and job["status"] == "completed_with_errors"
    synced = [console.workspace.api.contact(p["Email"]) for p in people if "@" in p["Email"]]
    assert all(c["status"] == "synced" and c["hubspot"]["contact_id"] for c in synced)
    expect(page.locator(f'#recent-imports .job-row[data-job="{job_id}"]')).to_contain_text("q3-leads.csv")
