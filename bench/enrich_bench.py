"""Enrichment benchmark (issue 3). Not a test: it measures and prints; anyone can rerun it.

    .venv/bin/python bench/enrich_bench.py                        # (a) 10,000 contacts / 2,000 domains, (b) at 10/s
    .venv/bin/python bench/enrich_bench.py --part b --rate 1000   # (b) with a rate limit that never binds
    .venv/bin/python bench/enrich_bench.py --part a --containers 2  # (a) two messages in flight (EnrichConcurrency 2)

(a) Provider calls per contact, first run and re-run, with the real cache. The template's tables are created in moto
    (in-process ``mock_aws``) by ``leadpipe_local``'s Resolver + Provisioner; ``Waterfall`` runs with the real
    ``EnrichmentCache`` (on ``EnrichCacheTable``, with the enrich function's settings from the template) and two real
    adapters talking HTTP to their local fakes: ``PdlProvider`` (company, bulk) against ``FakePdl`` and
    ``ApolloProvider`` (people, bulk_match of at most 10) against ``FakeApollo``. Contacts go in as the enrich function
    receives them: batches of 100 (one EnrichQueue message), the contacts of one domain spread over several batches.
    Lookups are counted from the fakes' request logs, HTTP calls from the logs and the adapters, cache hits from the
    waterfall and the cache. The re-run sends the same batches again, inside the TTL. ``--containers N`` handles N
    messages at once, each container with its own adapters and cache object (as EnrichConcurrency containers do).
(b) Throughput against a slow provider: a bench-only person provider (``ProviderHttp``, 10 people a call, 4 calls in
    flight, ``RateLimit`` from --rate) against a fake answering after --latency, no cache. The wall time is compared
    with the lower bound the provider's limits impose (rate limit after the token bucket's burst; concurrency and
    latency), for one waterfall call over every contact and for messages of 100 in sequence (as the function works).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_setup import ROOT  # first: this checkout on sys.path, Powertools quiet
from import_bench import heading, line, machine

from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import ProviderHttp, TokenBucket
from leadpipe.enrichment.providers.base import Answer, PersonQuery, Provider, ProviderInfo, RateLimit
from leadpipe.enrichment.waterfall import Waterfall, WaterfallResult
from leadpipe.models import Contact
from leadpipe_local.fakes.base import FakeServer, Reply, Request, route

REGION = "us-east-1"
WORKSPACE = "default"
API_KEY = "bench-key"
MESSAGE_CONTACTS = 100  # contacts per EnrichQueue message (one enrich invocation: BatchSize 1)
DEFAULT_SEED = 20240603

# Share of the dataset the fakes know (the rest are misses).
PDL_FOUND = 0.85
APOLLO_ORG_FOUND = 0.75
APOLLO_PERSON_FOUND = 0.80

TARGET_RATIO = 1.10  # (b): achieved / bound; "close to 1" read as within 10 %

FIRST = [
    "ada",
    "alan",
    "barbara",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "hedy",
    "ivan",
    "john",
    "ken",
    "linus",
    "margaret",
    "niklaus",
    "radia",
]
LAST = [
    "lovelace",
    "turing",
    "liskov",
    "shannon",
    "knuth",
    "dijkstra",
    "allen",
    "hopper",
    "lamarr",
    "sutherland",
    "backus",
    "thompson",
]
WORD_A = ["blue", "north", "bright", "swift", "iron", "quiet", "solid", "clear", "prime", "urban"]
WORD_B = ["harbor", "forge", "labs", "works", "logic", "metrics", "signal", "field", "stack", "grid"]
TITLES = [
    ("Head of Sales", "head", ["master_sales"]),
    ("VP Engineering", "vp", ["master_engineering_technical"]),
    ("Marketing Manager", "manager", ["master_marketing"]),
    ("Chief Executive Officer", "c_suite", ["c_suite"]),
    ("Senior Data Scientist", "senior", ["master_data_science"]),
    ("Director of Operations", "director", ["master_operations"]),
]
INDUSTRIES = ["computer software", "marketing and advertising", "financial services", "logistics", "biotechnology"]
SIZES = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000"]
COUNTRIES = [("united states", "new york"), ("germany", "berlin"), ("france", "paris"), ("united kingdom", "london")]


# ============================================================================================== (a) calls per contact


@dataclass
class Dataset:
    domains: list[str]
    contacts: list[Contact]
    batches: list[list[Contact]]
    pdl_found: set[str]
    apollo_orgs: set[str]
    people_found: set[str]


def make_dataset(contacts: int, domains: int, seed: int) -> Dataset:
    """``contacts`` contacts over ``domains`` company domains, every domain used, sizes skewed (a few large
    companies, many with one or two contacts), shuffled so that a domain's contacts land in several batches."""
    if contacts < domains:
        raise SystemExit(f"--contacts ({contacts}) must be at least --domains ({domains}): every domain is used")
    rng = random.Random(seed)
    names = [f"{rng.choice(WORD_A)}{rng.choice(WORD_B)}{i}.com" for i in range(domains)]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(domains)]
    owners = list(range(domains)) + rng.choices(range(domains), weights=weights, k=contacts - domains)
    rng.shuffle(owners)
    people: list[Contact] = []
    for i, owner in enumerate(owners):
        domain = names[owner]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            Contact(
                workspace=WORKSPACE,
                email=f"{first}.{last}.{i}@{domain}",
                email_domain=domain,
                domain=domain,
                first_name=first.title(),
                last_name=last.title(),
                company=domain.split(".")[0].rstrip("0123456789").title() if rng.random() < 0.5 else None,
            )
        )
    batches = [people[i : i + MESSAGE_CONTACTS] for i in range(0, len(people), MESSAGE_CONTACTS)]
    pdl_found = {d for d in names if rng.random() < PDL_FOUND}
    apollo_orgs = {d for d in names if rng.random() < APOLLO_ORG_FOUND}
    people_found = {c.email for c in people if rng.random() < APOLLO_PERSON_FOUND}
    return Dataset(names, people, batches, pdl_found, apollo_orgs, people_found)


def seed_fakes(data: Dataset, pdl: Any, apollo: Any, seed: int) -> dict[str, int]:
    """The fakes' datasets, in the real APIs' shapes. Returns the likelihood PDL matches each known domain with."""
    rng = random.Random(seed + 1)
    likelihoods: dict[str, int] = {}
    for domain in data.domains:
        stem = domain.split(".")[0]
        country, city = rng.choice(COUNTRIES)
        industry, size, founded = rng.choice(INDUSTRIES), rng.choice(SIZES), rng.randint(1950, 2022)
        if domain in data.pdl_found:
            likelihood = rng.choice([6, 7, 8, 8, 9, 9, 10])
            likelihoods[domain] = likelihood
            pdl.add_company(
                domain,
                {
                    "name": stem,
                    "display_name": stem.title(),
                    "size": size,
                    "founded": founded,
                    "industry": industry,
                    "location": {"locality": city, "country": country},
                    "linkedin_url": f"linkedin.com/company/{stem}",
                    "website": domain,
                    "summary": f"{stem.title()} makes things. It was founded in {founded}.",
                },
                likelihood=likelihood,
            )
        if domain in data.apollo_orgs:
            low, high = (int(x) for x in size.split("-"))
            apollo.add_organization(
                domain,
                name=stem.title(),
                industry=industry,
                estimated_num_employees=rng.randint(low, high),
                city=city.title(),
                country=country.title(),
                founded_year=founded,
                linkedin_url=f"https://www.linkedin.com/company/{stem}",
                short_description=f"{stem.title()} makes things.",
            )
    for contact in data.contacts:
        if contact.email not in data.people_found:
            continue
        title, seniority, departments = rng.choice(TITLES)
        country, city = rng.choice(COUNTRIES)
        apollo.add_person(
            contact.email,
            first_name=contact.first_name,
            last_name=contact.last_name,
            title=title,
            seniority=seniority,
            departments=departments,
            linkedin_url=f"https://www.linkedin.com/in/{contact.email.split('@')[0].replace('.', '-')}",
            city=city.title(),
            country=country.title(),
            organization_domain=contact.domain,
            organization_name=(contact.domain or "").split(".")[0].title(),
        )
    return likelihoods


MESSAGE_HEADER = "x-bench-message"  # set on each adapter's client before each message: requests name their message


@dataclass
class Container:
    """What one enrich container holds: its own adapters (one httpx client each) and cache object; a Waterfall is
    built per message, as EnrichService.enrich does."""

    providers: list[Any]
    cache: Any
    threshold: float

    def enrich(self, number: int, batch: Sequence[Contact]) -> WaterfallResult:
        for provider in self.providers:
            provider.http.client.headers[MESSAGE_HEADER] = str(number)
        return Waterfall(self.providers, cache=self.cache, threshold=self.threshold).enrich(batch)


@dataclass
class RunLog:
    """What one pass over the messages sent, from the fakes' request logs, by message number."""

    pdl_domains: list[tuple[int, str]] = field(default_factory=list)  # (message, domain) per PDL bulk item
    apollo_domains: list[tuple[int, str]] = field(default_factory=list)  # (message, domain) per organizations/enrich
    apollo_emails: list[tuple[int, str]] = field(default_factory=list)  # (message, email) per bulk_match detail
    http: Counter[str] = field(default_factory=Counter)  # requests seen by each fake, by route
    waterfall_calls: Counter[str] = field(default_factory=Counter)  # WaterfallResult.provider_calls, summed
    cache_hits: Counter[str] = field(default_factory=Counter)  # WaterfallResult.cache_hits, summed
    adapter_http: Counter[str] = field(default_factory=Counter)  # ProviderHttp.calls (retries included)
    cache_calls: Counter[str] = field(default_factory=Counter)  # EnrichmentCache.calls (DynamoDB)
    cache_found: int = 0
    cache_absent: int = 0
    gaps: Counter[str] = field(default_factory=Counter)  # provider: reason -> contacts
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> {field: value}
    seconds: float = 0.0


def run_messages(
    batches: Sequence[Sequence[Contact]], containers: Sequence[Container], pdl: Any, apollo: Any
) -> RunLog:
    """Every message through the containers: one container handles one message at a time (BatchSize 1); with
    several containers, each takes the next message as soon as it is free (SQS with MaximumConcurrency)."""
    import threading

    from leadpipe.enrichment.providers.apollo import BULK_MATCH_PATH, ORG_ENRICH_PATH
    from leadpipe.enrichment.providers.pdl import BULK_PATH

    log = RunLog()
    http_before = Counter()
    for c in containers:
        for p in c.providers:
            http_before[p.info.name] += p.http.calls
    cache_before = sum((Counter(c.cache.calls) for c in containers), Counter())
    hits_before = sum(c.cache.hits for c in containers)
    misses_before = sum(c.cache.misses for c in containers)
    pdl_seen, apollo_seen = len(pdl.requests), len(apollo.requests)
    queue = iter(enumerate(batches, start=1))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(container: Container) -> None:
        while True:
            with lock:
                number, batch = next(queue, (0, None))
            if batch is None:
                return
            try:
                result = container.enrich(number, batch)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return
            with lock:
                log.waterfall_calls.update(result.provider_calls)
                log.cache_hits.update(result.cache_hits)
                for email, outcome in result.contacts.items():
                    for gap in outcome.gaps:
                        log.gaps[f"{gap.provider}: {gap.reason}"] += 1
                    log.fields[email] = {name: fv.value for name, fv in outcome.fields.items()}

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,), name=f"container-{i}") for i, c in enumerate(containers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    with pdl.lock:
        new_pdl = pdl.requests[pdl_seen:]
    with apollo.lock:
        new_apollo = apollo.requests[apollo_seen:]
    for request in new_pdl:
        number = int(request.headers.get(MESSAGE_HEADER, 0))
        log.http[f"pdl {request.method} {request.path}"] += 1
        if request.path == BULK_PATH:
            log.pdl_domains.extend((number, r["params"]["website"]) for r in request.json()["requests"])
    for request in new_apollo:
        number = int(request.headers.get(MESSAGE_HEADER, 0))
        log.http[f"apollo {request.method} {request.path}"] += 1
        if request.path == BULK_MATCH_PATH:
            log.apollo_emails.extend((number, d.get("email")) for d in request.json()["details"])
        elif request.path == ORG_ENRICH_PATH:
            log.apollo_domains.append((number, request.arg("domain") or ""))
    for c in containers:
        for p in c.providers:
            log.adapter_http[p.info.name] += p.http.calls
    log.adapter_http.subtract(http_before)
    log.cache_calls = sum((Counter(c.cache.calls) for c in containers), Counter()) - cache_before
    log.cache_found = sum(c.cache.hits for c in containers) - hits_before
    log.cache_absent = sum(c.cache.misses for c in containers) - misses_before
    return log


def repeats(asked: list[tuple[int, str]]) -> dict[str, list[int]]:
    """Keys asked more than once -> the messages that asked them."""
    messages: dict[str, list[int]] = defaultdict(list)
    for number, key in asked:
        messages[key].append(number)
    return {key: sorted(numbers) for key, numbers in messages.items() if len(numbers) > 1}


def print_lookups(label: str, asked: list[tuple[int, str]]) -> dict[str, Any]:
    keys = [k for _, k in asked]
    again = repeats(asked)
    line(label, f"{len(keys):,} sent, {len(set(keys)):,} distinct, {len(again):,} asked more than once")
    if again:
        by_messages = Counter(tuple(numbers) for numbers in again.values())
        line(
            "    repeats by the messages that asked",
            ", ".join(f"{list(m)}: {n}" for m, n in by_messages.most_common(6))
            + (f", ... ({len(by_messages)} sets)" if len(by_messages) > 6 else ""),
        )
    for key, numbers in list(again.items())[:3]:
        line("    for example", f"{key} by messages {numbers}")
    return {"total": len(keys), "distinct": len(set(keys)), "repeated": len(again), "examples": list(again.items())[:5]}


def report_run(name: str, log: RunLog, contacts: int) -> dict[str, Any]:
    print(f"  {name}")
    line("  wall time (moto + local HTTP, not AWS)", f"{log.seconds:.1f} s")
    pdl = print_lookups("  company lookups, pdl (bulk items)", log.pdl_domains)
    org = print_lookups("  company lookups, apollo (org enrich)", log.apollo_domains)
    ppl = print_lookups("  person lookups, apollo (bulk_match)", log.apollo_emails)
    http_total = sum(log.http.values())
    print("    HTTP calls by route (fakes' logs):")
    for route_name, n in sorted(log.http.items()):
        print(f"      {route_name:<48} {n:>7,}  {n / contacts:.4f} per contact")
    line("  HTTP calls, all providers", f"{http_total:,}  ({http_total / contacts:.4f} per contact)")
    agree = sum(log.adapter_http.values()) == http_total
    line(
        "  ProviderHttp.calls (adapters' count)",
        ", ".join(f"{k} {v:,}" for k, v in sorted(log.adapter_http.items()))
        + ("  (agrees)" if agree else "  (DIFFERS)"),
    )
    line(
        "  WaterfallResult.provider_calls",
        ", ".join(f"{k} {v:,}" for k, v in sorted(log.waterfall_calls.items())) or "none",
    )
    line("  WaterfallResult.cache_hits", ", ".join(f"{k} {v:,}" for k, v in sorted(log.cache_hits.items())) or "none")
    line("  EnrichmentCache keys found / absent", f"{log.cache_found:,} / {log.cache_absent:,}")
    line(
        "  EnrichmentCache DynamoDB calls",
        ", ".join(f"{k} {v:,} ({v / contacts:.4f}/contact)" for k, v in sorted(log.cache_calls.items())) or "none",
    )
    line("  gaps", ", ".join(f"{k} {v:,}" for k, v in sorted(log.gaps.items())) or "none")
    return {"pdl": pdl, "org": org, "people": ppl, "http": http_total, "adapter_agree": agree, "log": log}


def rate_limit_floor(calls: int, limit: RateLimit) -> float:
    """The least time ``calls`` requests take under a full TokenBucket of this limit (one container)."""
    return max(0, calls - limit.calls) / limit.per_second


def bench_calls(contacts: int, domains: int, seed: int, containers: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from leadpipe.aws import AwsClients
    from leadpipe.enrichment.cache import EnrichmentCache
    from leadpipe.enrichment.providers.apollo import ApolloProvider
    from leadpipe.enrichment.providers.pdl import COMPANY_RELIABILITY, LIKELIHOOD_CONFIDENCE, PdlProvider
    from leadpipe.settings import Settings
    from leadpipe_local import motofix
    from leadpipe_local.cfn import Resolver, load_template, merge_globals
    from leadpipe_local.fakes.apollo import FakeApollo
    from leadpipe_local.fakes.pdl import FakePdl
    from leadpipe_local.provision import Provisioner

    heading(f"(a) provider calls per contact, {contacts:,} contacts over {domains:,} domains, real cache in moto")
    data = make_dataset(contacts, domains, seed)
    spread: Counter[str] = Counter()
    for batch in data.batches:
        spread.update({c.domain or "" for c in batch})
    per_domain = sorted(Counter(c.domain for c in data.contacts).values())
    widths = [len({c.domain for c in b}) for b in data.batches]
    line(
        "messages (EnrichQueue, <= 100 contacts)",
        f"{len(data.batches):,}; {min(widths)}-{max(widths)} distinct domains per message",
    )
    line(
        "contacts per domain (min / median / max)",
        f"{per_domain[0]} / {per_domain[len(per_domain) // 2]} / {per_domain[-1]}",
    )
    line(
        "domains whose contacts span > 1 message",
        f"{sum(1 for n in spread.values() if n > 1):,} of {domains:,} (messages per domain: mean "
        f"{sum(spread.values()) / domains:.2f}, max {max(spread.values())})",
    )
    line(
        "containers (messages in flight at once)",
        f"{containers}" + (" (one at a time, in order)" if containers == 1 else " (EnrichConcurrency)"),
    )

    motofix.install()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    pdl_fake = FakePdl(API_KEY).start()
    apollo_fake = FakeApollo(API_KEY).start()  # no rate-limit windows: nothing is refused
    try:
        likelihood = seed_fakes(data, pdl_fake, apollo_fake, seed)
        line(
            "fakes seeded",
            f"pdl {len(data.pdl_found):,} companies, apollo {len(data.apollo_orgs):,} organizations and "
            f"{len(data.people_found):,} people (the rest are misses)",
        )
        line(
            "pdl likelihoods seeded",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(Counter(likelihood.values()).items())),
        )
        with mock_aws():
            session = boto3.session.Session(region_name=REGION)
            setup_clients: dict[str, Any] = {}

            def setup_client(service: str) -> Any:
                return setup_clients.setdefault(service, session.client(service, region_name=REGION))

            template = load_template(ROOT / "template.yaml")
            resolver = Resolver(template, region=REGION)
            Provisioner(resolver, setup_client).provision()
            function = template["Resources"]["EnrichFunction"]
            props = merge_globals(template, function["Type"], function.get("Properties", {}))
            env = {k: str(v) for k, v in resolver.resolve(props["Environment"]["Variables"]).items()}
            settings = Settings.from_env(env)
            line(
                "cache",
                f"{settings.enrich_cache_table} (TTL {settings.cache_days} d answers, {settings.cache_miss_days} d "
                f"misses); field threshold {settings.enrich_field_threshold}",
            )

            def container() -> Container:
                # Wired as functions/enrich/enrich_handler.py wires it: the library's client configuration.
                clients = AwsClients(session=session)
                cache = EnrichmentCache(
                    clients.dynamodb,
                    settings.enrich_cache_table,
                    ttl_days=settings.cache_days,
                    miss_ttl_days=settings.cache_miss_days,
                )
                providers = [
                    PdlProvider(API_KEY, base_url=pdl_fake.url),
                    ApolloProvider(API_KEY, base_url=apollo_fake.url),
                ]
                # (a) counts calls; the free plans' limits (100 and 50 a minute) would make it mostly sleep. Each
                # adapter gets a bucket that never runs dry; (b) measures a rate limit at work.
                for provider in providers:
                    provider.http.bucket = TokenBucket(RateLimit(1_000_000_000, 1.0))
                return Container(providers, cache, settings.enrich_field_threshold)

            fleet = [container() for _ in range(containers)]
            declared = {p.info.name: p.info.rate_limit for p in fleet[0].providers}
            line("waterfall order", " -> ".join(p.info.name for p in fleet[0].providers))
            line(
                "rate limits",
                "lifted for (a), which counts calls (declared: "
                + ", ".join(f"{n} {r.calls}/{r.per_seconds:g} s" for n, r in declared.items())
                + ")",
            )
            try:
                first = run_messages(data.batches, fleet, pdl_fake, apollo_fake)
                again = run_messages(data.batches, fleet, pdl_fake, apollo_fake)
            finally:
                for c in fleet:
                    for provider in c.providers:
                        provider.close()
            items = setup_client("dynamodb").scan(TableName=settings.enrich_cache_table, Select="COUNT")["Count"]
    finally:
        pdl_fake.stop()
        apollo_fake.stop()

    one = report_run("first run", first, contacts)
    two = report_run("re-run: the same messages, inside the TTL", again, contacts)
    line("items in EnrichCacheTable after both runs", f"{items:,}")
    same = first.fields == again.fields
    line("re-run's merged fields == first run's", "yes" if same else "NO")
    with_company = sum(1 for f in first.fields.values() if "company_name" in f)
    with_title = sum(1 for f in first.fields.values() if "title" in f)
    line("contacts with company_name / title", f"{with_company:,} / {with_title:,} of {contacts:,}")

    # Why Apollo is asked about companies at all: a domain goes on to the next company provider while any of the
    # fields that provider supplies is below the threshold (waterfall._needs).
    threshold = settings.enrich_field_threshold
    asked_org = {d for _, d in first.apollo_domains}
    print("  apollo org-enrich lookups by pdl's answer for the domain:")
    groups: dict[int, list[str]] = defaultdict(list)  # likelihood (0: a miss) -> domains
    for domain in data.domains:
        groups[likelihood.get(domain, 0)].append(domain)
    for score, members in sorted(groups.items()):
        label = f"pdl likelihood {score}" if score else "pdl miss"
        conf = LIKELIHOOD_CONFIDENCE[score] if score else None
        below = (
            "every field missing"
            if conf is None
            else ", ".join(f"{f} {r * conf:.3f}" for f, r in COMPANY_RELIABILITY.items() if r * conf < threshold)
            or "none"
        )
        print(
            f"    {label:<18} {sum(1 for d in members if d in asked_org):>6,} of {len(members):>6,} asked"
            f"   pdl fields below {threshold}: {below}"
        )
    floors = {
        name: rate_limit_floor(first.adapter_http[name], limit)
        for name, limit in declared.items()
        if first.adapter_http[name]
    }
    line(
        "first run at the declared rate limits",
        ", ".join(f"{n} >= {s / 60:,.1f} min" for n, s in floors.items()) + " of waiting (one container's bucket)",
    )
    return {
        "contacts": contacts,
        "domains": domains,
        "containers": containers,
        "first": one,
        "again": two,
        "same": same,
    }


# ============================================================================================== (b) throughput

SLOW_PATH = "/v1/people/match"


class SlowPeopleFake(FakeServer):
    """A person API answering after ``latency`` seconds: ``{"people": [{"email": ...}]}`` (at most ``limit``) ->
    ``{"matches": [...]}``. Records when each request started and ended being served."""

    name = "slow-people"

    def __init__(self, latency: float, limit: int = 10) -> None:
        super().__init__()
        self.latency = latency
        self.limit = limit
        self.spans: list[tuple[float, float]] = []

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        started = time.perf_counter()
        reply = super().handle(method, target, headers, body)
        ended = time.perf_counter()
        with self.lock:
            self.spans.append((started, ended))
        return reply

    @route("POST", SLOW_PATH)
    def match(self, request: Request) -> Reply:
        people = request.json().get("people") or []
        if len(people) > self.limit:
            return Reply(400, {"error": f"at most {self.limit} people per call, got {len(people)}"})
        return Reply(200, {"matches": [{"email": p["email"], "title": "Engineer"} for p in people]})


class SlowPeopleProvider(Provider):
    """A bench-only person provider: 10 people a call, 4 calls in flight, the given rate limit."""

    def __init__(self, base_url: str, limit: RateLimit, *, batch_size: int = 10, concurrency: int = 4) -> None:
        self.info = ProviderInfo(
            name="bench-slow",
            person_fields={"title": 0.8},
            batch_size=batch_size,
            rate_limit=limit,
            needs_key=False,
            concurrency=concurrency,
        )
        self.bucket = TokenBucket(limit)  # a fresh, full bucket per measurement (not the shared one)
        self.http = ProviderHttp(self.info.name, base_url, rate_limit=limit, bucket=self.bucket)

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        response = self.http.request("POST", SLOW_PATH, json={"people": [{"email": q.email} for q in queries]})
        matches = self.http.json(response)["matches"]
        return [
            Answer(Kind.PERSON, q.email, True, {"title": m["title"]}) if m else Answer.miss(Kind.PERSON, q.email)
            for q, m in zip(queries, matches, strict=True)
        ]

    def close(self) -> None:
        self.http.close()


def rate_limit_of(rate: float) -> RateLimit:
    calls = max(1, round(rate))
    return RateLimit(calls, calls / rate)


def lower_bound(calls: int, limit: RateLimit, concurrency: int, latency: float) -> dict[str, float]:
    """The least wall time the provider allows. TokenBucket starts full (``limit.calls`` tokens) and refills at
    ``per_second``; each request takes a token and waits until the balance is back to zero, so request k (1-based)
    cannot start before (k - capacity) / rate and the last one ends ``latency`` later. Concurrency: at most
    ``concurrency`` requests in flight, each taking ``latency``."""
    rate_term = max(0, calls - limit.calls) / limit.per_second + latency
    latency_term = math.ceil(calls / concurrency) * latency
    return {"rate": rate_term, "latency": latency_term, "bound": max(rate_term, latency_term)}


def max_in_flight(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def one_throughput(
    mode: str, contacts: list[Contact], per_call: int, limit: RateLimit, latency: float, concurrency: int
) -> dict[str, Any]:
    fake = SlowPeopleFake(latency, per_call).start()
    provider = SlowPeopleProvider(fake.url, limit, batch_size=per_call, concurrency=concurrency)
    waterfall = Waterfall([provider])  # no cache
    messages = (
        [contacts]
        if mode == "one"
        else [contacts[i : i + MESSAGE_CONTACTS] for i in range(0, len(contacts), MESSAGE_CONTACTS)]
    )
    found = gaps = 0
    try:
        started = time.perf_counter()
        for message in messages:
            result = waterfall.enrich(message, include_company=False)
            found += sum(1 for o in result.contacts.values() if "title" in o.fields)
            gaps += sum(len(o.gaps) for o in result.contacts.values())
        seconds = time.perf_counter() - started
    finally:
        provider.close()
        fake.stop()
    calls = len(fake.calls(SLOW_PATH))
    expected_calls = sum(math.ceil(len(m) / per_call) for m in messages)
    bound = lower_bound(expected_calls, limit, concurrency, latency)
    per_message = sum(math.ceil(math.ceil(len(m) / per_call) / concurrency) * latency for m in messages)
    first_start = min(s for s, _ in fake.spans) - started
    last_end = max(e for _, e in fake.spans) - started
    return {
        "mode": mode,
        "messages": len(messages),
        "seconds": seconds,
        "calls": calls,
        "expected_calls": expected_calls,
        "found": found,
        "gaps": gaps,
        "waited": provider.bucket.waited,
        "in_flight": max_in_flight(fake.spans),
        "first_start": first_start,
        "last_end": last_end,
        "per_message": per_message,
        **bound,
        "ratio": seconds / bound["bound"],
    }


def bench_throughput(contacts: int, rate: float, latency: float, per_call: int, concurrency: int) -> list[dict]:
    limit = rate_limit_of(rate)
    heading(
        f"(b) throughput, {contacts:,} contacts, slow person provider: {latency * 1000:.0f} ms a call, "
        f"{per_call} a call, {concurrency} in flight, {limit.per_second:g} calls/s"
    )
    line(
        "token bucket",
        f"capacity {limit.calls} (the initial burst), refill {limit.per_second:g}/s "
        f"(RateLimit({limit.calls}, {limit.per_seconds:g}))",
    )
    people = [
        Contact(workspace=WORKSPACE, email=f"person{i}@slow{i % 97}.example", email_domain=f"slow{i % 97}.example")
        for i in range(contacts)
    ]
    results = []
    for mode, label in (("one", "one waterfall call over all contacts"), ("messages", "messages of 100 in sequence")):
        r = one_throughput(mode, people, per_call, limit, latency, concurrency)
        results.append(r)
        print(f"  {label} ({r['messages']} waterfall call(s))")
        line("  HTTP calls (fake's log) / expected", f"{r['calls']:,} / {r['expected_calls']:,}")
        line("  contacts answered / gaps", f"{r['found']:,} / {r['gaps']:,}")
        line("  most calls in flight at once (fake)", r["in_flight"])
        line(
            "  rate-limit term",
            f"{r['rate']:.3f} s  (max(0, {r['expected_calls']} - {limit.calls}) / {limit.per_second:g} + {latency:g})",
        )
        line(
            "  concurrency term",
            f"{r['latency']:.3f} s  (ceil({r['expected_calls']} / {concurrency}) x {latency:g})",
        )
        line("  lower bound (max of the two)", f"{r['bound']:.3f} s")
        if mode == "messages":
            line(
                "  concurrency term, message by message",
                f"{r['per_message']:.3f} s  ({r['messages']} x ceil({math.ceil(MESSAGE_CONTACTS / per_call)} / "
                f"{concurrency}) x {latency:g})",
            )
        line(
            "  achieved wall time",
            f"{r['seconds']:.3f} s  (first call served at +{r['first_start']:.3f} s, "
            f"last answered at +{r['last_end']:.3f} s)",
        )
        line("  achieved / bound", f"{r['ratio']:.3f}")
        if mode == "messages":
            own = max(r["bound"], r["per_message"])
            line("  achieved / message-by-message bound", f"{r['seconds'] / own:.3f}  (bound {own:.3f} s)")
        line("  token bucket waited (sum over calls)", f"{r['waited']:.3f} s")
        line("  throughput", f"{contacts / r['seconds']:,.1f} contacts/s, {r['calls'] / r['seconds']:.2f} calls/s")
    return results


# ============================================================================================== summary


def summary(calls: dict[str, Any] | None, throughput: list[dict[str, Any]] | None, rate: float) -> None:
    heading("summary")
    line("load average at the end (1/5/15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows: list[tuple[str, str, str, bool | None]] = []
    if calls:
        n, d = calls["contacts"], calls["domains"]
        fleet = f", {calls['containers']} containers" if calls["containers"] > 1 else ""
        one, two = calls["first"], calls["again"]
        pdl, org, ppl = one["pdl"], one["org"], one["people"]
        rows.append(
            (
                f"(a) company lookups, pdl (sent / distinct){fleet}",
                f"{pdl['total']:,} / {pdl['distinct']:,}",
                f"== D ({d:,}), each once",
                pdl["total"] == pdl["distinct"] == d,
            )
        )
        rows.append(
            (
                f"(a) company lookups, apollo org enrich (sent / distinct){fleet}",
                f"{org['total']:,} / {org['distinct']:,}",
                "each domain at most once",
                org["total"] == org["distinct"],
            )
        )
        rows.append(
            (
                f"(a) person lookups, apollo (sent / distinct){fleet}",
                f"{ppl['total']:,} / {ppl['distinct']:,}",
                f"<= N ({n:,})",
                ppl["total"] <= n and ppl["total"] == ppl["distinct"],
            )
        )
        rows.append(
            ("(a) HTTP calls per contact, first run", f"{one['http'] / n:.4f} ({one['http']:,})", "(reported)", None)
        )
        lookups = pdl["total"] + org["total"] + ppl["total"]
        rows.append(("(a) lookups per contact, first run", f"{lookups / n:.4f} ({lookups:,})", "(reported)", None))
        rows.append(("(a) provider calls on the re-run", f"{two['http']:,} HTTP", "0", two["http"] == 0))
        rows.append(
            (
                "(a) re-run: cache hits / merged fields equal",
                f"{sum(two['log'].cache_hits.values()):,} / {'yes' if calls['same'] else 'no'}",
                "(reported)",
                None,
            )
        )
    for r in throughput or []:
        label = "one call" if r["mode"] == "one" else "messages of 100"
        rows.append(
            (
                f"(b) {rate:g}/s, {label}: achieved / bound",
                f"{r['seconds']:.2f} / {r['bound']:.2f} s = {r['ratio']:.3f}",
                f"<= {TARGET_RATIO:.2f}",
                r["ratio"] <= TARGET_RATIO,
            )
        )
        rows.append((f"(b) {rate:g}/s, {label}: token bucket waited", f"{r['waited']:.2f} s", "(reported)", None))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    target_width = max(len(r[2]) for r in rows)
    print(f"  {'figure':<{width}}  {'measured':<{value_width}}  {'target':<{target_width}}  result")
    for name, value, target, ok in rows:
        result = "-" if ok is None else ("PASS" if ok else "MISS")
        print(f"  {name:<{width}}  {value:<{value_width}}  {target:<{target_width}}  {result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="leadpipe enrichment benchmark (issue 3)")
    parser.add_argument("--part", choices=["a", "b", "all"], default="all", help="which part to run (default all)")
    parser.add_argument("--contacts", type=int, default=10_000, help="(a) contacts (default 10000)")
    parser.add_argument("--domains", type=int, default=2_000, help="(a) company domains (default 2000)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="(a) dataset seed")
    parser.add_argument(
        "--containers", type=int, default=1, help="(a) messages handled at once, as EnrichConcurrency (default 1)"
    )
    parser.add_argument("--throughput-contacts", type=int, default=1_000, help="(b) contacts (default 1000)")
    parser.add_argument("--latency", type=float, default=0.2, help="(b) seconds per provider call (default 0.2)")
    parser.add_argument("--rate", type=float, default=10.0, help="(b) provider rate limit, calls/s (default 10)")
    parser.add_argument("--per-call", type=int, default=10, help="(b) people per call (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="(b) calls in flight (default 4)")
    args = parser.parse_args(argv)

    print("leadpipe enrichment benchmark (issue 3)")
    print("  command: " + " ".join([os.path.relpath(sys.executable, Path.cwd()), *sys.argv]))
    for key, value in machine().items():
        line(key, value)
    calls = bench_calls(args.contacts, args.domains, args.seed, args.containers) if args.part in ("a", "all") else None
    throughput = (
        bench_throughput(args.throughput_contacts, args.rate, args.latency, args.per_call, args.concurrency)
        if args.part in ("b", "all")
        else None
    )
    summary(calls, throughput, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
