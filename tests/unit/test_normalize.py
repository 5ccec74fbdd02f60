"""Unit tests for leadpipe.normalize: examples for every accepted form and every FieldProblem, plus properties."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadpipe.normalize import (
    FREE_MAIL_DOMAINS,
    LIMITS,
    MAX_EMAIL_LENGTH,
    MAX_LOCAL_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    NULL_TOKENS,
    FieldProblem,
    Limits,
    clean_text,
    company_domain,
    custom_key,
    domain_from_website,
    email_domain,
    is_free_mail,
    is_null,
    normalize_domain,
    normalize_email,
    normalize_linkedin,
    normalize_phone,
    normalize_tags,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def attempt(func, value):
    """(result, None) or (None, the FieldProblem raised); any other exception propagates and fails the test."""
    try:
        return func(value), None
    except FieldProblem as exc:
        return None, exc


def problem(func, value):
    """Call ``func(value)`` expecting a FieldProblem; return (code, message)."""
    with pytest.raises(FieldProblem) as info:
        func(value)
    exc = info.value
    assert str(exc) == exc.message  # the message is also the exception text
    return exc.code, exc.message


# ----------------------------------------------------------------------------------------------------------------
# FieldProblem


def test_field_problem_is_a_value_error_with_code_and_message():
    exc = FieldProblem("invalid_email", "the email has no '@'")
    assert isinstance(exc, ValueError)
    assert exc.code == "invalid_email"
    assert exc.message == "the email has no '@'"
    assert exc.args == ("the email has no '@'",)


# ----------------------------------------------------------------------------------------------------------------
# normalize_email: accepted forms


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM  ", "jane.doe@example.com"),
        ("\tJANE@EXAMPLE.COM\r\n", "jane@example.com"),
        ("mailto:jane@example.com", "jane@example.com"),
        ("MAILTO:Jane@Example.com", "jane@example.com"),
        ("mailto:  jane@example.com", "jane@example.com"),
        ("Jane Doe <Jane@Example.com>", "jane@example.com"),
        ('"Doe, Jane" <jane@example.com>', "jane@example.com"),
        ("<jane@example.com>", "jane@example.com"),
        ("Jane < jane@example.com >", "jane@example.com"),
        ("mailto:Jane Doe <jane@example.com>", "jane@example.com"),
        ("jane@example.com.", "jane@example.com"),
        ("o'brien+news@example.co.uk", "o'brien+news@example.co.uk"),
        ("a!#$%&'*+/=?^_`{|}~-b@example.com", "a!#$%&'*+/=?^_`{|}~-b@example.com"),
        ("first.middle.last@sub.example.org", "first.middle.last@sub.example.org"),
        ("user@123.com", "user@123.com"),
        ("user@ab--cd.io", "user@ab--cd.io"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("user@BÜCHER.DE", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        ("user@example.рф", "user@example.xn--p1ai"),
        ("user@ex\u3002com", "user@ex.com"),  # ideographic full stop is a dot in IDNA
        ("Ünïcode@bücher.de", "ünïcode@xn--bcher-kva.de"),
        ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"),
        ("Jose\u0301@example.com", "jos\u00e9@example.com"),  # decomposed accent -> NFC
        ("a" * MAX_LOCAL_LENGTH + "@example.com", "a" * MAX_LOCAL_LENGTH + "@example.com"),
    ],
)
def test_normalize_email_accepts(raw, expected):
    assert normalize_email(raw) == expected


def test_normalize_email_accepts_exactly_254_characters():
    domain = ".".join(["b" * 63, "c" * 63, "d" * 58]) + ".com"  # 190 characters
    email = "a" * (MAX_EMAIL_LENGTH - len(domain) - 1) + "@" + domain
    assert len(email) == MAX_EMAIL_LENGTH
    assert normalize_email(email) == email


# ----------------------------------------------------------------------------------------------------------------
# normalize_email: rejected forms, with the exact code and message


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ("", "missing_email", "the email is empty"),
        ("   \t ", "missing_email", "the email is empty"),
        ("jane", "invalid_email", "the email has no '@'"),
        ("mailto:", "invalid_email", "the email has no '@'"),
        ("<>", "invalid_email", "the email has no '@'"),
        ("Jane Doe <>", "invalid_email", "the email has no '@'"),
        ("jane doe@example.com", "invalid_email", "the email contains spaces"),
        ("jane@exa\u00a0mple.com", "invalid_email", "the email contains spaces"),
        ("jane@example.com, joe@example.com", "invalid_email", "the email contains spaces"),
        ("jane@@example.com", "invalid_email", "the email has more than one '@'"),
        ("a@b@example.com", "invalid_email", "the email has more than one '@'"),
        ("@example.com", "invalid_email", "nothing before the '@'"),
        ("jane@", "invalid_email", "nothing after the '@'"),
        (".jane@example.com", "invalid_email", "'.jane' is not a valid mailbox name"),
        ("jane.@example.com", "invalid_email", "'jane.' is not a valid mailbox name"),
        ("ja..ne@example.com", "invalid_email", "'ja..ne' is not a valid mailbox name"),
        ("(jane)@example.com", "invalid_email", "'(jane)' is not a valid mailbox name"),
        ('"jane"@example.com', "invalid_email", "'\"jane\"' is not a valid mailbox name"),
        ("jané.@example.com", "invalid_email", "'jané.' is not a valid mailbox name"),
        ("ja\u200bné@example.com", "invalid_email", "'ja\u200bné' is not a valid mailbox name"),
        (
            "a" * (MAX_LOCAL_LENGTH + 1) + "@example.com",
            "invalid_email",
            "the part before '@' is longer than 64 characters",
        ),
        ("a@" + "b" * 250 + ".com", "invalid_email", "the email is longer than 254 characters"),
        (
            "jane@localhost",
            "invalid_email",
            "invalid email domain: 'localhost' has no dot (expected something like example.com)",
        ),
        ("jane@example..com", "invalid_email", "invalid email domain: 'example..com' has an invalid part ''"),
        ("jane@-example.com", "invalid_email", "invalid email domain: '-example.com' has an invalid part '-example'"),
        ("jane@example-.com", "invalid_email", "invalid email domain: 'example-.com' has an invalid part 'example-'"),
        ("jane@exa_mple.com", "invalid_email", "invalid email domain: 'exa_mple.com' has an invalid part 'exa_mple'"),
        ("jane@example.com>", "invalid_email", "invalid email domain: 'example.com>' has an invalid part 'com>'"),
        ("jane@[192.0.2.1]", "invalid_email", "invalid email domain: '[192.0.2.1]' has an invalid part '[192'"),
        (
            "jane@" + "b" * 64 + ".com",
            "invalid_email",
            "invalid email domain: '" + "b" * 64 + ".com' has an invalid part '" + "b" * 64 + "'",
        ),
        (
            "jane@example.c",
            "invalid_email",
            "invalid email domain: 'example.c' does not end in a valid top-level domain",
        ),
        (
            "jane@192.0.2.1",
            "invalid_email",
            "invalid email domain: '192.0.2.1' does not end in a valid top-level domain",
        ),
        (
            "jane@example.c0m",
            "invalid_email",
            "invalid email domain: 'example.c0m' does not end in a valid top-level domain",
        ),
    ],
)
def test_normalize_email_rejects(raw, code, message):
    assert problem(normalize_email, raw) == (code, message)


def test_normalize_email_too_long_after_idna_encoding():
    # 161 characters as typed, but the punycode form of the domain (198 characters) makes it 259.
    domain = ".".join(["bücher"] * 14) + ".de"
    raw = "a" * 60 + "@" + domain
    assert len(raw) == 161
    assert len(normalize_domain(domain)) == 198
    assert problem(normalize_email, raw) == ("invalid_email", "the email is longer than 254 characters")


def test_normalize_email_invalid_international_domain_names_the_domain():
    code, message = problem(normalize_email, "jane@\u3002\u3002")
    assert code == "invalid_email"
    assert message.startswith("invalid email domain: '\u3002\u3002' is not a valid international domain (")
    assert message.endswith(")")


# ----------------------------------------------------------------------------------------------------------------
# normalize_email: properties

_EMAIL_CHARS = st.sampled_from(
    [
        *"aZz09.@-_+'!~<> :",
        "mailto:",
        "MAILTO:",
        " <",
        ">",
        "é",
        "É",
        "ß",
        "ü",
        "Ü",
        "İ",
        "K",
        "δ",
        "Σ",
        "ς",
        "\u3002",
        "\uff0e",
        "\u00a0",
        "\u200b",
        "\u0301",
        "xn--",
        ".com",
        "@x.io",
        "\t",
        "\n",
        "\x00",
    ]
)
_decorated_emails = st.builds(
    lambda pre, email, post, upper: pre + (email.upper() if upper else email) + post,
    st.sampled_from(["", "  ", "mailto:", "Jane <", "\t"]),
    st.emails(),
    st.sampled_from(["", " ", ">", "\r\n", "."]),
    st.booleans(),
)
_email_like = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(min_size=0, max_size=20),
    st.text(min_size=0, max_size=20),
)
ANY_EMAIL_TEXT = st.one_of(st.text(), st.lists(_EMAIL_CHARS, max_size=30).map("".join), _decorated_emails, _email_like)


@PROPERTY
@given(ANY_EMAIL_TEXT)
@example("Jane Doe <JANE@BÜCHER.DE>")
@example("İ@example.com")
@example("jane@example.com\u3002")
def test_normalize_email_is_idempotent_and_canonical(raw):
    email, exc = attempt(normalize_email, raw)
    if exc is not None:
        assert exc.code in {"missing_email", "invalid_email"}
        assert exc.message
        return
    assert normalize_email(email) == email
    assert email == email.lower()
    assert not any(c.isspace() for c in email)
    assert email.count("@") == 1
    local, domain = email.split("@")
    assert 0 < len(local) <= MAX_LOCAL_LENGTH
    assert len(email) <= MAX_EMAIL_LENGTH
    assert domain.isascii()
    assert normalize_domain(domain) == domain
    assert email_domain(email) == domain


@PROPERTY
@given(st.emails())
def test_normalize_email_accepts_every_rfc_dot_atom_address(email):
    assert normalize_email(email) == email.lower()
    assert normalize_email(f"  Someone <{email.upper()}> ") == email.lower()
    assert normalize_email(f"mailto:{email}") == email.lower()


# ----------------------------------------------------------------------------------------------------------------
# normalize_domain / domain_from_website / company domain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        (" Example.COM. ", "example.com"),
        ("sub.example.co.uk", "sub.example.co.uk"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("EXAMPLE.рф", "example.xn--p1ai"),
        ("a.xn--p1ai", "a.xn--p1ai"),
        ("x1.io", "x1.io"),
    ],
)
def test_normalize_domain_accepts(raw, expected):
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ("", "missing_domain", "the domain is empty"),
        ("  . ", "missing_domain", "the domain is empty"),
        ("example", "invalid_domain", "'example' has no dot (expected something like example.com)"),
        ("a..b", "invalid_domain", "'a..b' has an invalid part ''"),
        ("-a.com", "invalid_domain", "'-a.com' has an invalid part '-a'"),
        ("a.b-", "invalid_domain", "'a.b-' has an invalid part 'b-'"),
        ("a b.com", "invalid_domain", "'a b.com' has an invalid part 'a b'"),
        ("a.123", "invalid_domain", "'a.123' does not end in a valid top-level domain"),
        ("a.c", "invalid_domain", "'a.c' does not end in a valid top-level domain"),
        ("a.xn--", "invalid_domain", "'a.xn--' has an invalid part 'xn--'"),
        ("a.xn--a-", "invalid_domain", "'a.xn--a-' has an invalid part 'xn--a-'"),
        ("a.b1", "invalid_domain", "'a.b1' does not end in a valid top-level domain"),
        (
            "a." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 60,
            "invalid_domain",
            "the domain is longer than 253 characters",
        ),
    ],
)
def test_normalize_domain_rejects(raw, code, message):
    assert problem(normalize_domain, raw) == (code, message)


def test_normalize_domain_invalid_international_name():
    code, message = problem(normalize_domain, " ex\u00e4mple\u3002\u3002com ")
    assert code == "invalid_domain"
    assert message.startswith("'ex\u00e4mple\u3002\u3002com' is not a valid international domain (")


_LABELS = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?\Z")
VALID_DOMAINS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABELS, min_size=1, max_size=4),
    st.from_regex(r"\A[a-z]{2,8}\Z"),
)


@PROPERTY
@given(VALID_DOMAINS, st.booleans(), st.booleans())
def test_normalize_domain_accepts_valid_ascii_names_unchanged(domain, upper, trailing_dot):
    raw = (domain.upper() if upper else domain) + ("." if trailing_dot else "")
    assert normalize_domain(raw) == domain
    assert normalize_domain(normalize_domain(raw)) == domain


@PROPERTY
@given(st.text(max_size=40))
def test_normalize_domain_only_raises_field_problem_and_output_is_a_fixpoint(raw):
    domain, exc = attempt(normalize_domain, raw)
    if exc is not None:
        assert exc.code in {"missing_domain", "invalid_domain"}
        return
    assert normalize_domain(domain) == domain
    assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        ("https://www.Acme.com/about", "acme.com"),
        ("HTTP://WWW.ACME.CO.UK/", "acme.co.uk"),
        ("http://acme.com?utm=1#top", "acme.com"),
        ("acme.com:8080/path", "acme.com"),
        ("https://acme.com:443", "acme.com"),
        ("ftp://files.acme.org/x", "files.acme.org"),
        ("  www.acme.io  ", "acme.io"),
        ("https://bücher.de/", "xn--bcher-kva.de"),
        ("wwwacme.com", "wwwacme.com"),
    ],
)
def test_domain_from_website(raw, expected):
    assert domain_from_website(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (" john@acme.com ", "'john@acme.com' looks like an email, not a website"),
        ("mailto:john@acme.com", "'mailto:john@acme.com' looks like an email, not a website"),
        ("", "'' is not a website or domain: the domain is empty"),
        ("https://", "'https://' is not a website or domain: the domain is empty"),
        (
            "localhost",
            "'localhost' is not a website or domain: 'localhost' has no dot (expected something like example.com)",
        ),
        (
            "http://acme",
            "'http://acme' is not a website or domain: 'acme' has no dot (expected something like example.com)",
        ),
        ("n/a", "'n/a' is not a website or domain: 'n' has no dot (expected something like example.com)"),
        (
            "acme.com:80:80",
            "'acme.com:80:80' is not a website or domain: 'acme.com:80:80' has an invalid part 'com:80:80'",
        ),
        (
            "https://10.0.0.1/",
            "'https://10.0.0.1/' is not a website or domain: '10.0.0.1' does not end in a valid top-level domain",
        ),
    ],
)
def test_domain_from_website_rejects(raw, message):
    assert problem(domain_from_website, raw) == ("invalid_website", message)


@PROPERTY
@given(
    VALID_DOMAINS.filter(lambda d: not d.startswith("www.")),
    st.sampled_from(["", "http://", "https://", "HTTPS://", "https://www.", "www."]),
    st.sampled_from(["", "/", "/about/us", "?q=1", "#x", ":8443/path"]),
)
def test_domain_from_website_strips_scheme_www_port_and_path(domain, prefix, suffix):
    assert domain_from_website(prefix + domain + suffix) == domain


@PROPERTY
@given(st.text(max_size=40))
def test_domain_from_website_only_raises_field_problem(raw):
    domain, exc = attempt(domain_from_website, raw)
    if exc is not None:
        assert exc.code == "invalid_website"
        assert exc.message.startswith(f"'{raw.strip()}' ")
        return
    assert normalize_domain(domain) == domain


def test_free_mail_and_company_domain():
    assert email_domain("jane@acme.com") == "acme.com"
    assert is_free_mail("gmail.com")
    assert is_free_mail("proton.me")
    assert not is_free_mail("acme.com")
    assert not is_free_mail("GMAIL.COM")  # callers pass normalised (lower-case) domains
    assert company_domain("jane@acme.com", None) == "acme.com"
    assert company_domain("jane@gmail.com", None) is None
    assert company_domain("jane@gmail.com", "acme.com") == "acme.com"
    assert company_domain("jane@other.org", "acme.com") == "acme.com"
    assert company_domain("jane@yahoo.co.uk", "") is None
    assert all(d == d.lower() and normalize_domain(d) == d for d in FREE_MAIL_DOMAINS)


# ----------------------------------------------------------------------------------------------------------------
# normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (555) 010-0100", "+1 (555) 010-0100"),
        ("  +33  1 23 45 67 89  ", "+33 1 23 45 67 89"),
        ("555.010.0100", "555.010.0100"),
        ("0044/20/7946/0958", "0044/20/7946/0958"),
        ("555-0100 x123", "555-0100 x123"),
        ("555-0100x123", "555-0100x123"),
        ("555 0100 ext. 12", "555 0100 ext. 12"),
        ("555 0100 EXT 12", "555 0100 EXT 12"),
        ("555.010.0100 extension 7", "555.010.0100 extension 7"),
        ("12345\n678", "12345 678"),
        ("12345", "12345"),
        ("1" * 20, "1" * 20),
    ],
)
def test_normalize_phone_accepts(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("call me", "'call me' has characters a phone number cannot have"),
        ("+1 555 CALL NOW", "'+1 555 CALL NOW' has characters a phone number cannot have"),
        ("555-0100 x1234567", "'555-0100 x1234567' has characters a phone number cannot have"),
        ("", "'' has characters a phone number cannot have"),
        ("555-0100 ext", "'555-0100 ext' has characters a phone number cannot have"),
        ("\uff15" * 5, "'" + "\uff15" * 5 + "' has characters a phone number cannot have"),
        ("1234", "'1234' has 4 digits (expected 5 to 20)"),
        (" (12) 34 ", "'(12) 34' has 4 digits (expected 5 to 20)"),
        ("+" + "1" * 21, "'+" + "1" * 21 + "' has 21 digits (expected 5 to 20)"),
        ("12 x 3", "'12 x 3' has 3 digits (expected 5 to 20)"),
    ],
)
def test_normalize_phone_rejects(raw, message):
    assert problem(normalize_phone, raw) == ("invalid_phone", message)


@PROPERTY
@given(st.text(alphabet="0123456789+()-./ x\t", max_size=40))
def test_normalize_phone_returns_the_cleaned_text(raw):
    phone, exc = attempt(normalize_phone, raw)
    if exc is not None:
        assert exc.code == "invalid_phone"
        assert exc.message.startswith(f"'{clean_text(raw)}' has ")
        return
    assert phone == clean_text(raw)
    assert 5 <= sum(c.isdigit() for c in phone) <= 20
    assert normalize_phone(phone) == phone


# ----------------------------------------------------------------------------------------------------------------
# normalize_linkedin


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.linkedin.com/in/Jane-Doe/", "https://www.linkedin.com/in/jane-doe"),
        ("http://linkedin.com/in/jane?trk=public", "https://www.linkedin.com/in/jane"),
        ("linkedin.com/in/jane#about", "https://www.linkedin.com/in/jane"),
        (" www.linkedin.com/in/jane ", "https://www.linkedin.com/in/jane"),
        ("in/jane", "https://www.linkedin.com/in/jane"),
        ("IN/Jane", "https://www.linkedin.com/in/jane"),
        ("uk.linkedin.com/pub/jane-doe/1/2/3", "https://www.linkedin.com/pub/jane-doe"),
        ("https://LinkedIn.com/company/ACME", "https://www.linkedin.com/company/acme"),
        ("https://www.linkedin.com/sales/lead/ABC123,NAME", "https://www.linkedin.com/sales/lead/abc123,name"),
        ("https://www.linkedin.com/sales/people/xyz", "https://www.linkedin.com/sales/people/xyz"),
        ("http://fr.linkedin.com/in/j%C3%A9r%C3%B4me", "https://www.linkedin.com/in/j%c3%a9r%c3%b4me"),
    ],
)
def test_normalize_linkedin_accepts(raw, expected):
    assert normalize_linkedin(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "https://twitter.com/jane",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/in/",
        "linkedin.com/jane",
        "https://evil.com/linkedin.com/in/jane",
        "ftp://linkedin.com/in/jane",
        "jane doe",
        "",
    ],
)
def test_normalize_linkedin_rejects(raw):
    assert problem(normalize_linkedin, f" {raw} ") == ("invalid_linkedin", f"'{raw}' is not a LinkedIn profile URL")


@PROPERTY
@given(
    st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    st.sampled_from(["", "www.", "uk.", "FR."]),
    st.sampled_from(["in", "pub", "company", "sales/lead", "sales/people"]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_%.,é", min_size=1, max_size=30),
    st.sampled_from(["", "/", "/details", "?trk=x", "#top"]),
)
def test_normalize_linkedin_canonical_form(scheme, host, kind, slug, suffix):
    url = normalize_linkedin(f"{scheme}{host}linkedin.com/{kind}/{slug}{suffix}")
    assert url == f"https://www.linkedin.com/{kind}/{slug.lower()}"
    assert normalize_linkedin(url) == url


# ----------------------------------------------------------------------------------------------------------------
# normalize_tags


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("vip", ["vip"]),
        ("a, b;c|d", ["a", "b", "c", "d"]),
        ("VIP,vip, Vip ", ["vip"]),
        ("", []),
        (" , ;| ", []),
        ("Trade  Show\t2024, webinar", ["trade show 2024", "webinar"]),
        ("x" * MAX_TAG_LENGTH, ["x" * MAX_TAG_LENGTH]),
        (",".join(str(i) for i in range(MAX_TAGS)), [str(i) for i in range(MAX_TAGS)]),
        (",".join(str(i % MAX_TAGS) for i in range(MAX_TAGS + 10)), [str(i) for i in range(MAX_TAGS)]),
    ],
)
def test_normalize_tags(raw, expected):
    assert normalize_tags(raw) == expected


def test_normalize_tags_rejects_a_long_tag():
    tag = "Abcdefghij" * 6 + "klmno"  # 65 characters
    assert problem(normalize_tags, f"ok, {tag}") == (
        "tag_too_long",
        "tag 'abcdefghijabcdefghij…' is longer than 64 characters",
    )


def test_normalize_tags_rejects_too_many_tags():
    raw = ";".join(f"t{i}" for i in range(MAX_TAGS + 1))
    assert problem(normalize_tags, raw) == ("too_many_tags", "51 tags (at most 50)")


@PROPERTY
@given(st.text(max_size=200))
def test_normalize_tags_properties(raw):
    tags, exc = attempt(normalize_tags, raw)
    if exc is not None:
        assert exc.code in {"tag_too_long", "too_many_tags"}
        return
    assert len(tags) == len(set(tags)) <= MAX_TAGS
    for tag in tags:
        assert tag
        assert tag == clean_text(tag).lower()
        assert not set(tag) & set(",;|")
        assert len(tag) <= MAX_TAG_LENGTH
    assert normalize_tags(",".join(tags)) == tags


# ----------------------------------------------------------------------------------------------------------------
# clean_text, is_null, custom_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane", "Jane"),
        ("  Jane  ", "Jane"),
        ("Jane  Doe", "Jane Doe"),
        ("Jane\tDoe", "Jane Doe"),
        ("Jane\r\nDoe", "Jane Doe"),
        ("line one\n\n  line two", "line one line two"),
        (" a\x00b\x07c\x1b ", "abc"),
        ("a\x7fb", "ab"),
        ("\x0b\x0c", ""),
        ("Jane \x00 Doe", "Jane Doe"),
        ("Jane\u00a0\u00a0Doe", "Jane Doe"),
        ("Jane\u00a0Doe", "Jane Doe"),
        ("Jane \u3000Doe", "Jane Doe"),
        ("Jane\u2028Doe", "Jane Doe"),
        ("\u00a0Jane\u00a0", "Jane"),
        ("Zoë Ñandú 日本", "Zoë Ñandú 日本"),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@PROPERTY
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
@example("a\u00a0 b")
def test_clean_text_collapses_every_whitespace_run(raw):
    cleaned = clean_text(raw)
    assert cleaned == " ".join(_CONTROLS.sub("", raw).split())
    assert clean_text(cleaned) == cleaned


@pytest.mark.parametrize("token", sorted(NULL_TOKENS))
def test_is_null_tokens(token):
    assert is_null(token)
    assert is_null(f"  {token.upper()} ")


@pytest.mark.parametrize("value", ["x", "0", "none of them", "n/a/b", "nul", "unknown person", "?!"])
def test_is_null_rejects_real_values(value):
    assert not is_null(value)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Lead Source (2024)", "lead_source_2024"),
        ("  Notes  ", "notes"),
        ("Économie", "economie"),
        ("first_name", "first_name"),
        ("A--B__C", "a_b_c"),
        ("___", "column"),
        ("  ", "column"),
        ("日本語", "column"),
        ("x" * 70, "x" * 64),
        ("ﬁrst", "first"),
    ],
)
def test_custom_key(header, key):
    assert custom_key(header) == key


@PROPERTY
@given(st.text(max_size=80))
def test_custom_key_shape(header):
    key = custom_key(header)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_]{0,63}", key)


def test_limits_defaults():
    assert Limits() == LIMITS
    assert (LIMITS.name, LIMITS.full_name, LIMITS.company, LIMITS.title) == (100, 200, 200, 200)
    assert (LIMITS.phone, LIMITS.linkedin, LIMITS.website, LIMITS.place) == (40, 300, 500, 100)
    assert (LIMITS.tags, LIMITS.custom) == (2000, 2000)


def test_normalize_email_rejects_non_space_whitespace_after_unwrapping():
    assert problem(normalize_email, "Jane <jane@exam\tple.com>") == ("invalid_email", "the email contains spaces")
