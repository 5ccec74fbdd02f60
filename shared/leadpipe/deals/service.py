"""Closed-deal enrichment: learn from won and lost deals.

A run (``POST /deals/enrichment`` or the monthly schedule, one DealQueue message each):

1. the closed deals of the lookback window from HubSpot -- won or lost decided by each pipeline's stage metadata --
   with their contacts and companies (v4 associations, batched);
2. the deals' contacts imported (or updated) as leadpipe contacts, and enriched through the waterfall and its cache;
3. each contact's buying role from its title, seniority and department (seniority and department marked verified
   when a data provider confirmed them);
4. each account's signals (news, hiring, funding) from the web-search provider, once per account, cached;
5. the deals stored with their outcome, account and contacts;
6. the ideal-customer profile recomputed from every stored deal, and every contact of the workspace scored for fit
   (``icp``), the synced ones queued for a sync so that HubSpot's ``leadpipe_icp_fit`` follows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from leadpipe.changes.reimport import new_contact
from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.deals.icp import DealRecord, IcpProfile
from leadpipe.deals.roles import buying_role, is_data_provider, is_verified, role_of_contact
from leadpipe.deals.store import Deal, DealContact, DealRepository, DealRun, RunCounts
from leadpipe.enrichment.fields import employee_range
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import BadRequest, NotFound
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.hubspot.deals import ClosedDeal, closed_deals
from leadpipe.hubspot.sync import queue_sync
from leadpipe.models import Contact, HubSpotRef, IcpFit, PipelineStatus, utcnow
from leadpipe.normalize import FieldProblem, normalize_email
from leadpipe.observability import count, logger
from leadpipe.queueing import send_batch
from leadpipe.settings import Settings
from leadpipe.suppression import SuppressionList
from leadpipe.workspaces import WorkspaceRepository

MAX_LOOKBACK_MONTHS = 24
MAX_LIMIT = 100
SCHEDULED_LOOKBACK_MONTHS = 1
SOURCE = "hubspot-deals"
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "jobtitle", "company", "website", "country")
COMPANY_PROPERTIES = ("name", "domain", "industry", "numberofemployees", "country")
SCORE_CHUNK = 500
NOT_ENRICHED = frozenset({PipelineStatus.IMPORTED, PipelineStatus.FAILED})


class Enricher(Protocol):
    """What the run needs of the enrich service: enrich these contacts now, through the waterfall and its cache."""

    def enrich_now(self, workspace: str, emails: Sequence[str], request_id: str, budget: Budget) -> None: ...


class WaterfallEnricher:
    """The enrich service run in this process: the deals' contacts through the same waterfall and cache."""

    def __init__(self, service: Any) -> None:
        self.service = service  # leadpipe.enrichment.service.EnrichService

    def enrich_now(self, workspace: str, emails: Sequence[str], request_id: str, budget: Budget) -> None:
        from leadpipe.models import EnrichMessage

        for start in range(0, len(emails), 100):
            chunk = list(emails[start : start + 100])
            self.service.enrich(EnrichMessage(workspace=workspace, request_id=request_id, emails=chunk), budget)


class Signals(Protocol):
    def signals_for(self, accounts: Sequence[tuple[str, str | None]]) -> dict[str, Any]: ...


class _BudgetedSignals:
    def __init__(self, service: Any, budget: Budget) -> None:
        self.service, self.budget = service, budget

    def signals_for(self, accounts: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
        return dict(self.service.signals_for(accounts, budget=self.budget))


def serper_key(keys: ProviderKeys, workspace: str) -> str | None:
    """The workspace's Serper key, where the other providers' keys are (``providers/serper``), else the environment."""
    return keys.for_workspace(workspace, {"serper": "SERPER_API_KEY"}).get("serper")


def serper_signals(settings: Settings, keys: ProviderKeys, cache: Any) -> Callable[[str, Budget], Signals | None]:
    """Account signals from Serper for a workspace with a Serper key, cached per account in the enrichment cache;
    None without a key (no signals asked, none missing)."""
    from leadpipe.deals.signals import make_signal_service

    def make(workspace: str, budget: Budget) -> Signals | None:
        if not serper_key(keys, workspace):
            return None
        return _BudgetedSignals(make_signal_service(settings, keys, cache, workspace=workspace), budget)

    return make


def months_ago(now: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to the month's last day)."""
    year, month = divmod(now.month - 1 - months, 12)
    year += now.year
    month += 1
    day = min(now.day, _days_in(year, month))
    return now.replace(year=year, month=month, day=day)


def _days_in(year: int, month: int) -> int:
    first_next = datetime(year + (month // 12), month % 12 + 1, 1, tzinfo=UTC)
    return (first_next - timedelta(days=1)).day


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def size_range(employees: Any) -> str | None:
    """HubSpot's ``numberofemployees`` as leadpipe's employee ranges (``fields.EMPLOYEE_RANGES``)."""
    try:
        return employee_range(int(float(str(employees))))
    except (TypeError, ValueError):
        return None


class DealService:
    def __init__(
        self,
        *,
        store: DealRepository,
        contacts: ContactRepository,
        sqs: Any,
        settings: Settings,
        keys: ProviderKeys,
        workspaces: WorkspaceRepository,
        enricher: Enricher | None = None,
        signals: Callable[[str, Budget], Signals | None] | None = None,
        hubspot: Callable[[str, int, Budget], HubSpotClient] | None = None,
        suppression: SuppressionList | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.suppression = suppression  # erased people: never recreated from a deal
        self.contacts = contacts
        self.sqs = sqs
        self.settings = settings
        self.keys = keys
        self.workspaces = workspaces
        self.enricher = enricher
        self.signals = signals
        self.hubspot = hubspot or (
            lambda token, burst, budget: HubSpotClient(
                token, base_url=settings.hubspot_base_url, burst_limit=burst, budget=budget
            )
        )
        self.clock = clock

    # ------------------------------------------------------------------------------------------ starting runs

    def start(
        self, workspace: str, *, lookback_months: int = 6, limit: int | None = None, trigger: str = "api"
    ) -> DealRun:
        if not 1 <= lookback_months <= MAX_LOOKBACK_MONTHS:
            raise BadRequest(f"lookbackMonths must be between 1 and {MAX_LOOKBACK_MONTHS}", code="invalid_request")
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_request")
        if trigger != "schedule" and not self.keys.secret(workspace, "hubspot/token", "HUBSPOT_TOKEN"):
            raise BadRequest(
                f"workspace {workspace} has no HubSpot access token: store one with PUT /settings/hubspot",
                code="no_hubspot_token",
            )
        run = DealRun(
            workspace=workspace,
            run_id=f"deal-{self.clock().strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}",
            trigger="schedule" if trigger == "schedule" else "api",
            lookback_months=lookback_months,
            limit=limit,
        )
        self.store.put_run(run)
        body = {"type": "deals.run", "workspace": workspace, "run_id": run.run_id}
        send_batch(self.sqs, self.settings.deal_queue_url, [json.dumps(body)])
        return run

    def handle_message(self, body: str, *, budget: Budget) -> DealRun:
        try:
            data = json.loads(body)
            workspace, run_id = str(data["workspace"]), str(data["run_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"unrecognised DealQueue message: {body[:200]!r}", code="bad_message") from exc
        run = self.store.run(workspace, run_id)
        if run is None:
            raise NotFound(f"no deal run {run_id}")
        if run.status == "completed":
            return run  # a redelivery of a finished run
        return self.run(run, budget)

    # ------------------------------------------------------------------------------------------ a run

    def run(self, run: DealRun, budget: Budget) -> DealRun:
        ws = run.workspace
        now = self.clock()
        run = run.model_copy(update={"status": "running", "started_at": now, "error": None})
        self.store.put_run(run)
        try:
            token = self.keys.secret(ws, "hubspot/token", "HUBSPOT_TOKEN")
            if not token:
                raise BadRequest(f"workspace {ws} has no HubSpot access token", code="no_hubspot_token")
            burst = self.workspaces.get(ws).sync.burst_limit
            with self.hubspot(token, burst, budget) as client:
                found = closed_deals(client, since=months_ago(now, run.lookback_months), until=now, limit=run.limit)
                contact_ids = list(dict.fromkeys(i for d in found for i in d.contact_ids))
                company_ids = list(dict.fromkeys(i for d in found for i in d.company_ids))
                people = self._records(client, "contacts", contact_ids, CONTACT_PROPERTIES)
                companies = self._records(client, "companies", company_ids, COMPANY_PROPERTIES)
            emails = self._import_contacts(ws, people, found, now)
            stored = self.contacts.batch_get(ws, list(emails.values()))
            # Contacts already enriched keep their enrichment (and their place in the pipeline); the others go
            # through the waterfall now, its cache answering what it already knows.
            todo = [e for e, c in stored.items() if c.enrichment_meta is None or c.status in NOT_ENRICHED]
            if todo and self.enricher is not None:
                self.enricher.enrich_now(ws, todo, f"{run.run_id}-enrich", budget)
                stored = self.contacts.batch_get(ws, list(emails.values()))
            signals = self.signals(ws, budget) if self.signals is not None else None
            deals = self._deals(run, found, people, companies, emails, stored, now, signals)
            self.store.put_deals(deals)
            counts = self._counts(deals)
            _, scored = self.recompute(ws, budget)
            counts.contacts_scored = scored
            run = run.model_copy(update={"status": "completed", "counts": counts, "finished_at": self.clock()})
            logger.info("deal run finished", extra={"run_id": run.run_id, "counts": counts.model_dump()})
            count("ClosedDealsEnriched", counts.enriched_deals)
        except Exception as exc:
            run = run.model_copy(
                update={"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000], "finished_at": self.clock()}
            )
            self.store.put_run(run)
            if isinstance(exc, BadRequest) and exc.code == "no_hubspot_token":
                return run  # permanent until a token is stored: failed, with the reason, not retried into the DLQ
            raise
        self.store.put_run(run)
        return run

    def _records(
        self, client: HubSpotClient, object_type: str, ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        outcome = client.read(object_type, list(ids), list(properties))
        return {str(r["id"]): dict(r.get("properties") or {}) for r in outcome.results}

    def _import_contacts(
        self, ws: str, people: dict[str, dict[str, Any]], deals: Sequence[ClosedDeal], now: datetime
    ) -> dict[str, str]:
        """HubSpot contact id -> email of the deals' contacts, stored as leadpipe contacts (new ones created, known
        ones tagged with the outcome); contacts without a usable email, and erased people (the suppression list),
        are left out."""
        outcome_of: dict[str, set[str]] = {}
        for deal in deals:
            for contact_id in deal.contact_ids:
                outcome_of.setdefault(contact_id, set()).add(deal.outcome)
        emails: dict[str, str] = {}
        for contact_id, props in people.items():
            try:
                emails[contact_id] = normalize_email(str(props.get("email") or ""))
            except FieldProblem:
                continue
        if self.suppression is not None:
            refused = self.suppression.suppressed(ws, list(emails.values()))  # one BatchGetItem per 100
            emails = {i: e for i, e in emails.items() if e not in refused}
        by_email = {e: i for i, e in emails.items()}

        def mutate(email: str, before: Contact | None) -> Contact | Unchanged:
            contact_id = by_email[email]
            props = people[contact_id]
            tags = {f"deal:{o}" for o in outcome_of.get(contact_id, set())}
            if before is None:
                created = new_contact(ws, email, props, contact_id, now, source=SOURCE)
                created.tags = dict.fromkeys(sorted(tags), now)
                return created
            missing = tags - set(before.tags)
            if not missing and before.hubspot and before.hubspot.contact_id:
                return UNCHANGED
            after = before.model_copy(deep=True)
            for tag in sorted(missing):
                after.tags[tag] = now
            if not (after.hubspot and after.hubspot.contact_id):
                after.hubspot = (after.hubspot or HubSpotRef()).model_copy(update={"contact_id": contact_id})
            after.updated_at = now
            return after

        self.contacts.upsert(ws, list(by_email), mutate)
        return emails

    def _deals(
        self,
        run: DealRun,
        found: Sequence[ClosedDeal],
        people: dict[str, dict[str, Any]],
        companies: dict[str, dict[str, Any]],
        emails: dict[str, str],
        stored: dict[str, Contact],
        now: datetime,
        source: Signals | None = None,
    ) -> list[Deal]:
        accounts: dict[str, tuple[str, str | None]] = {}
        drafts: list[tuple[ClosedDeal, Deal]] = []
        for closed in found:
            company = next((companies[c] for c in closed.company_ids if c in companies), {})
            members = [stored[emails[i]] for i in closed.contact_ids if i in emails and emails[i] in stored]
            domain = _text(company.get("domain")) or next((c.domain for c in members if c.domain), None)
            industry = _text(company.get("industry")) or self._enriched(members, "industry")
            size = size_range(company.get("numberofemployees")) or self._enriched(members, "employee_range")
            country = _text(company.get("country")) or self._enriched(members, "company_country")
            name = _text(company.get("name")) or self._enriched(members, "company_name")
            contacts = [
                self._deal_contact(i, people.get(i, {}), stored.get(emails.get(i, "")), size)
                for i in closed.contact_ids
            ]
            gaps = []
            if not contacts:
                gaps.append("no contacts associated")
            if any(not c.enriched for c in contacts):
                gaps.append("some contacts not enriched")
            if not domain:
                gaps.append("no company domain")
            if domain:
                accounts.setdefault(domain.lower(), (domain.lower(), name))
            deal = Deal(
                workspace=run.workspace,
                deal_id=closed.id,
                name=closed.name,
                pipeline=closed.pipeline,
                stage=closed.stage,
                outcome=closed.outcome,
                amount=closed.amount,
                closed_at=closed.closed_at,
                company_ids=list(closed.company_ids),
                domain=domain.lower() if domain else None,
                company_name=name,
                industry=industry,
                company_size=size,
                country=country,
                contacts=contacts,
                gaps=gaps,
                run_id=run.run_id,
                enriched_at=now,
            )
            drafts.append((closed, deal))
        signals: dict[str, Any] = {}
        if source is not None and accounts:
            signals = source.signals_for(list(accounts.values()))  # each account once
        out = []
        for _, deal in drafts:
            found_signals = signals.get(deal.domain or "")
            if found_signals is not None:
                deal.signals = found_signals.model_dump(mode="json") if hasattr(found_signals, "model_dump") else None
                deal.signals_summary = getattr(found_signals, "summary", None)
            elif source is not None and deal.domain:
                deal.gaps.append("no account signals")
            deal.status = "enriched" if not deal.gaps else "partial"
            out.append(deal)
        return out

    @staticmethod
    def _enriched(members: Iterable[Contact], field: str) -> str | None:
        for contact in members:
            value = contact.enrichment.get(field)
            if value is not None and value.value not in (None, ""):
                return str(value.value)
        return None

    @staticmethod
    def _deal_contact(
        contact_id: str, props: dict[str, Any], contact: Contact | None, company_size: str | None
    ) -> DealContact:
        if contact is None:
            title = _text(props.get("jobtitle"))
            guess = buying_role(title, None, None, company_size=company_size)
            return DealContact(
                hubspot_id=contact_id,
                name=" ".join(p for p in (_text(props.get("firstname")), _text(props.get("lastname"))) if p) or None,
                title=title,
                role=guess.role,
                role_confidence=guess.confidence,
                role_reasons=list(guess.reasons),
            )
        fields = contact.enrichment
        title_fv = fields.get("title")
        title = str(title_fv.value) if title_fv and title_fv.value else contact.title
        seniority, department = fields.get("seniority"), fields.get("department")
        guess = role_of_contact(contact, company_size=company_size)
        return DealContact(
            hubspot_id=contact_id,
            email=contact.email,
            name=" ".join(p for p in (contact.first_name, contact.last_name) if p) or None,
            title=title,
            seniority=str(seniority.value) if seniority and seniority.value else None,
            seniority_verified=is_verified(seniority),
            department=str(department.value) if department and department.value else None,
            department_verified=is_verified(department),
            role=guess.role,
            role_confidence=guess.confidence,
            role_reasons=list(guess.reasons),
            enriched=contact.enrichment_meta is not None,
            provider_enriched=any(is_data_provider(fv.provider) for fv in fields.values()),
        )

    @staticmethod
    def _counts(deals: Sequence[Deal]) -> RunCounts:
        contacts = [c for d in deals for c in d.contacts]
        accounts = {d.domain for d in deals if d.domain}
        with_signals = {d.domain for d in deals if d.domain and d.signals}
        return RunCounts(
            deals=len(deals),
            won=sum(d.outcome == "won" for d in deals),
            lost=sum(d.outcome == "lost" for d in deals),
            enriched_deals=sum(d.status == "enriched" for d in deals),
            partial_deals=sum(d.status == "partial" for d in deals),
            deal_contacts=len(contacts),
            roles_resolved=sum(c.role != "other" for c in contacts),
            provider_enriched_contacts=sum(c.provider_enriched for c in contacts),
            accounts=len(accounts),
            accounts_with_signals=len(with_signals),
        )

    # ------------------------------------------------------------------------------------------ the profile

    def recompute(self, ws: str, budget: Budget | None = None) -> tuple[IcpProfile, int]:
        """The ICP profile from every stored deal, then every contact scored against it; the synced contacts whose
        score changed are queued for a sync (HubSpot's ``leadpipe_icp_fit``)."""
        deals = self.store.deals(ws)
        records = [
            DealRecord(
                deal_id=d.deal_id,
                outcome=d.outcome,
                amount=d.amount,
                industry=d.industry,
                company_size=d.company_size,
                country=d.country,
                roles=[c.role for c in d.contacts],
                titles=[c.title for c in d.contacts if c.title],
            )
            for d in deals
        ]
        profile = IcpProfile.compute(records)
        computed_at = self.clock()
        self.store.put_profile(ws, profile.to_dict(), computed_at)
        changed_synced: list[str] = []
        scored = 0
        emails = self.contacts.emails_matching(ws, limit=1_000_000)
        for start in range(0, len(emails), SCORE_CHUNK):
            chunk = emails[start : start + SCORE_CHUNK]

            def mutate(email: str, before: Contact | None) -> Contact | Unchanged:
                if before is None:
                    return UNCHANGED
                fit = self.fit(profile, before, computed_at)
                old = before.icp
                if (
                    old is not None
                    and round(old.score, 3) == round(fit.score, 3)
                    and old.explanation == fit.explanation
                ):
                    return UNCHANGED
                after = before.model_copy(deep=True)
                after.icp = fit
                after.updated_at = computed_at
                return after

            written = self.contacts.upsert(ws, chunk, mutate)
            scored += len(chunk)
            for email, contact in written.items():
                if (
                    contact is not None
                    and contact.status is PipelineStatus.SYNCED
                    and contact.updated_at == computed_at
                ):
                    changed_synced.append(email)
        if changed_synced and self.settings.sync_queue_url:
            queue_sync(self.sqs, self.settings.sync_queue_url, ws, changed_synced, None, f"icp-{uuid.uuid4().hex[:12]}")
        return profile, scored

    @staticmethod
    def fit(profile: IcpProfile, contact: Contact, computed_at: datetime) -> IcpFit:
        fields = contact.enrichment

        def value(name: str) -> str | None:
            fv = fields.get(name)
            return str(fv.value) if fv is not None and fv.value not in (None, "") else None

        role = role_of_contact(contact).role
        country = value("company_country") or value("country") or contact.country  # the account's, as learned
        score = profile.fit(value("industry"), value("employee_range"), country, role)
        return IcpFit(score=round(score.score, 4), explanation=score.explanation, role=role, profile_at=computed_at)

    # ------------------------------------------------------------------------------------------ reading

    def status(self, ws: str) -> dict[str, Any]:
        deals = self.store.deals(ws)
        counts = self._counts(deals)
        runs = self.store.latest_runs(ws, limit=1)
        return {
            "config": {
                "lookback_months_default": 6,
                "max_lookback_months": MAX_LOOKBACK_MONTHS,
                "max_limit": MAX_LIMIT,
                "schedule": self.settings.deals_schedule,
                "signals_provider": "serper",
                "signals_key": bool(serper_key(self.keys, ws)),
            },
            "stats": {
                "total_closed_deals": counts.deals,
                "won_deals": counts.won,
                "lost_deals": counts.lost,
                "enriched_deals": counts.enriched_deals,
                "partial_deals": counts.partial_deals,
                "deal_contacts": counts.deal_contacts,
                "roles_resolved": counts.roles_resolved,
                "provider_enriched_contacts": counts.provider_enriched_contacts,
                "accounts_with_signals": counts.accounts_with_signals,
            },
            "last_run": runs[0].model_dump(mode="json") if runs else None,
        }

    def summary(self, ws: str) -> dict[str, Any]:
        deals = sorted(self.store.deals(ws), key=lambda d: d.closed_at, reverse=True)
        runs = self.store.latest_runs(ws, limit=1)
        stored = self.store.profile(ws)
        profile = IcpProfile.from_dict(stored[0]) if stored else None

        def top(values: Iterable[str | None], n: int = 5) -> list[dict[str, Any]]:
            from collections import Counter

            counted = Counter(v for v in values if v)
            return [{"value": v, "deals": c} for v, c in counted.most_common(n)]

        def side(outcome: str) -> dict[str, Any]:
            chosen = [d for d in deals if d.outcome == outcome]
            return {
                "deals": len(chosen),
                "amount": round(sum(d.amount or 0.0 for d in chosen), 2),
                "industries": top(d.industry for d in chosen),
                "company_sizes": top(d.company_size for d in chosen),
                "roles": top(c.role for d in chosen for c in d.contacts),
                "titles": top(c.title for d in chosen for c in d.contacts),
            }

        return {
            "last_run": runs[0].model_dump(mode="json") if runs else None,
            "won": side("won"),
            "lost": side("lost"),
            "icp": profile.to_dict() if profile else None,
            "icp_computed_at": stored[1].isoformat() if stored else None,
            "deals": [
                {
                    "deal_id": d.deal_id,
                    "name": d.name,
                    "outcome": d.outcome,
                    "amount": d.amount,
                    "closed_at": d.closed_at.isoformat(),
                    "status": d.status,
                    "gaps": d.gaps,
                    "account": {
                        "domain": d.domain,
                        "name": d.company_name,
                        "industry": d.industry,
                        "company_size": d.company_size,
                        "country": d.country,
                        "signals": d.signals_summary,
                    },
                    "contacts": [
                        {"email": c.email, "title": c.title, "role": c.role, "role_confidence": c.role_confidence}
                        for c in d.contacts
                    ],
                }
                for d in deals
            ],
        }
