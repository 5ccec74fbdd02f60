"""Account signals for closed-deal enrichment: recent news, hiring and funding about a company, from Serper's Google
search API, classified by keyword rules and cached per account.

Serper (https://serper.dev; request shape as in its playground and client libraries):

- ``POST https://google.serper.dev/search`` (web results) and ``POST https://google.serper.dev/news`` (Google News),
  key in the ``X-API-KEY`` header, JSON body ``{"q", "num", "gl", "hl", "tbs"}``: ``num`` results (10 by default),
  ``gl`` country and ``hl`` language (Serper's defaults ``us``/``en`` when left out), ``tbs`` Google's time filter
  (``qdr:h``/``qdr:d``/``qdr:w``/``qdr:m``/``qdr:y``: past hour ... past year).
- ``200``: ``{"searchParameters": {...}, "organic": [{"title", "link", "snippet", "date"?, "position", ...}],
  "knowledgeGraph"?: {"title", "type", "website", "description", "attributes", ...}, "credits": n}`` for ``/search``;
  ``{"searchParameters": {...}, "news": [{"title", "link", "snippet", "date", "source", "imageUrl"?, "position"}],
  "credits": n}`` for ``/news``. ``date`` is Google's text: relative ("2 days ago") or absolute ("Nov 3, 2026").
- Errors are ``{"message": ..., "statusCode": n}``: a missing or wrong key is ``403`` ``"Unauthorized."``; a spent
  balance is ``400`` ``"Not enough credits"``; going over the plan's queries per second is ``429``. No Retry-After
  or rate-limit headers are documented; one is honoured if sent.

``ProviderHttp`` does the HTTP: timeouts, 429 and 5xx retried with back-off (Retry-After first), 401/403 a bad key,
the per-container rate limit (``RATE_LIMIT``, kept well under the smallest plan's rate) and the invocation's budget.
The one status it cannot read alone is ``400``: "Not enough credits" is a quota error here, any other 400 a bad
request; neither is retried.

Signals. For each account (domain + company name) two Serper calls at most: ``/news`` for ``"<name>"`` over the past
month, and ``/search`` for ``"<name>"`` with funding and hiring words. Each result is kept only when it mentions the
company, then classified by the first rule that matches:

1. it mentions the company: the name (or the name without a legal suffix such as Inc, Ltd or GmbH) as whole words in
   the title or snippet, or the domain in the text or as the link's host (or a subdomain of it), or the company's
   slug as the first path segment of a job-board link (``boards.greenhouse.io/acme``); otherwise it is ignored;
2. **hiring** when the link is a job posting: a job board host (greenhouse.io, lever.co, workable.com, ashbyhq.com),
   a ``jobs.`` or ``careers.`` host, or a ``/jobs`` or ``/careers`` path segment;
3. **funding** when the title or snippet says so: "Series A" ... "Series H", "seed"/"pre-seed", "funding" (round),
   "investment"/"invests"/"invested", "acquires"/"acquired"/"acquisition"; or "raises"/"raised"/"raising" together
   with an amount of money ("$40M", "€2 million") -- "raises concerns" is not funding;
4. **hiring** when the title or snippet says "hiring" ("we're hiring"), "careers", "job opening(s)", "open
   positions"/"open roles" or "join our team";
5. **news**: anything else from ``/news``, and anything else from ``/search`` that carries a date (an undated web page
   -- a home page, a directory profile -- is not news).

Results are de-duplicated by link (news first), dated ones older than ``max_age_days`` (365) are dropped, and each
list is ordered newest first (undated last). ``summary`` reads e.g. ``funding: Series B (Oct 2026); hiring: 3 posts;
news: 5 items`` (the most recent funding signal's round).

Caching: the enrichment cache, provider ``serper``, ``Kind.COMPANY``, key = domain, the ``AccountSignals`` JSON in
``Answer.fields["signals"]``; an account without signals is cached as a miss (the shorter TTL). One ``get_many`` for
all accounts of a run; only the rest are asked, each once however many deals share it. A provider failure for one
account is recorded in ``SignalService.last_run.failed`` (and not cached); the others still get their signals. A bad
key, a spent balance or the exhausted time budget stops the run's remaining calls (they would fail the same way).
Without a key nothing is asked: ``last_run.skipped == "serper: no key"``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget, ProviderHttp
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import Answer, ProviderError, RateLimit
from leadpipe.models import utcnow
from leadpipe.observability import count, logger
from leadpipe.settings import Settings

NAME = "serper"
DEFAULT_BASE_URL = "https://google.serper.dev"
KEY_ENV = "SERPER_API_KEY"
SEARCH_PATH = "/search"
NEWS_PATH = "/news"
# Per container. Serper sells plans by queries per second; this stays well under the smallest of them.
RATE_LIMIT = RateLimit(10, 1.0)
MAX_NUM = 100
NO_KEY = f"{NAME}: no key"
# Errors after which asking about the next account would fail the same way.
FATAL_REASONS = frozenset({"auth", "quota", "budget"})

SignalKind = Literal["funding", "hiring", "news"]


# --------------------------------------------------------------------------------------------------- Serper client


class NewsItem(BaseModel):
    """One entry of ``/news``'s ``news`` list."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    title: str
    link: str
    snippet: str = ""
    date: str | None = None
    source: str | None = None
    image_url: str | None = Field(default=None, alias="imageUrl")
    position: int | None = None


class OrganicResult(BaseModel):
    """One entry of ``/search``'s ``organic`` list."""

    model_config = ConfigDict(extra="ignore")

    title: str
    link: str
    snippet: str = ""
    date: str | None = None
    position: int | None = None


class SearchPage(BaseModel):
    organic: list[OrganicResult] = Field(default_factory=list)
    knowledge_graph: dict[str, Any] | None = None
    credits: int | None = None


def classify_error(response: httpx.Response) -> ProviderError | None:
    """Serper's spent balance is a 400; every other status follows ``ProviderHttp``'s rules."""
    if response.status_code == 400 and "not enough credits" in response.text.casefold():
        return ProviderError(NAME, "quota", f"HTTP 400: {response.text[:300]}", status=400, retryable=False)
    return None


class SerperClient:
    """Serper's ``/news`` and ``/search`` over ``ProviderHttp``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 10.0,
        max_retries: int = 3,
        rate_limit: RateLimit = RATE_LIMIT,
        gl: str | None = None,
        hl: str | None = None,
    ) -> None:
        if not api_key:
            raise ValueError(f"{NAME} needs an API key")
        self.gl = gl
        self.hl = hl
        self.credits_used = 0  # as Serper reports them in each answer
        self.http = ProviderHttp(
            NAME,
            base_url,
            rate_limit=rate_limit,
            # In a header, never in the URL (URLs end up in logs).
            headers={"X-API-KEY": api_key, "content-type": "application/json", "accept": "application/json"},
            timeout=timeout,
            max_retries=max_retries,
            budget=budget,
            transport=transport,
            sleep=sleep,
            classify=classify_error,
        )

    def __repr__(self) -> str:  # never the key
        return f"SerperClient({str(self.http.client.base_url)!r})"

    @property
    def calls(self) -> int:
        return self.http.calls

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SerperClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def news(self, query: str, *, num: int = 10, tbs: str | None = "qdr:m") -> list[NewsItem]:
        """Google News results for ``query`` (``tbs``: Google's time filter, past month by default)."""
        payload = self._post(NEWS_PATH, self._body(query, num, tbs))
        return [NewsItem.model_validate(raw) for raw in _entries(payload, "news")]

    def search(self, query: str, *, num: int = 10, tbs: str | None = None) -> list[OrganicResult]:
        """Google web results for ``query``."""
        return self.search_page(query, num=num, tbs=tbs).organic

    def search_page(self, query: str, *, num: int = 10, tbs: str | None = None) -> SearchPage:
        """Web results with the knowledge graph panel, when Google shows one."""
        payload = self._post(SEARCH_PATH, self._body(query, num, tbs))
        graph = payload.get("knowledgeGraph")
        return SearchPage(
            organic=[OrganicResult.model_validate(raw) for raw in _entries(payload, "organic")],
            knowledge_graph=graph if isinstance(graph, dict) else None,
            credits=_credits(payload),
        )

    def _body(self, query: str, num: int, tbs: str | None) -> dict[str, Any]:
        if not query.strip():
            raise ValueError("an empty query")
        body: dict[str, Any] = {"q": query, "num": max(1, min(MAX_NUM, num))}
        if self.gl:
            body["gl"] = self.gl
        if self.hl:
            body["hl"] = self.hl
        if tbs:
            body["tbs"] = tbs
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.request("POST", path, json=body)
        payload = self.http.json(response)
        if not isinstance(payload, dict):
            raise ProviderError(NAME, "bad_response", f"not a JSON object: {str(payload)[:200]!r}")
        self.credits_used += _credits(payload) or 0
        return payload


def _credits(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("credits")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entries(payload: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under ``key`` (absent: none), without entries lacking a title or link."""
    raw = payload.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ProviderError(NAME, "bad_response", f"{key!r} is not a list: {str(raw)[:200]!r}")
    return [
        entry
        for entry in raw
        if isinstance(entry, dict) and isinstance(entry.get("title"), str) and isinstance(entry.get("link"), str)
    ]


# ------------------------------------------------------------------------------------------------------- signals


class Signal(BaseModel):
    kind: SignalKind
    title: str
    url: str
    source: str | None = None
    date: dt.date | None = None  # parsed from date_text where possible
    date_text: str | None = None  # as Google gave it
    snippet: str = ""


class AccountSignals(BaseModel):
    domain: str
    company_name: str | None = None
    fetched_at: dt.datetime
    news: list[Signal] = Field(default_factory=list)
    hiring: list[Signal] = Field(default_factory=list)
    funding: list[Signal] = Field(default_factory=list)
    summary: str = ""

    @property
    def found(self) -> bool:
        return bool(self.news or self.hiring or self.funding)

    @classmethod
    def build(
        cls, domain: str, company_name: str | None, fetched_at: dt.datetime, signals: Iterable[Signal]
    ) -> AccountSignals:
        by_kind: dict[str, list[Signal]] = {"funding": [], "hiring": [], "news": []}
        for signal in signals:
            by_kind[signal.kind].append(signal)
        for items in by_kind.values():
            items.sort(key=lambda s: s.date or dt.date.min, reverse=True)  # stable: undated keep their order
        built = cls(
            domain=domain,
            company_name=company_name,
            fetched_at=fetched_at,
            funding=by_kind["funding"],
            hiring=by_kind["hiring"],
            news=by_kind["news"],
        )
        built.summary = summarize(built)
        return built


def summarize(signals: AccountSignals) -> str:
    parts = []
    if signals.funding:
        latest = signals.funding[0]
        when = f" ({latest.date.strftime('%b %Y')})" if latest.date else ""
        parts.append(f"funding: {funding_label(latest.title + ' ' + latest.snippet)}{when}")
    if signals.hiring:
        n = len(signals.hiring)
        parts.append(f"hiring: {n} post{'s' if n != 1 else ''}")
    if signals.news:
        n = len(signals.news)
        parts.append(f"news: {n} item{'s' if n != 1 else ''}")
    return "; ".join(parts) if parts else "no recent signals"


# Dates -----------------------------------------------------------------------------------------------------------

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_UNIT_SECONDS = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "hr": 3600,
    "day": 86_400,
    "week": 7 * 86_400,
    "month": 30 * 86_400,
    "year": 365 * 86_400,
}
_RELATIVE = re.compile(r"^(\d+|an?|one)\s+(second|sec|minute|min|hour|hr|day|week|month|year)s?\s+ago$")
_MONTH_DAY_YEAR = re.compile(r"^([a-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})\s+([a-z]+)\.?,?\s+(\d{4})$")
_MONTH_YEAR = re.compile(r"^([a-z]+)\.?,?\s+(\d{4})$")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def _month(word: str) -> int | None:
    if len(word) < 3:
        return None
    for number, name in enumerate(_MONTHS, start=1):
        if name.startswith(word):
            return number
    return None


def parse_date(text: str | None, now: dt.datetime) -> dt.date | None:
    """Google's date text as a date: "3 hours ago", "2 days ago", "1 month ago" (30 days), "yesterday",
    "Nov 3, 2026", "3 November 2026", "2026-11-03", "Oct 2026" (the 1st). None when unreadable."""
    if not text:
        return None
    value = " ".join(text.strip().casefold().split())
    if value in {"just now", "today", "now"}:
        return now.date()
    if value == "yesterday":
        return (now - dt.timedelta(days=1)).date()
    relative = _RELATIVE.match(value)
    if relative:
        amount = 1 if relative.group(1) in {"a", "an", "one"} else int(relative.group(1))
        return (now - dt.timedelta(seconds=amount * _UNIT_SECONDS[relative.group(2)])).date()
    try:
        iso = _ISO.match(value)
        if iso:
            return dt.date.fromisoformat(iso.group(1))
        mdy = _MONTH_DAY_YEAR.match(value)
        if mdy and (month := _month(mdy.group(1))):
            return dt.date(int(mdy.group(3)), month, int(mdy.group(2)))
        dmy = _DAY_MONTH_YEAR.match(value)
        if dmy and (month := _month(dmy.group(2))):
            return dt.date(int(dmy.group(3)), month, int(dmy.group(1)))
        my = _MONTH_YEAR.match(value)
        if my and (month := _month(my.group(1))):
            return dt.date(int(my.group(2)), month, 1)
    except ValueError:  # "Feb 30, 2026"
        return None
    return None


# Classification ----------------------------------------------------------------------------------------------------

_LEGAL_SUFFIX = re.compile(
    r"[,\s]+(inc|incorporated|llc|l\.l\.c|ltd|limited|gmbh|ag|sa|sas|sarl|bv|nv|plc|corp|corporation|co|company)\.?$"
)
_SERIES = re.compile(r"\bseries\s+([a-h])\b")
_FUNDING = re.compile(
    r"\b(series\s+[a-h]|pre-seed|seed|funding|investment|invests?|invested|acquires|acquire|acquired|acquisition)\b"
)
_RAISE = re.compile(r"\b(raises?|raised|raising)\b")
_MONEY = re.compile(r"([$€£]\s?\d)|(\b\d+(\.\d+)?\s?(k|m|mn|bn|million|billion)\b)")
_HIRING = re.compile(r"\b(hiring|careers?|job\s+openings?|open\s+(positions|roles)|join\s+(our|the)\s+team)\b")
JOB_BOARDS = ("greenhouse.io", "lever.co", "workable.com", "ashbyhq.com")
_JOB_PATHS = frozenset({"jobs", "careers", "career"})


def _text(*parts: str | None) -> str:
    joined = " ".join(p for p in parts if p)
    return " ".join(joined.replace("\u2019", "'").casefold().split())


def name_variants(company_name: str | None) -> list[str]:
    """The casefolded name, and without its legal suffix ("Acme Robotics, Inc." -> "acme robotics")."""
    if not company_name or not company_name.strip():
        return []
    full = _text(company_name)
    bare = _LEGAL_SUFFIX.sub("", full).strip()
    return list(dict.fromkeys(v for v in (full, bare) if v))


def _slugs(names: Sequence[str], domain: str) -> set[str]:
    slugs = {re.sub(r"[^a-z0-9]+", "-", n).strip("-") for n in names}
    slugs |= {s.replace("-", "") for s in slugs}
    slugs.add(domain.split(".", maxsplit=1)[0])
    return {s for s in slugs if s}


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.casefold().removeprefix("www.")


def _path_segments(url: str) -> list[str]:
    try:
        path = urlsplit(url).path
    except ValueError:
        return []
    return [p for p in path.casefold().split("/") if p]


def _on(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def mentions(title: str, snippet: str, url: str, names: Sequence[str], domain: str) -> bool:
    """Rule 1 of the module docstring."""
    text = _text(title, snippet)
    if any(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) for name in names):
        return True
    if domain and (domain in text or _on(_host(url), domain)):
        return True
    host, segments = _host(url), _path_segments(url)
    if segments and any(_on(host, board) for board in JOB_BOARDS):
        return segments[0] in _slugs(names, domain)
    return False


def is_job_link(url: str) -> bool:
    host = _host(url)
    if any(_on(host, board) for board in JOB_BOARDS):
        return True
    if host.startswith(("jobs.", "careers.")):
        return True
    return any(segment in _JOB_PATHS for segment in _path_segments(url))


def is_funding(text: str) -> bool:
    return bool(_FUNDING.search(text) or (_RAISE.search(text) and _MONEY.search(text)))


def funding_label(text: str) -> str:
    """The round a funding signal is about: "Series B", "Pre-seed", "Seed", "Acquisition", else "Funding"."""
    value = _text(text)
    series = _SERIES.search(value)
    if series:
        return f"Series {series.group(1).upper()}"
    if "pre-seed" in value:
        return "Pre-seed"
    if re.search(r"\bseed\b", value):
        return "Seed"
    if re.search(r"\b(acquires|acquire|acquired|acquisition)\b", value):
        return "Acquisition"
    return "Funding"


def classify(title: str, snippet: str, url: str, *, dated: bool, from_news: bool) -> SignalKind | None:
    """Rules 2-5 of the module docstring (the caller has checked rule 1). None: not a signal."""
    if is_job_link(url):
        return "hiring"
    text = _text(title, snippet)
    if is_funding(text):
        return "funding"
    if _HIRING.search(text):
        return "hiring"
    if from_news or dated:
        return "news"
    return None


def _canonical(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.casefold()}://{(parts.netloc or '').casefold()}{path}{query}"


def extract_signals(
    domain: str,
    company_name: str | None,
    news: Sequence[NewsItem],
    organic: Sequence[OrganicResult],
    *,
    now: dt.datetime,
    max_age_days: int = 365,
) -> AccountSignals:
    """The account's signals from Serper's results (news first, then web results), by the module's rules."""
    domain = normalize_domain(domain)
    names = name_variants(company_name)
    oldest = (now - dt.timedelta(days=max_age_days)).date()
    seen: set[str] = set()
    signals: list[Signal] = []
    candidates: list[tuple[str, str, str, str | None, str | None, bool]] = [
        (n.title, n.snippet, n.link, n.source, n.date, True) for n in news
    ] + [(o.title, o.snippet, o.link, None, o.date, False) for o in organic]
    for title, snippet, link, source, date_text, from_news in candidates:
        key = _canonical(link)
        if key in seen or not mentions(title, snippet, link, names, domain):
            continue
        when = parse_date(date_text, now)
        if when is not None and when < oldest:
            continue
        kind = classify(title, snippet, link, dated=bool(date_text), from_news=from_news)
        if kind is None:
            continue
        seen.add(key)
        signals.append(
            Signal(
                kind=kind,
                title=title.strip(),
                url=link.strip(),
                source=source or _host(link) or None,
                date=when,
                date_text=date_text,
                snippet=snippet.strip(),
            )
        )
    return AccountSignals.build(domain, company_name, now, signals)


# ------------------------------------------------------------------------------------------------------- service


def normalize_domain(domain: str) -> str:
    return domain.strip().casefold().removeprefix("www.").rstrip(".")


def query_name(domain: str, company_name: str | None) -> str:
    """What to search for: the company's name, else its domain's first label."""
    name = (company_name or "").replace('"', " ").strip()
    return " ".join(name.split()) or domain.split(".", maxsplit=1)[0]


ClientFactory = Callable[[Budget], SerperClient | None]


@dataclass
class SignalRun:
    """What the last ``signals_for`` did."""

    accounts: int = 0  # distinct domains asked about
    cached: int = 0  # served from the cache
    fetched: int = 0  # asked of Serper and answered
    calls: int = 0  # HTTP requests to Serper, retries included
    credits: int = 0  # as Serper reported them
    failed: dict[str, str] = field(default_factory=dict)  # domain -> "reason: message"
    skipped: str | None = None  # why Serper was not asked at all


class SignalService:
    """Each account's signals: from the cache (one batch read), else from Serper (two calls), then cached."""

    def __init__(
        self,
        client_factory: ClientFactory,
        cache: EnrichmentCache,
        clock: Callable[[], dt.datetime] = utcnow,
        *,
        max_age_days: int = 365,
        news_num: int = 10,
        search_num: int = 10,
        news_tbs: str = "qdr:m",
    ) -> None:
        self.client_factory = client_factory
        self.cache = cache
        self.clock = clock
        self.max_age_days = max_age_days
        self.news_num = news_num
        self.search_num = search_num
        self.news_tbs = news_tbs
        self.last_run = SignalRun()

    def signals_for(
        self, accounts: Sequence[tuple[str, str | None]], *, budget: Budget | None = None
    ) -> dict[str, AccountSignals]:
        """Signals by (normalised) domain for every account that has them, cached or fetched. Accounts that failed
        or were skipped are absent; why is in ``last_run``."""
        wanted: dict[str, str | None] = {}
        for domain, name in accounts:
            key = normalize_domain(domain or "")
            if not key:
                continue
            if not wanted.get(key):
                wanted[key] = (name or "").strip() or None
        run = self.last_run = SignalRun(accounts=len(wanted))
        if not wanted:
            return {}
        out: dict[str, AccountSignals] = {}
        for domain, answer in self.cache.get_many(NAME, Kind.COMPANY, list(wanted)).items():
            stored = _from_answer(answer)
            if stored is not None:
                out[domain] = stored
        run.cached = len(out)
        todo = [d for d in wanted if d not in out]
        if todo:
            self._fetch_all(todo, wanted, out, run, budget or Budget())
        count("AccountSignalsCached", run.cached)
        count("AccountSignalsFetched", run.fetched)
        count("AccountSignalsFailed", len(run.failed))
        return out

    def _fetch_all(
        self,
        todo: Sequence[str],
        names: Mapping[str, str | None],
        out: dict[str, AccountSignals],
        run: SignalRun,
        budget: Budget,
    ) -> None:
        client = self.client_factory(budget)
        if client is None:
            run.skipped = NO_KEY
            logger.info("account signals skipped", extra={"reason": NO_KEY, "accounts": len(todo)})
            return
        fresh: list[AccountSignals] = []
        try:
            for position, domain in enumerate(todo):
                try:
                    signals = self._fetch(client, domain, names[domain])
                except ProviderError as exc:
                    run.failed[domain] = f"{exc.reason}: {exc.message}"[:300]
                    logger.warning(
                        "account signals failed", extra={"domain": domain, "reason": exc.reason, "status": exc.status}
                    )
                    if exc.reason in FATAL_REASONS:
                        for rest in todo[position + 1 :]:
                            run.failed[rest] = f"{exc.reason}: not asked after the same error for {domain}"
                        break
                    continue
                out[domain] = signals
                fresh.append(signals)
        finally:
            run.calls, run.credits, run.fetched = client.calls, client.credits_used, len(fresh)
            client.close()
            if fresh:
                self._store(fresh)

    def _fetch(self, client: SerperClient, domain: str, company_name: str | None) -> AccountSignals:
        name = query_name(domain, company_name)
        news = client.news(f'"{name}"', num=self.news_num, tbs=self.news_tbs)
        organic = client.search(
            f'"{name}" funding OR raised OR acquired OR hiring OR careers OR jobs', num=self.search_num
        )
        return extract_signals(domain, company_name, news, organic, now=self.clock(), max_age_days=self.max_age_days)

    def _store(self, fresh: Sequence[AccountSignals]) -> None:
        answers = [
            Answer(
                kind=Kind.COMPANY,
                key=s.domain,
                found=s.found,  # none found: cached as a miss, for the shorter TTL
                fields={"signals": s.model_dump(mode="json")},
                fetched_at=s.fetched_at,
            )
            for s in fresh
        ]
        try:
            self.cache.put_many(NAME, answers)
        except Exception as exc:  # the signals are fetched and returned; the next run asks again
            logger.warning("could not cache account signals", extra={"error": str(exc), "accounts": len(answers)})


def _from_answer(answer: Answer) -> AccountSignals | None:
    raw = answer.fields.get("signals")
    if not isinstance(raw, dict):
        return None
    try:
        return AccountSignals.model_validate(raw)
    except ValidationError:  # written by an older version: ask again
        return None


def make_signal_service(
    settings: Settings,
    keys: ProviderKeys,
    cache: EnrichmentCache,
    *,
    workspace: str | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> SignalService:
    """The deals function's signal service: the workspace's Serper key (stored at its ``providers/serper``
    parameter, else ``SERPER_API_KEY``), looked up only when an account is not cached; no key, a visible skip."""
    owner = workspace or settings.default_workspace

    def factory(budget: Budget) -> SerperClient | None:
        key = keys.for_workspace(owner, {NAME: KEY_ENV}).get(NAME)
        if not key:
            return None
        return SerperClient(key, base_url=settings.serper_base_url, budget=budget)

    return SignalService(factory, cache, clock)
