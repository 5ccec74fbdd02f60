"""Import jobs in the state table: creation (idempotent), progress with checkpoints, listing.

Key: ``pk=J#{ws}`` ``sk={job_id}`` (ids sort by creation time, so a Query lists newest first).

Progress updates are conditional on the checkpoint the writer started from: two invocations working on the same job
(a duplicated continuation message) can never both count the same rows; the second one learns it is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from leadpipe.dynamo import batch_get, error_code, from_item, to_attr, to_item
from leadpipe.errors import NotFound
from leadpipe.models import (
    MAX_ROW_ERRORS,
    Checkpoint,
    CsvLayout,
    Job,
    JobCounts,
    JobError,
    JobStatus,
    RowError,
    iso,
    utcnow,
)
from leadpipe.workspaces import registry_item


class StaleJob(Exception):
    """The job moved on (another invocation advanced it, or it finished) since this copy was read."""


def job_key(workspace: str, job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"J#{workspace}"}, "sk": {"S": job_id}}


def _job_from_item(item: dict[str, Any]) -> Job:
    data = from_item(item)
    data.pop("pk", None)
    data.pop("sk", None)
    data.pop("expires_at", None)
    return Job.model_validate(data)


class JobRepository:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def create(self, job: Job) -> tuple[Job, bool]:
        """Store a new job; if one with the same id exists, return it instead (idempotent creation)."""
        item = to_item(job.model_dump(mode="json", exclude_none=True))
        item.update(job_key(job.workspace, job.job_id))
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = self.get(job.workspace, job.job_id)
            if existing is None:  # deleted in between: extremely unlikely, try once more
                return self.create(job)
            return existing, False
        # the workspace in the registry, for the schedules that go through every workspace (idempotent)
        self.client.put_item(TableName=self.table, Item=registry_item(job.workspace))
        return job, True

    def get(self, workspace: str, job_id: str) -> Job | None:
        response = self.client.get_item(TableName=self.table, Key=job_key(workspace, job_id), ConsistentRead=True)
        item = response.get("Item")
        return _job_from_item(item) if item else None

    def get_many(self, workspace: str, job_ids: Iterable[str]) -> dict[str, Job]:
        """Several jobs by id (BatchGetItem, 100 a call); unknown ids are left out."""
        keys = [job_key(workspace, j) for j in dict.fromkeys(job_ids)]
        jobs = (_job_from_item(item) for item in batch_get(self.client, self.table, keys)) if keys else ()
        return {job.job_id: job for job in jobs}

    def redact_errors(self, workspace: str, job_id: str, positions: Sequence[int], message: str) -> None:
        """Erasure: the row errors at these positions of the job's list get ``message`` instead of theirs and lose
        the offending value; their row number, field and code stay, so the job's counts still add up. Positions are
        stable (errors are only ever appended), so an import appending errors meanwhile is not disturbed."""
        if not positions:
            return
        at = sorted(set(positions))
        self.client.update_item(
            TableName=self.table,
            Key=job_key(workspace, job_id),
            UpdateExpression="SET "
            + ", ".join(f"#e[{i}].#m = :m" for i in at)
            + " REMOVE "
            + ", ".join(f"#e[{i}].#v" for i in at),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#e": "errors", "#m": "message", "#v": "value"},
            ExpressionAttributeValues={":m": to_attr(message)},
        )

    def require(self, workspace: str, job_id: str) -> Job:
        job = self.get(workspace, job_id)
        if job is None:
            raise NotFound(f"no import job '{job_id}'", code="job_not_found")
        return job

    def recent(self, workspace: str, *, limit: int = 20, before: str | None = None) -> list[Job]:
        """A workspace's jobs, newest first (``before``: a job id from the previous page)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk" + (" AND sk < :before" if before else ""),
            "ExpressionAttributeValues": {":pk": {"S": f"J#{workspace}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if before:
            request["ExpressionAttributeValues"][":before"] = {"S": before}
        response = self.client.query(**request)
        return [_job_from_item(i) for i in response.get("Items", [])]

    def update(
        self,
        job: Job,
        *,
        expect_checkpoint: bool = True,
        checkpoint: Checkpoint | None = None,
        counts: JobCounts | None = None,
        errors: list[RowError] | None = None,
        warnings: list[str] | None = None,
        status: JobStatus | None = None,
        error: JobError | None = None,
        layout: CsvLayout | None = None,
        extra: dict[str, Any] | None = None,
        invocation: bool = False,
        clear_error: bool = False,
    ) -> Job:
        """Apply a progress step atomically, conditional on the job still being at ``job.checkpoint``."""
        now = utcnow()
        sets: list[str] = ["#updated_at = :now"]
        adds: list[str] = []
        names: dict[str, str] = {"#updated_at": "updated_at"}
        values: dict[str, Any] = {":now": to_attr(iso(now))}

        def set_(name: str, value: Any) -> None:
            names[f"#{name}"] = name
            values[f":{name}"] = to_attr(value)
            sets.append(f"#{name} = :{name}")

        if checkpoint is not None:
            set_("checkpoint", checkpoint.model_dump())
        if layout is not None:
            set_("layout", layout.model_dump(mode="json"))
        if status is not None:
            set_("status", status.value)
            if status.terminal:
                set_("finished_at", iso(now))
            if status is JobStatus.RUNNING and job.started_at is None:
                set_("started_at", iso(now))
        if error is not None:
            set_("error", error.model_dump())
        for key, value in (extra or {}).items():
            set_(key, value)
        if counts is not None:
            for name, value in counts.model_dump().items():
                if value:
                    names["#counts"] = "counts"  # only when a counter moves: DynamoDB refuses unused names
                    names[f"#c_{name}"] = name
                    values[f":c_{name}"] = to_attr(value)
                    adds.append(f"#counts.#c_{name} :c_{name}")
        if invocation:
            names["#invocations"] = "invocations"
            values[":one"] = to_attr(1)
            adds.append("#invocations :one")
        room = MAX_ROW_ERRORS - len(job.errors)
        if errors and room > 0:
            names["#errors"] = "errors"
            values[":errors"] = to_attr([e.model_dump(exclude_none=True) for e in errors[:room]])
            values[":empty"] = to_attr([])
            sets.append("#errors = list_append(if_not_exists(#errors, :empty), :errors)")
        if warnings:
            fresh = [w for w in warnings if w not in job.warnings][: 20 - len(job.warnings)]
            if fresh:
                names["#warnings"] = "warnings"
                values[":warnings"] = to_attr(fresh)
                values[":empty"] = to_attr([])
                sets.append("#warnings = list_append(if_not_exists(#warnings, :empty), :warnings)")

        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        if clear_error and error is None:
            names["#error"] = "error"
            expression += " REMOVE #error"

        condition = "attribute_exists(pk)"
        if expect_checkpoint:
            names["#checkpoint"] = "checkpoint"
            if job.checkpoint is None:
                condition += " AND attribute_not_exists(#checkpoint)"
            else:
                names["#off"] = "offset"
                values[":expected_offset"] = to_attr(job.checkpoint.offset)
                condition += " AND #checkpoint.#off = :expected_offset"
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=job_key(job.workspace, job.job_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise StaleJob(f"job {job.job_id} moved on since it was read") from exc
            raise
        return _job_from_item(response["Attributes"])
