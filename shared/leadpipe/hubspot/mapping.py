"""What leadpipe writes to HubSpot: the field -> property mapping, the overwrite policy per property, and the
``leadpipe`` property group with its ``leadpipe_*`` properties.

Overwrite policies (per property, configurable per workspace):

- ``fill_empty`` (default for HubSpot's standard properties): write only when HubSpot has no value;
- ``ours`` (default for the ``leadpipe_*`` properties, a choice for standard ones): write when HubSpot's value is
  empty or is exactly what leadpipe wrote last, so a person's edit is never overwritten;
- ``always``: write whatever HubSpot has.

Nothing is written when the value would not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from leadpipe.enrichment.fields import COMPANY_FIELDS, PERSON_FIELDS
from leadpipe.models import Contact, iso

Policy = Literal["fill_empty", "ours", "always"]
GROUP = "leadpipe"
GROUP_LABEL = "leadpipe enrichment"
VALUE_CONFIDENCE = 0.6  # an enriched value below this confidence is not written


COMPUTED_SOURCES: dict[str, str] = {
    "quality": "the quality score, 0-1",
    "confidence": "the mean confidence of the key fields present, 0-1",
    "sources": "the providers that gave a value, ';'-separated",
    "enriched_at": "when the contact was last enriched",
    "icp_fit": "the ideal-customer-profile fit score, 0-1, learned from won and lost deals",
}
CONTACT_SOURCES = ("full_name", "company", "website", "domain")  # imported fields that are not enrichment fields
CUSTOM_PREFIX = "custom."  # custom.<key>: a CSV column kept as a custom field (column "Lead Source": lead_source)
SOURCES = frozenset({*PERSON_FIELDS, *COMPANY_FIELDS, *CONTACT_SOURCES, *COMPUTED_SOURCES})


class PropertyMapping(BaseModel):
    source: str = Field(
        description="a leadpipe field (first_name, title, company_name, ...), a computed one (quality, confidence, "
        "sources, enriched_at), or custom.<key> for a custom CSV column (as the contact's custom shows it)"
    )
    property: str = Field(min_length=1, max_length=100, description="the HubSpot contact property's internal name")
    policy: Policy = Field(description="default: fill_empty for standard properties, ours for leadpipe_* ones")

    @model_validator(mode="before")
    @classmethod
    def _default_policy(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("policy") is None:
            prop = str(data.get("property", ""))
            return {**data, "policy": "ours" if prop.startswith("leadpipe_") else "fill_empty"}
        return data

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source in SOURCES or (source.startswith(CUSTOM_PREFIX) and len(source) > len(CUSTOM_PREFIX)):
            return source
        known = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown leadpipe field {source!r}: use one of {known}, or custom.<key>")


def _m(source: str, prop: str, policy: Policy | None = None) -> PropertyMapping:
    return PropertyMapping.model_validate({"source": source, "property": prop, "policy": policy})


DEFAULT_MAPPING: tuple[PropertyMapping, ...] = (
    _m("first_name", "firstname"),
    _m("last_name", "lastname"),
    _m("title", "jobtitle"),
    _m("phone", "phone"),
    _m("company", "company"),
    _m("website", "website"),
    _m("city", "city"),
    _m("country", "country"),
    _m("industry", "industry"),
    _m("quality", "leadpipe_quality_score"),
    _m("confidence", "leadpipe_confidence"),
    _m("sources", "leadpipe_sources"),
    _m("enriched_at", "leadpipe_enriched_at"),
    _m("seniority", "leadpipe_seniority"),
    _m("department", "leadpipe_department"),
    _m("employee_range", "leadpipe_employee_range"),
    _m("email_status", "leadpipe_email_status"),
    _m("linkedin", "leadpipe_linkedin_url"),
    _m("icp_fit", "leadpipe_icp_fit"),
)

# The properties leadpipe creates (idempotently) in its own group on the first sync.
LEADPIPE_PROPERTIES: tuple[dict[str, Any], ...] = (
    {
        "name": "leadpipe_quality_score",
        "label": "leadpipe quality score",
        "type": "number",
        "fieldType": "number",
        "description": "0-1: weighted completeness x confidence of the key fields",
    },
    {
        "name": "leadpipe_confidence",
        "label": "leadpipe confidence",
        "type": "number",
        "fieldType": "number",
        "description": "mean confidence of the enriched key fields, 0-1",
    },
    {
        "name": "leadpipe_sources",
        "label": "leadpipe sources",
        "type": "string",
        "fieldType": "text",
        "description": "providers whose answers were used",
    },
    {"name": "leadpipe_enriched_at", "label": "leadpipe enriched at", "type": "datetime", "fieldType": "date"},
    {"name": "leadpipe_seniority", "label": "leadpipe seniority", "type": "string", "fieldType": "text"},
    {"name": "leadpipe_department", "label": "leadpipe department", "type": "string", "fieldType": "text"},
    {"name": "leadpipe_employee_range", "label": "leadpipe employee range", "type": "string", "fieldType": "text"},
    {"name": "leadpipe_email_status", "label": "leadpipe email status", "type": "string", "fieldType": "text"},
    {"name": "leadpipe_linkedin_url", "label": "leadpipe LinkedIn URL", "type": "string", "fieldType": "text"},
    {
        "name": "leadpipe_icp_fit",
        "label": "leadpipe ICP fit",
        "type": "number",
        "fieldType": "number",
        "description": "0-1: how closely the contact matches the won deals' profile (leadpipe's closed-deal learning)",
    },
)
LEADPIPE_PROPERTY_NAMES = frozenset(p["name"] for p in LEADPIPE_PROPERTIES)

# The companies leadpipe creates carry their domain in this unique property, and are created with a batch/upsert by
# it: a create repeated after a timeout, a crash or a redelivery updates the company it already made instead of
# making a second one (a plain batch/create is not idempotent, and search lags writes, so a search cannot tell).
COMPANY_KEY = "leadpipe_company_key"
COMPANY_KEY_PROPERTY: dict[str, Any] = {
    "name": COMPANY_KEY,
    "label": "leadpipe company key",
    "type": "string",
    "fieldType": "text",
    "hasUniqueValue": True,
    "description": "the domain of a company leadpipe created (unique: leadpipe's creates are idempotent)",
}
KEY_FIELDS = ("email_status", "first_name", "last_name", "title", "company_name", "industry", "employee_range")


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def value_of(contact: Contact, source: str) -> str | None:
    """The value leadpipe would write for a mapped source field, as HubSpot's string form (or None)."""
    fields = contact.enrichment
    if source == "quality":
        return _text(contact.quality)
    if source == "confidence":
        known = [fields[f].confidence for f in KEY_FIELDS if f in fields]
        return _text(round(sum(known) / len(known), 4)) if known else None
    if source == "sources":
        providers = sorted({v.provider for v in fields.values() if v.provider != "import"})
        return ";".join(providers) or None
    if source == "enriched_at":
        return _text(contact.enrichment_meta.enriched_at) if contact.enrichment_meta else None
    if source == "icp_fit":
        return _text(round(contact.icp.score, 3)) if contact.icp else None
    if source.startswith(CUSTOM_PREFIX):
        return _text(contact.custom.get(source.removeprefix(CUSTOM_PREFIX)))
    enriched_name = {"company": "company_name"}.get(source, source)
    enriched = fields.get(enriched_name)
    if enriched is not None and enriched.confidence >= VALUE_CONFIDENCE and enriched.value not in (None, ""):
        return _text(enriched.value)
    own = getattr(contact, source, None) if source in Contact.model_fields else None
    return _text(own)


def decide(
    contact: Contact,
    mapping: Sequence[PropertyMapping],
    current: Mapping[str, Any] | None,
    last_written: Mapping[str, str],
) -> dict[str, str]:
    """The properties to write for one contact: mapped values allowed by their policy and different from HubSpot's."""
    changes: dict[str, str] = {}
    for entry in mapping:
        value = value_of(contact, entry.source)
        if value is None:
            continue
        theirs = (current or {}).get(entry.property)
        theirs = None if theirs in (None, "") else str(theirs)
        if theirs == value:
            continue
        policy = entry.policy
        if policy == "fill_empty" and theirs is not None:
            continue
        if policy == "ours" and theirs is not None and theirs != last_written.get(entry.property):
            continue  # a person (or another tool) changed it since leadpipe wrote it: theirs wins
        changes[entry.property] = value
    return changes
