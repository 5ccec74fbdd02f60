"""Dropcontact: email verification and qualification, name cleaning, LinkedIn, job title, phone. Asynchronous.

API (https://developer.dropcontact.com/en/reference/):

- ``POST /v1/enrich/all`` with ``{"data": [record, ...], "siren": bool, "language": "en"}``, at most 250 records,
  the key in the ``X-Access-Token`` header. Answers ``{"request_id": ..., "credits_left": ..., "error": false,
  "success": true}``.
- ``GET /v1/enrich/all/{request_id}``: ``200`` with ``"success": false`` and the reason ``Request not ready yet, try
  again in 30 seconds`` while the batch is processed (also for an unknown id), then ``{"data": [record, ...],
  "success": true}`` with the enriched records *in input order*. Records carry only populated attributes; ``email``
  is a list of ``{"email", "qualification"}`` where the qualification is ``<localpart>@<domain>``
  (e.g. ``nominative@pro``).
- 60 requests per second; results kept 30 days.

The waterfall should use ``submit``/``poll``: it can hand a pending batch to a later message (``enrich.poll``) instead
of keeping a Lambda invocation waiting. ``people`` (submit, then wait and poll within the invocation's Budget) is for
callers without that machinery, e.g. the CLI; it raises ``ProviderError(reason="budget")`` when the batch is still
pending and the next wait would go past the budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from leadpipe.enrichment.fields import Kind, comparable
from leadpipe.enrichment.providers.base import (
    Answer,
    AsyncProvider,
    PersonQuery,
    ProviderError,
    ProviderInfo,
    RateLimit,
)
from leadpipe.enrichment.providers.http_provider import HttpProvider

NAME = "dropcontact"
MAX_RECORDS = 250
KEY_FIELD = "leadpipe_email"  # custom field echoed back by Dropcontact, to find each query's record

# Reliabilities (0..1) of what Dropcontact answers, used by the merge:
# - email_status 0.9: verifying and qualifying addresses is Dropcontact's core product (SMTP checks, catch-all
#   detection, nominative vs generic local parts); it qualifies the address we send rather than guessing one.
# - first_name / last_name 0.85: cleaned (capitalisation, split of full names) from what we send and what it finds;
#   rarely wrong, but partly an echo of our own input.
# - linkedin 0.75: found by matching name and company; homonyms at large companies make it less certain.
# - title 0.7: the job title from the found profile, which can be out of date.
# - phone 0.5: the contact's mobile when found; otherwise the record's ``phone``, often the company's switchboard
#   (that one is passed on with a field confidence of 0.5 on top).
PERSON_RELIABILITY: dict[str, float] = {
    "email_status": 0.9,
    "first_name": 0.85,
    "last_name": 0.85,
    "linkedin": 0.75,
    "title": 0.7,
    "phone": 0.5,
}
COMPANY_PHONE_CONFIDENCE = 0.5

NOT_READY = "not ready"

# Qualification -> EMAIL_STATUSES. Dropcontact localises the words with the request language (we ask for English,
# the French forms are accepted too). Local parts: nominative, catch-all, generic, Do_Not_Contact, non_validated,
# invalid (the older documentation also had catch_all, non_confirm and random). Domains: pro, perso, school,
# disposable, invalid domain.
_LOCAL_STATUS: dict[str, str] = {
    "nominative": "valid",
    "nominatif": "valid",
    "catch-all": "accept_all",
    "catch_all": "accept_all",
    "non_confirm": "accept_all",
    # A role mailbox (contact@, sales@) is deliverable but is not the person: not as good as a nominative address.
    "generic": "risky",
    "generique": "risky",
    "générique": "risky",
    "do_not_contact": "risky",
    "ne_pas_contacter": "risky",
    "random": "risky",
    "non_validated": "unknown",
    "non_validé": "unknown",
    "non_valide": "unknown",
    "invalid": "invalid",
    "invalide": "invalid",
}
_DOMAIN_STATUS: dict[str, str] = {
    "perso": "webmail",
    "disposable": "disposable",
    "jetable": "disposable",
    "invalid domain": "invalid",
    "domaine invalide": "invalid",
    "invalid": "invalid",
    "invalide": "invalid",
}


def email_status(qualification: str | None) -> str | None:
    """A Dropcontact qualification (``nominative@pro``) -> one of ``fields.EMAIL_STATUSES``."""
    if not qualification or "@" not in qualification:
        return None
    local, _, domain = qualification.strip().casefold().rpartition("@")
    local = local.replace(" ", "_")
    domain = " ".join(domain.replace("_", " ").split())
    by_domain = _DOMAIN_STATUS.get(domain)
    by_local = _LOCAL_STATUS.get(local, "unknown")
    if by_domain in ("invalid", "disposable"):
        return by_domain
    if by_local == "invalid":
        return "invalid"
    if by_domain == "webmail":
        return "webmail"
    return by_local


_LINKEDIN_PERSON = re.compile(r"linkedin\.com/in/([^/?#\s]+)", re.IGNORECASE)


def linkedin_profile(url: str | None) -> str | None:
    """Any form of a person's LinkedIn URL (``www.linkedin.com/in/x``, ``fr.linkedin.com/in/x/``) -> ours."""
    match = _LINKEDIN_PERSON.search(url or "")
    return f"https://www.linkedin.com/in/{match.group(1)}" if match else None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


class DropcontactProvider(HttpProvider, AsyncProvider):
    """Dropcontact's batch enrichment (``/v1/enrich/all``) as an asynchronous person provider."""

    info = ProviderInfo(
        name=NAME,
        person_fields=PERSON_RELIABILITY,
        batch_size=MAX_RECORDS,
        rate_limit=RateLimit(60, 1.0),
        asynchronous=True,
        key_env="DROPCONTACT_API_KEY",
    )
    language = "en"  # answers (qualifications, civility) in English; Dropcontact defaults to French
    siren = False  # French registry data (SIREN, NAF...) is company data, which this adapter does not map

    default_base_url = "https://api.dropcontact.com"

    def __init__(self, api_key: str, *, poll_interval_seconds: float = 30.0, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.poll_interval_seconds = poll_interval_seconds

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Access-Token": api_key, "Accept": "application/json"}

    # ------------------------------------------------------------------------------------------------ requests

    def submit(self, queries: Sequence[PersonQuery]) -> str:
        if not queries:
            raise ProviderError(NAME, "bad_request", "no records to submit", retryable=False)
        if len(queries) > MAX_RECORDS:
            raise ProviderError(
                NAME, "bad_request", f"{len(queries)} records, at most {MAX_RECORDS} per request", retryable=False
            )
        body = {"data": [self._record(q) for q in queries], "siren": self.siren, "language": self.language}
        # Not retried on a timeout: the batch may have been accepted, and a second submit would be paid twice.
        response = self.http.request("POST", "/v1/enrich/all", json=body, repeatable=False)
        payload = self._object(self.http.json(response))
        if payload.get("success") is not True or payload.get("error") is True:
            raise self._refusal(payload, "submit")
        request_id = payload.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(NAME, "bad_response", f"no request_id in {str(payload)[:200]}")
        return request_id

    def poll(self, request_id: str, queries: Sequence[PersonQuery]) -> list[Answer] | None:
        response = self.http.request("GET", f"/v1/enrich/all/{request_id}")
        payload = self._object(self.http.json(response))
        if payload.get("success") is not True:
            reason = str(payload.get("reason") or "")
            if NOT_READY in reason.casefold():
                return None
            raise self._refusal(payload, "poll")
        records = payload.get("data")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ProviderError(NAME, "bad_response", f"no list of records in {str(payload)[:200]}")
        matched = self._match(records, queries)
        return [self._answer(query, record) for query, record in zip(queries, matched, strict=True)]

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        """Submit, then wait ``poll_interval_seconds`` and poll until done, within the budget.

        Prefer ``submit``/``poll`` where a pending batch can be collected later (the waterfall does): this keeps an
        invocation waiting, and raises ``ProviderError(reason="budget")`` (the request id in its message) when the
        budget runs out first.
        """
        request_id = self.submit(queries)
        while True:
            if not self.budget.can_wait(self.poll_interval_seconds):
                raise ProviderError(
                    NAME,
                    "budget",
                    f"request {request_id} still pending; waiting {self.poll_interval_seconds:.1f}s more would go "
                    "past the invocation's time",
                )
            self.sleep(self.poll_interval_seconds)
            answers = self.poll(request_id, queries)
            if answers is not None:
                return answers

    # ------------------------------------------------------------------------------------------------ mapping

    @staticmethod
    def _record(query: PersonQuery) -> dict[str, Any]:
        """A query as a Dropcontact input record (only documented keys; unknown ones are reported as errors)."""
        record: dict[str, Any] = {
            "email": query.email,
            "first_name": query.first_name,
            "last_name": query.last_name,
            "company": query.company,
            "website": query.domain,
            "linkedin": query.linkedin,
            "job": query.title,
        }
        record = {k: v for k, v in record.items() if v}
        record["custom_fields"] = {KEY_FIELD: query.email}
        return record

    @staticmethod
    def _match(records: list[dict[str, Any]], queries: Sequence[PersonQuery]) -> list[dict[str, Any] | None]:
        """Each query's record: by our custom field, else by position (records come in input order), else by
        email. A query without a record is a miss."""
        keys = [q.email.casefold() for q in queries]
        found: dict[str, dict[str, Any]] = {}
        for record in records:
            custom = record.get("custom_fields")
            key = custom.get(KEY_FIELD) if isinstance(custom, dict) else None
            if isinstance(key, str):
                found.setdefault(key.casefold(), record)
        if len(found) < len(keys) and len(records) == len(queries):
            for key, record in zip(keys, records, strict=True):
                found.setdefault(key, record)
        if len(found) < len(keys):
            for record in records:
                for email in _emails(record):
                    found.setdefault(email.casefold(), record)
        return [found.get(key) for key in keys]

    def _answer(self, query: PersonQuery, record: Mapping[str, Any] | None) -> Answer:
        if not record:
            return Answer.miss(Kind.PERSON, query.email)
        fields: dict[str, Any] = {}
        field_confidence: dict[str, float] = {}
        for name in ("first_name", "last_name"):
            value = _text(record.get(name))
            if value:
                fields[name] = value
        title = _text(record.get("job"))
        if title:
            fields["title"] = title
        linkedin = linkedin_profile(_text(record.get("linkedin")))
        if linkedin:
            fields["linkedin"] = linkedin
        mobile, phone = _text(record.get("mobile_phone")), _text(record.get("phone"))
        if mobile:
            fields["phone"] = mobile
        elif phone:
            fields["phone"] = phone
            field_confidence["phone"] = COMPANY_PHONE_CONFIDENCE
        status = self._status_of(query.email, record)
        if status:
            fields["email_status"] = status
        if not self._useful(query, fields):
            return Answer.miss(Kind.PERSON, query.email)
        return Answer(Kind.PERSON, query.email, True, fields, field_confidence=field_confidence)

    @staticmethod
    def _status_of(email: str, record: Mapping[str, Any]) -> str | None:
        """The qualification of the address we asked about (Dropcontact may list other addresses it found)."""
        entries = record.get("email")
        if not isinstance(entries, list):
            return None
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("email") or "").casefold() == email.casefold():
                return email_status(entry.get("qualification"))
        return None

    @staticmethod
    def _useful(query: PersonQuery, fields: Mapping[str, Any]) -> bool:
        """Found only when the record says something we did not send (a cleaned echo of our input is a miss)."""
        sent = {"first_name": query.first_name, "last_name": query.last_name, "title": query.title}
        sent["linkedin"] = linkedin_profile(query.linkedin)
        return any(
            name not in sent or sent[name] is None or comparable(name, value) != comparable(name, sent[name])
            for name, value in fields.items()
        )

    # ------------------------------------------------------------------------------------------------ errors

    @staticmethod
    def _object(payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ProviderError(NAME, "bad_response", f"expected a JSON object, got {str(payload)[:200]}")
        return payload

    @staticmethod
    def _refusal(payload: Mapping[str, Any], step: str) -> ProviderError:
        """A ``200`` with ``success: false``: Dropcontact puts the message in ``reason`` (some errors in ``detail``)."""
        reason = str(payload.get("reason") or payload.get("detail") or payload)[:300]
        lowered = reason.casefold()
        if any(word in lowered for word in ("token", "api key", "apikey", "unauthori", "forbidden")):
            return ProviderError(NAME, "auth", f"{step}: {reason}", retryable=False)
        if "credit" in lowered:
            return ProviderError(NAME, "quota", f"{step}: {reason}", retryable=False)
        if step == "submit":
            return ProviderError(NAME, "bad_request", f"{step}: {reason}", retryable=False)
        return ProviderError(NAME, "bad_response", f"{step}: {reason}")


def _emails(record: Mapping[str, Any]) -> list[str]:
    entries = record.get("email")
    if isinstance(entries, str):
        return [entries]
    if not isinstance(entries, list):
        return []
    return [str(e["email"]) for e in entries if isinstance(e, dict) and e.get("email")]
