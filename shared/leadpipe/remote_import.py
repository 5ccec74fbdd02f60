"""Import sources that are APIs rather than files: a HubSpot portal's contacts, a Lemlist campaign's leads.

Each source is read a page at a time from a cursor the import job keeps in its checkpoint, so an import resumes
where it stopped (a follow-up message when the invocation's time runs short, or a redelivery after a crash). Records
become the same ``ContactDraft``s a CSV row becomes -- same validation, same merge rules, same row errors -- with the
record's position in the source as its row number, so a replayed page is recognised and not counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import ImportFileError
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.lemlist import LemlistClient, lead_rows
from leadpipe.models import ImportSource, Job
from leadpipe.settings import Settings
from leadpipe.workspaces import WorkspaceRepository

# The fields a remote record may fill, in the order RowParser.for_fields receives them.
REMOTE_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "website",
    "linkedin",
    "city",
    "country",
    "tags",
)

LEMLIST_PAGE = 500

# HubSpot's standard contact properties -> leadpipe's fields.
HUBSPOT_PROPERTIES: dict[str, str] = {
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "company": "company",
    "jobtitle": "title",
    "phone": "phone",
    "website": "website",
    "city": "city",
    "country": "country",
}


@dataclass
class RemoteRecord:
    values: dict[str, str]  # field -> raw value, for RowParser.for_fields(REMOTE_FIELDS)
    hubspot_id: str | None = None
    custom: dict[str, str] = field(default_factory=dict)  # custom:<key> -> value

    def row_values(self, fields: Sequence[str]) -> list[str]:
        return [self.values.get(f, "") if not f.startswith("custom:") else self.custom.get(f[7:], "") for f in fields]


@dataclass
class RemotePage:
    records: list[RemoteRecord]
    next_cursor: str | None  # None: this was the last page


class RemoteReader(Protocol):
    """One import source, read a page at a time."""

    label: str  # the import's reference (shown in source history): "hubspot portal 62515", "lemlist <campaign>"

    def page(self, cursor: str | None) -> RemotePage: ...

    def close(self) -> None: ...


class HubSpotReader:
    """Every contact of the portal, 100 a page, with the standard properties leadpipe imports."""

    def __init__(self, client: HubSpotClient, portal_id: int | None = None) -> None:
        self.client = client
        self.label = f"hubspot portal {portal_id}" if portal_id else "hubspot"

    def page(self, cursor: str | None) -> RemotePage:
        results, following = self.client.list_page("contacts", list(HUBSPOT_PROPERTIES), after=cursor)
        records = []
        for result in results:
            props: dict[str, Any] = result.get("properties") or {}
            values = {f: str(props.get(p) or "") for p, f in HUBSPOT_PROPERTIES.items()}
            records.append(RemoteRecord(values=values, hubspot_id=str(result.get("id"))))
        return RemotePage(records, following)

    def close(self) -> None:
        self.client.close()


class LemlistReader:
    """The leads of one Lemlist campaign, tagged ``lemlist:<campaign>``, 500 a page (offsets into its export)."""

    def __init__(self, client: LemlistClient, campaign_id: str, campaign_name: str | None = None) -> None:
        self.client = client
        self.campaign_id = campaign_id
        self.campaign_name = campaign_name
        self.label = f"lemlist campaign {campaign_name or campaign_id}"

    def page(self, cursor: str | None) -> RemotePage:
        if self.campaign_name is None:
            self.campaign_name = self.client.campaign(self.campaign_id).name  # 404: a clear "no campaign" error
            self.label = f"lemlist campaign {self.campaign_name}"
        offset = int(cursor or 0)
        page = self.client.lead_page(self.campaign_id, offset=offset, limit=LEMLIST_PAGE)
        records = [
            RemoteRecord(values={k: v for k, v in row.values.items() if not k.startswith("custom:")}, custom=row.custom)
            for row in lead_rows(page.leads, self.campaign_name, first_row=offset + 1)
        ]
        return RemotePage(records, page.next_cursor)

    def close(self) -> None:
        self.client.close()


def parser_fields(records: Sequence[RemoteRecord]) -> tuple[str, ...]:
    """The fields a page's records fill: the standard ones and every custom key any of them has."""
    custom = sorted({key for record in records for key in record.custom})
    return (*REMOTE_FIELDS, *(f"custom:{key}" for key in custom))


def credential(keys: ProviderKeys, workspace: str, source: ImportSource) -> str | None:
    """The workspace's key for an API source (SSM, else the environment), or None."""
    if source is ImportSource.HUBSPOT:
        return keys.secret(workspace, "hubspot/token", "HUBSPOT_TOKEN")
    return keys.secret(workspace, "lemlist", "LEMLIST_API_KEY")


def make_reader(
    job: Job, budget: Budget, *, settings: Settings, keys: ProviderKeys, workspaces: WorkspaceRepository
) -> RemoteReader:
    """The reader for an import job's source, with the workspace's credentials."""
    key = credential(keys, job.workspace, job.source)
    if not key:
        where = (
            "hubspot/token (or HUBSPOT_TOKEN)" if job.source is ImportSource.HUBSPOT else "lemlist (or LEMLIST_API_KEY)"
        )
        raise ImportFileError(f"no {job.source} key for workspace {job.workspace}: store it at {where}", code="no_key")
    if job.source is ImportSource.HUBSPOT:
        ws = workspaces.get(job.workspace)
        client = HubSpotClient(key, base_url=settings.hubspot_base_url, burst_limit=ws.sync.burst_limit, budget=budget)
        return HubSpotReader(client, ws.hubspot.portal_id)
    if job.source is ImportSource.LEMLIST and job.campaign_id:
        return LemlistReader(
            LemlistClient(key, base_url=settings.lemlist_base_url, budget=budget), job.campaign_id, job.campaign_name
        )
    raise ImportFileError(f"{job.source} imports are not available", code="unsupported_source")
