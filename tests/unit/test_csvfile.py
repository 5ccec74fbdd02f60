"""Unit tests for leadpipe.csvfile: byte-exact record splitting, sniffing, column mapping and row validation."""

from __future__ import annotations

import codecs
import csv
import io
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadpipe.csvfile import (
    DELIMITERS,
    ERROR_VALUE_CHARS,
    MAX_CUSTOM_COLUMNS,
    ContactDraft,
    RawRecord,
    RowParser,
    decode_record,
    iter_records,
    map_columns,
    normalize_header,
    sniff,
)
from leadpipe.errors import ImportFileError
from leadpipe.models import CsvLayout, RowError
from leadpipe.normalize import normalize_email

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOM = codecs.BOM_UTF8


def records(data, *, chunks=None, start_offset=0, start_row=1, delimiter=",", newline="\n", limit=1024 * 1024):
    """Run iter_records over ``data`` cut into pieces of the given sizes (cycled), or in one piece."""
    if chunks is None:
        pieces = [data]
    else:
        pieces, pos, i = [], 0, 0
        while pos < len(data):
            size = chunks[i % len(chunks)]
            pieces.append(data[pos : pos + size])
            pos += size
            i += 1
    return list(
        iter_records(
            pieces,
            start_offset=start_offset,
            start_row=start_row,
            delimiter=delimiter,
            newline=newline,
            max_record_bytes=limit,
        )
    )


def cut(data, points):
    """Split ``data`` at the given offsets (unsorted, duplicates allowed: empty chunks are part of the test)."""
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def assert_tiles(recs, start, end):
    """Records cover [start, end) exactly, in order, with consecutive row numbers and sizes matching offsets."""
    assert recs, "expected at least one record"
    assert recs[0].start == start
    assert recs[-1].end == end
    for a, b in pairwise(recs):
        assert a.end == b.start
        assert b.row == a.row + 1
    for rec in recs:
        assert rec.size == rec.end - rec.start > 0


def import_error(head, **kwargs):
    with pytest.raises(ImportFileError) as info:
        sniff(head, **kwargs)
    return info.value.code, info.value.message


# ================================================================================================================
# iter_records: examples


def test_iter_records_exact_offsets_quoted_newlines_and_escaped_quotes():
    data = b'a,b\n"c\nd",e\r\nf,"g""h"\nlast'
    assert records(data) == [
        RawRecord(1, 0, 4, b"a,b\n", 4),
        RawRecord(2, 4, 13, b'"c\nd",e\r\n', 9),
        RawRecord(3, 13, 22, b'f,"g""h"\n', 9),
        RawRecord(4, 22, 26, b"last", 4),
    ]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_iter_records_is_independent_of_chunk_size(chunk):
    data = b'a,b\n"c\nd",e\r\nf,"g""h"\n"x""\n""y"\nlast'
    assert records(data, chunks=[chunk]) == records(data)
    assert [r.data for r in records(data, chunks=[chunk])] == [
        b"a,b\n",
        b'"c\nd",e\r\n',
        b'f,"g""h"\n',
        b'"x""\n""y"\n',
        b"last",
    ]


def test_iter_records_start_offset_and_row_are_applied():
    assert records(b"x\ny\n", start_offset=100, start_row=7) == [
        RawRecord(7, 100, 102, b"x\n", 2),
        RawRecord(8, 102, 104, b"y\n", 2),
    ]


def test_iter_records_empty_input_and_empty_chunks():
    assert list(iter_records([], start_offset=0, start_row=1, delimiter=",")) == []
    assert list(iter_records([b"", b""], start_offset=5, start_row=2, delimiter=",")) == []
    got = list(iter_records([b"", b"a\n", b"", b"b", b"", b"\n", b""], start_offset=0, start_row=1, delimiter=","))
    assert got == [RawRecord(1, 0, 2, b"a\n", 2), RawRecord(2, 2, 4, b"b\n", 2)]


def test_iter_records_blank_lines_are_records():
    assert records(b"\n\r\na\n") == [
        RawRecord(1, 0, 1, b"\n", 1),
        RawRecord(2, 1, 3, b"\r\n", 2),
        RawRecord(3, 3, 5, b"a\n", 2),
    ]


def test_iter_records_stray_quote_inside_unquoted_field_is_literal():
    data = b"x@y.com,5'10\" tall,z\nnext,row\n"
    assert records(data) == [
        RawRecord(1, 0, 21, b"x@y.com,5'10\" tall,z\n", 21),
        RawRecord(2, 21, 30, b"next,row\n", 9),
    ]


def test_iter_records_quote_opens_only_at_field_start():
    # After the delimiter: opens a quoted field, the newline is inside it.
    assert [r.data for r in records(b'a,"b\nc",d\n')] == [b'a,"b\nc",d\n']
    # After a space (csv has no skipinitialspace here): literal, the newline ends the record.
    assert [r.data for r in records(b'a, "b\nc",d\n')] == [b'a, "b\n', b'c",d\n']
    # Text after a closing quote is unquoted again; the next quote is literal.
    assert [r.data for r in records(b'"a"b"\nc\n')] == [b'"a"b"\n', b"c\n"]
    # Only the chosen delimiter counts as a field start.
    assert [r.data for r in records(b'a;"b\nc"\n', delimiter=",")] == [b'a;"b\n', b'c"\n']
    assert [r.data for r in records(b'a;"b\nc"\n', delimiter=";")] == [b'a;"b\nc"\n']
    assert [r.data for r in records(b'a\t"b\nc"\n', delimiter="\t")] == [b'a\t"b\nc"\n']
    assert [r.data for r in records(b'a|"b\nc"\n', delimiter="|")] == [b'a|"b\nc"\n']


def test_iter_records_quote_after_a_bare_cr_opens_a_field_as_in_csv():
    # csv reading the file with newline='' ends a record at a bare CR, so a quote after it starts a field.
    assert [r.data for r in records(b'a\r"b\nc"\nd\n')] == [b'a\r"b\nc"\n', b"d\n"]


def test_iter_records_cr_newline():
    data = b'a,"b\rc"\rd\r'
    assert records(data, newline="\r") == [RawRecord(1, 0, 8, b'a,"b\rc"\r', 8), RawRecord(2, 8, 10, b"d\r", 2)]
    assert records(data, newline="\r", chunks=[1]) == records(data, newline="\r")


def test_iter_records_unterminated_quote_at_end_of_file():
    data = b'a\n"open,\nno close\n'
    expected = [RawRecord(1, 0, 2, b"a\n", 2), RawRecord(2, 2, 18, b'"open,\nno close\n', 16, unterminated=True)]
    assert records(data) == expected
    assert records(data, chunks=[1]) == expected
    # Without a final newline too; a quote closed by the last byte is terminated.
    assert records(b'"abc') == [RawRecord(1, 0, 4, b'"abc', 4, unterminated=True)]
    assert records(b'"abc"') == [RawRecord(1, 0, 5, b'"abc"', 5)]
    assert records(b'"abc""') == [RawRecord(1, 0, 6, b'"abc""', 6, unterminated=True)]


def test_iter_records_oversize_record_keeps_size_not_bytes():
    data = b"ab\nabcdefgh\nc\n"
    expected = [
        RawRecord(1, 0, 3, b"ab\n", 3),
        RawRecord(2, 3, 12, None, 9),
        RawRecord(3, 12, 14, b"c\n", 2),
    ]
    assert records(data, limit=5) == expected
    for size in (1, 2, 3, 4, 6):
        assert records(data, limit=5, chunks=[size]) == expected


def test_iter_records_record_exactly_at_limit_is_kept():
    assert records(b"abcd\nabcde\n", limit=5) == [RawRecord(1, 0, 5, b"abcd\n", 5), RawRecord(2, 5, 11, None, 6)]
    assert records(b"abcde", limit=5) == [RawRecord(1, 0, 5, b"abcde", 5)]
    assert records(b"abcdef", limit=5) == [RawRecord(1, 0, 6, None, 6)]
    assert records(b"abcdef", limit=5, chunks=[4]) == [RawRecord(1, 0, 6, None, 6)]


def test_iter_records_oversize_without_newline_and_unterminated():
    assert records(b"ab\nabcdefgh", limit=5) == [RawRecord(1, 0, 3, b"ab\n", 3), RawRecord(2, 3, 11, None, 8)]
    assert records(b'ab\n"abcdefgh\nxx', limit=5, chunks=[2]) == [
        RawRecord(1, 0, 3, b"ab\n", 3),
        RawRecord(2, 3, 15, None, 12, unterminated=True),
    ]


def test_iter_records_oversize_quoted_record_spanning_many_chunks():
    data = b'"' + b"x\n" * 10 + b'",z\nok\n'
    expected = [RawRecord(1, 0, 25, None, 25), RawRecord(2, 25, 28, b"ok\n", 3)]
    for size in (1, 2, 3, 7, 100):
        assert records(data, limit=5, chunks=[size]) == expected


def test_iter_records_oversize_stray_quote_at_a_chunk_boundary_is_literal():
    # Regression: a dropped (oversize) record's bytes are scanned chunk by chunk; a quote that happens to be the
    # first byte of a chunk is mid-field and must not open a quoted field (which swallowed the rest of the file).
    line = b"x@y.com," + b"A" * 20 + b'"BBB\n'
    data = line + b"q@y.com,ok\n"
    expected = [RawRecord(1, 0, 33, None, 33), RawRecord(2, 33, 44, b"q@y.com,ok\n", 11)]
    assert records(data, limit=12) == expected
    assert (
        list(
            iter_records(cut(data, [line.index(b'"')]), start_offset=0, start_row=1, delimiter=",", max_record_bytes=12)
        )
        == expected
    )
    assert records(data, limit=12, chunks=[1]) == expected


def test_iter_records_oversize_escaped_quote_split_across_chunks():
    line = b'x@y.com,"' + b"A" * 20 + b'""B\nC"\n'
    data = line + b"q@y.com,ok\n"
    expected = [RawRecord(1, 0, 36, None, 36), RawRecord(2, 36, 47, b"q@y.com,ok\n", 11)]
    assert records(data, limit=12) == expected
    for point in range(len(line)):
        got = list(iter_records(cut(data, [point]), start_offset=0, start_row=1, delimiter=",", max_record_bytes=12))
        assert got == expected, point


def test_iter_records_oversize_quote_after_delimiter_at_chunk_start_opens():
    line = b"x@y.com," + b"A" * 20 + b',"B\nC"\n'
    data = line + b"q@y.com,ok\n"
    expected = [RawRecord(1, 0, 35, None, 35), RawRecord(2, 35, 46, b"q@y.com,ok\n", 11)]
    assert records(data, limit=12) == expected
    for point in range(len(line)):
        got = list(iter_records(cut(data, [point]), start_offset=0, start_row=1, delimiter=",", max_record_bytes=12))
        assert got == expected, point


# ================================================================================================================
# iter_records: properties

# Field text: every character csv treats specially, plus arbitrary unicode.
_TOKENS = st.sampled_from([",", ";", "\t", "|", '"', '""', "\n", "\r\n", "\r", " ", "'", "a", "é", "日本", "\u2028"])
FIELD = st.lists(st.one_of(_TOKENS, st.characters(codec="utf-8")), max_size=8).map("".join)


@st.composite
def csv_files(draw):
    """A header with an email column and rows of arbitrary text, written by csv.writer."""
    width = draw(st.integers(1, 5))
    header = draw(st.lists(FIELD, min_size=width, max_size=width))
    header[draw(st.integers(0, width - 1))] = "email"
    rows = [header, *draw(st.lists(st.lists(FIELD, min_size=width, max_size=width), max_size=6))]
    delimiter = draw(st.sampled_from(DELIMITERS))
    terminator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator=terminator, quoting=quoting).writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.removesuffix(terminator)  # no newline after the last record
    bom = draw(st.booleans())
    data = (BOM if bom else b"") + text.encode("utf-8")
    newline = "\r" if terminator == "\r" else "\n"
    return data, rows, delimiter, newline, len(BOM) if bom else 0


# How to cut an input into chunks: whole, one byte per chunk, or at random points (empty chunks included).
CUTS = st.one_of(st.just("whole"), st.just("bytes"), st.lists(st.integers(0, 400), max_size=12))


def pieces(data, how):
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    return cut(data, [min(p, len(data)) for p in how])


@PROPERTY
@given(csv_files(), CUTS)
def test_round_trip_records_parse_to_the_written_rows_and_tile_the_input(file, how):
    raw, rows, delimiter, newline, start = file
    body = raw[start:]
    recs = list(iter_records(pieces(body, how), start_offset=start, start_row=1, delimiter=delimiter, newline=newline))
    assert len(recs) == len(rows)
    assert_tiles(recs, start, len(raw))
    for index, (rec, row) in enumerate(zip(recs, rows, strict=True)):
        assert rec.row == index + 1
        assert not rec.unterminated
        assert rec.data == raw[rec.start : rec.end]
        assert list(csv.reader([rec.data.decode("utf-8")], delimiter=delimiter)) == [row]


# Arbitrary (often malformed) byte soup for the invariants that must hold for any input.
SOUP = st.lists(
    st.sampled_from([b",", b";", b'"', b'""', b"\n", b"\r\n", b"\r", b" ", b"a", b"bc", b"\xc3\xa9", b"\xff", b"\x00"]),
    max_size=60,
).map(b"".join)


@PROPERTY
@given(SOUP, st.sampled_from(["\n", "\r"]), st.sampled_from([",", ";"]), st.integers(1, 12), CUTS)
def test_records_do_not_depend_on_chunking_or_the_size_limit(soup, newline, delimiter, limit, how):
    whole = records(soup, newline=newline, delimiter=delimiter)
    chunked = list(
        iter_records(
            pieces(soup, how),
            start_offset=0,
            start_row=1,
            delimiter=delimiter,
            newline=newline,
            max_record_bytes=limit,
        )
    )
    assert [(r.row, r.start, r.end, r.size, r.unterminated) for r in chunked] == [
        (r.row, r.start, r.end, r.size, r.unterminated) for r in whole
    ]
    for rec in chunked:
        assert rec.data == (None if rec.size > limit else soup[rec.start : rec.end])
    if soup:
        assert_tiles(chunked, 0, len(soup))
    else:
        assert chunked == []
    assert not any(r.unterminated for r in chunked[:-1])  # only the last record can be unterminated


@PROPERTY
@given(
    st.one_of(
        csv_files().map(lambda f: (f[0], f[2], f[3])),
        st.tuples(SOUP, st.sampled_from([",", ";"]), st.sampled_from(["\n", "\r"])),
    ),
    st.integers(1, 40),
    CUTS,
    st.data(),
)
def test_resume_from_any_record_boundary(file, limit, how, data):
    raw, delimiter, newline = file
    full = records(raw, delimiter=delimiter, newline=newline, limit=limit)
    if not full:
        assert raw == b""
        return
    k = data.draw(st.integers(0, len(full) - 1))
    offset, row = full[k].start, full[k].row
    suffix = raw[offset:]
    resumed = list(
        iter_records(
            pieces(suffix, how),
            start_offset=offset,
            start_row=row,
            delimiter=delimiter,
            newline=newline,
            max_record_bytes=limit,
        )
    )
    assert resumed == full[k:]


@st.composite
def stray_quote_files(draw):
    terminator = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    delimiter = draw(st.sampled_from(DELIMITERS))
    tokens = st.sampled_from(
        ["a", "b", " ", '"', "'", "5'10\" tall", '""', '"x"', "é", delimiter, delimiter, terminator, terminator]
    )
    text = "".join(draw(st.lists(tokens, max_size=40)))
    return text, delimiter, "\r" if terminator == "\r" else "\n"


@PROPERTY
@given(stray_quote_files(), CUTS)
@example(('x@y.com,5\'10" tall,z\n"a,b",c\n', ",", "\n"), "bytes")
@example(('a;"b""\r\n"c";d"e";5\'10" tall\r\n', ";", "\n"), [3, 7])
def test_stray_quotes_split_like_csv_reader(file, how):
    text, delimiter, newline = file
    raw = text.encode("utf-8")
    recs = list(iter_records(pieces(raw, how), start_offset=0, start_row=1, delimiter=delimiter, newline=newline))
    ours = []
    for rec in recs:
        parsed = list(csv.reader([rec.data.decode("utf-8")], delimiter=delimiter))
        assert len(parsed) == 1  # one record is one csv row
        ours.extend(parsed)
    assert ours == list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


# ================================================================================================================
# decode_record, normalize_header, map_columns


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (b"caf\xc3\xa9", "utf-8", ("café", False)),
        (b"caf\xe9", "utf-8", ("café", True)),
        (b"\x80 \x9c", "utf-8", ("€ œ", True)),
        (b"\x81\xe9", "utf-8", ("\x81é", True)),  # 0x81 is undefined in cp1252: Latin-1
        (b"caf\xe9", "cp1252", ("café", False)),
        (b"\x81", "cp1252", ("\x81", True)),
        (b"", "utf-8", ("", False)),
    ],
)
def test_decode_record(data, encoding, expected):
    assert decode_record(data, encoding) == expected


@pytest.mark.parametrize(
    ("header", "normalized"),
    [
        (" E-Mail_Address* ", "e mail address"),
        ("Prénom", "prenom"),
        ("SOCIÉTÉ", "societe"),
        ("Job\tTitle", "job title"),
        ("***", ""),
    ],
)
def test_normalize_header(header, normalized):
    assert normalize_header(header) == normalized


def test_map_columns_aliases_case_and_punctuation_insensitive():
    header = [
        " E-Mail_Address* ",
        "FIRSTNAME",
        "surname",
        "Société",
        "Job Title",
        "Tel.",
        "LinkedIn Profile URL",
        "Web Site",
        "Labels",
        "Pays",
        "Ville",
        "Contact Name",
    ]
    assert map_columns(header) == (
        {
            0: "email",
            1: "first_name",
            2: "last_name",
            3: "company",
            4: "title",
            5: "phone",
            6: "linkedin",
            7: "website",
            8: "tags",
            9: "country",
            10: "city",
            11: "full_name",
        },
        [],
    )


def test_map_columns_best_ranked_alias_wins_and_the_others_become_custom():
    columns, warnings = map_columns(["Mail", "Notes", "Email", "Name", "Full Name", "Domain", "Website"])
    assert columns == {
        0: "custom:mail",
        1: "custom:notes",
        2: "email",
        3: "custom:name",
        4: "full_name",
        5: "custom:domain",
        6: "website",
    }
    assert warnings == []


def test_map_columns_duplicates_and_key_collisions():
    columns, _ = map_columns(["Email", "email", "First Name", "first_name", "Source", "source", "SOURCE!", "Tags?"])
    assert columns == {
        0: "email",
        1: "custom:email_2",
        2: "first_name",
        3: "custom:first_name_2",
        4: "custom:source",
        5: "custom:source_2",
        6: "custom:source_3",
        7: "tags",
    }


def test_map_columns_blank_headers_are_skipped_and_symbols_get_a_key():
    columns, warnings = map_columns(["email", "", "  ", "???", "日本"])
    assert columns == {0: "email", 3: "custom:column", 4: "custom:column_2"}
    assert warnings == []


def test_map_columns_keeps_at_most_50_custom_columns():
    header = ["email"] + [f"Extra {i}" for i in range(MAX_CUSTOM_COLUMNS + 2)]
    columns, warnings = map_columns(header)
    assert columns == {0: "email"} | {i + 1: f"custom:extra_{i}" for i in range(MAX_CUSTOM_COLUMNS)}
    assert warnings == [
        "column 'Extra 50' ignored: at most 50 custom columns are kept",
        "column 'Extra 51' ignored: at most 50 custom columns are kept",
    ]


# ================================================================================================================
# sniff


def layout(header, *, delimiter=",", newline="\n", columns, data_offset, encoding="utf-8", header_row=1, bom=False):
    return CsvLayout(
        encoding=encoding,
        delimiter=delimiter,
        newline=newline,
        header=header,
        columns=columns,
        data_offset=data_offset,
        header_row=header_row,
        bom=bom,
    )


def test_sniff_basic_file():
    head = b"Email,First Name,Company\njane@acme.com,Jane,Acme\n"
    assert sniff(head, at_eof=True) == (
        layout(
            ["Email", "First Name", "Company"],
            columns={0: "email", 1: "first_name", 2: "company"},
            data_offset=len(b"Email,First Name,Company\n"),
        ),
        [],
    )


@pytest.mark.parametrize("delimiter", DELIMITERS)
def test_sniff_delimiter(delimiter):
    d = delimiter
    text = f"email{d}name{d}company\nj@x.io{d}Doe, Jane{d}Acme; Inc\nk@x.io{d}Roe| Ken{d}Initech\tLtd\n"
    lay, _ = sniff(text.encode(), at_eof=True)
    assert lay.delimiter == delimiter
    assert lay.header == ["email", "name", "company"]
    assert lay.columns == {0: "email", 1: "full_name", 2: "company"}


def test_sniff_quoted_header_with_delimiters_and_newlines():
    head = b'"Email","Full\nName","Notes, misc"\nj@x.io,Jane,x\n'
    lay, _ = sniff(head, at_eof=True)
    assert lay.header == ["Email", "Full\nName", "Notes, misc"]
    assert lay.columns == {0: "email", 1: "full_name", 2: "custom:notes_misc"}
    assert lay.data_offset == head.index(b"j@x.io")


@pytest.mark.parametrize(
    ("head", "newline", "data_offset"),
    [
        (b"email,name\nj@x.io,Jane\n", "\n", 11),
        (b"email,name\r\nj@x.io,Jane\r\n", "\n", 12),
        (b"email,name\rj@x.io,Jane\r", "\r", 11),
        (b"email,name", "\n", 10),
    ],
)
def test_sniff_newline(head, newline, data_offset):
    lay, _ = sniff(head, at_eof=True)
    assert (lay.newline, lay.data_offset, lay.header) == (newline, data_offset, ["email", "name"])


def test_sniff_utf8_bom():
    head = BOM + b"Email,Name\nj@x.io,Zo\xc3\xab\n"
    assert sniff(head, at_eof=True)[0] == layout(
        ["Email", "Name"], columns={0: "email", 1: "full_name"}, data_offset=14, bom=True
    )
    # A doubled BOM is stripped from the first header name too.
    lay, _ = sniff(BOM + BOM + b"email\nj@x.io\n", at_eof=True)
    assert (lay.header, lay.bom, lay.data_offset) == (["email"], True, 12)


def test_sniff_cp1252_fallback():
    head = "email;prénom;société\nj@x.io;Zoë;Café\n".encode("cp1252")
    assert sniff(head, at_eof=True)[0] == layout(
        ["email", "prénom", "société"],
        delimiter=";",
        columns={0: "email", 1: "first_name", 2: "company"},
        data_offset=len("email;prénom;société\n"),
        encoding="cp1252",
    )


def test_sniff_partial_head_cut_inside_a_utf8_character():
    text = ("email,name\n" + "j@x.io,Zoë\n" * 5).encode("utf-8")
    head = text[: text.rindex("ë".encode()) + 1]  # first byte of the two-byte 'ë'
    assert sniff(head, at_eof=False)[0].encoding == "utf-8"
    # At the end of the file the same bytes are not valid UTF-8.
    assert sniff(head, at_eof=True)[0].encoding == "cp1252"


def test_sniff_blank_lines_before_the_header_count_as_rows():
    head = b"\n\r\n  \nemail,name\nj@x.io,J\n"
    lay, _ = sniff(head, at_eof=True)
    assert (lay.header_row, lay.data_offset, lay.header) == (4, 17, ["email", "name"])


def test_sniff_header_names_are_trimmed():
    lay, _ = sniff(b" Email , Name \n", at_eof=True)
    assert lay.header == ["Email", "Name"]
    assert lay.columns == {0: "email", 1: "full_name"}


def test_sniff_returns_map_columns_warnings():
    header = ",".join(["email"] + [f"c{i}" for i in range(MAX_CUSTOM_COLUMNS + 1)])
    lay, warnings = sniff(header.encode() + b"\n", at_eof=True)
    assert len(lay.columns) == 1 + MAX_CUSTOM_COLUMNS
    assert warnings == ["column 'c50' ignored: at most 50 custom columns are kept"]


@pytest.mark.parametrize("head", [b"", b"   ", b" \r\n\t\n"])
def test_sniff_empty_file(head):
    assert import_error(head, at_eof=True) == ("empty_file", "the file is empty")


@pytest.mark.parametrize("head", [BOM, BOM + b"\n\r\n", BOM + b"  \n"])
def test_sniff_no_header_row(head):
    assert import_error(head, at_eof=True) == ("empty_file", "the file has no header row")


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"PK\x03\x04\x14\x00rest", "a ZIP archive (an .xlsx workbook?). Export it as CSV first"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "an old Excel/Office document (.xls). Export it as CSV first"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff\xe0", "a JPEG image"),
        (b"GIF89a", "a GIF image"),
        (b"\x1f\x8b\x08\x00", "a gzip archive. Decompress it first"),
        (b"{\\rtf1\\ansi", "an RTF document"),
    ],
)
def test_sniff_rejects_known_binary_formats(head, what):
    assert import_error(head, at_eof=False) == ("not_csv", f"this is not a CSV file: it looks like {what}")


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff"])
def test_sniff_rejects_utf16(bom):
    head = bom + "email,name\n".encode("utf-16-le" if bom == b"\xff\xfe" else "utf-16-be")
    assert import_error(head, at_eof=True) == (
        "unsupported_encoding",
        "the file is UTF-16 encoded (Excel's 'Unicode Text'); save it as 'CSV UTF-8' instead",
    )


def test_sniff_rejects_nul_bytes():
    assert import_error(b"email,name\nj@x.io,J\x00\n", at_eof=True) == (
        "not_csv",
        "this is not a CSV file: it contains binary data (NUL bytes)",
    )
    # UTF-16 without a BOM is full of NUL bytes.
    assert import_error("email,name\n".encode("utf-16-le"), at_eof=True)[0] == "not_csv"


def test_sniff_rejects_control_characters_over_one_percent():
    ok = b"email,name\n" + b"j@x.io," + b"a" * 81 + b"\x01"  # 1 control character in 100
    assert len(ok) == 100
    assert sniff(ok, at_eof=True)[0].header == ["email", "name"]
    bad = ok[:-2] + b"\x01\x02"  # 2 in 100
    assert import_error(bad, at_eof=True) == ("not_csv", "this is not a CSV file: it contains binary data")


def test_sniff_no_email_column_lists_the_columns_found():
    assert import_error(b"Name,Company\nJane,Acme\n", at_eof=True) == (
        "no_email_column",
        "no email column: expected a column named email, e-mail, email address or work email "
        "(columns found: 'Name', 'Company')",
    )
    wide = ",".join(f"c{i}" for i in range(25)).encode() + b"\n"
    code, message = import_error(wide, at_eof=True)
    assert code == "no_email_column"
    assert message.endswith("(columns found: " + ", ".join(f"'c{i}'" for i in range(20)) + ")")


def test_sniff_header_that_looks_like_data():
    assert import_error(b"jane@acme.com,Jane\njoe@acme.com,Joe\n", at_eof=True) == (
        "no_header",
        "the first row looks like data, not a header: add a header row with an 'email' column",
    )
    # An '@' without a dotted domain is just an odd header name.
    assert import_error(b"contact@,name\n", at_eof=True)[0] == "no_email_column"


def test_sniff_header_longer_than_the_head():
    head = b"email," + b"x" * 3000  # no newline in the first bytes and more to come
    assert import_error(head, at_eof=False) == ("header_too_long", "the header row is longer than 2 KB")
    # A header cut inside a quoted field (the head ends with a newline, but inside quotes) is not complete either.
    head = b'email,"' + b"x\n" * 1000
    assert import_error(head, at_eof=False) == ("header_too_long", "the header row is longer than 1 KB")


def test_sniff_header_with_a_quote_never_closed():
    # Regression: the whole file became one header cell and the import "succeeded" with no rows.
    assert import_error(b'email,"name\nj@x.io,Jane\nk@x.io,Ken\n', at_eof=True) == (
        "unterminated_quote",
        "a quoted field in the header row is never closed",
    )


def test_sniff_header_over_the_row_limit():
    assert import_error(b"email,name,company\nx\n", at_eof=True, max_record_bytes=10) == (
        "header_too_long",
        "the header row is larger than the row limit",
    )


def test_sniff_head_cut_after_the_header_is_fine():
    head = b"email,name\nj@x.io,Jane\nk@x.io,Ke"
    lay, _ = sniff(head, at_eof=False)
    assert (lay.header, lay.data_offset) == (["email", "name"], 11)


def test_sniff_tolerates_a_stray_cr_in_a_data_row():
    # Regression: csv.reader raised "new-line character seen in unquoted field" while choosing the delimiter.
    head = b"email;name;company\nj@x.io;Jane\rDoe;Acme\nk@x.io;Ken;Initech\n"
    lay, warnings = sniff(head, at_eof=True)
    assert (lay.delimiter, lay.header, lay.data_offset, warnings) == (";", ["email", "name", "company"], 19, [])


def test_sniff_rejects_a_header_with_a_stray_cr():
    assert import_error(b"email,na\rme\nj@x.io,J\n", at_eof=True) == (
        "invalid_header",
        "the header row has a line break (CR or LF) outside quotes; put names that contain one in double quotes",
    )


# ================================================================================================================
# RowParser

FULL_HEADER = (
    b"Email,First Name,Last Name,Full Name,Company,Job Title,Phone,LinkedIn,Website,Tags,Country,City,Lead Source\n"
)


def parse(header, body, *, max_row_bytes=1024 * 1024, chunks=None):
    lay, _ = sniff(header, at_eof=True)
    recs = records(
        body,
        chunks=chunks,
        start_offset=lay.data_offset,
        start_row=lay.header_row + 1,
        delimiter=lay.delimiter,
        newline=lay.newline,
        limit=max_row_bytes,
    )
    return RowParser(lay, max_row_bytes=max_row_bytes).parse(recs)


def clip(value):
    return value if len(value) <= ERROR_VALUE_CHARS else value[: ERROR_VALUE_CHARS - 1] + "…"


def only(parsed):
    assert len(parsed) == 1
    return parsed[0]


def errors(header, body, **kwargs):
    row = only(parse(header, body, **kwargs))
    assert row.draft is None
    assert not row.blank
    return row.errors


def test_parse_valid_row_normalises_every_field():
    body = (
        b" Jane@Acme.COM ,  Jane , Doe,,Acme  Inc,CTO,+1 555 010 0100,linkedin.com/in/JaneDoe,"
        b'https://www.acme.com/,"vip, Trade Show;VIP",France,Paris,Webinar\n'
    )
    row = only(parse(FULL_HEADER, body))
    assert (row.row, row.end, row.errors, row.blank, row.fallback_decoded) == (
        2,
        len(FULL_HEADER) + len(body),
        [],
        False,
        False,
    )
    assert row.draft == ContactDraft(
        row=2,
        email="jane@acme.com",
        fields={
            "first_name": "Jane",
            "last_name": "Doe",
            "company": "Acme Inc",
            "title": "CTO",
            "phone": "+1 555 010 0100",
            "linkedin": "https://www.linkedin.com/in/janedoe",
            "website": "https://www.acme.com/",
            "country": "France",
            "city": "Paris",
        },
        tags=["vip", "trade show"],
        custom={"lead_source": "Webinar"},
        website_domain="acme.com",
    )


def test_parse_rows_keep_their_numbers_and_offsets():
    header = b"email,name\n"
    body = b"a@x.io,A\n\nb@x.io,B\r\nc@x.io,C"
    parsed = parse(header, body, chunks=[3])
    assert [(p.row, p.end, p.blank, p.draft.email if p.draft else None) for p in parsed] == [
        (2, 20, False, "a@x.io"),
        (3, 21, True, None),
        (4, 31, False, "b@x.io"),
        (5, 39, False, "c@x.io"),
    ]


@pytest.mark.parametrize("body", [b"\n", b"  \r\n", b",,\n", b" , \t,\n", b'"",,""\n'])
def test_parse_blank_rows(body):
    row = only(parse(b"email,name,company\n", body))
    assert (row.blank, row.draft, row.errors) == (True, None, [])


def test_parse_null_tokens_are_skipped():
    row = only(parse(b"email,name,phone,website,linkedin,tags,notes\n", b"j@x.io,N/A,n/a,none,-,null,?\n"))
    assert row.errors == []
    assert row.draft == ContactDraft(row=2, email="j@x.io")


def test_parse_full_name_is_split_when_no_first_or_last_name():
    assert only(parse(b"email,name\n", b"j@x.io,  Jane  Q.  Doe \n")).draft.fields == {
        "full_name": "Jane Q. Doe",
        "first_name": "Jane",
        "last_name": "Q. Doe",
    }
    assert only(parse(b"email,name\n", b"j@x.io,Cher\n")).draft.fields == {"full_name": "Cher", "first_name": "Cher"}
    assert only(parse(b"email,name,first name\n", b"j@x.io,Jane Doe,J\n")).draft.fields == {
        "full_name": "Jane Doe",
        "first_name": "J",
    }
    assert only(parse(b"email,name,last name\n", b"j@x.io,Jane Doe,D\n")).draft.fields == {
        "full_name": "Jane Doe",
        "last_name": "D",
    }


def test_parse_short_row_uses_the_values_present():
    row = only(parse(b"email,name,company\n", b"j@x.io,Jane\n"))
    assert row.draft.fields == {"full_name": "Jane", "first_name": "Jane"}


def test_parse_trailing_empty_values_are_not_a_column_count_error():
    row = only(parse(b"email,name\n", b"j@x.io,Jane,, ,\n"))
    assert row.errors == []
    assert row.draft.email == "j@x.io"


def test_parse_column_count_mismatch():
    assert errors(b"email,name,company\n", b"j@x.io,Doe, Jane,Acme\n") == [
        RowError(
            row=2,
            code="column_count",
            message="the row has 4 values but the header has 3 columns (an unquoted delimiter inside a value?)",
        )
    ]


def test_parse_missing_email():
    expected = RowError(row=2, field="email", code="missing_email", message="the email is empty")
    assert errors(b"email,name\n", b",Jane\n") == [expected]
    assert errors(b"name,email\n", b"Jane\n") == [expected]  # the row stops before the email column
    assert errors(b"email,name\n", b"  ,Jane\n") == [expected.model_copy(update={"value": "  "})]


def test_parse_invalid_email_names_the_reason_and_keeps_the_value():
    assert errors(b"email,name\n", b"jane.acme.com,Jane\n") == [
        RowError(row=2, field="email", code="invalid_email", message="the email has no '@'", value="jane.acme.com")
    ]


def test_parse_error_value_is_clipped():
    raw = "x" * 130 + "@acme.com"
    (error,) = errors(b"email\n", raw.encode() + b"\n")
    assert error.value == raw[:119] + "…"
    assert len(error.value) == ERROR_VALUE_CHARS == 120
    assert (error.code, error.message) == ("invalid_email", "the part before '@' is longer than 64 characters")


@pytest.mark.parametrize(
    ("column", "value", "field", "message"),
    [
        ("First Name", "x" * 101, "first_name", "first name is 101 characters long (at most 100)"),
        ("Last Name", "x" * 101, "last_name", "last name is 101 characters long (at most 100)"),
        ("Full Name", "x" * 201, "full_name", "name is 201 characters long (at most 200)"),
        ("Company", "x" * 201, "company", "company is 201 characters long (at most 200)"),
        ("Title", "x" * 201, "title", "title is 201 characters long (at most 200)"),
        ("Country", "x" * 101, "country", "country is 101 characters long (at most 100)"),
        ("City", "x" * 101, "city", "city is 101 characters long (at most 100)"),
        ("Phone", "1" * 41, "phone", "phone is 41 characters long (at most 40)"),
        ("LinkedIn", "in/" + "x" * 298, "linkedin", "LinkedIn URL is 301 characters long (at most 300)"),
        ("Website", "x" * 497 + ".com", "website", "website is 501 characters long (at most 500)"),
        ("Tags", "x," * 1000 + "y", "tags", "tags is 2001 characters long (at most 2000)"),
        ("Lead Source", "x" * 2001, "lead_source", "lead_source is 2001 characters long (at most 2000)"),
    ],
)
def test_parse_field_too_long(column, value, field, message):
    header = f"Email,{column}\n".encode()
    assert errors(header, f'j@x.io,"{value}"\n'.encode()) == [
        RowError(row=2, field=field, code="field_too_long", message=message, value=clip(value))
    ]


def test_parse_text_length_is_measured_after_cleaning():
    row = only(parse(b"email,first name\n", b"j@x.io," + b" " * 50 + b"x" * 100 + b" " * 50 + b"\n"))
    assert row.draft.fields == {"first_name": "x" * 100}


def test_parse_padded_phone_and_linkedin_are_measured_after_trimming():
    # Regression: the limit was checked on the untrimmed value while the message gave the trimmed length
    # ("phone is 15 characters long (at most 40)").
    phone = " " * 30 + "+1 555 010 0100" + " " * 30
    linkedin = " " * 200 + "linkedin.com/in/jane" + " " * 200
    row = only(parse(b"email,phone,linkedin\n", f"j@x.io,{phone},{linkedin}\n".encode()))
    assert row.errors == []
    assert row.draft.fields == {"phone": "+1 555 010 0100", "linkedin": "https://www.linkedin.com/in/jane"}


@pytest.mark.parametrize(
    ("column", "value", "code", "message"),
    [
        ("phone", "call me", "invalid_phone", "'call me' has characters a phone number cannot have"),
        ("phone", "123", "invalid_phone", "'123' has 3 digits (expected 5 to 20)"),
        ("linkedin", "twitter.com/jane", "invalid_linkedin", "'twitter.com/jane' is not a LinkedIn profile URL"),
        ("website", "jane@acme.com", "invalid_website", "'jane@acme.com' looks like an email, not a website"),
        (
            "website",
            "acme",
            "invalid_website",
            "'acme' is not a website or domain: 'acme' has no dot (expected something like example.com)",
        ),
        ("tags", "ok," + "t" * 65, "tag_too_long", "tag 'tttttttttttttttttttt…' is longer than 64 characters"),
        ("tags", ";".join(str(i) for i in range(51)), "too_many_tags", "51 tags (at most 50)"),
    ],
)
def test_parse_invalid_field(column, value, code, message):
    body = f'j@x.io,"{value}"\n'.encode()
    assert errors(f"email,{column}\n".encode(), body) == [
        RowError(row=2, field=column, code=code, message=message, value=clip(value))
    ]


def test_parse_reports_every_problem_of_a_row_in_column_order():
    assert errors(b"phone,email,website,notes\n", b"abc,nope,x,fine\n") == [
        RowError(row=2, field="email", code="invalid_email", message="the email has no '@'", value="nope"),
        RowError(
            row=2,
            field="phone",
            code="invalid_phone",
            message="'abc' has characters a phone number cannot have",
            value="abc",
        ),
        RowError(
            row=2,
            field="website",
            code="invalid_website",
            message="'x' is not a website or domain: 'x' has no dot (expected something like example.com)",
            value="x",
        ),
    ]


def test_parse_custom_columns_are_cleaned_and_empty_ones_dropped():
    row = only(parse(b"email,Lead Source,Notes,Score\n", b'j@x.io,"  Trade\n Show ",,  42 \n'))
    assert row.draft.custom == {"lead_source": "Trade Show", "score": "42"}


def test_parse_fallback_decoding_is_flagged():
    row = only(parse(b"email,name\n", b"j@x.io,Zo\xeb\n"))
    assert (row.fallback_decoded, row.draft.fields["full_name"]) == (True, "Zoë")
    row = only(parse(b"email,name\n", b"j@x.io,Zo\xc3\xab\n"))
    assert (row.fallback_decoded, row.draft.fields["full_name"]) == (False, "Zoë")


def test_parse_unterminated_quote():
    parsed = parse(b"email,name\n", b'a@x.io,A\nb@x.io,"Open\nc@x.io,C\n')
    assert parsed[0].draft.email == "a@x.io"
    assert parsed[1].draft is None
    assert parsed[1].errors == [
        RowError(
            row=3,
            code="unterminated_quote",
            message="a quoted field opened in row 3 is never closed: the rest of the file "
            "(22 bytes from byte 20) could not be split into rows",
        )
    ]
    assert len(parsed) == 2


@pytest.mark.parametrize(("limit", "human"), [(1024, "1 KB"), (2 * 1024 * 1024, "2 MB"), (1500, "1500 bytes")])
def test_parse_row_too_large(limit, human):
    body = b"a@x.io,A\n" + b"b@x.io," + b"x" * limit + b"\n" + b"c@x.io,C\n"
    parsed = parse(b"email,name\n", body, max_row_bytes=limit, chunks=[4096])
    assert [p.draft.email if p.draft else None for p in parsed] == ["a@x.io", None, "c@x.io"]
    assert parsed[1].errors == [
        RowError(row=3, code="row_too_large", message=f"the row is {limit + 8} bytes long, over the {human} row limit")
    ]


def test_parse_a_stray_cr_in_an_unquoted_value_is_a_row_error():
    # Regression: csv.reader raised "new-line character seen in unquoted field" out of parse().
    parsed = parse(b"email,name\n", b"a@x.io,A\nb@x.io,Jane\rDoe\nc@x.io,C\n")
    assert [p.draft.email if p.draft else None for p in parsed] == ["a@x.io", None, "c@x.io"]
    assert parsed[1].errors == [
        RowError(
            row=3,
            code="unquoted_line_break",
            message="the row has a line break (CR or LF) outside quotes; put values that contain one in double quotes",
        )
    ]
    # Inside quotes it is just whitespace.
    assert only(parse(b"email,name\n", b'b@x.io,"Jane\rDoe"\n')).draft.fields["full_name"] == "Jane Doe"


def test_parse_a_value_over_the_csv_default_field_limit_is_reported_by_field_validation():
    # Regression: csv.reader raised "field larger than field limit (131072)" out of parse(). The parser now raises
    # csv's limit to the row limit, so a long value inside an allowed row reaches field validation, which names it.
    long_value = b"x" * 131_073
    parsed = parse(b"email,notes\n", b"a@x.io,A\nb@x.io," + long_value + b"\nc@x.io,C\n")
    assert [p.draft.email if p.draft else None for p in parsed] == ["a@x.io", None, "c@x.io"]
    assert [(e.row, e.field, e.code, e.message) for e in parsed[1].errors] == [
        (3, "notes", "field_too_long", "notes is 131073 characters long (at most 2000)")
    ]


def test_parse_a_record_csv_still_refuses_is_a_row_error_not_a_crash(monkeypatch):
    # If csv refuses a record anyway (its limit lowered elsewhere in the process), that row alone fails.
    lay, _ = sniff(b"email,notes\n", at_eof=True)
    parser = RowParser(lay, max_row_bytes=1024 * 1024)
    monkeypatch.setattr(csv, "field_size_limit", lambda *a: 100)
    import leadpipe.csvfile as csvfile_module

    real_reader = csvfile_module.csv.reader

    def strict_reader(lines, **kw):
        for row in real_reader(lines, **kw):
            if any(len(v) > 100 for v in row):
                raise csv.Error("field larger than field limit (100)")
            yield row

    monkeypatch.setattr(csvfile_module.csv, "reader", strict_reader)
    body = b"a@x.io,A\nb@x.io," + b"x" * 200 + b"\nc@x.io,C\n"
    recs = records(body, start_offset=lay.data_offset, start_row=2, delimiter=",", newline="\n", limit=1 << 20)
    parsed = parser.parse(recs)
    assert [p.draft.email if p.draft else None for p in parsed] == ["a@x.io", None, "c@x.io"]
    assert parsed[1].errors == [RowError(row=3, code="field_too_long", message="a value is longer than 100 characters")]


def test_parse_empty_list():
    lay, _ = sniff(b"email\n", at_eof=True)
    assert RowParser(lay).parse([]) == []


# Arbitrary records through the parser: never an exception, one outcome per record.
ROW_SOUP = st.lists(
    st.sampled_from(
        [b",", b'"', b"\n", b"\r\n", b"\r", b" ", b"a", b"j@x.io", b"N/A", b"\xc3\xa9", b"\xe9", b"\x00", b"in/x"]
    ),
    max_size=50,
).map(b"".join)


@PROPERTY
@given(ROW_SOUP, st.integers(8, 64))
def test_parse_never_raises_and_accounts_for_every_record(body, limit):
    header = b"email,name,phone,linkedin,tags,notes\n"
    lay, _ = sniff(header, at_eof=True)
    recs = records(body, start_offset=lay.data_offset, start_row=2, limit=limit)
    parsed = RowParser(lay, max_row_bytes=limit).parse(recs)
    assert [(p.row, p.end) for p in parsed] == [(r.row, r.end) for r in recs]
    for p, rec in zip(parsed, recs, strict=True):
        outcomes = [p.blank, p.draft is not None, bool(p.errors)]
        assert outcomes.count(True) == 1, p
        if p.draft is not None:
            assert p.draft.row == p.row
            text = decode_record(rec.data, "utf-8")[0]
            assert p.draft.email == normalize_email(next(csv.reader([text]))[0])
        for error in p.errors:
            assert error.row == p.row
            assert error.message
