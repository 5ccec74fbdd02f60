"""Browser tests: the web console in Debian's chromium, driven by Playwright, against a local runtime of their own.

The runtime is started once for these tests (like tests/e2e's) and stopped as soon as the last of them has run, so
it does not sit beside the end-to-end suite's. Each test works in a workspace of its own (a fresh key), so counts,
charts and empty states are exactly what that test made. Every test saves screenshots of what it looked at into
``.leadpipe/screenshots/`` (``LEADPIPE_SCREENSHOTS`` overrides it). Chromium is never downloaded: the tests use the
system's (``apt-get install chromium``; ``LEADPIPE_CHROMIUM`` overrides the path).
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from leadpipe_local.client import ApiClient
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import ROOT, TEMPLATE
from tests.e2e.conftest import wait_until

CHROMIUM = Path(os.environ.get("LEADPIPE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("LEADPIPE_SCREENSHOTS", ROOT / ".leadpipe" / "screenshots"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--font-render-hinting=none",
]
HERE = Path(__file__).resolve().parent

expect.set_options(timeout=30_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.browser)


# ------------------------------------------------------------------------------------------------ the suite's stack


class Suite:
    """The runtime and the browser of the browser tests, closed early by the hook below (and at exit, if not)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runtime: LocalRuntime | None = None
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None

    def start_runtime(self) -> LocalRuntime:
        if self.runtime is None:
            self.runtime = LocalRuntime(TEMPLATE, api_port=0, state_dir=self.tmp, retry_delay=0).start()
        return self.runtime

    def start_browser(self) -> Browser:
        if self.browser is None:
            if not CHROMIUM.exists():
                pytest.fail(
                    f"no chromium at {CHROMIUM}: install Debian's (sudo apt-get install -y chromium), or point "
                    "LEADPIPE_CHROMIUM at a Chromium binary. Playwright never downloads one here."
                )
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        return self.browser

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        if self.playwright is not None:
            self.playwright.stop()
            self.playwright = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None


_suite: Suite | None = None


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    global _suite
    _suite = Suite(tmp_path_factory.mktemp("console"))
    yield _suite
    _suite.close()
    _suite = None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last browser test, stop the stack and the browser: the rest of the session does not need them."""
    if _suite is not None and (nextitem is None or Path(str(nextitem.fspath)).resolve().parent != HERE):
        _suite.close()


@pytest.fixture
def runtime(suite: Suite) -> LocalRuntime:
    return suite.start_runtime()


@pytest.fixture
def browser(suite: Suite) -> Browser:
    return suite.start_browser()


# ------------------------------------------------------------------------------------------------ per test


@dataclass
class Workspace:
    """A workspace of its own for one test: its key, an API client holding it, the console's URL."""

    name: str
    key: str
    runtime: LocalRuntime
    api: ApiClient

    @property
    def url(self) -> str:
        return self.runtime.api_url + "/"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.runtime.api_url + path, headers=headers, timeout=30, **kwargs)

    def import_people(self, people: list[dict[str, str]], name: str = "people.csv") -> dict[str, Any]:
        """Import rows (dicts of CSV columns) through the API and wait for the job."""
        job = self.api.import_csv(people_csv(people), name)
        return self.api.wait_job(job["job_id"], timeout=60)

    def wait_statuses(self, emails: list[str], wanted: set[str], timeout: float = 60) -> list[dict[str, Any]]:
        return wait_until(  # type: ignore[no-any-return]
            lambda: [self.api.contact(e) for e in emails],
            lambda contacts: all(c["status"] in wanted for c in contacts),
            timeout=timeout,
            what=f"{len(emails)} contacts {sorted(wanted)}",
        )


FIRST_NAMES = [
    "Amelia",
    "Noah",
    "Sofia",
    "Liam",
    "Maya",
    "Lucas",
    "Chloe",
    "Ethan",
    "Hannah",
    "Mateo",
    "Priya",
    "Jonas",
    "Elena",
    "Omar",
    "Freya",
    "Daniel",
    "Aisha",
    "Leo",
    "Clara",
    "Victor",
    "Nora",
    "Felix",
    "Ines",
    "Samuel",
    "Lea",
    "Hugo",
    "Zara",
    "Theo",
    "Mila",
    "Adrian",
    "Iris",
    "Kofi",
]
LAST_NAMES = [
    "Hart",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Brennan",
    "Kowalski",
    "Tanaka",
    "Fischer",
    "Alvarez",
    "Nakamura",
    "Rossi",
    "Bauer",
    "Silva",
    "Dubois",
    "Novak",
    "Quinn",
    "Larsen",
    "Haddad",
    "Costa",
    "Meyer",
    "Walsh",
]
TITLES = [
    "Head of Sales",
    "VP Marketing",
    "Revenue Operations Manager",
    "Account Executive",
    "CTO",
    "Sales Director",
    "Procurement Lead",
    "Head of Growth",
    "COO",
    "Customer Success Manager",
]


def roster(
    domains: list[str], n: int, *, tags: tuple[str, ...] = ("webinar-2026", "trade-show", "inbound")
) -> list[dict[str, str]]:
    """n realistic-looking people spread over the domains in order (deterministic)."""
    people = []
    for i in range(n):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i * 5) % len(LAST_NAMES)]
        people.append(
            {
                "Email": f"{first.lower()}.{last.lower()}@{domains[i % len(domains)]}",
                "First Name": first,
                "Last Name": last,
                "Job Title": TITLES[(i * 3) % len(TITLES)],
                "Tags": tags[i % len(tags)],
            }
        )
    return people


def people_csv(people: list[dict[str, str]]) -> bytes:
    columns = list(dict.fromkeys(k for p in people for k in p))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(people)
    return out.getvalue().encode()


@contextmanager
def new_workspace(runtime: LocalRuntime) -> Iterator[Workspace]:
    name = f"console-{uuid.uuid4().hex[:8]}"
    key = runtime.api_key(name, "browser tests")
    with ApiClient(runtime.api_url, api_key=key) as api:
        workspace = Workspace(name, key, runtime, api)
        if runtime.hubspot is not None:  # its own HubSpot token (the deployment's is the default workspace's only)
            answer = workspace.request("PUT", "/settings/hubspot", json={"token": runtime.hubspot.token})
            assert answer.status_code == 200, answer.text
        yield workspace


@pytest.fixture
def workspace(runtime: LocalRuntime) -> Iterator[Workspace]:
    with new_workspace(runtime) as workspace:
        yield workspace


@pytest.fixture
def other_workspace(runtime: LocalRuntime) -> Iterator[Workspace]:
    """A second workspace, for a test that signs in to both in one tab."""
    with new_workspace(runtime) as workspace:
        yield workspace


# Wraps the page's fetch, before the console's modules run: keeps each call's address, and counts the calls answered
# and read (or failed), so a test can wait for the page to have dealt with every answer.
RECORD_CALLS = """
(() => {
  const original = window.fetch;
  window.__calls = [];
  window.__answered = 0;
  const answered = () => {
    window.__answered += 1;
  };
  window.fetch = function (input, init) {
    window.__calls.push(String(input instanceof Request ? input.url : input));
    return original.call(this, input, init).then(
      (response) => {
        const text = response.text.bind(response);
        response.text = () => text().finally(answered);
        return response;
      },
      (error) => {
        answered();
        throw error;
      },
    );
  };
})();
"""


# Holds the answers to the first ``limit`` API calls the page makes whose address matches a pattern, until
# window.__release(): each call is sent at once (its answer is what the API said then) and answered late. A held call
# the page cancels (its AbortSignal) fails at once, as fetch does. window.__matched counts the matching calls, held or
# not; window.__pending the answers held now.
HOLD_CALLS = """([pattern, limit]) => {
  const original = window.fetch;
  const matches = new RegExp(pattern);
  window.__held = [];
  window.__matched = 0;
  window.__pending = 0;
  window.fetch = function (input, init) {
    if (!matches.test(String(input))) return original.call(this, input, init);
    window.__matched += 1;
    if (limit !== null && window.__held.length >= limit) return original.call(this, input, init);
    const answer = original.call(this, input, init);
    window.__pending += 1;
    return new Promise((resolve, reject) => {
      let held = true;
      const unhold = () => {
        if (held) window.__pending -= 1;
        held = false;
      };
      const signal = init && init.signal;
      if (signal) {
        signal.addEventListener("abort", () => {
          unhold();
          answer.then((response) => response.text()).catch(() => {}); // read and dropped: answered
          reject(new DOMException("aborted", "AbortError"));
        });
      }
      window.__held.push(() => {
        unhold();
        answer.then(resolve, reject);
      });
    });
  };
  window.__release = () => {
    window.fetch = original;
    for (const send of window.__held) send();
  };
}"""


@dataclass
class Console:
    """One browser tab on the console, with the problems the page reported (script errors, CSP refusals)."""

    page: Page
    workspace: Workspace
    test_name: str
    problems: list[str] = field(default_factory=list)

    def open(self, route: str = "#/overview", *, sign_in: bool = True) -> Page:
        self.page.goto(self.workspace.url + route)
        if sign_in:
            self.sign_in()
        return self.page

    def sign_in(self, workspace: Workspace | None = None) -> None:
        """Sign in with a key of the test's workspace, or of another one."""
        workspace = workspace or self.workspace
        self.page.locator("#api-key").fill(workspace.key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#workspace-name")).to_have_text(workspace.name)

    def nav(self, name: str) -> None:
        """Click an entry of the sidebar."""
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()

    def go(self, route: str) -> Page:
        self.page.evaluate("route => { location.hash = route }", route)
        return self.page

    def record_calls(self) -> None:
        """From the next page load on, keep the address of every API call the page makes (``calls`` counts them).
        Call before ``open``."""
        self.page.add_init_script(RECORD_CALLS)

    def calls(self, part: str) -> int:
        """How many API calls the page made whose address contains ``part`` (see ``record_calls``)."""
        return int(self.page.evaluate("part => window.__calls.filter(url => url.includes(part)).length", part))

    def settle(self) -> None:
        """Wait until the page has every answer to the API calls it made (see ``record_calls``), but those ``hold``
        holds."""
        wait_until(
            lambda: self.page.evaluate("[window.__calls.length, window.__answered + (window.__pending || 0)]"),
            lambda counts: counts[0] == counts[1],
            timeout=30,
            what="the answers to the page's API calls",
        )

    def hold(self, pattern: str, limit: int | None = None) -> None:
        """Hold the answers to the API calls the page makes from now on whose address matches ``pattern`` (a
        JavaScript regular expression), the first ``limit`` of them (all by default), until ``release``. Call after
        ``record_calls``."""
        self.page.evaluate(HOLD_CALLS, [pattern, limit])

    def matched(self) -> int:
        """How many calls matched the pattern of ``hold``, held or not."""
        return int(self.page.evaluate("window.__matched"))

    def release(self) -> None:
        """Give the page the held answers (of the calls it has not cancelled), and stop holding."""
        self.page.evaluate("window.__release()")

    def pause_clock(self) -> None:
        """Stop the page's clock (``page.clock.install()`` before it loaded) a moment after its present time: from
        here on its timers fire only when the test says so (``tick``)."""
        now = self.page.evaluate("Date.now()") / 1000
        self.page.clock.pause_at(datetime.fromtimestamp(now + 1, UTC))

    def tick(self, ms: int = 1000) -> None:
        """With the page's clock paused (``page.clock.pause_at``): let ``ms`` of its time pass, firing its timers,
        and wait for the answers to the calls they made."""
        self.settle()
        self.page.clock.run_for(ms)
        self.settle()

    def shot(self, name: str, *, full_page: bool = True, toasts: bool = False) -> Path:
        """A screenshot named after what it shows (the whole page unless a modal is open). Notifications that
        happened to be showing are left out unless they are the point."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if not toasts:
            self.page.evaluate("document.getElementById('toasts').replaceChildren()")
        self.page.wait_for_timeout(350)  # let transitions (bars, highlights) settle
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def console(browser: Browser, workspace: Workspace, request: pytest.FixtureRequest) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1, locale="en-US")
    page = context.new_page()
    tab = Console(page, workspace, request.node.name)

    def on_console(message: Any) -> None:
        # a 401/404 answer the page handles shows as "Failed to load resource"; anything else is a problem
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            tab.problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    yield tab
    context.close()
    assert tab.problems == [], "the page reported problems (script errors or CSP refusals)"
