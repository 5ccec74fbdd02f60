"""The contacts repository: DynamoDB access patterns of DESIGN §2, batch reads, conditional batch writes.

Table layout (one table, ``pk``/``sk``):

- contact     ``pk=C#{ws}#{email}``  ``sk=C``      the whole contact, with a ``version`` for optimistic locking
- tag member  ``pk=T#{ws}#{tag}#{shard}`` ``sk={tagged_at}#{email}``  one item per (contact, tag)
- counters    ``pk=N#{ws}``  ``sk={shard}``        contacts per pipeline status, maintained in the same transaction
                                                   as every status change, so counts never need a scan; and the
                                                   summary's facets (``f:industry:<value>``, ... see
                                                   ``contact_facets``) in the same update. There is no backfill:
                                                   contacts last written before the facets existed are not in them
                                                   (a later write that changes their facets adds the new ones and
                                                   takes the old ones off, so readers clamp a facet at 0).

Indexes (sparse where it matters):

- ``by_status``  ``gsi1pk={ws}#{status}#{shard}`` ``gsi1sk={updated_at}#{email}``  newest change first
- ``by_domain``  ``gsi2pk={ws}#{domain}``          ``gsi2sk={created_at}#{email}``  company domains only
- ``by_recent``  ``gsi3pk={ws}#{shard}``           ``gsi3sk={created_at}#{email}``  all contacts, newest first
- ``by_enrichment_age`` ``gsi5pk=P#{shard}`` ``gsi5sk={oldest enrichment time}#{ws}#{email}``  keys only, across
  workspaces, only contacts holding enrichment data: the retention purge's oldest-first work list (retention.py)

Every partition that a large import would otherwise write per row (one status, one workspace, one tag) is spread
over ``SHARDS`` keys by a hash of the email; listings query the shards and merge them newest-first.

Writes go through ``TransactWriteItems``: up to 99 contacts (with their tag items) plus one counter update per call,
each contact conditioned on the version it was read at (or on not existing yet). A concurrent writer therefore makes
our write fail for that contact only; ``upsert`` re-reads it and applies the change again.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import math
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadpipe.dynamo import (
    TRANSACT_MAX_BYTES,
    TRANSACT_MAX_ITEMS,
    TransactionCancelled,
    backoff,
    batch_get,
    from_item,
    item_size,
    to_attr,
    to_item,
    transact_write,
)
from leadpipe.enrichment.merge import IMPORT_SOURCE
from leadpipe.errors import BadRequest, TransientError
from leadpipe.models import Contact, FieldValue, PipelineStatus, iso

SHARDS = 8
COUNTER_SHARDS = 8
STATUS_INDEX = "by_status"
DOMAIN_INDEX = "by_domain"
HUBSPOT_INDEX = "by_hubspot_id"
RECENT_INDEX = "by_recent"
RETENTION_INDEX = "by_enrichment_age"
RETENTION_SHARDS = 16
MAX_PAGE = 100
_KEY_ATTRS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi5pk", "gsi5sk")


def shard_of(email: str) -> int:
    return zlib.crc32(email.encode()) % SHARDS


def contact_pk(workspace: str, email: str) -> str:
    return f"C#{workspace}#{email}"


def contact_key(workspace: str, email: str) -> dict[str, Any]:
    return {"pk": {"S": contact_pk(workspace, email)}, "sk": {"S": "C"}}


def _tag_key(workspace: str, tag: str, email: str, tagged_at: str) -> dict[str, Any]:
    return {"pk": {"S": f"T#{workspace}#{tag}#{shard_of(email)}"}, "sk": {"S": f"{tagged_at}#{email}"}}


def contact_to_item(contact: Contact) -> dict[str, Any]:
    data = contact.model_dump(mode="json", exclude_none=True)
    ws, email, shard = contact.workspace, contact.email, shard_of(contact.email)
    created, updated = iso(contact.created_at), iso(contact.updated_at)
    data.update(
        pk=contact_pk(ws, email),
        sk="C",
        gsi1pk=f"{ws}#{contact.status.value}#{shard}",
        gsi1sk=f"{updated}#{email}",
        gsi3pk=f"{ws}#{shard}",
        gsi3sk=f"{created}#{email}",
    )
    if contact.domain:
        data.update(gsi2pk=f"{ws}#{contact.domain}", gsi2sk=f"{created}#{email}")
    if contact.hubspot and contact.hubspot.contact_id:
        data.update(gsi4pk=hubspot_key(ws, contact.hubspot.contact_id))
    if (oldest := enrichment_since(contact)) is not None:
        retention_shard = zlib.crc32(email.encode()) % RETENTION_SHARDS
        data.update(gsi5pk=f"P#{retention_shard}", gsi5sk=f"{iso(oldest)}#{ws}#{email}")
    return to_item(data)


def provider_time(value: FieldValue, enriched_at: datetime | None) -> datetime | None:
    """When providers supplied an enriched value, which is what the retention purge ages it by: its ``fetched_at``
    (a cache hit keeps the provider's time); for the contact's own imported value, the time of the enrichment whose
    providers agreed or disagreed with it, or None when none did (the contact's own data is not enrichment)."""
    if value.provider != IMPORT_SOURCE:
        return value.fetched_at
    if value.agreed_by or value.conflicts:
        return enriched_at or value.fetched_at
    return None


def enrichment_since(contact: Contact) -> datetime | None:
    """The time of the oldest enrichment data the contact holds (values, insight): the retention index's key."""
    enriched_at = contact.enrichment_meta.enriched_at if contact.enrichment_meta else None
    times = [t for v in contact.enrichment.values() if (t := provider_time(v, enriched_at)) is not None]
    if contact.intelligence is not None:
        times.append(contact.intelligence.generated_at)
    return min(times, default=None)


def hubspot_key(workspace: str, contact_id: str) -> str:
    """The by_hubspot_id index's key: a contact found from its HubSpot id (deletions, an email changed there)."""
    return f"{workspace}#{contact_id}"


def contact_from_item(item: dict[str, Any]) -> Contact:
    data = from_item(item)
    for key in _KEY_ATTRS:
        data.pop(key, None)
    return Contact.model_validate(data)


FACET_PREFIX = "f:"
FACET_VALUE_MAX = 64  # characters of a value kept in a facet's name (names are the counter item's attributes)
SCORED_FACET = "f:scored"  # contacts with a quality score: the denominator of coverage by provider


def facet_value(value: object) -> str | None:
    """A value as the summary groups it: whitespace collapsed, lower case, at most ``FACET_VALUE_MAX`` characters."""
    if value is None or isinstance(value, bool):
        return None
    text = " ".join(str(value).split()).lower()[:FACET_VALUE_MAX].strip()
    return text or None


def quality_bucket(quality: float) -> str:
    """The 0.1-wide bucket a quality score falls in, by its lower bound ("0.0" ... "0.9"; 1.0 is in "0.9")."""
    return f"{min(9, math.floor(round(quality * 10, 6))) / 10:.1f}"


def contact_facets(contact: Contact) -> set[str]:
    """The summary counters a contact counts in: ``f:industry:<v>``, ``f:size:<employee range>``, ``f:country:<v>``
    (the person's country, else the imported one, else the company's), ``f:provider:<name>`` for each provider
    that supplied a kept value (as the winner or in agreement; the imported file is not a provider),
    ``f:quality:<bucket>`` and ``f:scored`` once it has a quality score."""
    fields = contact.enrichment
    facets: set[str] = set()

    def add(facet: str, value: object) -> None:
        normalised = facet_value(value)
        if normalised:
            facets.add(f"{FACET_PREFIX}{facet}:{normalised}")

    def enriched(name: str) -> object:
        return fields[name].value if name in fields else None

    add("industry", enriched("industry"))
    add("size", enriched("employee_range"))
    add("country", enriched("country") or contact.country or enriched("company_country"))
    for value in fields.values():
        for provider in (value.provider, *value.agreed_by):
            if provider != IMPORT_SOURCE:
                add("provider", provider)
    if contact.quality is not None:
        facets.add(SCORED_FACET)
        add("quality", quality_bucket(contact.quality))
    return facets


@dataclass(slots=True)
class ContactChange:
    """Replace ``before`` (None: the contact must not exist yet) with ``after`` (None: delete it)."""

    before: Contact | None
    after: Contact | None

    @property
    def email(self) -> str:
        c = self.after or self.before
        assert c is not None
        return c.email

    @property
    def workspace(self) -> str:
        c = self.after or self.before
        assert c is not None
        return c.workspace


@dataclass(slots=True)
class SaveResult:
    written: list[ContactChange] = field(default_factory=list)
    conflicts: list[ContactChange] = field(default_factory=list)


@dataclass(slots=True)
class ContactPage:
    items: list[Contact]
    next_cursor: str | None


class Unchanged:
    """Returned by an ``upsert`` mutation to say: leave this contact as it is."""


UNCHANGED = Unchanged()
Mutation = Callable[[str, Contact | None], Contact | Unchanged | None]


class ContactRepository:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.calls: Counter[str] = Counter()  # DynamoDB calls made, by operation (for metrics and benchmarks)

    # ---------------------------------------------------------------------------------------------- reads

    def get(self, workspace: str, email: str) -> Contact | None:
        self.calls["GetItem"] += 1
        response = self.client.get_item(TableName=self.table, Key=contact_key(workspace, email), ConsistentRead=True)
        item = response.get("Item")
        return contact_from_item(item) if item else None

    def emails_for_hubspot_ids(self, workspace: str, contact_ids: Iterable[str]) -> dict[str, str]:
        """HubSpot contact id -> email, for contacts leadpipe has synced. One query per id on the sparse
        ``by_hubspot_id`` index (an index has no batch read); used for deletions and emails changed in HubSpot,
        which are rare."""
        found: dict[str, str] = {}
        for contact_id in dict.fromkeys(contact_ids):
            self.calls["Query"] += 1
            page = self.client.query(
                TableName=self.table,
                IndexName=HUBSPOT_INDEX,
                KeyConditionExpression="gsi4pk = :k",
                ExpressionAttributeValues={":k": {"S": hubspot_key(workspace, contact_id)}},
            )
            prefix = contact_pk(workspace, "")
            for item in page.get("Items", []):
                pk = str(item["pk"]["S"])
                if pk.startswith(prefix):
                    found[contact_id] = pk[len(prefix) :]
        return found

    def batch_get(self, workspace: str, emails: Iterable[str]) -> dict[str, Contact]:
        unique = list(dict.fromkeys(emails))
        if not unique:
            return {}
        items = batch_get(self.client, self.table, [contact_key(workspace, e) for e in unique], calls=self.calls)
        contacts = (contact_from_item(i) for i in items)
        return {c.email: c for c in contacts}

    def counts(self, workspace: str) -> dict[str, int]:
        """Contacts per pipeline status, from the counter shards (one Query, no scan)."""
        totals = self.counter_totals(workspace)
        return {s.value: totals.get(s.value, 0) for s in PipelineStatus}

    def counter_totals(self, workspace: str) -> dict[str, int]:
        """Every counter of the workspace summed over its shards: the pipeline statuses and the summary's facets
        (``contact_facets``; a facet is clamped at 0, see the module's note on contacts older than the facets)."""
        totals: Counter[str] = Counter()
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"N#{workspace}"}},
            "ConsistentRead": True,
        }
        while True:  # COUNTER_SHARDS items: one page unless the facets grow past 1 MB
            self.calls["Query"] += 1
            response = self.client.query(**request)
            for item in response.get("Items", []):
                for name, value in item.items():
                    if "N" in value:
                        totals[name] += int(value["N"])
            if not response.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return {name: max(0, n) if name.startswith(FACET_PREFIX) else n for name, n in totals.items()}

    # ---------------------------------------------------------------------------------------------- writes

    def save(self, changes: Sequence[ContactChange]) -> SaveResult:
        """Write changes in transactions; a contact changed by someone else since it was read is a conflict."""
        result = SaveResult()
        groups = self._pack(changes)
        for group in groups:
            self._save_group(group, result)
        return result

    def upsert(
        self,
        workspace: str,
        emails: Iterable[str],
        mutate: Mutation,
        *,
        known: Mapping[str, Contact | None] | None = None,
        max_rounds: int = 8,
    ) -> dict[str, Contact | None]:
        """Optimistic read-modify-write of many contacts: batch read, ``mutate`` each, conditional batch write.

        ``mutate(email, stored)`` returns the new contact, None to delete it, or ``UNCHANGED``. Contacts that another
        writer changed in between are read again and mutated again (``mutate`` must be a pure function of them).
        ``known``: contacts the caller has just read or written (None for absent); the first round starts from them
        instead of reading them again -- one that has changed since fails its conditional write and is read again.
        Returns the resulting contact per email (None when absent or deleted).
        """
        pending = list(dict.fromkeys(emails))
        results: dict[str, Contact | None] = {}
        for attempt in range(max_rounds):
            if attempt == 0 and known is not None:
                current = {e: c for e in pending if e in known and (c := known[e]) is not None}
                current.update(self.batch_get(workspace, [e for e in pending if e not in known]))
            else:
                current = self.batch_get(workspace, pending)
            changes: list[ContactChange] = []
            for email in pending:
                before = current.get(email)
                after = mutate(email, before)
                if isinstance(after, Unchanged):
                    results[email] = before
                elif after is None and before is None:
                    results[email] = None
                else:
                    changes.append(ContactChange(before, after))
            saved = self.save(changes)
            for change in saved.written:
                results[change.email] = change.after
            pending = [c.email for c in saved.conflicts]
            if not pending:
                return results
            backoff(attempt)
        raise TransientError(f"{len(pending)} contact(s) kept changing under us; giving up for now")

    def _change_items(self, change: ContactChange) -> list[dict[str, Any]]:
        before, after = change.before, change.after
        items: list[dict[str, Any]] = []
        if after is not None:
            after.version = (before.version if before else 0) + 1
            put: dict[str, Any] = {"TableName": self.table, "Item": contact_to_item(after)}
            if before is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "#v = :v"
                put["ExpressionAttributeNames"] = {"#v": "version"}
                put["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
            items.append({"Put": put})
        else:
            assert before is not None
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": contact_key(before.workspace, before.email),
                        "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": {":v": {"N": str(before.version)}},
                    }
                }
            )
        old_tags = before.tags if before else {}
        new_tags = after.tags if after else {}
        for tag, tagged_at in new_tags.items():
            if tag not in old_tags:
                key = _tag_key(change.workspace, tag, change.email, iso(tagged_at))
                member = {**key, "email": {"S": change.email}, "tag": {"S": tag}}
                items.append({"Put": {"TableName": self.table, "Item": member}})
        for tag, tagged_at in old_tags.items():
            if tag not in new_tags:
                key = _tag_key(change.workspace, tag, change.email, iso(tagged_at))
                items.append({"Delete": {"TableName": self.table, "Key": key}})
        return items

    def _pack(self, changes: Sequence[ContactChange]) -> list[list[tuple[ContactChange, list[dict[str, Any]]]]]:
        groups: list[list[tuple[ContactChange, list[dict[str, Any]]]]] = []
        current: list[tuple[ContactChange, list[dict[str, Any]]]] = []
        count = size = 0
        for change in changes:
            items = self._change_items(change)
            n, s = len(items), sum(item_size(i) for i in items)
            if current and (count + n + 1 > TRANSACT_MAX_ITEMS or size + s > TRANSACT_MAX_BYTES):
                groups.append(current)
                current, count, size = [], 0, 0
            current.append((change, items))
            count += n
            size += s
        if current:
            groups.append(current)
        return groups

    def _counter_update(self, workspace: str, changes: Iterable[ContactChange]) -> dict[str, Any] | None:
        delta: Counter[str] = Counter()
        for change in changes:
            if change.before is not None:
                delta[change.before.status.value] -= 1
                delta.subtract(contact_facets(change.before))
            if change.after is not None:
                delta[change.after.status.value] += 1
                delta.update(contact_facets(change.after))
        delta = Counter({k: v for k, v in delta.items() if v})
        if not delta:
            return None
        names = {f"#s{i}": status for i, status in enumerate(sorted(delta))}
        values = {f":d{i}": {"N": str(delta[status])} for i, status in enumerate(sorted(delta))}
        expression = "ADD " + ", ".join(f"#s{i} :d{i}" for i in range(len(names)))
        return {
            "Update": {
                "TableName": self.table,
                "Key": {
                    "pk": {"S": f"N#{workspace}"},
                    "sk": {"S": f"{random.randrange(COUNTER_SHARDS):02d}"},
                },
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _save_group(
        self,
        group: list[tuple[ContactChange, list[dict[str, Any]]]],
        result: SaveResult,
        max_attempts: int = 8,
    ) -> None:
        pending = group
        for attempt in range(max_attempts):
            by_workspace = {c.workspace for c, _ in pending}
            items: list[dict[str, Any]] = []
            owner: list[int | None] = []
            for index, (_, change_items) in enumerate(pending):
                items.extend(change_items)
                owner.extend([index] * len(change_items))
            for ws in sorted(by_workspace):
                counter = self._counter_update(ws, (c for c, _ in pending if c.workspace == ws))
                if counter is not None:
                    items.append(counter)
                    owner.append(None)
            if not items:
                return
            self.calls["TransactWriteItems"] += 1
            try:
                transact_write(self.client, items)
            except TransactionCancelled as exc:
                conflicted: set[int] = set()
                for reason, idx in zip(exc.reasons, owner, strict=False):
                    if reason == "ConditionalCheckFailed" and idx is not None:
                        conflicted.add(idx)
                for idx in sorted(conflicted):
                    result.conflicts.append(pending[idx][0])
                pending = [p for i, p in enumerate(pending) if i not in conflicted]
                if not pending:
                    return
                if not conflicted:
                    backoff(attempt)  # a transaction conflict or throttling: same request again, later
                continue
            result.written.extend(c for c, _ in pending)
            return
        raise TransientError("DynamoDB kept cancelling the contact write transaction")

    # ---------------------------------------------------------------------------------------------- listing

    def find(
        self,
        workspace: str,
        *,
        status: PipelineStatus | None = None,
        domain: str | None = None,
        tag: str | None = None,
        custom: Mapping[str, str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        min_quality: float | None = None,
        max_quality: float | None = None,
    ) -> ContactPage:
        """Contacts newest first, by the most selective filter's index; other filters applied on the way.
        ``custom``: custom field -> exact value, every one required. ``min_quality`` (inclusive) and
        ``max_quality`` (exclusive) select scored contacts by their quality score."""
        limit = max(1, min(limit, MAX_PAGE))
        signature = _signature(status, domain, tag, custom)
        if min_quality is not None or max_quality is not None:
            signature = _signature(status, domain, tag, {**(custom or {}), "\0q": f"{min_quality}:{max_quality}"})
        partitions, source, filters, names, values = self._listing(workspace, status, domain, tag, custom)
        if source[1] is not None:  # on the index items themselves; tag listings check each contact below
            for bound, op, name in ((min_quality, ">=", ":qmin"), (max_quality, "<", ":qmax")):
                if bound is not None:
                    filters.append(f"#quality {op} {name}")
                    names["#quality"] = "quality"
                    values[name] = {"N": repr(float(bound))}
        positions = _decode_cursor(cursor, signature, len(partitions))

        contacts: list[Contact] = []
        exhausted_all = False
        # Tag listings read keys from the member items, then the contacts; filters on status apply after that,
        # so a page may take several rounds.
        for _ in range(10):
            want = limit - len(contacts)
            rows, positions, exhausted_all = self._merged_page(
                partitions, source, positions, want, " AND ".join(filters), names, values
            )
            if source[0] == "table":
                fetched = self.batch_get(workspace, [r["email"] for r in rows])
                page = [fetched[r["email"]] for r in rows if r["email"] in fetched]
                page = [
                    c for c in page if _matches(c, status, custom) and _in_range(c.quality, min_quality, max_quality)
                ]
            else:
                page = [contact_from_item(r["item"]) for r in rows]
            contacts.extend(page)
            if len(contacts) >= limit or exhausted_all:
                break
        next_cursor = None if exhausted_all else _encode_cursor(signature, positions)
        return ContactPage(items=contacts[:limit], next_cursor=next_cursor)

    @staticmethod
    def _listing(
        workspace: str,
        status: PipelineStatus | None,
        domain: str | None,
        tag: str | None,
        custom: Mapping[str, str] | None = None,
    ) -> tuple[list[str], tuple[str, str | None, str, str], list[str], dict[str, str], dict[str, Any]]:
        """Where a filter's contacts are listed: the partitions of the most selective index (or the tag members),
        and the filters applied on the way."""
        source: tuple[str, str | None, str, str]
        if domain:
            partitions = [f"{workspace}#{domain}"]
            source = ("index", DOMAIN_INDEX, "gsi2pk", "gsi2sk")
        elif tag:
            partitions = [f"T#{workspace}#{tag}#{s}" for s in range(SHARDS)]
            source = ("table", None, "pk", "sk")
        elif status:
            partitions = [f"{workspace}#{status.value}#{s}" for s in range(SHARDS)]
            source = ("index", STATUS_INDEX, "gsi1pk", "gsi1sk")
        else:
            partitions = [f"{workspace}#{s}" for s in range(SHARDS)]
            source = ("index", RECENT_INDEX, "gsi3pk", "gsi3sk")
        filters: list[str] = []
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        if source[1] is not None:  # filters on the index items themselves
            if status and source[1] != STATUS_INDEX:
                filters.append("#st = :st")
                names["#st"] = "status"
                values[":st"] = to_attr(status.value)
            if tag and domain:
                filters.append("attribute_exists(#tags.#tag)")
                names["#tags"] = "tags"
                names["#tag"] = tag
            for i, (key, value) in enumerate(sorted((custom or {}).items())):
                filters.append(f"#custom.#ck{i} = :cv{i}")
                names["#custom"] = "custom"
                names[f"#ck{i}"] = key
                values[f":cv{i}"] = to_attr(value)
        return partitions, source, filters, names, values

    def emails_matching(
        self,
        workspace: str,
        *,
        status: PipelineStatus | None = None,
        domain: str | None = None,
        tag: str | None = None,
        custom: Mapping[str, str] | None = None,
        limit: int = 10_000,
    ) -> list[str]:
        """Every email a filter selects, up to ``limit``, in no particular order: what a bulk action (enrich, sync)
        needs. One pass over each partition returning only the email — not ``find``'s merged, newest-first pages of
        whole contacts, which re-read every partition for each page."""
        partitions, source, filters, names, values = self._listing(workspace, status, domain, tag, custom)
        kind, index, pk_attr, _ = source
        emails: list[str] = []
        for partition in partitions:
            start: dict[str, Any] | None = None
            while len(emails) < limit:
                request: dict[str, Any] = {
                    "TableName": self.table,
                    "KeyConditionExpression": "#pk = :pk",
                    "ProjectionExpression": "#email",
                    "ExpressionAttributeNames": {"#pk": pk_attr, "#email": "email", **names},
                    "ExpressionAttributeValues": {":pk": {"S": partition}, **values},
                }
                if index:
                    request["IndexName"] = index
                if filters:
                    request["FilterExpression"] = " AND ".join(filters)
                if start:
                    request["ExclusiveStartKey"] = start
                self.calls["Query"] += 1
                response = self.client.query(**request)
                found = [item["email"]["S"] for item in response.get("Items", []) if "email" in item]
                if kind == "table" and (status or custom):  # tag members carry no status: ask the contacts
                    keys = [contact_key(workspace, e) for e in found]
                    wanted = ("email", "status", "custom") if custom else ("email", "status")
                    rows = batch_get(self.client, self.table, keys, projection=wanted, calls=self.calls)
                    keep = {r["email"]["S"] for r in rows if _item_matches(r, status, custom)}
                    found = [e for e in found if e in keep]
                emails.extend(found)
                start = response.get("LastEvaluatedKey")
                if not start:
                    break
        return list(dict.fromkeys(emails))[:limit]

    def stream(
        self,
        workspace: str,
        *,
        status: PipelineStatus | None = None,
        domain: str | None = None,
        tag: str | None = None,
        custom: Mapping[str, str] | None = None,
        cursor: str | None = None,
        page_size: int = 200,
    ) -> ContactStream:
        """Every contact a filter selects, newest first, as a stream (an export): each partition is read page by
        page and the partitions are merged lazily, so memory holds about one page per partition and each item is
        read once (``find`` re-reads every partition for each page). ``cursor`` resumes a stream where an earlier
        one's ``cursor()`` said."""
        signature = _signature(status, domain, tag, custom)
        partitions, source, filters, names, values = self._listing(workspace, status, domain, tag, custom)
        positions = _decode_cursor(cursor, signature, len(partitions))
        return ContactStream(
            self,
            workspace,
            signature,
            partitions,
            source,
            " AND ".join(filters),
            names,
            values,
            positions,
            status=status,
            custom=custom,
            page_size=page_size,
        )

    def _merged_page(
        self,
        partitions: list[str],
        source: tuple[str, str | None, str, str],
        positions: list[Any],
        want: int,
        filter_expression: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], list[Any], bool]:
        kind, index, pk_attr, sk_attr = source
        candidates: list[tuple[str, int, dict[str, Any], dict[str, Any]]] = []  # (sort key, partition, raw, key)
        ends: list[Any] = list(positions)
        for p, partition in enumerate(partitions):
            if positions[p] == "end":
                continue
            start = positions[p]
            got: list[dict[str, Any]] = []
            last: dict[str, Any] | None = None
            for _ in range(10):
                request: dict[str, Any] = {
                    "TableName": self.table,
                    "KeyConditionExpression": "#pk = :pk",
                    "ExpressionAttributeNames": {"#pk": pk_attr, **names},
                    "ExpressionAttributeValues": {":pk": {"S": partition}, **values},
                    "ScanIndexForward": False,
                    "Limit": want,
                }
                if index:
                    request["IndexName"] = index
                if filter_expression:
                    request["FilterExpression"] = filter_expression
                if start:
                    request["ExclusiveStartKey"] = start
                self.calls["Query"] += 1
                response = self.client.query(**request)
                got.extend(response.get("Items", []))
                last = response.get("LastEvaluatedKey")
                if len(got) >= want or not last:
                    break
                start = last
            for raw in got:
                key = {a: raw[a] for a in ("pk", "sk", pk_attr, sk_attr) if a in raw}
                candidates.append((raw[sk_attr]["S"], p, raw, key))
            # If every item this partition returned ends up on the page, it resumes from ``last`` next time.
            ends[p] = last if last else "end"
        candidates.sort(key=lambda c: c[0], reverse=True)
        taken = candidates[:want]
        left_over = {c[1] for c in candidates[want:]}
        new_positions = list(ends)
        last_taken: dict[int, dict[str, Any]] = {}
        for _, p, _, key in taken:
            last_taken[p] = key
        for p in left_over:
            # Items of this partition were left for the next page: resume right after the last one taken
            # (or where it started, if none was taken).
            new_positions[p] = last_taken.get(p, positions[p])
        rows: list[dict[str, Any]] = []
        for _, _, raw, _ in taken:
            if kind == "table":
                rows.append({"email": raw["email"]["S"]})
            else:
                rows.append({"item": raw})
        exhausted = all(pos == "end" for pos in new_positions)
        return rows, new_positions, exhausted


class ContactStream:
    """Iterating yields contacts newest first; ``cursor()`` tells where to resume after the last one yielded (None
    once the stream has been read to its end)."""

    def __init__(
        self,
        repo: ContactRepository,
        workspace: str,
        signature: str,
        partitions: list[str],
        source: tuple[str, str | None, str, str],
        filter_expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        positions: list[Any],
        *,
        status: PipelineStatus | None,
        custom: Mapping[str, str] | None,
        page_size: int,
    ) -> None:
        self.repo, self.workspace, self.signature = repo, workspace, signature
        self.partitions, self.source = partitions, source
        self.filter_expression, self.names, self.values = filter_expression, names, values
        self.positions = list(positions)
        self.status, self.custom, self.page_size = status, custom, page_size
        self.finished = False

    def cursor(self) -> str | None:
        return None if self.finished else _encode_cursor(self.signature, self.positions)

    def _partition(self, p: int) -> Iterator[tuple[str, int, dict[str, Any]]]:
        _, index, pk_attr, sk_attr = self.source
        start = self.positions[p]
        if start == "end":
            return
        while True:
            request: dict[str, Any] = {
                "TableName": self.repo.table,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": pk_attr, **self.names},
                "ExpressionAttributeValues": {":pk": {"S": self.partitions[p]}, **self.values},
                "ScanIndexForward": False,
                "Limit": self.page_size,
            }
            if index:
                request["IndexName"] = index
            if self.filter_expression:
                request["FilterExpression"] = self.filter_expression
            if start:
                request["ExclusiveStartKey"] = start
            self.repo.calls["Query"] += 1
            response = self.repo.client.query(**request)
            for raw in response.get("Items", []):
                yield raw[sk_attr]["S"], p, raw
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def __iter__(self) -> Iterator[Contact]:
        kind, _, pk_attr, sk_attr = self.source
        merged = heapq.merge(*(self._partition(p) for p in range(len(self.partitions))), reverse=True)

        def key_of(raw: dict[str, Any]) -> dict[str, Any]:
            return {a: raw[a] for a in ("pk", "sk", pk_attr, sk_attr) if a in raw}

        if kind != "table":
            for _, p, raw in merged:
                self.positions[p] = key_of(raw)
                yield contact_from_item(raw)
        else:  # tag members: read their contacts 100 at a time, in the members' order
            while chunk := [m for _, m in zip(range(100), merged, strict=False)]:
                found = self.repo.batch_get(self.workspace, [raw["email"]["S"] for _, _, raw in chunk])
                for _, p, raw in chunk:
                    self.positions[p] = key_of(raw)
                    contact = found.get(raw["email"]["S"])
                    if contact is not None and _matches(contact, self.status, self.custom):
                        yield contact
        self.finished = True


def _signature(
    status: PipelineStatus | None, domain: str | None, tag: str | None, custom: Mapping[str, str] | None
) -> str:
    """Which filters a cursor was made for."""
    parts: list[Any] = [status, domain, tag]
    if custom:
        parts.append(sorted(custom.items()))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def _matches(contact: Contact, status: PipelineStatus | None, custom: Mapping[str, str] | None) -> bool:
    if status and contact.status != status:
        return False
    return all(contact.custom.get(k) == v for k, v in (custom or {}).items())


def _in_range(quality: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    return quality is not None and (low is None or quality >= low) and (high is None or quality < high)


def _item_matches(item: dict[str, Any], status: PipelineStatus | None, custom: Mapping[str, str] | None) -> bool:
    """``_matches`` on a raw item projected to email, status and custom."""
    if status and item.get("status", {}).get("S") != status.value:
        return False
    stored = item.get("custom", {}).get("M", {})
    return all(stored.get(k, {}).get("S") == v for k, v in (custom or {}).items())


def _encode_cursor(signature: str, positions: list[Any]) -> str:
    raw = json.dumps({"f": signature, "p": positions}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, signature: str, count: int) -> list[Any]:
    if not cursor:
        return [None] * count
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        positions = data["p"]
        ok = data["f"] == signature and isinstance(positions, list) and len(positions) == count
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("the cursor is not valid", code="invalid_cursor") from exc
    if not ok:
        raise BadRequest("the cursor belongs to a different query (filters changed)", code="invalid_cursor")
    for pos in positions:
        if pos not in (None, "end") and not (
            isinstance(pos, dict) and all(isinstance(v, dict) and set(v) == {"S"} for v in pos.values())
        ):
            raise BadRequest("the cursor is not valid", code="invalid_cursor")
    return positions  # type: ignore[no-any-return]
