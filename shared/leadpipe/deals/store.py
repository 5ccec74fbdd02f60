"""What closed-deal enrichment keeps, in the state table.

- ``pk = DEAL#{ws}, sk = {deal id}``: a closed deal with its outcome, amount, close date, account (domain, industry,
  size, country, signals) and contacts (each with its buying role and whether seniority and department are verified).
- ``pk = DEALRUN#{ws}, sk = {run id}``: a run (API request or the monthly schedule) and its counts.
- ``pk = ICP#{ws}, sk = profile``: the ideal-customer profile computed after the latest run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from leadpipe.dynamo import batch_write, from_item, to_item
from leadpipe.models import Workspace, utcnow

RunStatus = Literal["queued", "running", "completed", "failed"]


class DealContact(BaseModel):
    hubspot_id: str
    email: str | None = None
    name: str | None = None
    title: str | None = None
    seniority: str | None = None
    seniority_verified: bool = False
    department: str | None = None
    department_verified: bool = False
    role: str = "other"
    role_confidence: float = 0.0
    role_reasons: list[str] = Field(default_factory=list)
    enriched: bool = False  # enriched by the waterfall (a provider answered, not only the import)
    provider_enriched: bool = False  # at least one field from a real data provider


class Deal(BaseModel):
    workspace: Workspace
    deal_id: str
    name: str
    pipeline: str
    stage: str
    outcome: Literal["won", "lost"]
    amount: float | None = None
    closed_at: datetime
    company_ids: list[str] = Field(default_factory=list)
    domain: str | None = None
    company_name: str | None = None
    industry: str | None = None
    company_size: str | None = None
    country: str | None = None
    signals_summary: str | None = None
    signals: dict[str, Any] | None = None
    contacts: list[DealContact] = Field(default_factory=list)
    status: Literal["enriched", "partial"] = "partial"
    gaps: list[str] = Field(default_factory=list)  # why a deal is partial
    run_id: str
    enriched_at: datetime


class RunCounts(BaseModel):
    deals: int = 0
    won: int = 0
    lost: int = 0
    enriched_deals: int = 0
    partial_deals: int = 0
    deal_contacts: int = 0
    roles_resolved: int = 0
    provider_enriched_contacts: int = 0
    accounts: int = 0
    accounts_with_signals: int = 0
    contacts_scored: int = 0


class DealRun(BaseModel):
    workspace: Workspace
    run_id: str
    trigger: Literal["api", "schedule"]
    lookback_months: int
    limit: int | None = None
    status: RunStatus = "queued"
    counts: RunCounts = Field(default_factory=RunCounts)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DealRepository:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # ------------------------------------------------------------------------------------------ deals

    def put_deals(self, deals: Iterable[Deal]) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": to_item({"pk": f"DEAL#{d.workspace}", "sk": d.deal_id, "deal": d.model_dump(mode="json")})
                }
            }
            for d in deals
        ]
        batch_write(self.client, self.table, requests)

    def deals(self, workspace: str) -> list[Deal]:
        """Every closed deal stored for the workspace (a closed-deal history is thousands, not millions)."""
        return [Deal.model_validate(item["deal"]) for item in self._query(f"DEAL#{workspace}")]

    # ------------------------------------------------------------------------------------------ runs

    def put_run(self, run: DealRun) -> DealRun:
        self.client.put_item(
            TableName=self.table,
            Item=to_item({"pk": f"DEALRUN#{run.workspace}", "sk": run.run_id, "run": run.model_dump(mode="json")}),
        )
        return run

    def run(self, workspace: str, run_id: str) -> DealRun | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"DEALRUN#{workspace}"}, "sk": {"S": run_id}},
            ConsistentRead=True,
        ).get("Item")
        return DealRun.model_validate(from_item(item)["run"]) if item else None

    def latest_runs(self, workspace: str, limit: int = 10) -> list[DealRun]:
        """Newest first (run ids sort by time)."""
        page = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"DEALRUN#{workspace}"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [DealRun.model_validate(from_item(i)["run"]) for i in page.get("Items", [])]

    # ------------------------------------------------------------------------------------------ profile

    def put_profile(self, workspace: str, profile: dict[str, Any], computed_at: datetime) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {"pk": f"ICP#{workspace}", "sk": "profile", "profile": profile, "computed_at": computed_at.isoformat()}
            ),
        )

    def profile(self, workspace: str) -> tuple[dict[str, Any], datetime] | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"ICP#{workspace}"}, "sk": {"S": "profile"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        data = from_item(item)
        return dict(data["profile"]), datetime.fromisoformat(str(data["computed_at"]))

    def _query(self, pk: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": pk}},
        }
        while True:
            page = self.client.query(**kwargs)
            out.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
