"""Streaming CSV reading with exact byte offsets, sniffing, header aliases and per-row validation.

Why not ``csv.reader`` over a text stream: a follow-up invocation must resume a file from a byte offset (an S3 range
request), so records are split here, on bytes, following the same quoting rules as ``csv`` (a quote opens a quoted
field only at the start of a field; ``""`` inside quotes is an escaped quote). Each complete record is then decoded
and handed to ``csv.reader``. Memory stays bounded: one chunk plus one record (at most ``max_record_bytes``).
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from leadpipe.errors import ImportFileError
from leadpipe.models import CsvLayout, RowError
from leadpipe.normalize import (
    LIMITS,
    FieldProblem,
    clean_text,
    custom_key,
    domain_from_website,
    is_null,
    normalize_email,
    normalize_linkedin,
    normalize_phone,
    normalize_tags,
)

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_CUSTOM_COLUMNS = 50
ERROR_VALUE_CHARS = 120

# Field -> accepted header spellings, best first. Headers are compared after ``normalize_header``.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "work email",
        "business email",
        "primary email",
        "email 1",
        "mail",
        "courriel",
    ),
    "first_name": ("first name", "firstname", "given name", "first", "forename", "prenom"),
    "last_name": ("last name", "lastname", "surname", "family name", "last", "nom"),
    "full_name": ("full name", "fullname", "name", "contact name", "contact"),
    "company": (
        "company",
        "company name",
        "organization",
        "organisation",
        "organization name",
        "organisation name",
        "account",
        "account name",
        "employer",
        "societe",
        "entreprise",
    ),
    "title": ("title", "job title", "jobtitle", "position", "role", "job", "job position", "poste"),
    "phone": (
        "phone",
        "phone number",
        "telephone",
        "tel",
        "mobile",
        "mobile phone",
        "mobile number",
        "work phone",
        "direct phone",
        "telephone number",
    ),
    "linkedin": (
        "linkedin",
        "linkedin url",
        "linkedin profile",
        "linkedin profile url",
        "linkedin link",
        "person linkedin url",
    ),
    "website": (
        "website",
        "domain",
        "company domain",
        "company website",
        "website url",
        "web site",
        "url",
        "web",
        "site",
        "company url",
    ),
    "tags": ("tags", "tag", "labels", "label", "segments", "lists"),
    "country": ("country", "country name", "pays"),
    "city": ("city", "town", "ville"),
}


def normalize_header(header: str) -> str:
    """``" E-Mail_Address* "`` -> ``"e mail address"``: accents folded, case and punctuation ignored."""
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii").lower()
    folded = re.sub(r"[^a-z0-9]+", " ", folded)
    return " ".join(folded.split())


_ALIAS_INDEX: dict[str, tuple[str, int]] = {}
for _field, _aliases in HEADER_ALIASES.items():
    for _rank, _alias in enumerate(_aliases):
        _ALIAS_INDEX.setdefault(normalize_header(_alias), (_field, _rank))


def map_columns(header: list[str]) -> tuple[dict[int, str], list[str]]:
    """Map column indexes to contact fields; unknown columns become ``custom:<key>``. Returns (columns, warnings)."""
    best: dict[str, tuple[int, int]] = {}  # field -> (rank, index)
    for index, name in enumerate(header):
        hit = _ALIAS_INDEX.get(normalize_header(name))
        if hit is None:
            continue
        fld, rank = hit
        if fld not in best or rank < best[fld][0]:
            best[fld] = (rank, index)
    columns: dict[int, str] = {index: fld for fld, (_, index) in best.items()}
    warnings: list[str] = []
    used_keys: set[str] = set()
    custom_count = 0
    for index, name in enumerate(header):
        if index in columns or not name.strip():
            continue
        if custom_count >= MAX_CUSTOM_COLUMNS:
            warnings.append(f"column '{name}' ignored: at most {MAX_CUSTOM_COLUMNS} custom columns are kept")
            continue
        key = base = custom_key(name)
        n = 2
        while key in used_keys or key in HEADER_ALIASES:
            key = f"{base}_{n}"
            n += 1
        used_keys.add(key)
        columns[index] = f"custom:{key}"
        custom_count += 1
    return dict(sorted(columns.items())), warnings


# --------------------------------------------------------------------------------------------------------------
# Record splitting on bytes


@dataclass(slots=True)
class RawRecord:
    row: int  # 1-based record number
    start: int  # byte offset of the record's first byte
    end: int  # byte offset just past the record (its newline included)
    data: bytes | None  # None when the record was larger than the limit (its bytes were not kept)
    size: int
    unterminated: bool = False  # the file ended inside a quoted field


def _scan_quotes(line: bytes, in_quotes: bool, delim: int, prev: int = 0x0A) -> bool:
    """Quote state after ``line`` given the state before it, following ``csv``'s (non-strict) rules.

    ``prev`` is the byte before ``line``: a newline when ``line`` starts a record.
    """
    quote = 0x22
    pos = line.find(b'"')
    while pos != -1:
        if in_quotes:
            if pos + 1 < len(line) and line[pos + 1] == quote:
                pos = line.find(b'"', pos + 2)  # escaped quote
                continue
            in_quotes = False
        elif (line[pos - 1] if pos else prev) in (delim, 0x0A, 0x0D):
            in_quotes = True  # a quote opens a field only at the field's start
        pos = line.find(b'"', pos + 1)
    return in_quotes


def iter_records(
    chunks: Iterable[bytes],
    *,
    start_offset: int,
    start_row: int,
    delimiter: str,
    newline: str = "\n",
    max_record_bytes: int = 1024 * 1024,
) -> Iterator[RawRecord]:
    """Split a byte stream (starting at ``start_offset``) into CSV records with their exact byte ranges."""
    nl = newline.encode("ascii")
    delim = ord(delimiter)
    carry = b""
    data_start = start_offset  # absolute offset of carry[0]
    row = start_row
    rec_start = start_offset
    parts: list[bytes] = []
    rec_len = 0
    oversize = False
    in_quotes = False
    prev = 0x0A  # the byte before data[0]; data starts mid-line once an oversize record's bytes are being dropped

    for chunk in chunks:
        if not chunk:
            continue
        data = carry + chunk if carry else chunk
        pos = 0
        while True:
            i = data.find(nl, pos)
            if i < 0:
                tail = data[pos:]
                if pos:
                    prev = data[pos - 1]
                if oversize or rec_len + len(tail) > max_record_bytes:
                    # Too big to keep: count its quotes and drop the bytes. A line longer than the limit with no
                    # newline in sight is dropped the same way, so memory stays bounded.
                    oversize = True
                    parts = []
                    if tail:
                        after = _scan_quotes(tail, in_quotes, delim, prev)
                        if tail[-1] == 0x22 and not after and _scan_quotes(tail[:-1], in_quotes, delim, prev):
                            prev = 0x0A  # it closed a quoted field: a quote right after it is an escaped quote
                        else:
                            prev = tail[-1]
                        in_quotes = after
                    rec_len += len(tail)
                    carry = b""
                    data_start += len(data)
                else:
                    carry = tail
                    data_start += pos
                break
            line = data[pos : i + 1]
            if 0x22 in line:
                in_quotes = _scan_quotes(line, in_quotes, delim, data[pos - 1] if pos else prev)
            pos = i + 1
            rec_len += len(line)
            if not oversize:
                if rec_len > max_record_bytes:
                    oversize = True
                    parts = []
                else:
                    parts.append(line)
            if not in_quotes:
                end = data_start + pos
                yield RawRecord(row, rec_start, end, None if oversize else b"".join(parts), rec_len)
                row += 1
                rec_start = end
                parts = []
                rec_len = 0
                oversize = False
    if carry:
        in_quotes = _scan_quotes(carry, in_quotes, delim, prev)
        rec_len += len(carry)
        if not oversize:
            if rec_len > max_record_bytes:
                oversize = True
                parts = []
            else:
                parts.append(carry)
    if rec_len:
        yield RawRecord(
            row, rec_start, rec_start + rec_len, None if oversize else b"".join(parts), rec_len, unterminated=in_quotes
        )


# --------------------------------------------------------------------------------------------------------------
# Sniffing the head of the file

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?). Export it as CSV first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document (.xls). Export it as CSV first"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive. Decompress it first"),
    (b"{\\rtf", "an RTF document"),
)


def _decodes_as_utf8(head: bytes, at_eof: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=at_eof)
    except UnicodeDecodeError:
        return False
    return True


def decode_record(data: bytes, encoding: str) -> tuple[str, bool]:
    """Decode one record; a record that is not valid in the file's encoding falls back to cp1252, then Latin-1."""
    try:
        return data.decode(encoding), False
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), True
        except UnicodeDecodeError:
            return data.decode("latin-1"), True


def _read_lines(lines: list[str], delimiter: str) -> Iterator[list[str]]:
    """``csv.reader`` over ``lines``, skipping a line it rejects (a stray CR outside quotes)."""
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue


def _choose_delimiter(lines: list[str]) -> str:
    best = (",", (-1, -1.0, -1))
    for candidate in DELIMITERS:
        rows = [r for r in _read_lines(lines, candidate) if any(c.strip() for c in r)]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows if len(r) == width) / len(rows)
        score = (1 if width > 1 else 0, consistent, width)
        if score > best[1]:
            best = (candidate, score)
    return best[0]


def sniff(head: bytes, *, at_eof: bool, max_record_bytes: int = 1024 * 1024) -> tuple[CsvLayout, list[str]]:
    """Decide encoding, delimiter, newline and column mapping from the first bytes of a file.

    Raises ``ImportFileError`` with a clear reason when the file cannot be a usable CSV of contacts.
    """
    if not head.strip():
        raise ImportFileError("the file is empty", code="empty_file")
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise ImportFileError(f"this is not a CSV file: it looks like {what}", code="not_csv")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(
            "the file is UTF-16 encoded (Excel's 'Unicode Text'); save it as 'CSV UTF-8' instead",
            code="unsupported_encoding",
        )
    bom = head.startswith(codecs.BOM_UTF8)
    body = head[3:] if bom else head
    sample = body[:8192]
    if b"\x00" in sample:
        raise ImportFileError("this is not a CSV file: it contains binary data (NUL bytes)", code="not_csv")
    encoding = "utf-8" if _decodes_as_utf8(body, at_eof) else "cp1252"
    text = decode_record(sample, encoding)[0]
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n")
    if text and controls / len(text) > 0.01:
        raise ImportFileError("this is not a CSV file: it contains binary data", code="not_csv")
    newline = "\n" if b"\n" in body else ("\r" if b"\r" in body else "\n")

    head_text = decode_record(body, encoding)[0]
    lines = head_text.split(newline)[:25]
    if not at_eof and len(lines) > 1:
        lines = lines[:-1]  # the last line of a partial head may be cut
    delimiter = _choose_delimiter(lines)

    start = 3 if bom else 0
    header_record: RawRecord | None = None
    for record in iter_records(
        [head[start:]],
        start_offset=start,
        start_row=1,
        delimiter=delimiter,
        newline=newline,
        max_record_bytes=max_record_bytes,
    ):
        if (
            not at_eof
            and record.end >= len(head)
            and record.data is not None
            and (record.unterminated or not record.data.endswith(newline.encode()))
        ):
            raise ImportFileError(f"the header row is longer than {len(head) // 1024} KB", code="header_too_long")
        if record.data is None:
            raise ImportFileError("the header row is larger than the row limit", code="header_too_long")
        if record.data.strip():
            if record.unterminated:
                raise ImportFileError("a quoted field in the header row is never closed", code="unterminated_quote")
            header_record = record
            break
    if header_record is None or header_record.data is None:
        raise ImportFileError("the file has no header row", code="empty_file")
    header_text = decode_record(header_record.data, encoding)[0]
    try:
        header = next(csv.reader([header_text], delimiter=delimiter), [])
    except csv.Error as exc:
        raise ImportFileError(
            "the header row has a line break (CR or LF) outside quotes; put names that contain one in double quotes",
            code="invalid_header",
        ) from exc
    header = [h.strip().strip("\ufeff") for h in header]
    columns, warnings = map_columns(header)
    if "email" not in columns.values():
        looks_like_data = any("@" in h and "." in h.split("@")[-1] for h in header)
        if looks_like_data:
            raise ImportFileError(
                "the first row looks like data, not a header: add a header row with an 'email' column",
                code="no_header",
            )
        found = ", ".join(f"'{h}'" for h in header[:20]) or "none"
        raise ImportFileError(
            "no email column: expected a column named email, e-mail, email address or work email "
            f"(columns found: {found})",
            code="no_email_column",
        )
    layout = CsvLayout(
        encoding=encoding,
        delimiter=delimiter,
        newline=newline,
        header=header,
        columns=columns,
        data_offset=header_record.end,
        header_row=header_record.row,
        bom=bom,
    )
    return layout, warnings


# --------------------------------------------------------------------------------------------------------------
# Rows -> validated drafts


@dataclass(slots=True)
class ContactDraft:
    """One valid row, normalised, not yet merged with anything."""

    row: int
    email: str
    fields: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    custom: dict[str, str] = field(default_factory=dict)
    website_domain: str | None = None
    hubspot_id: str | None = None  # a record read from HubSpot: its id there


@dataclass(slots=True)
class ParsedRow:
    row: int
    end: int  # byte offset just past this row
    draft: ContactDraft | None = None
    errors: list[RowError] = field(default_factory=list)
    blank: bool = False
    fallback_decoded: bool = False


_TEXT_LIMITS = {
    "first_name": LIMITS.name,
    "last_name": LIMITS.name,
    "full_name": LIMITS.full_name,
    "company": LIMITS.company,
    "title": LIMITS.title,
    "country": LIMITS.place,
    "city": LIMITS.place,
}
_LABELS = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    "full_name": "name",
    "company": "company",
    "title": "title",
    "phone": "phone",
    "linkedin": "LinkedIn URL",
    "website": "website",
    "tags": "tags",
    "country": "country",
    "city": "city",
}


def _clip(value: str) -> str:
    return value if len(value) <= ERROR_VALUE_CHARS else value[: ERROR_VALUE_CHARS - 1] + "…"


class RowParser:
    """Turns raw records into validated ``ContactDraft``s or row errors, for one file layout."""

    def __init__(self, layout: CsvLayout, *, max_row_bytes: int = 1024 * 1024) -> None:
        self.layout = layout
        self.max_bytes = max_row_bytes
        # csv refuses fields over 131,072 characters by default; a row may be up to max_row_bytes, and an over-long
        # value is better reported by field-level validation ("notes is 300000 characters long (at most 2000)").
        if csv.field_size_limit() < max_row_bytes:
            csv.field_size_limit(max_row_bytes)
        self.width = len(layout.header)
        self.columns = list(layout.columns.items())
        self.email_index = next(i for i, f in layout.columns.items() if f == "email")

    @classmethod
    def for_fields(cls, fields: Sequence[str]) -> RowParser:
        """A parser for records that arrive as values of known fields (an API's records, not a file): the same
        validation and normalisation as a CSV row's. ``fields`` are contact fields, ``tags`` or ``custom:<key>``."""
        layout = CsvLayout(
            encoding="utf-8", delimiter=",", header=list(fields), columns=dict(enumerate(fields)), data_offset=0
        )
        return cls(layout)

    def parse_values(self, row: int, values: Sequence[str]) -> ParsedRow:
        """One record's values, in the order of the parser's fields; ``row`` numbers it in the job's errors."""
        parsed = ParsedRow(row, 0)
        self._validate(parsed, [v if v is not None else "" for v in values])
        return parsed

    def parse(self, records: list[RawRecord]) -> list[ParsedRow]:
        out: list[ParsedRow] = []
        texts: list[str] = []
        pending: list[ParsedRow] = []
        for rec in records:
            parsed = ParsedRow(rec.row, rec.end)
            if rec.unterminated:
                parsed.errors.append(
                    RowError(
                        row=rec.row,
                        code="unterminated_quote",
                        message=(
                            f"a quoted field opened in row {rec.row} is never closed: the rest of the file "
                            f"({rec.size} bytes from byte {rec.start}) could not be split into rows"
                        ),
                    )
                )
                out.append(parsed)
                continue
            if rec.data is None:
                parsed.errors.append(
                    RowError(
                        row=rec.row,
                        code="row_too_large",
                        message=f"the row is {rec.size} bytes long, over the {_human(self.max_bytes)} row limit",
                    )
                )
                out.append(parsed)
                continue
            if not rec.data.strip():
                parsed.blank = True
                out.append(parsed)
                continue
            text, fallback = decode_record(rec.data, self.layout.encoding)
            parsed.fallback_decoded = fallback
            texts.append(text)
            pending.append(parsed)
            out.append(parsed)
        if texts:
            rows: list[list[str] | None]
            try:
                rows = list(csv.reader(texts, delimiter=self.layout.delimiter))
            except csv.Error:  # one of the records is not readable: read them one by one
                rows = [self._read_one(parsed, text) for parsed, text in zip(pending, texts, strict=True)]
            for parsed, values in zip(pending, rows, strict=True):
                if values is not None:
                    self._validate(parsed, values)
        return out

    def _read_one(self, parsed: ParsedRow, text: str) -> list[str] | None:
        """Values of one record, or ``None`` with a row error when ``csv`` rejects it."""
        try:
            return next(csv.reader([text], delimiter=self.layout.delimiter), [])
        except csv.Error as exc:
            if str(exc).startswith("field larger than field limit"):
                code, message = "field_too_long", f"a value is longer than {csv.field_size_limit()} characters"
            else:
                code = "unquoted_line_break"
                message = (
                    "the row has a line break (CR or LF) outside quotes; put values that contain one in double quotes"
                )
            parsed.errors.append(RowError(row=parsed.row, code=code, message=message))
            return None

    def _validate(self, parsed: ParsedRow, values: list[str]) -> None:
        row = parsed.row
        if not any(v.strip() for v in values):
            parsed.blank = True
            return
        errors = parsed.errors
        if len(values) > self.width and any(v.strip() for v in values[self.width :]):
            errors.append(
                RowError(
                    row=row,
                    code="column_count",
                    message=(
                        f"the row has {len(values)} values but the header has {self.width} columns "
                        "(an unquoted delimiter inside a value?)"
                    ),
                )
            )
            return
        raw_email = values[self.email_index] if self.email_index < len(values) else ""
        email = ""
        try:
            email = normalize_email(raw_email)
        except FieldProblem as exc:
            errors.append(
                RowError(row=row, field="email", code=exc.code, message=exc.message, value=_clip(raw_email) or None)
            )
        draft = ContactDraft(row=row, email=email)
        for index, fld in self.columns:
            if fld == "email" or index >= len(values):
                continue
            raw = values[index]
            if is_null(raw):
                continue
            try:
                self._apply(draft, fld, raw)
            except FieldProblem as exc:
                errors.append(
                    RowError(
                        row=row,
                        field=fld.removeprefix("custom:"),
                        code=exc.code,
                        message=exc.message,
                        value=_clip(raw),
                    )
                )
        if errors:
            return
        fields = draft.fields
        if "full_name" in fields and not ("first_name" in fields or "last_name" in fields):
            first, _, last = fields["full_name"].partition(" ")
            fields["first_name"] = first
            if last:
                fields["last_name"] = last
        parsed.draft = draft

    @staticmethod
    def _too_long(fld: str, value: str, limit: int) -> FieldProblem:
        label = _LABELS.get(fld, fld.removeprefix("custom:"))
        return FieldProblem("field_too_long", f"{label} is {len(value)} characters long (at most {limit})")

    def _apply(self, draft: ContactDraft, fld: str, raw: str) -> None:
        if fld in _TEXT_LIMITS:
            value = clean_text(raw)
            if len(value) > _TEXT_LIMITS[fld]:
                raise self._too_long(fld, value, _TEXT_LIMITS[fld])
            if value:
                draft.fields[fld] = value
        elif fld == "phone":
            value = raw.strip()
            if len(value) > LIMITS.phone:
                raise self._too_long(fld, value, LIMITS.phone)
            draft.fields["phone"] = normalize_phone(value)
        elif fld == "linkedin":
            value = raw.strip()
            if len(value) > LIMITS.linkedin:
                raise self._too_long(fld, value, LIMITS.linkedin)
            draft.fields["linkedin"] = normalize_linkedin(value)
        elif fld == "website":
            value = raw.strip()
            if len(value) > LIMITS.website:
                raise self._too_long(fld, value, LIMITS.website)
            draft.website_domain = domain_from_website(value)
            draft.fields["website"] = value
        elif fld == "tags":
            if len(raw) > LIMITS.tags:
                raise self._too_long(fld, raw, LIMITS.tags)
            draft.tags = normalize_tags(raw)
        else:  # custom:<key>
            value = clean_text(raw)
            if len(value) > LIMITS.custom:
                raise self._too_long(fld, value, LIMITS.custom)
            if value:
                draft.custom[fld[7:]] = value


def _human(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} bytes"
