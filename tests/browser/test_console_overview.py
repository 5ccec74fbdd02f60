"""The overview: status and summary as charts (pipeline, quality distribution, coverage by provider, industries,
company sizes, countries), drawn from GET /status and GET /summary; an empty workspace says what to do."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Console, roster
from tests.e2e.test_enrichment import known_domains


def test_an_empty_workspace_says_what_to_do(console: Console) -> None:
    page = console.open("#/overview")
    expect(page.locator("#pipeline-card .empty")).to_contain_text("No contacts yet")
    expect(page.locator("#quality-card .empty")).to_contain_text("Nothing scored yet")
    expect(page.locator(".kpi-total .kpi-value")).to_have_text("0")
    page.locator("#pipeline-card").get_by_role("link", name="Import a CSV").click()
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()


def test_status_and_summary_are_drawn_as_charts(console: Console) -> None:
    workspace = console.workspace
    domains = known_domains(12)
    weighted = [d for d, n in zip(domains, (6, 5, 4, 3, 2, 2, 1, 1, 1, 1), strict=False) for _ in range(n)]
    people = roster(weighted, len(weighted))
    people += [
        {"Email": f"{p['First Name'].lower()}.{i}@gmail.com", "First Name": p["First Name"]}
        for i, p in enumerate(people[:3])
    ]
    workspace.import_people(people, "overview.csv")
    workspace.wait_statuses([p["Email"] for p in people], {"enriched"})
    status = workspace.request("GET", "/status").json()
    summary = workspace.request("GET", "/summary").json()

    page = console.open("#/overview")
    expect(page.locator(".kpi-total .kpi-value")).to_have_text(str(status["total"]))
    expect(page.locator(".kpi-enriched .kpi-value")).to_have_text(str(len(people)))
    # the pipeline: one segment per status that has contacts, a legend with every status
    legend = page.locator(".pipeline-bar .legend-item")
    expect(legend).to_have_count(7)
    for status_name, n in status["counts"].items():
        expect(page.locator(f'.pipeline-bar .legend-item[data-status="{status_name}"] .legend-value')).to_have_text(
            str(n)
        )
    expect(page.locator(".pipeline-bar .stacked-part")).to_have_count(sum(1 for n in status["counts"].values() if n))

    # quality distribution: ten buckets, the contacts scored, the threshold marked
    bars = page.locator("svg.chart-quality rect.bar")
    expect(bars).to_have_count(10)
    drawn = [int(bars.nth(i).get_attribute("data-value") or -1) for i in range(10)]
    assert drawn == [b["contacts"] for b in summary["quality"]] and sum(drawn) == summary["enriched"] == len(people)
    expect(page.locator("svg.chart-quality .marker-label")).to_have_text("min 0.7")
    below = page.locator("svg.chart-quality rect.bar-below")
    assert sum(int(below.nth(i).get_attribute("data-value") or 0) for i in range(below.count())) == sum(
        b["contacts"] for b in summary["quality"] if float(b["range"].split("-")[0]) < 0.7
    )

    # coverage by provider, top industries, company sizes, countries
    coverage = page.locator(".coverage-list .bar-row")
    expect(coverage).to_have_count(len(summary["coverage"]))
    top = summary["coverage"][0]
    expect(coverage.first.locator(".bar-label")).to_have_text(top["provider"])
    share, contacts = coverage.first.locator(".bar-number").inner_text().split("% · ")
    assert abs(float(share) - top["share_of_enriched"] * 100) <= 0.5 + 1e-9 and int(contacts) == top["contacts"]
    industries = page.locator(".industry-list .bar-row")
    expect(industries).to_have_count(len(summary["industries"]))
    assert industries.locator(".bar-label").all_text_contents() == [i["value"] for i in summary["industries"]]
    expect(page.locator("svg.chart-sizes rect.bar")).to_have_count(len(summary["company_sizes"]))
    expect(page.locator(".country-list .bar-row")).to_have_count(len(summary["countries"]))

    # configuration in force, and the runs
    expect(page.get_by_role("switch", name="Enrich on import")).to_be_checked()
    expect(page.locator("#automation-card .provider-on")).to_have_count(len(status["config"]["providers_configured"]))
    expect(page.locator("#runs-card")).to_contain_text("completed")
    console.shot("overview")


def test_a_late_refresh_does_not_draw_over_a_newer_one(console: Console) -> None:
    """The 15 s refresh's answer comes late, after the Refresh button's: the newer one stays. And the timer does not
    start a refresh over one in flight."""
    page = console.page
    console.record_calls()
    page.clock.install()
    console.open("#/overview")
    total = page.locator(".kpi-total .kpi-value")
    expect(total).to_have_text("0")
    console.pause_clock()
    console.hold(r"/status$", limit=1)
    console.tick(15_000)  # the refresh: its answer (no contacts yet) is on its way
    for _ in range(2):
        console.tick(15_000)
    assert console.matched() == 1  # no refresh over it

    domain = known_domains(12)[7]
    console.workspace.import_people(roster([domain], 3), "three.csv")
    page.get_by_role("button", name="Refresh").click()
    expect(total).to_have_text("3")
    console.release()  # the first refresh's answer arrives now
    console.settle()
    assert total.inner_text() == "3"
