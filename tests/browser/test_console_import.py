"""Bulk import in the console: a CSV goes through the presigned upload (a cross-origin PUT to storage, allowed by
the bucket's CORS rule) and the page follows it live to synced, with the invalid rows and their reasons."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
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


def test_a_job_waiting_for_someone_is_followed_quietly_then_no_more(console: Console) -> None:
    """Enrichment on import is off: the job's contacts stay imported. The page polls every second while the job may
    change, without drawing the card again when nothing did; a failing poll is one line, not a toast a second; and
    once nothing has changed for a while, with nothing left that happens by itself, it stops polling."""
    workspace = console.workspace
    answer = workspace.request("PUT", "/settings", json={"auto_enrich_on_import": False})
    assert answer.status_code == 200, answer.text
    domain = known_domains(12)[5]
    people = [{"Email": f"wait{i}@{domain}", "First Name": f"Wait{i}", "Job Title": "CFO"} for i in range(4)]
    people.insert(2, {"Email": "not-an-email", "First Name": "Bad", "Job Title": "x"})
    job_id = workspace.import_people(people, "waiting.csv")["job_id"]
    workspace.wait_statuses([p["Email"] for p in people if "@" in p["Email"]], {"imported"})

    page = console.page
    console.record_calls()
    # the page's clock an hour behind: the job finished "later", so the page does not take it as quiet since then
    page.clock.install(time=datetime.now(UTC) - timedelta(hours=1))
    console.open("#/overview")
    polls = re.compile(rf"/imports/{job_id}\?pipeline=true$")
    page.route(polls, lambda route: route.fulfill(status=500, json={"error": {"code": "boom", "message": "It broke."}}))
    console.pause_clock()
    console.go(f"#/import/{job_id}")
    for _ in range(3):
        console.tick()
    assert console.calls("pipeline=true") >= 3
    problem = page.locator("#job-refresh-error .alert")
    expect(problem).to_have_count(1)
    expect(problem).to_have_text("Could not refresh the import: It broke. Trying again…")
    assert page.locator(".toast").count() == 0
    console.shot("import-refresh-error", toasts=True)

    page.unroute(polls)
    console.tick()
    expect(page.locator(".job-file")).to_have_text("waiting.csv")
    expect(problem).to_have_count(0)
    expect(page.locator('.stat[data-stat="imported"] .stat-value')).to_have_text("4")
    expect(page.locator("#job-card .alert-info")).to_contain_text("Enrichment on import is off")
    expect(page.locator(".live")).to_have_attribute("data-live", "on")

    # nothing changes: polled every second, the card is not drawn again (a selected row error stays selected)
    page.evaluate(
        """() => {
          document.getElementById("job-card").dataset.drawn = "first";
          const range = document.createRange();
          range.selectNodeContents(document.querySelector(".error-row .error-value"));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
        }"""
    )
    before = console.calls("pipeline=true")
    for _ in range(3):
        console.tick()
    assert console.calls("pipeline=true") >= before + 2
    assert page.locator("#job-card").get_attribute("data-drawn") == "first"
    assert page.evaluate("getSelection().toString()") == "not-an-email"

    # quiet for 15 s, and what is left waits for someone: no more polling
    live = page.locator(".live")
    for _ in range(20):
        if live.get_attribute("data-live") == "stopped":
            break
        console.tick()
    expect(live).to_have_attribute("data-live", "stopped")
    expect(live).to_have_text("up to date")
    polled, listed = console.calls("pipeline=true"), console.calls("/imports?limit=10")
    console.tick(60_000)
    assert console.calls("pipeline=true") == polled
    assert console.calls("/imports?limit=10") > listed  # the page's other timers did run


def test_a_finished_job_opened_later_is_read_once(console: Console) -> None:
    """A job whose contacts were enriched a while ago (sync after enrichment is off): the page shows it as it is and
    does not poll it again."""
    workspace = console.workspace
    domain = known_domains(12)[4]
    people = [{"Email": f"later{i}@{domain}", "First Name": f"Later{i}", "Job Title": "CTO"} for i in range(3)]
    job_id = workspace.import_people(people, "later.csv")["job_id"]
    workspace.wait_statuses([p["Email"] for p in people], {"enriched"})

    page = console.page
    console.record_calls()
    page.clock.install(time=datetime.now(UTC) + timedelta(hours=1))  # an hour after the job
    console.open(f"#/import/{job_id}")
    expect(page.locator('.stat[data-stat="enriched"] .stat-value')).to_have_text("3")
    expect(page.locator('.step[data-step="enriched"]')).to_have_attribute("data-state", "done")
    live = page.locator(".live")
    expect(live).to_have_attribute("data-live", "stopped")
    console.pause_clock()
    polled = console.calls("pipeline=true")
    assert polled == 1
    console.tick(60_000)
    assert console.calls("pipeline=true") == polled


def test_a_failed_upload_can_be_retried_with_the_same_file(console: Console, tmp_path: Path) -> None:
    upload = tmp_path / "retry.csv"
    domain = known_domains(12)[2]
    upload.write_bytes(people_csv([{"Email": f"retry@{domain}", "First Name": "Retry", "Job Title": "CEO"}]))
    page = console.open("#/import")
    expect(page.locator("#recent-imports")).to_contain_text("No imports yet")

    uploads = re.compile(r"/imports/uploads$")
    page.route(uploads, lambda route: route.fulfill(status=503, json={"error": {"code": "busy", "message": "Busy."}}))
    picker = page.locator("#csv-file")
    picker.set_input_files(str(upload))
    expect(page.locator(".upload-status .alert-error")).to_contain_text("Busy.")
    # the field is emptied: choosing the same file again is a change, and starts the upload again
    assert picker.input_value() == ""
    page.unroute(uploads)
    picker.set_input_files(str(upload))
    expect(page).to_have_url(re.compile(r"#/import/imp_[0-9a-z]+$"))
    expect(page.locator(".job-file")).to_have_text("retry.csv")


def test_a_file_dropped_beside_the_drop_zone_does_not_leave_the_console(console: Console) -> None:
    page = console.open("#/import")
    expect(page.locator(".dropzone")).to_be_visible()
    drop = """selector => {
      const target = document.querySelector(selector);
      const results = {};
      for (const type of ["dragover", "drop"]) {
        const data = new DataTransfer();
        data.items.add(new File(["email"], "beside.csv", { type: "text/csv" }));
        const event = new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true });
        target.dispatchEvent(event);
        results[type] = event.defaultPrevented;  // not prevented: the browser would open the file in the tab
      }
      return results;
    }"""
    assert page.evaluate(drop, ".page-header") == {"dragover": True, "drop": True}
    assert page.evaluate(drop, "#recent-imports") == {"dragover": True, "drop": True}
    expect(page.locator(".upload-status")).to_be_empty()  # and nothing was uploaded
    console.nav("Overview")  # other pages leave drops to the browser
    expect(page.locator("#pipeline-card")).to_be_visible()
    assert page.evaluate(drop, ".page-header") == {"dragover": False, "drop": False}
