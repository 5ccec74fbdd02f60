"""A local Serper (``POST /search`` and ``POST /news`` of google.serper.dev) with the public API's shapes.

Results come from an in-memory dataset seeded per company (``add_news``, ``add_result``, ``set_knowledge_graph``);
a query gets the results of every seeded company whose name it contains (case-insensitive), in the order they were
added, cut to ``num``. A query about no seeded company gets empty lists, as Google's answer about an unknown company
would be. Behaviour, as Serper's playground, client libraries and users' reports show it:

- The key is read from the ``X-API-KEY`` header (or an ``apiKey`` query parameter). Missing or wrong: ``403``
  ``{"message": "Unauthorized.", "statusCode": 403}``.
- The body is ``{"q", "num", "gl", "hl", "tbs", "page"}`` (``num`` 10, ``gl`` ``us``, ``hl`` ``en`` by default); no
  ``q``, or a body that is not a JSON object: ``400``. ``tbs`` is echoed in ``searchParameters``, not applied.
- ``/news``: ``{"searchParameters": {..., "type": "news", "engine": "google"}, "news": [{"title", "link", "snippet",
  "date", "source", "imageUrl"?, "position"}], "credits": n}``.
- ``/search``: ``{"searchParameters": {..., "type": "search", "engine": "google"}, "knowledgeGraph"?: {...},
  "organic": [{"title", "link", "snippet", "date"?, "sitelinks"?, "position"}], "credits": n}``.
- Credits (``credits=n``; None: unlimited): a query costs 1, 2 when ``num`` is over 10; with too few left, ``400``
  ``{"message": "Not enough credits", "statusCode": 400}``.
- Rate limit (``qps=n``, fixed one-second windows on ``clock``): past it, ``429`` ``{"message": "Too many requests",
  "statusCode": 429}``, without Retry-After (none is documented). The exact message is illustrative.

Faults: the base class's ``inject`` (by path), and ``fail_query`` for the queries that contain a text -- one
account's calls failing while the others succeed.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Fault, Reply, Request, route

SEARCH = "/search"
NEWS = "/news"
DEFAULT_NUM = 10

UNAUTHORIZED = {"message": "Unauthorized.", "statusCode": 403}
NOT_ENOUGH_CREDITS = {"message": "Not enough credits", "statusCode": 400}
TOO_MANY_REQUESTS = {"message": "Too many requests", "statusCode": 429}


def _error(body: Mapping[str, Any]) -> Reply:
    return Reply(int(body["statusCode"]), dict(body))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "item"


@dataclass
class _Company:
    name: str
    news: list[dict[str, Any]] = field(default_factory=list)
    organic: list[dict[str, Any]] = field(default_factory=list)
    knowledge_graph: dict[str, Any] | None = None


class FakeSerper(FakeServer):
    name = "serper"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        credits: int | None = None,
        qps: int | None = None,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_key = api_key
        self._initial = (credits, qps, clock)
        self.credits = credits
        self.qps = qps
        self.clock = clock
        self.companies: dict[str, _Company] = {}  # casefolded name -> seeded results
        self.query_faults: list[tuple[str, Fault]] = []
        self._usage: dict[int, int] = {}  # second -> calls
        self._reset_at = 0.0
        self._data_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the state after construction: no data, requests, faults or usage."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
        with self._data_lock:
            self.companies.clear()
            self.query_faults.clear()
            self._usage.clear()
            self.credits, self.qps, self.clock = self._initial
            # a request still held by a timeout fault from before the reset must not touch the new state
            self._reset_at = time.time()

    # ------------------------------------------------------------------------------------------------- seeding

    def _company(self, company: str) -> _Company:
        key = " ".join(company.casefold().split())
        if not key:
            raise ValueError("a company name is needed")
        return self.companies.setdefault(key, _Company(company))

    def add_news(
        self,
        company: str,
        title: str,
        snippet: str = "",
        date: str | None = "1 day ago",
        link: str | None = None,
        source: str = "Example News",
        *,
        image_url: str | None = None,
    ) -> dict[str, Any]:
        """A Google News result returned for queries naming ``company``."""
        item: dict[str, Any] = {
            "title": title,
            "link": link or f"https://news.example.com/{_slug(title)}",
            "snippet": snippet,
            "date": date,
            "source": source,
        }
        if image_url:
            item["imageUrl"] = image_url
        with self._data_lock:
            self._company(company).news.append(item)
        return item

    def add_result(
        self,
        company: str,
        title: str,
        link: str,
        snippet: str = "",
        date: str | None = None,
        *,
        sitelinks: Sequence[Mapping[str, str]] = (),
    ) -> dict[str, Any]:
        """A web (organic) result returned for queries naming ``company``."""
        item: dict[str, Any] = {"title": title, "link": link, "snippet": snippet}
        if date:
            item["date"] = date
        if sitelinks:
            item["sitelinks"] = [dict(s) for s in sitelinks]
        with self._data_lock:
            self._company(company).organic.append(item)
        return item

    def set_knowledge_graph(self, company: str, **fields: Any) -> dict[str, Any]:
        """The knowledge panel for queries naming ``company`` (``title``, ``type``, ``website``, ``description``,
        ``attributes``...)."""
        graph = {"title": company, **fields}
        with self._data_lock:
            self._company(company).knowledge_graph = graph
        return graph

    def fail_query(self, text: str, fault: Fault) -> Fault:
        """Misbehave (as ``fault`` says) for queries containing ``text`` (case-insensitive)."""
        with self._data_lock:
            self.query_faults.append((text.casefold(), fault))
        return fault

    # --------------------------------------------------------------------------------------------------- log

    def queries(self, path: str | None = None) -> list[str]:
        """The ``q`` of every logged request (to ``path`` only, if given), in order."""
        out = []
        for request in self.calls(f"^{re.escape(path)}$" if path else ""):
            try:
                body = request.json()
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("q"), str):
                out.append(body["q"])
        return out

    # ------------------------------------------------------------------------------------------------ routes

    @route("POST", SEARCH)
    def search(self, request: Request) -> Reply:
        return self._answer(request, "search")

    @route("POST", NEWS)
    def news(self, request: Request) -> Reply:
        return self._answer(request, "news")

    def _answer(self, request: Request, kind: str) -> Reply:
        if self._stale(request):
            return Reply(503, {"message": "request from before a reset", "statusCode": 503})
        key = request.headers.get("x-api-key") or request.arg("apiKey")
        if key != self.api_key:
            return _error(UNAUTHORIZED)
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Reply(400, {"message": "The request body must be a JSON object", "statusCode": 400})
        query = body.get("q")
        if not isinstance(query, str) or not query.strip():
            return Reply(400, {"message": "Missing query parameter: q", "statusCode": 400})
        num = body.get("num", DEFAULT_NUM)
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            return Reply(400, {"message": "num must be a positive integer", "statusCode": 400})
        faulted = self._query_fault(request, query)
        if faulted is not None:
            return faulted
        if self._stale(request):
            return Reply(503, {"message": "request from before a reset", "statusCode": 503})
        cost = 1 if num <= DEFAULT_NUM else 2
        with self._data_lock:
            if self.credits is not None:
                if self.credits < cost:
                    return _error(NOT_ENOUGH_CREDITS)
                self.credits -= cost
            matched = [c for k, c in self.companies.items() if k in " ".join(query.casefold().split())]
            parameters: dict[str, Any] = {
                "q": query,
                "gl": body.get("gl", "us"),
                "hl": body.get("hl", "en"),
                "num": num,
                "type": kind,
                "engine": "google",
            }
            for name in ("tbs", "page", "location"):
                if name in body:
                    parameters[name] = body[name]
            payload: dict[str, Any] = {"searchParameters": parameters}
            if kind == "news":
                items = [copy.deepcopy(i) for c in matched for i in c.news][:num]
                payload["news"] = [{**item, "position": n} for n, item in enumerate(items, start=1)]
            else:
                graph = next((c.knowledge_graph for c in matched if c.knowledge_graph), None)
                if graph:
                    payload["knowledgeGraph"] = copy.deepcopy(graph)
                items = [copy.deepcopy(i) for c in matched for i in c.organic][:num]
                payload["organic"] = [{**item, "position": n} for n, item in enumerate(items, start=1)]
        payload["credits"] = cost
        return Reply(200, payload)

    def _stale(self, request: Request) -> bool:
        return request.at < self._reset_at

    def _query_fault(self, request: Request, query: str) -> Reply | None:
        text = query.casefold()
        with self._data_lock:
            fault = next((f for t, f in self.query_faults if t in text and f.applies(request, self.rng)), None)
            self.query_faults = [(t, f) for t, f in self.query_faults if not f.spent]
        if fault is None:
            return None
        if fault.latency:
            time.sleep(fault.latency)
        if fault.timeout:
            time.sleep(fault.timeout)
        if fault.malformed:
            return Reply(200, b'{"searchParameters": {"q": ', {"content-type": "application/json"})
        if fault.status is not None:
            return Reply(fault.status, fault.body if fault.body is not None else {}, dict(fault.headers))
        return None  # latency only: answer normally

    def _throttle(self) -> Reply | None:
        if not self.qps:
            return None
        second = int(self.clock())
        with self._data_lock:
            used = self._usage.get(second, 0)
            if used >= self.qps:
                return _error(TOO_MANY_REQUESTS)
            self._usage[second] = used + 1
        return None
