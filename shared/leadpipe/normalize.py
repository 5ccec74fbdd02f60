"""Normalisation and validation of contact fields. Pure functions; each raises ``FieldProblem`` with a reason.

Emails: trimmed, ``mailto:``/``Name <addr>`` unwrapped, lower-cased, the domain converted to its IDNA (punycode)
form; the company domain is derived from the website column, else from the email unless it is a free-mail domain.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64

# Values people type to mean "nothing here". Compared after trimming and lower-casing.
NULL_TOKENS = frozenset({"", "-", "--", "—", "n/a", "na", "n.a.", "none", "null", "nil", "#n/a", "unknown", "?"})

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.es",
        "yahoo.it",
        "ymail.com",
        "rocketmail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "hotmail.it",
        "outlook.com",
        "outlook.fr",
        "live.com",
        "live.co.uk",
        "live.fr",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "t-online.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "qq.com",
        "163.com",
        "126.com",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "wanadoo.fr",
        "libero.it",
        "comcast.net",
        "verizon.net",
        "att.net",
        "btinternet.com",
        "sky.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "zoho.com",
    }
)


class FieldProblem(ValueError):
    """A value that cannot be accepted; ``code`` is stable, ``message`` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_LOCAL_ASCII = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_ATEXT_EXTRA = frozenset("!#$%&'*+/=?^_`{|}~-")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_WHITESPACE = re.compile(r"\s")


def is_null(value: str) -> bool:
    return value.strip().lower() in NULL_TOKENS


def clean_text(value: str) -> str:
    """Trim, drop control characters, collapse runs of whitespace (including newlines) to one space."""
    if _CONTROL.search(value):
        value = _CONTROL.sub("", value)
    value = value.strip()
    if "  " in value or not value.isprintable():  # any whitespace but a single space is not printable
        value = _SPACES.sub(" ", value)
    return value


def normalize_domain(raw: str) -> str:
    """Lower-case, strip a trailing dot, IDNA-encode; raise ``FieldProblem`` if it is not a valid host name."""
    domain = raw.strip().lower().rstrip(".")
    if not domain:
        raise FieldProblem("missing_domain", "the domain is empty")
    if not domain.isascii():
        import idna  # only for international names; comes with httpx

        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise FieldProblem(
                "invalid_domain", f"'{raw.strip()}' is not a valid international domain ({exc})"
            ) from exc
    if len(domain) > 253:
        raise FieldProblem("invalid_domain", "the domain is longer than 253 characters")
    labels = domain.split(".")
    if len(labels) < 2:
        raise FieldProblem("invalid_domain", f"'{domain}' has no dot (expected something like example.com)")
    for label in labels:
        if not _LABEL.match(label):
            raise FieldProblem("invalid_domain", f"'{domain}' has an invalid part '{label}'")
    if not _TLD.match(labels[-1]):
        raise FieldProblem("invalid_domain", f"'{domain}' does not end in a valid top-level domain")
    return domain


def _valid_unicode_local(local: str) -> bool:
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return all(c.isalnum() or c in _ATEXT_EXTRA or c == "." for c in local)


def normalize_email(raw: str) -> str:
    """Return the canonical form of an email address, or raise ``FieldProblem`` saying what is wrong."""
    value = raw.strip()
    if not value:
        raise FieldProblem("missing_email", "the email is empty")
    value = value.lower()
    if value.startswith("mailto:"):
        value = value[7:].strip()
    if value.endswith(">") and "<" in value:
        value = value[value.rfind("<") + 1 : -1].strip()
    if len(value) > MAX_EMAIL_LENGTH:
        raise FieldProblem("invalid_email", f"the email is longer than {MAX_EMAIL_LENGTH} characters")
    if _WHITESPACE.search(value):
        raise FieldProblem("invalid_email", "the email contains spaces")
    at = value.count("@")
    if at == 0:
        raise FieldProblem("invalid_email", "the email has no '@'")
    if at > 1:
        raise FieldProblem("invalid_email", "the email has more than one '@'")
    local, _, domain = value.partition("@")
    if not local:
        raise FieldProblem("invalid_email", "nothing before the '@'")
    if len(local) > MAX_LOCAL_LENGTH:
        raise FieldProblem("invalid_email", f"the part before '@' is longer than {MAX_LOCAL_LENGTH} characters")
    if local.isascii():
        if not _LOCAL_ASCII.match(local):
            raise FieldProblem("invalid_email", f"'{local}' is not a valid mailbox name")
    elif not _valid_unicode_local(unicodedata.normalize("NFC", local)):
        raise FieldProblem("invalid_email", f"'{local}' is not a valid mailbox name")
    else:
        local = unicodedata.normalize("NFC", local)
    if not domain:
        raise FieldProblem("invalid_email", "nothing after the '@'")
    try:
        domain = normalize_domain(domain)
    except FieldProblem as exc:
        raise FieldProblem("invalid_email", f"invalid email domain: {exc.message}") from exc
    email = f"{local}@{domain}"
    if len(email) > MAX_EMAIL_LENGTH:
        raise FieldProblem("invalid_email", f"the email is longer than {MAX_EMAIL_LENGTH} characters")
    return email


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


def is_free_mail(domain: str) -> bool:
    return domain in FREE_MAIL_DOMAINS


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def domain_from_website(raw: str) -> str:
    """``https://www.Acme.com/about`` -> ``acme.com``; raise ``FieldProblem`` when it is not a web address."""
    value = raw.strip().lower()
    value = _SCHEME.sub("", value, count=1)
    for sep in "/?#":
        value = value.split(sep, 1)[0]
    if "@" in value:
        raise FieldProblem("invalid_website", f"'{raw.strip()}' looks like an email, not a website")
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    if host.startswith("www."):
        host = host[4:]
    try:
        return normalize_domain(host)
    except FieldProblem as exc:
        raise FieldProblem("invalid_website", f"'{raw.strip()}' is not a website or domain: {exc.message}") from exc


def company_domain(email: str, website_domain: str | None) -> str | None:
    if website_domain:
        return website_domain
    domain = email_domain(email)
    return None if is_free_mail(domain) else domain


_PHONE_ALLOWED = re.compile(r"^[0-9+().\-/ ]+(?:\s*(?:x|ext\.?|extension)\s*[0-9]{1,6})?$")


def normalize_phone(raw: str) -> str:
    value = clean_text(raw)
    if not _PHONE_ALLOWED.match(value.lower()):
        raise FieldProblem("invalid_phone", f"'{value}' has characters a phone number cannot have")
    digits = sum(c.isdigit() for c in value)
    if digits < 5 or digits > 20:
        raise FieldProblem("invalid_phone", f"'{value}' has {digits} digits (expected 5 to 20)")
    return value


_LINKEDIN = re.compile(
    r"^(?:https?://)?(?:[a-z]{2,3}\.|www\.)?linkedin\.com/(in|pub|company|sales/lead|sales/people)/([^/?#\s]+)"
)


def normalize_linkedin(raw: str) -> str:
    value = raw.strip()
    lowered = value.lower()
    if lowered.startswith("in/"):
        lowered = "linkedin.com/" + lowered
    match = _LINKEDIN.match(lowered)
    if not match:
        raise FieldProblem("invalid_linkedin", f"'{value}' is not a LinkedIn profile URL")
    kind, slug = match.groups()
    return f"https://www.linkedin.com/{kind}/{slug}"


_TAG_SPLIT = re.compile(r"[,;|]")
MAX_TAG_LENGTH = 64
MAX_TAGS = 50


def normalize_tags(raw: str) -> list[str]:
    tags: list[str] = []
    for part in _TAG_SPLIT.split(raw):
        tag = clean_text(part).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise FieldProblem("tag_too_long", f"tag '{tag[:20]}…' is longer than {MAX_TAG_LENGTH} characters")
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise FieldProblem("too_many_tags", f"{len(tags)} tags (at most {MAX_TAGS})")
    return tags


def custom_key(header: str) -> str:
    """Column header -> a stable custom-field key: ``"Lead Source (2024)"`` -> ``lead_source_2024``."""
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii").lower()
    key = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
    return key[:64] or "column"


@dataclass(frozen=True, slots=True)
class Limits:
    """Maximum lengths (characters) of imported fields; longer values make the row invalid with a clear reason."""

    name: int = 100
    full_name: int = 200
    company: int = 200
    title: int = 200
    phone: int = 40
    linkedin: int = 300
    website: int = 500
    place: int = 100
    tags: int = 2000
    custom: int = 2000


LIMITS = Limits()
