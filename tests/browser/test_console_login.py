"""Signing in to the console: the key is asked once, kept for the tab's session only, and a 401 asks for it again."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import Console, Workspace


def test_the_key_is_asked_once_and_kept_for_the_tab_only(console: Console) -> None:
    page = console.open("#/contacts", sign_in=False)
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    console.shot("login")
    # a text field drawn as a secret: no password field, so the browser offers neither to save the key nor to fill it
    field = page.locator("#api-key")
    assert page.locator('input[type="password"]').count() == 0
    assert field.get_attribute("type") == "text" and field.get_attribute("autocomplete") == "off"
    assert page.locator("form.login-form").get_attribute("autocomplete") == "off"
    assert field.evaluate("e => getComputedStyle(e).webkitTextSecurity") == "disc"

    page.locator("#api-key").fill("lp_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".login-message")).to_contain_text("This key was not accepted")
    assert page.evaluate("sessionStorage.length") == 0

    console.sign_in()
    # the page asked for before signing in
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('leadpipe.apiKey')") == console.workspace.key
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert console.workspace.key not in page.url

    page.reload()  # the same tab: still signed in
    expect(page.locator("#workspace-name")).to_have_text(console.workspace.name)
    other = page.context.new_page()  # another tab has its own session: it asks again
    other.goto(console.workspace.url)
    expect(other.locator("#api-key")).to_be_visible()
    other.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#api-key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    # the notice stays: once the tasks queued by the click (a hashchange, if the address was assigned) have run
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))")
    expect(page.locator(".login-message")).to_have_text("You are signed out.")
    assert page.url.endswith("#/overview")  # where the next sign-in starts
    console.sign_in()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".login-message")).to_have_text("You are signed out.")
    page.evaluate("location.hash = '#/activity'")  # moving on while signed out keeps the notice
    expect(page).to_have_url(re.compile(r"#/activity$"))
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))")
    expect(page.locator(".login-message")).to_have_text("You are signed out.")


def test_an_answer_401_sends_you_back_to_sign_in(console: Console) -> None:
    page = console.open("#/overview")
    expect(page.locator("#pipeline-card")).to_be_visible()
    # the key stops working (revoked elsewhere, or a wrong one left in the tab): the next call answers 401
    page.evaluate("sessionStorage.setItem('leadpipe.apiKey', 'lp_' + 'y'.repeat(43))")
    console.nav("Activity")
    expect(page.locator("#api-key")).to_be_visible()
    expect(page.locator(".login-message")).to_contain_text("Your session ended")
    assert page.evaluate("sessionStorage.length") == 0
    console.shot("login-session-ended")
    console.sign_in()
    expect(page.get_by_role("heading", name="Activity", exact=True)).to_be_visible()


def test_the_console_is_public_static_files_with_a_strict_policy(workspace: Workspace) -> None:
    page = httpx.get(workspace.url, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "require-trusted-types-for 'script'" in policy and "frame-ancestors 'none'" in policy
    assert f"connect-src 'self' {workspace.runtime.aws_endpoint}" in policy  # the API, and uploads to storage
    script = httpx.get(workspace.url + "console/app.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    again = httpx.get(workspace.url + "console/app.js", headers={"If-None-Match": script.headers["etag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    # the files are public; the API behind them is not
    assert httpx.get(workspace.url + "contacts", timeout=30).status_code == 401


def test_an_address_that_cannot_be_decoded_is_not_found(console: Console) -> None:
    page = console.open("#/contact/%E0")  # a malformed %-escape: decodeURIComponent throws
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Back to the overview").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
