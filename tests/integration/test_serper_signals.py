"""Account signals from Serper: the adapter and the signal service against the local fake, over real HTTP on
127.0.0.1, with the enrichment cache in moto (tables from template.yaml)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadpipe.deals.signals import (
    NO_KEY,
    AccountSignals,
    NewsItem,
    OrganicResult,
    SerperClient,
    SignalService,
    extract_signals,
    make_signal_service,
    parse_date,
)
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.settings import Settings
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.serper import NOT_ENOUGH_CREDITS, TOO_MANY_REQUESTS, UNAUTHORIZED, FakeSerper
from tests.integration.conftest import Sleeps

pytestmark = pytest.mark.usefixtures("deterministic_http")

NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)
ACME = ("acme.io", "Acme Robotics")
GLOBEX = ("globex.com", "Globex")
INITECH = ("initech.com", "Initech")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSerper]:
    running = FakeSerper()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def fake(server: FakeSerper) -> FakeSerper:
    server.reset()
    return server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


MakeClient = Callable[..., SerperClient]


@pytest.fixture
def make_client(fake: FakeSerper, sleeps: Sleeps) -> Iterator[MakeClient]:
    made: list[SerperClient] = []

    def build(api_key: str = "test-key", **kwargs: Any) -> SerperClient:
        kwargs.setdefault("sleep", sleeps)
        client = SerperClient(api_key, base_url=fake.url, **kwargs)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def cache(stack: Any) -> EnrichmentCache:
    return EnrichmentCache(stack.client("dynamodb"), stack.ref("EnrichCacheTable"), clock=lambda: NOW)


MakeService = Callable[..., SignalService]


@pytest.fixture
def make_service(cache: EnrichmentCache, make_client: MakeClient) -> MakeService:
    def build(api_key: str | None = "test-key", **client_kwargs: Any) -> SignalService:
        def factory(budget: Budget) -> SerperClient | None:
            return make_client(api_key, budget=budget, **client_kwargs) if api_key else None

        return SignalService(factory, cache, clock=lambda: NOW)

    return build


def seed_acme(fake: FakeSerper) -> None:
    """Funding, hiring and news about Acme Robotics, and results that do not mention it."""
    fake.add_news(
        "Acme Robotics",
        "Acme Robotics raises $40M Series B to scale warehouse robots",
        "The round was led by Example Ventures.",
        date="Oct 14, 2026",
        link="https://techcrunch.example/acme-series-b",
        source="TechCrunch",
    )
    fake.add_news(
        "Acme Robotics",
        "Acme Robotics opens a Berlin office",
        "The company's first site in Europe.",
        date="2 days ago",
        link="https://news.example.com/acme-berlin",
        source="Robot Report",
    )
    fake.add_news(
        "Acme Robotics",
        "The 50 robotics startups to watch",
        "Acme Robotics makes the list for its picking arm.",
        date="3 weeks ago",
        link="https://news.example.com/top-50",
        source="Forbes",
    )
    fake.add_news(
        "Acme Robotics",
        "Robotics stocks rally as orders rise",
        "Warehouse automation demand lifts the sector.",
        date="1 day ago",
        link="https://news.example.com/rally",
    )
    fake.add_news(
        "Acme Robotics",
        "Globex acquires a robotics start-up",
        "The deal values the start-up at $300M.",
        date="4 days ago",
        link="https://news.example.com/globex-deal",
    )
    fake.add_result(
        "Acme Robotics",
        "Senior Robotics Engineer - Acme Robotics",
        "https://boards.greenhouse.io/acmerobotics/jobs/4012",
        "Join a Series B-funded team building warehouse robots.",
    )
    fake.add_result("Acme Robotics", "Careers | Acme Robotics", "https://acme.io/careers", "Open roles in Boston.")
    fake.add_result(
        "Acme Robotics",
        "Field Technician",
        "https://jobs.lever.co/acme-robotics/9f1c",
        "Travel to customer sites across the US.",
    )
    fake.add_result(
        "Acme Robotics",
        "Acme Robotics - Crunchbase Company Profile & Funding",
        "https://www.crunchbase.com/organization/acme-robotics",
        "Acme Robotics has raised a total of $52M over 3 funding rounds.",
    )
    fake.add_result(
        "Acme Robotics",
        "Acme Robotics raises $40M Series B",
        "https://techcrunch.example/acme-series-b/",  # the news article again
        "The round was led by Example Ventures.",
        date="Oct 14, 2026",
    )
    fake.add_result(
        "Acme Robotics",
        "Acme Robotics raises $2M seed round",
        "https://news.example.com/acme-seed",
        "An early round.",
        date="Mar 3, 2021",  # older than a year
    )
    fake.add_result("Acme Robotics", "Acme Robotics", "https://acme.io/", "Warehouse robots that pick anything.")


def seed_globex(fake: FakeSerper) -> None:
    fake.add_news("Globex", "Globex expands its Springfield plant", "200 new jobs.", date="5 days ago")


def seed_initech(fake: FakeSerper) -> None:
    fake.add_news("Initech", "Initech is hiring 40 engineers", "We're hiring in Austin.", date="1 week ago")


# ------------------------------------------------------------------------------------------------ classification


def test_funding_hiring_and_news_are_classified_from_serpers_results(
    fake: FakeSerper, make_service: MakeService
) -> None:
    seed_acme(fake)

    result = make_service().signals_for([ACME])

    acme = result["acme.io"]
    assert [(s.title, s.date) for s in acme.funding] == [
        ("Acme Robotics raises $40M Series B to scale warehouse robots", dt.date(2026, 10, 14)),
        ("Acme Robotics - Crunchbase Company Profile & Funding", None),  # undated: last
    ]
    assert [s.url for s in acme.hiring] == [
        "https://boards.greenhouse.io/acmerobotics/jobs/4012",  # a job board link, though it says "Series B"
        "https://acme.io/careers",
        "https://jobs.lever.co/acme-robotics/9f1c",
    ]
    assert [(s.title, s.date, s.source) for s in acme.news] == [
        ("Acme Robotics opens a Berlin office", dt.date(2026, 11, 8), "Robot Report"),
        ("The 50 robotics startups to watch", dt.date(2026, 10, 20), "Forbes"),
    ]
    assert acme.summary == "funding: Series B (Oct 2026); hiring: 3 posts; news: 2 items"
    assert (acme.domain, acme.company_name, acme.fetched_at) == ("acme.io", "Acme Robotics", NOW)
    series_b = acme.funding[0]
    assert (series_b.kind, series_b.source, series_b.date_text, series_b.snippet) == (
        "funding",
        "TechCrunch",
        "Oct 14, 2026",
        "The round was led by Example Ventures.",
    )


def test_results_that_do_not_mention_the_company_are_ignored(fake: FakeSerper, make_service: MakeService) -> None:
    seed_acme(fake)

    acme = make_service().signals_for([ACME])["acme.io"]

    titles = {s.title for s in acme.funding + acme.hiring + acme.news}
    assert "Robotics stocks rally as orders rise" not in titles
    assert "Globex acquires a robotics start-up" not in titles  # funding words, another company
    assert "Acme Robotics raises $2M seed round" not in titles  # mentions it, but from 2021
    assert "Acme Robotics" not in titles  # the undated home page is not news
    assert len(titles) == 7  # the Series B article once, though both calls returned it


def test_the_name_must_match_as_whole_words_and_the_domain_counts_as_a_mention() -> None:
    news = [
        NewsItem(title="Acmeville council approves its budget", link="https://a.example/1", date="1 day ago"),
        NewsItem(title="Acme wins a logistics award", link="https://a.example/2", date="1 day ago"),
        NewsItem(title="Award for a robot maker", link="https://a.example/3", snippet="See acme.io for details."),
        NewsItem(title="A subdomain post", link="https://blog.acme.io/post", date="Nov 1, 2026"),
    ]
    organic = [OrganicResult(title="Support engineer", link="https://apply.workable.com/acme/j/77")]

    signals = extract_signals("www.Acme.io", "Acme, Inc.", news, organic, now=NOW)

    assert signals.domain == "acme.io"
    assert [s.url for s in signals.news] == [
        "https://a.example/2",  # 1 day ago
        "https://blog.acme.io/post",  # Nov 1
        "https://a.example/3",  # undated: last
    ]
    assert [s.url for s in signals.hiring] == ["https://apply.workable.com/acme/j/77"]


@pytest.mark.parametrize(
    ("title", "snippet", "kind"),
    [
        ("Acme closes its seed round", "", "funding"),
        ("Acme lands a funding round from Example Capital", "", "funding"),
        ("Example Capital makes an investment in Acme", "", "funding"),
        ("Globex acquired Acme", "", "funding"),
        ("Acme acquires a sensor maker", "", "funding"),
        ("Acme raises €12 million", "", "funding"),
        ("Acme's recall raises concerns", "", "news"),  # "raises" without money is not funding
        ("We're hiring at Acme", "", "hiring"),
        ("Acme has 12 job openings", "", "hiring"),
        ("Acme", "Join our team of roboticists.", "hiring"),
        ("Acme ships its new arm", "", "news"),
    ],
)
def test_the_keyword_rules(title: str, snippet: str, kind: str) -> None:
    news = [NewsItem(title=title, link="https://news.example.com/x", snippet=snippet, date="1 day ago")]

    signals = extract_signals("acme.io", "Acme", news, [], now=NOW)

    assert {"funding": signals.funding, "hiring": signals.hiring, "news": signals.news}[kind] != []
    assert len(signals.funding + signals.hiring + signals.news) == 1


def test_the_summary_without_signals_and_for_other_rounds() -> None:
    seed = [NewsItem(title="Acme raises a seed round", link="https://n.example/1", date="Sep 2, 2026")]
    deal = [NewsItem(title="Globex acquired Acme", link="https://n.example/2")]

    assert extract_signals("acme.io", "Acme", [], [], now=NOW).summary == "no recent signals"
    assert extract_signals("acme.io", "Acme", seed, [], now=NOW).summary == "funding: Seed (Sep 2026)"
    assert extract_signals("acme.io", "Acme", deal, [], now=NOW).summary == "funding: Acquisition"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 days ago", dt.date(2026, 11, 8)),
        ("3 hours ago", dt.date(2026, 11, 10)),
        ("13 hours ago", dt.date(2026, 11, 9)),
        ("1 week ago", dt.date(2026, 11, 3)),
        ("a month ago", dt.date(2026, 10, 11)),
        ("2 years ago", dt.date(2024, 11, 10)),
        ("yesterday", dt.date(2026, 11, 9)),
        ("Nov 3, 2026", dt.date(2026, 11, 3)),
        ("November 3, 2026", dt.date(2026, 11, 3)),
        ("Sept 30, 2026", dt.date(2026, 9, 30)),
        ("3 Nov 2026", dt.date(2026, 11, 3)),
        ("2026-11-03T08:00:00Z", dt.date(2026, 11, 3)),
        ("Oct 2026", dt.date(2026, 10, 1)),
        ("Feb 30, 2026", None),
        ("last spring", None),
        ("", None),
        (None, None),
    ],
)
def test_google_dates_are_parsed_where_possible(text: str | None, expected: dt.date | None) -> None:
    assert parse_date(text, NOW) == expected


# ------------------------------------------------------------------------------------------ once per account, cache


def test_each_account_is_fetched_once_however_many_deals_share_it(
    fake: FakeSerper, make_service: MakeService, cache: EnrichmentCache
) -> None:
    seed_acme(fake)
    seed_globex(fake)
    # 5 deals share Acme (spelled three ways); the one without a company name does not erase the name seen before
    deals = [ACME, ACME, GLOBEX, ("www.acme.io", "Acme Robotics"), ACME, GLOBEX, ("ACME.io", None)]
    service = make_service()

    result = service.signals_for(deals)

    assert sorted(result) == ["acme.io", "globex.com"]
    assert fake.queries("/news") == ['"Acme Robotics"', '"Globex"']
    assert fake.queries("/search") == [
        '"Acme Robotics" funding OR raised OR acquired OR hiring OR careers OR jobs',
        '"Globex" funding OR raised OR acquired OR hiring OR careers OR jobs',
    ]
    assert cache.calls["BatchGetItem"] == 1  # one read for every account
    run = service.last_run
    assert (run.accounts, run.cached, run.fetched, run.calls, run.credits, run.failed) == (2, 0, 2, 4, 4, {})
    assert result["globex.com"].summary == "news: 1 item"


def test_the_second_run_is_served_from_the_cache_misses_included(
    fake: FakeSerper, make_service: MakeService, cache: EnrichmentCache, stack: Any
) -> None:
    seed_acme(fake)
    accounts = [ACME, ("unknown.example", "Nobody Knows Co")]
    first = make_service().signals_for(accounts)
    assert first["unknown.example"].summary == "no recent signals"
    assert len(fake.calls()) == 4
    fake.reset()  # forgets its requests (and its data: a second call would find nothing)

    again = make_service(api_key=None)  # no key needed when everything is cached
    second = again.signals_for(accounts * 3)

    assert fake.calls() == []
    assert second == first
    assert (again.last_run.cached, again.last_run.skipped) == (2, None)
    stored = cache.get_many("serper", Kind.COMPANY, ["acme.io", "unknown.example"])
    assert (stored["acme.io"].found, stored["unknown.example"].found) == (True, False)
    assert AccountSignals.model_validate(stored["acme.io"].fields["signals"]) == first["acme.io"]
    items = {
        key: stack.client("dynamodb").get_item(
            TableName=stack.ref("EnrichCacheTable"), Key={"pk": {"S": f"serper#company#{key}"}}
        )["Item"]
        for key in ("acme.io", "unknown.example")
    }
    expires = {key: int(item["expires_at"]["N"]) - int(NOW.timestamp()) for key, item in items.items()}
    assert expires == {"acme.io": 30 * 86_400, "unknown.example": 7 * 86_400}  # a miss lives 7 days


def test_only_the_uncached_accounts_are_asked(fake: FakeSerper, make_service: MakeService) -> None:
    seed_acme(fake)
    seed_globex(fake)
    make_service().signals_for([ACME])
    fake.reset()
    seed_globex(fake)

    result = make_service().signals_for([ACME, GLOBEX])

    assert sorted(result) == ["acme.io", "globex.com"]
    assert fake.queries() == [
        '"Globex"',
        '"Globex" funding OR raised OR acquired OR hiring OR careers OR jobs',
    ]


def test_no_key_is_a_visible_skip(fake: FakeSerper, make_service: MakeService) -> None:
    service = make_service(api_key=None)

    assert service.signals_for([ACME, GLOBEX]) == {}
    assert service.last_run.skipped == NO_KEY == "serper: no key"
    assert fake.calls() == []


def test_the_deals_functions_service_reads_the_key_and_base_url(fake: FakeSerper, cache: EnrichmentCache) -> None:
    seed_globex(fake)
    settings = Settings(serper_base_url=fake.url)

    without = make_signal_service(settings, ProviderKeys(None, env={}), cache)
    assert without.signals_for([GLOBEX]) == {}
    assert without.last_run.skipped == NO_KEY

    keys = ProviderKeys(None, env={"SERPER_API_KEY": "test-key"})
    with_key = make_signal_service(settings, keys, cache, clock=lambda: NOW)
    assert with_key.signals_for([GLOBEX])["globex.com"].summary == "news: 1 item"
    assert {r.headers["x-api-key"] for r in fake.calls()} == {"test-key"}


# ------------------------------------------------------------------------------------------------------ the client


def test_the_client_sends_serpers_body_with_the_key_in_a_header(fake: FakeSerper, make_client: MakeClient) -> None:
    seed_acme(fake)
    fake.set_knowledge_graph("Acme Robotics", type="Robotics company", website="https://acme.io")
    client = make_client(gl="de", hl="en")

    news = client.news('"Acme Robotics"', num=3)
    page = client.search_page('"Acme Robotics" careers', num=20)

    assert [n.position for n in news] == [1, 2, 3]
    assert news[0] == NewsItem(
        title="Acme Robotics raises $40M Series B to scale warehouse robots",
        link="https://techcrunch.example/acme-series-b",
        snippet="The round was led by Example Ventures.",
        date="Oct 14, 2026",
        source="TechCrunch",
        position=1,
    )
    assert len(page.organic) == 7
    assert page.knowledge_graph == {"title": "Acme Robotics", "type": "Robotics company", "website": "https://acme.io"}
    first, second = fake.calls()
    assert (first.method, first.path, first.query) == ("POST", "/news", {})
    assert first.headers["x-api-key"] == "test-key"
    assert first.json() == {"q": '"Acme Robotics"', "num": 3, "gl": "de", "hl": "en", "tbs": "qdr:m"}
    assert second.json() == {"q": '"Acme Robotics" careers', "num": 20, "gl": "de", "hl": "en"}
    assert client.credits_used == 3  # 1, then 2 for more than 10 results
    assert client.search("nothing seeded about this") == []


def test_a_wrong_key_is_an_auth_error_without_retry(fake: FakeSerper, make_client: MakeClient, sleeps: Sleeps) -> None:
    with pytest.raises(ProviderError) as caught:
        make_client("wrong-key").news('"Acme Robotics"')

    error = caught.value
    assert (error.reason, error.status, error.retryable) == ("auth", 403, False)
    assert "Unauthorized." in error.message
    assert len(fake.calls()) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_a_bad_key_fails_every_account_after_one_call(
    fake: FakeSerper, make_service: MakeService, sleeps: Sleeps, status: int
) -> None:
    seed_acme(fake)
    if status == 401:
        fake.inject(Fault(status=401, body={"message": "Unauthorized.", "statusCode": 401}, times=1))
        service = make_service()
    else:
        service = make_service(api_key="wrong-key")  # Serper's answer to a wrong key is a 403

    assert service.signals_for([ACME, GLOBEX, INITECH]) == {}

    failed = service.last_run.failed
    assert sorted(failed) == ["acme.io", "globex.com", "initech.com"]
    assert failed["acme.io"].startswith(f"auth: HTTP {status}: ")
    assert failed["globex.com"] == "auth: not asked after the same error for acme.io"
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_a_429_with_retry_after_is_waited_out_then_succeeds(
    fake: FakeSerper, make_service: MakeService, sleeps: Sleeps
) -> None:
    seed_globex(fake)
    fake.inject(Fault(status=429, body=TOO_MANY_REQUESTS, headers={"Retry-After": "2"}, times=1))
    service = make_service()

    result = service.signals_for([GLOBEX])

    assert result["globex.com"].summary == "news: 1 item"
    assert sleeps == [2.0]
    assert (len(fake.calls()), service.last_run.calls, service.last_run.failed) == (3, 3, {})


def test_serpers_own_429_is_retried_with_back_off(fake: FakeSerper, make_client: MakeClient, sleeps: Sleeps) -> None:
    seed_globex(fake)
    clock = {"now": 1_000.0}
    fake.qps = 1
    fake.clock = lambda: clock["now"]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["now"] += seconds

    client = make_client(sleep=sleep)
    client.news('"Globex"')
    news = client.news('"Globex"')  # the same second: 429, no Retry-After; the back-off moves into the next one

    assert [n.title for n in news] == ["Globex expands its Springfield plant"]
    assert sleeps == [0.5, 1.0]  # 1000.5 is still the same second
    assert client.http.throttled == 2


def test_5xx_is_retried(fake: FakeSerper, make_client: MakeClient, sleeps: Sleeps) -> None:
    seed_globex(fake)
    fake.inject(Fault(status=502, body={"message": "Bad gateway", "statusCode": 502}, times=2))

    assert [n.source for n in make_client().news('"Globex"')] == ["Example News"]
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls()) == 3


def test_persistent_5xx_fails_that_account_only(fake: FakeSerper, make_service: MakeService, sleeps: Sleeps) -> None:
    seed_globex(fake)
    seed_initech(fake)
    fake.fail_query("Globex", Fault(status=503, body={"message": "Service Unavailable", "statusCode": 503}))
    service = make_service()

    result = service.signals_for([GLOBEX, INITECH])

    assert sorted(result) == ["initech.com"]
    assert result["initech.com"].summary == "hiring: 1 post"
    assert service.last_run.failed["globex.com"].startswith("server_error: HTTP 503")
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_timeout_is_recorded_for_that_account_while_the_others_succeed(
    fake: FakeSerper, make_service: MakeService, sleeps: Sleeps
) -> None:
    seed_acme(fake)
    seed_globex(fake)
    seed_initech(fake)
    fake.fail_query("Globex", Fault(timeout=0.5))
    service = make_service(timeout=0.1, max_retries=1)

    result = service.signals_for([ACME, GLOBEX, INITECH])

    assert sorted(result) == ["acme.io", "initech.com"]
    assert service.last_run.failed["globex.com"].startswith("timeout: no answer within the timeout")
    assert sleeps == [0.5]  # one retry, then the account is given up
    assert fake.queries().count('"Globex"') == 2  # its news call twice, its second call never made
    assert len(fake.calls()) == 6

    # the failure was not cached: the next run asks about Globex alone
    fake.reset()
    seed_globex(fake)
    assert make_service().signals_for([ACME, GLOBEX, INITECH])["globex.com"].summary == "news: 1 item"
    assert fake.queries("/news") == ['"Globex"']


def test_malformed_json_is_a_bad_response_not_retried(
    fake: FakeSerper, make_client: MakeClient, make_service: MakeService, sleeps: Sleeps
) -> None:
    seed_globex(fake)
    seed_initech(fake)
    fake.inject(Fault(malformed=True, times=1))

    with pytest.raises(ProviderError) as caught:
        make_client().news('"Globex"')
    assert caught.value.reason == "bad_response"

    fake.fail_query("Globex", Fault(malformed=True, times=1))
    service = make_service()
    result = service.signals_for([GLOBEX, INITECH])

    assert sorted(result) == ["initech.com"]
    assert service.last_run.failed["globex.com"].startswith("bad_response: not JSON")
    assert sleeps == []
    assert len(fake.calls()) == 1 + 1 + 2


@pytest.mark.parametrize(
    "body",
    [{"news": {"title": "not a list"}}, ["not", "an", "object"]],
)
def test_an_answer_in_the_wrong_shape_is_a_bad_response(fake: FakeSerper, make_client: MakeClient, body: Any) -> None:
    fake.inject(Fault(status=200, body=body, times=1))

    with pytest.raises(ProviderError) as caught:
        make_client().news('"Globex"')

    assert caught.value.reason == "bad_response"


def test_entries_without_a_title_or_link_are_skipped(fake: FakeSerper, make_client: MakeClient) -> None:
    body = {"news": [{"title": "No link"}, {"link": "https://x.example"}, {"title": "Ok", "link": "https://y.example"}]}
    fake.inject(Fault(status=200, body=body, times=1))

    assert [n.title for n in make_client().news('"Globex"')] == ["Ok"]


def test_a_spent_balance_is_a_quota_error_that_stops_the_run(
    fake: FakeSerper, make_service: MakeService, sleeps: Sleeps
) -> None:
    seed_globex(fake)
    fake.credits = 1
    service = make_service()

    assert service.signals_for([GLOBEX, INITECH]) == {}

    failed = service.last_run.failed
    assert failed["globex.com"].startswith("quota: HTTP 400: ")
    assert "Not enough credits" in failed["globex.com"]
    assert failed["initech.com"] == "quota: not asked after the same error for globex.com"
    assert len(fake.calls()) == 2  # the news call used the last credit; the search call was refused
    assert sleeps == []


def test_another_400_is_a_bad_request(fake: FakeSerper, make_client: MakeClient) -> None:
    fake.inject(Fault(status=400, body={"message": "Invalid gl", "statusCode": 400}, times=1))

    with pytest.raises(ProviderError) as caught:
        make_client().news('"Globex"')

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("bad_request", 400, False)


def test_the_budget_refuses_a_long_retry_after(fake: FakeSerper, make_client: MakeClient, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=429, body=TOO_MANY_REQUESTS, headers={"Retry-After": "120"}, times=1))

    with pytest.raises(ProviderError) as caught:
        make_client(budget=Budget(lambda: 30.0)).news('"Globex"')

    assert caught.value.reason == "budget"
    assert sleeps == []


def test_the_client_needs_a_key_and_a_query() -> None:
    with pytest.raises(ValueError, match="needs an API key"):
        SerperClient("")
    with SerperClient("k", base_url="http://127.0.0.1:9") as client, pytest.raises(ValueError, match="empty query"):
        client.news("  ")


# ------------------------------------------------------------------------------------------ the fake's own answers


def test_the_fake_answers_in_serpers_shapes(fake: FakeSerper) -> None:
    fake.add_news("Globex", "Globex expands", "200 new jobs.", date="5 days ago", link="https://n.example/g")
    fake.add_result("Globex", "Globex Corporation", "https://globex.com/", "Official site.", date="Jan 2, 2026")
    fake.credits = 10
    with httpx.Client(base_url=fake.url) as client:
        no_key = client.post("/news", json={"q": "Globex"})
        wrong = client.post("/news", json={"q": "Globex"}, headers={"X-API-KEY": "nope"})
        key = {"X-API-KEY": "test-key"}
        news = client.post("/news", json={"q": "globex news", "tbs": "qdr:w"}, headers=key)
        search = client.post("/search", json={"q": "Globex", "num": 20, "gl": "de"}, headers=key)
        unknown = client.post("/search", json={"q": "Initech"}, headers=key)
        missing = client.post("/search", json={"num": 10}, headers=key)
        fake.credits = 0
        spent = client.post("/search", json={"q": "Globex"}, headers=key)

    assert (no_key.status_code, no_key.json()) == (403, UNAUTHORIZED)
    assert (wrong.status_code, wrong.json()) == (403, UNAUTHORIZED)
    assert news.json() == {
        "searchParameters": {
            "q": "globex news",
            "gl": "us",
            "hl": "en",
            "num": 10,
            "type": "news",
            "engine": "google",
            "tbs": "qdr:w",
        },
        "news": [
            {
                "title": "Globex expands",
                "link": "https://n.example/g",
                "snippet": "200 new jobs.",
                "date": "5 days ago",
                "source": "Example News",
                "position": 1,
            }
        ],
        "credits": 1,
    }
    assert search.json() == {
        "searchParameters": {"q": "Globex", "gl": "de", "hl": "en", "num": 20, "type": "search", "engine": "google"},
        "organic": [
            {
                "title": "Globex Corporation",
                "link": "https://globex.com/",
                "snippet": "Official site.",
                "date": "Jan 2, 2026",
                "position": 1,
            }
        ],
        "credits": 2,
    }
    assert unknown.json()["organic"] == []
    assert missing.status_code == 400
    assert (spent.status_code, spent.json()) == (400, NOT_ENOUGH_CREDITS)
    assert fake.queries() == ["Globex", "Globex", "globex news", "Globex", "Initech", "Globex"]


def test_the_fake_throttles_with_429(fake: FakeSerper) -> None:
    fake.qps = 1
    fake.clock = lambda: 5_000.0
    with httpx.Client(base_url=fake.url, headers={"X-API-KEY": "test-key"}) as client:
        first = client.post("/news", json={"q": "Globex"})
        second = client.post("/news", json={"q": "Globex"})

    assert first.status_code == 200
    assert (second.status_code, second.json()) == (429, TOO_MANY_REQUESTS)
    assert "retry-after" not in second.headers
