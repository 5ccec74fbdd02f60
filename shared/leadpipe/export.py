"""CSV export of contacts (GET /contacts/export), safe to open in a spreadsheet.

Columns, in order:

- the contact's own fields: ``email``, the profile fields (``first_name`` ... ``city``), ``domain``, ``email_domain``;
- ``tags`` (joined with ``;``, which the import splits on again), ``status``, ``status_reason``, ``lifecycle``,
  ``quality``, ``do_not_enrich``, ``engagements`` (how many were recorded), ``last_engaged_at``;
- ``hubspot_contact_id``, ``hubspot_company_id``, ``hubspot_synced_at``, ``created_at``, ``updated_at``;
- ``custom.<key>`` for every custom field any exported contact has (sorted by key);
- for every enriched field any exported contact has (the enrichment vocabulary's order, then others by name):
  ``enriched.<field>``, ``enriched.<field>_source`` (the provider whose value won), ``enriched.<field>_confidence``
  (0-1) and ``enriched.<field>_fetched_at``. The prefix keeps them apart from the contact's own (imported) values.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return, or their full-width and small forms U+FF1D U+FF0B U+FF0D U+FF20 U+FE66 U+FE62 U+FE63) as a formula,
leading spaces before them included.
Every such cell, header included, is written with a leading ``'`` (OWASP's advice), which spreadsheets show as text
and do not display. A plain number (``-12``, ``+3.5``, ``1e3``) is left alone: it cannot run anything, and prefixing
it would turn numbers into text. ``+33 1 23 45 67 89`` is not a plain number and is prefixed.

Size: a Lambda response carries at most 6 MB. The export is written to a temporary file (memory holds one listing
page per partition plus one row), then answered in the response when its body, JSON-escaped as Lambda carries it,
is at most ``INLINE_MAX_BYTES`` (5 MB); otherwise, or when asked (``delivery=link``), the file is put in the
uploads bucket under ``exports/{workspace}/`` (deleted after a day by a lifecycle rule) and the answer is a
presigned GET URL valid ``EXPORT_URL_TTL`` seconds. One request exports at most ``limit`` contacts (``MAX_ROWS``),
and stops early when the function's time runs short; ``next_cursor`` then says where the next request continues.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Literal

from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.fields import COMPANY_FIELDS, PERSON_FIELDS
from leadpipe.ids import new_id
from leadpipe.models import PROFILE_FIELDS, Contact, PipelineStatus, iso, utcnow

INLINE_MAX_BYTES = 5_000_000
EXPORT_URL_TTL = 300
MAX_ROWS = 50_000
MIN_ROWS = 500  # rows exported before the time budget is looked at, so every request makes progress
EXPORTS_PREFIX = "exports/"
SPOOL_BYTES = 8 * 1024 * 1024  # temporary files stay in memory up to this size, then go to /tmp

BASE_COLUMNS: tuple[str, ...] = (
    "email",
    *PROFILE_FIELDS,
    "domain",
    "email_domain",
    "tags",
    "status",
    "status_reason",
    "lifecycle",
    "quality",
    "do_not_enrich",
    "engagements",
    "last_engaged_at",
    "hubspot_contact_id",
    "hubspot_company_id",
    "hubspot_synced_at",
    "created_at",
    "updated_at",
)
PROVENANCE_SUFFIXES = ("", "_source", "_confidence", "_fetched_at")
# The enrichment vocabulary's order: person fields, then company fields (a company's country and city are stored as
# company_country and company_city, see enrichment/waterfall.py).
ENRICHED_ORDER: tuple[str, ...] = (
    *PERSON_FIELDS,
    *(f"company_{name}" if name in PERSON_FIELDS else name for name in COMPANY_FIELDS),
)
_ENRICHED_RANK = {name: i for i, name in enumerate(ENRICHED_ORDER)}

# ---------------------------------------------------------------------------------------------------- cells

FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def needs_neutralizing(value: str) -> bool:
    if not value:
        return False
    first = value[0]
    if first.isspace() and first not in FORMULA_TRIGGERS:
        stripped = value.lstrip()
        first = stripped[0] if stripped else ""
    return first in FORMULA_TRIGGERS and _PLAIN_NUMBER.fullmatch(value) is None


def neutralize(value: str) -> str:
    """A cell value a spreadsheet shows as text, never runs: see the module's note."""
    return "'" + value if needs_neutralizing(value) else value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    return neutralize(str(value))


def contact_row(contact: Contact) -> dict[str, str]:
    """One contact as its export cells, neutralised."""
    hubspot = contact.hubspot
    row: dict[str, Any] = {name: getattr(contact, name) for name in PROFILE_FIELDS}
    row.update(
        email=contact.email,
        domain=contact.domain,
        email_domain=contact.email_domain,
        tags=";".join(sorted(contact.tags)),
        status=contact.status.value,
        status_reason=contact.status_reason,
        lifecycle=contact.lifecycle.value,
        quality=contact.quality,
        do_not_enrich=contact.do_not_enrich,
        engagements=sum(contact.engagement_counts.values()),
        last_engaged_at=contact.last_engaged_at,
        hubspot_contact_id=hubspot.contact_id if hubspot else None,
        hubspot_company_id=hubspot.company_id if hubspot else None,
        hubspot_synced_at=hubspot.synced_at if hubspot else None,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )
    for key, value in contact.custom.items():
        row[f"custom.{key}"] = value
    for name, fv in contact.enrichment.items():
        row[f"enriched.{name}"] = fv.value
        row[f"enriched.{name}_source"] = fv.provider
        row[f"enriched.{name}_confidence"] = fv.confidence
        row[f"enriched.{name}_fetched_at"] = fv.fetched_at
    return {name: cell(value) for name, value in row.items()}


def columns_for(custom_keys: set[str], enriched: set[str]) -> list[str]:
    columns = list(BASE_COLUMNS)
    columns += [f"custom.{key}" for key in sorted(custom_keys)]
    for name in sorted(enriched, key=lambda n: (_ENRICHED_RANK.get(n, len(_ENRICHED_RANK)), n)):
        columns += [f"enriched.{name}{suffix}" for suffix in PROVENANCE_SUFFIXES]
    return columns


# ---------------------------------------------------------------------------------------------------- export


@dataclass(frozen=True, slots=True)
class ExportFilter:
    status: PipelineStatus | None = None
    domain: str | None = None
    tag: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ExportResult:
    rows: int
    size_bytes: int  # of the CSV file
    columns: list[str]
    next_cursor: str | None  # more contacts match: pass it as ?cursor= to export the next part
    filename: str
    body: str | None = None  # the CSV itself, when it fits in the response
    key: str | None = None  # else: where it was put in the uploads bucket
    url: str | None = None  # and a presigned GET URL for it
    expires_at: int | None = None  # epoch seconds after which the URL no longer works


@dataclass(slots=True)
class _Spooled:
    rows: int
    file: IO[bytes]
    custom_keys: set[str]
    enriched: set[str]
    next_cursor: str | None


class ContactExporter:
    def __init__(
        self,
        contacts: ContactRepository,
        s3: Any,
        bucket: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        inline_max_bytes: int = INLINE_MAX_BYTES,
        url_ttl: int = EXPORT_URL_TTL,
    ) -> None:
        self.contacts = contacts
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock
        self.inline_max_bytes = inline_max_bytes
        self.url_ttl = url_ttl

    def export(
        self,
        workspace: str,
        selector: ExportFilter,
        *,
        limit: int = MAX_ROWS,
        cursor: str | None = None,
        delivery: Literal["auto", "link"] = "auto",
        bom: bool = False,
        time_left: Callable[[], float] | None = None,
    ) -> ExportResult:
        """Export the contacts ``selector`` selects, newest first. ``time_left()``: seconds left for reading
        contacts; when it reaches 0 (after ``MIN_ROWS``) the export stops and returns a ``next_cursor``."""
        now = self.clock()
        filename = f"leadpipe-contacts-{workspace}-{now.strftime('%Y%m%d-%H%M%S')}.csv"
        spooled = self._collect(workspace, selector, max(1, min(limit, MAX_ROWS)), cursor, time_left)
        columns = columns_for(spooled.custom_keys, spooled.enriched)
        with spooled.file, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as out:
            size = _write_csv(spooled.file, out, columns, bom)
            result = ExportResult(
                rows=spooled.rows,
                size_bytes=size,
                columns=columns,
                next_cursor=spooled.next_cursor,
                filename=filename,
            )
            out.seek(0)
            if delivery == "auto" and size <= self.inline_max_bytes:
                text = out.read().decode("utf-8")
                if len(json.dumps(text)) <= self.inline_max_bytes:  # as the Lambda response will carry it
                    result.body = text
                    return result
                out.seek(0)
            key = f"{EXPORTS_PREFIX}{workspace}/{new_id('exp')}/{filename}"
            self.s3.upload_fileobj(
                out,
                self.bucket,
                key,
                ExtraArgs={
                    "ContentType": "text/csv; charset=utf-8",
                    "ContentDisposition": f'attachment; filename="{filename}"',
                },
            )
        result.key = key
        result.url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_ttl
        )
        result.expires_at = int(now.timestamp()) + self.url_ttl
        return result

    def _collect(
        self,
        workspace: str,
        selector: ExportFilter,
        limit: int,
        cursor: str | None,
        time_left: Callable[[], float] | None,
    ) -> _Spooled:
        """Pass 1: the rows, as JSON lines in a temporary file, and the columns they need."""
        stream = self.contacts.stream(
            workspace,
            status=selector.status,
            domain=selector.domain,
            tag=selector.tag,
            custom=selector.custom or None,
            cursor=cursor,
        )
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        custom_keys: set[str] = set()
        enriched: set[str] = set()
        rows = 0
        next_cursor: str | None = None
        contacts: Iterator[Contact] = iter(stream)
        try:
            for contact in contacts:
                custom_keys.update(contact.custom)
                enriched.update(contact.enrichment)
                spool.write(json.dumps(contact_row(contact), ensure_ascii=False).encode() + b"\n")
                rows += 1
                out_of_time = time_left is not None and rows >= MIN_ROWS and time_left() <= 0
                if rows >= limit or out_of_time:
                    next_cursor = stream.cursor()
                    if next(contacts, None) is None:  # nothing after this one: no next part
                        next_cursor = None
                    break
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return _Spooled(rows, spool, custom_keys, enriched, next_cursor)


def _write_csv(rows: IO[bytes], out: IO[bytes], columns: list[str], bom: bool) -> int:
    """Pass 2: the CSV (RFC 4180: comma, double quotes, CRLF), UTF-8, optionally with a byte-order mark (Excel)."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    if bom:
        text.write("\ufeff")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([neutralize(c) for c in columns])
    for line in rows:
        row = json.loads(line)
        writer.writerow([row.get(c, "") for c in columns])
    text.flush()
    text.detach()
    return out.tell()
