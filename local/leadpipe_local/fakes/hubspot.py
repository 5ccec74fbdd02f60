"""A local HubSpot (CRM v3 objects, search, properties, pipelines, associations v4, webhooks) faithful enough that
HubSpot's own Python client (``hubspot-api-client``) works against it. Development and tests only.

Endpoints (``{type}`` is ``contacts``, ``companies``, ``deals`` or ``notes``; ``contact``/``0-1`` and friends are
accepted too):

- ``GET|POST /crm/v3/objects/{type}``, ``GET|PATCH|DELETE /crm/v3/objects/{type}/{id}`` (``idProperty``,
  ``properties``, ``associations``, ``archived``); ``POST /crm/v3/objects/{type}/batch/{create,read,update,upsert,
  archive}``; ``POST /crm/v3/objects/{type}/search``; ``POST /crm/v3/objects/contacts/gdpr-delete``.
- ``GET|POST /crm/v3/properties/{type}``, ``GET|PATCH|DELETE /crm/v3/properties/{type}/{name}``,
  ``POST /crm/v3/properties/{type}/batch/{create,read}``, ``GET|POST /crm/v3/properties/{type}/groups``,
  ``GET /crm/v3/properties/{type}/groups/{name}``.
- ``GET /crm/v3/pipelines/deals``, ``GET /crm/v3/pipelines/deals/{pipelineId}``, ``GET .../{pipelineId}/stages``,
  ``GET .../stages/{stageId}``: every portal has the default "Sales Pipeline" (``default``) with HubSpot's default
  stage ids (``appointmentscheduled`` ... ``closedwon``, ``closedlost``); stage ``metadata`` is
  ``{"isClosed": "true"|"false", "probability": "0.2"}``, strings, as HubSpot sends them.
- ``POST /crm/v4/associations/{from}/{to}/batch/{associate/default,create,read,archive}``,
  ``GET /crm/v4/objects/{type}/{id}/associations/{toType}``, ``PUT /crm/v4/objects/{type}/{id}/associations/
  {toType}/{toId}`` (labelled), ``PUT .../associations/default/{toType}/{toId}``, ``DELETE .../{toType}/{toId}``.
- Without auth, for demos and tests: ``POST /_fake/reset``, ``GET /_fake/state``, ``GET /_fake/webhooks``,
  ``PATCH /_fake/contacts/{id}`` (an edit "in HubSpot's UI": webhooks with ``changeSource: CRM_UI``, no rate limit),
  ``POST /_fake/config`` (burst_limit, burst_window, daily_limit, search_per_second, search_cap, search_lag,
  webhook_url, client_secret).

Behaviour, as documented by HubSpot (developers.hubspot.com: api/usage-details, crm/search, crm/contacts,
api-reference/error-handling, crm/associations v4, webhooks, validating-requests) and as observed by others where the
docs are silent (see the module's tests and the report that came with it):

- ``Authorization: Bearer <token>``; missing or wrong: ``401`` ``INVALID_AUTHENTICATION``.
- Per token, a rolling ``burst_window`` of ``burst_limit`` calls, else ``429`` ``TEN_SECONDLY_ROLLING``; a daily
  budget (UTC days of ``clock``), else ``429`` ``DAILY``; every non-search answer carries ``X-HubSpot-RateLimit-*``.
  Search has its own ``search_per_second`` limit ("You have reached your secondly limit.") and sends none of them.
- Batch writes take at most 100 inputs; duplicate ids answer ``400`` "Duplicate IDs found in batch input". A record
  that fails validation (``INVALID_EMAIL``, ``PROPERTY_DOESNT_EXIST``...) or conflicts (an existing email) fails the
  whole batch (``400``/``409``, nothing written) unless its input carries an ``objectWriteTraceId``: then the others
  are written and the answer is ``207`` with ``numErrors`` and ``errors[]`` naming the trace id. Records that do not
  exist (update, read) are always reported in a ``207``.
- ``idProperty``: ``email`` for contact upserts, reads and single updates (HubSpot refuses it for contact batch
  updates), ``hs_object_id``, or a custom property created with ``hasUniqueValue``; anything else answers ``400``
  "Unable to perform update/upsert by non-unique ...".
- Search: ≤5 filter groups, ≤6 filters a group, ≤18 filters, ≤1 sort, ``limit`` ≤200, no paging past
  ``search_cap`` (``400``); results lag writes by ``search_lag`` seconds.
- Deals: a deal without ``pipeline`` goes to the default pipeline; its ``dealstage`` must be a stage of its pipeline;
  ``hs_is_closed``, ``hs_is_closed_won`` and ``hs_is_closed_lost`` (read-only) follow the stage's metadata: closed
  at probability 1.0 is won, at 0.0 lost. Default association types: deal→contact 3 (contact→deal 4),
  deal→company 341 (company→deal 342), Primary deal→company 5 (6), note→deal 214.
- v4 batch read: ≤1,000 ids; each record's associations come ``association_page_size`` (500) at a time, with
  ``paging.next.after`` on that record's result when there are more, to be sent back as the input's ``after``.
- Webhooks for contacts (creation, one propertyChange per changed property, deletion, privacyDeletion) go to
  ``webhook_url`` from a background thread, ≤100 events a request, signed with v3 (``X-HubSpot-Signature-v3``) and
  retried with a growing ``attemptNumber``; ``delivered`` logs what was sent and answered.

Where HubSpot's docs say nothing, the fake picks the stricter reading (and says so in its messages' wording, which is
its own): a filter or sort on an unknown property is a ``400``; a batch read of ids with no associations is a ``207``;
``NEQ``/``NOT_IN``/``NOT_CONTAINS_TOKEN`` also match records without the property; search paging is refused as soon
as ``after + limit`` passes ``search_cap``.

Python side: ``reset()``, ``counts()``, ``get(type, id)``, ``add_record(type, properties, associations=...)``,
``add_pipeline(label, stages)`` (custom stage ids, labels, probabilities), ``add_deal(name, stage=..., ...)``,
``events`` (every webhook event raised), ``delivered``,
``wait_for_webhooks(timeout)``, ``api_calls``/``throttled``/``throttled_by_policy``, ``requests_per_second()``,
``peak_requests_per_second()``, ``rate_limit_fault()`` (the documented ``429`` as a ``Fault``), and the inherited
``inject(Fault(...))``. Tunables: ``webhook_delay``, ``webhook_retry_delays``, ``webhook_timeout``,
``creation_property_events`` (propertyChange events for the values a record is created with), ``ui_user_id``.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import functools
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from leadpipe_local.fakes.base import FakeServer, Fault, Handler, Reply, Request, route

MAX_BATCH = 100
MAX_BATCH_WITH_HISTORY = 50
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
DEFAULT_SEARCH_LIMIT = 10
MAX_SEARCH_LIMIT = 200
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_SORTS = 1
DEFAULT_ASSOCIATION_LIMIT = 500
MAX_ASSOCIATION_READ = 1000  # ids in one v4 batch read (HubSpot's limit since 2025-02-10)
MAX_WEBHOOK_EVENTS = 100
SIGNATURE_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
PROPERTY_TYPES = frozenset({"string", "number", "date", "datetime", "bool", "enumeration", "phone_number"})
FIELD_TYPES = frozenset(
    {
        "text",
        "textarea",
        "html",
        "number",
        "select",
        "radio",
        "checkbox",
        "booleancheckbox",
        "date",
        "file",
        "phonenumber",
        "calculation_equation",
    }
)
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details "
    "at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
WEBHOOK_USER_AGENT = (
    "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio-http-client) "
    "- WebhooksExecutorDaemon-executor"
)


# ------------------------------------------------------------------------------------------------ object types


@dataclass(frozen=True)
class ObjectType:
    """A CRM object type: its path name, type id and the system properties HubSpot maintains on it. Adding ``deals``
    is one more entry here, its default properties in ``DEFAULT_PROPERTIES`` and its association types."""

    name: str  # the path segment: "contacts"
    type_id: str  # "0-1"
    singular: str  # "contact": webhook subscription prefix and v3 association type names
    created_property: str
    modified_property: str
    default_properties: tuple[str, ...]  # returned when ``properties`` is not asked for
    group: str  # the default property group
    query_properties: tuple[str, ...] = ()  # searched by a search request's free-text ``query``
    email_property: str | None = None  # validated as an email, lower-cased, unique within the type
    read_id_properties: frozenset[str] = frozenset()  # idProperty for GET, batch read, PATCH, upsert
    update_id_properties: frozenset[str] = frozenset()  # idProperty accepted by batch/update
    required_properties: tuple[str, ...] = ()
    webhooks: bool = False

    @property
    def label(self) -> str:
        return self.singular.upper()

    @property
    def system_properties(self) -> tuple[str, str, str]:
        return (self.created_property, "hs_object_id", self.modified_property)


OBJECT_TYPES: dict[str, ObjectType] = {
    "contacts": ObjectType(
        name="contacts",
        type_id="0-1",
        singular="contact",
        created_property="createdate",
        modified_property="lastmodifieddate",
        default_properties=("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        group="contactinformation",
        query_properties=("firstname", "lastname", "email", "phone", "mobilephone", "company"),
        email_property="email",
        read_id_properties=frozenset({"email"}),
        webhooks=True,
    ),
    "companies": ObjectType(
        name="companies",
        type_id="0-2",
        singular="company",
        created_property="createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        group="companyinformation",
        query_properties=("name", "domain", "website", "phone"),
    ),
    "deals": ObjectType(
        name="deals",
        type_id="0-3",
        singular="deal",
        created_property="createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=(
            "amount",
            "closedate",
            "createdate",
            "dealname",
            "dealstage",
            "hs_lastmodifieddate",
            "hs_object_id",
            "pipeline",
        ),
        group="dealinformation",
        query_properties=("dealname",),
    ),
    "notes": ObjectType(
        name="notes",
        type_id="0-46",
        singular="note",
        created_property="hs_createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        group="noteinformation",
        required_properties=("hs_timestamp",),
    ),
}
TYPE_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    TYPE_ALIASES.update({_t.name: _t.name, _t.singular: _t.name, _t.type_id: _t.name})

# (name, label, type, fieldType, group or None for the type's default group, read-only, options)
_P = tuple[str, str, str, str, str | None, bool, tuple[str, ...]]
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
DEFAULT_PROPERTIES: dict[str, tuple[_P, ...]] = {
    "contacts": (
        ("email", "Email", "string", "text", None, False, ()),
        ("firstname", "First Name", "string", "text", None, False, ()),
        ("lastname", "Last Name", "string", "text", None, False, ()),
        ("jobtitle", "Job Title", "string", "text", None, False, ()),
        ("phone", "Phone Number", "string", "phonenumber", None, False, ()),
        ("mobilephone", "Mobile Phone Number", "string", "phonenumber", None, False, ()),
        ("company", "Company Name", "string", "text", None, False, ()),
        ("website", "Website URL", "string", "text", None, False, ()),
        ("address", "Street Address", "string", "text", None, False, ()),
        ("city", "City", "string", "text", None, False, ()),
        ("state", "State/Region", "string", "text", None, False, ()),
        ("zip", "Postal Code", "string", "text", None, False, ()),
        ("country", "Country/Region", "string", "text", None, False, ()),
        ("industry", "Industry", "string", "text", None, False, ()),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", None, False, LIFECYCLE_STAGES),
        ("hs_object_id", "Record ID", "number", "number", None, True, ()),
        ("createdate", "Create Date", "datetime", "date", None, False, ()),
        ("lastmodifieddate", "Last Modified Date", "datetime", "date", None, True, ()),
    ),
    "companies": (
        ("name", "Company name", "string", "text", None, False, ()),
        ("domain", "Company Domain Name", "string", "text", None, False, ()),
        ("industry", "Industry", "string", "text", None, False, ()),
        ("numberofemployees", "Number of Employees", "number", "number", None, False, ()),
        ("phone", "Phone Number", "string", "phonenumber", None, False, ()),
        ("city", "City", "string", "text", None, False, ()),
        ("state", "State/Region", "string", "text", None, False, ()),
        ("country", "Country/Region", "string", "text", None, False, ()),
        ("website", "Website URL", "string", "text", None, False, ()),
        ("description", "Description", "string", "textarea", None, False, ()),
        ("linkedin_company_page", "LinkedIn Company Page", "string", "text", "social_media_information", False, ()),
        ("hs_object_id", "Record ID", "number", "number", None, True, ()),
        ("createdate", "Create Date", "datetime", "date", None, False, ()),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", None, True, ()),
    ),
    "deals": (
        ("dealname", "Deal Name", "string", "text", None, False, ()),
        ("amount", "Amount", "number", "number", None, False, ()),
        # options: the pipelines and their stages (kept in step with them, see ``_sync_pipeline_options``)
        ("pipeline", "Pipeline", "enumeration", "select", None, False, ()),
        ("dealstage", "Deal Stage", "enumeration", "radio", None, False, ()),
        ("closedate", "Close Date", "datetime", "date", None, False, ()),
        ("description", "Deal Description", "string", "textarea", None, False, ()),
        # calculated by HubSpot from the stage's metadata, read-only
        ("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", None, True, ()),
        ("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", None, True, ()),
        ("hs_is_closed_lost", "Is closed lost", "bool", "booleancheckbox", None, True, ()),
        ("hs_object_id", "Record ID", "number", "number", None, True, ()),
        ("createdate", "Create Date", "datetime", "date", None, False, ()),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", None, True, ()),
    ),
    "notes": (
        ("hs_note_body", "Note body", "string", "html", None, False, ()),
        ("hs_timestamp", "Activity date", "datetime", "date", None, False, ()),
        ("hs_object_id", "Record ID", "number", "number", None, True, ()),
        ("hs_createdate", "Create date", "datetime", "date", None, True, ()),
        ("hs_lastmodifieddate", "Last modified date", "datetime", "date", None, True, ()),
    ),
}
DEFAULT_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (("contactinformation", "Contact information"),),
    "companies": (
        ("companyinformation", "Company information"),
        ("social_media_information", "Social media information"),
    ),
    "deals": (("dealinformation", "Deal information"),),
    "notes": (("noteinformation", "Note information"),),
}


@dataclass(frozen=True)
class AssociationType:
    from_type: str
    to_type: str
    type_id: int
    inverse_id: int
    label: str | None  # None: the unlabelled (default) type
    v3_name: str  # the v3 name in ``?associations=``: "contact_to_company_unlabeled"
    default: bool = False


ASSOCIATION_TYPES: tuple[AssociationType, ...] = (
    AssociationType("contacts", "companies", 279, 280, None, "contact_to_company_unlabeled", default=True),
    AssociationType("contacts", "companies", 1, 2, "Primary", "contact_to_company"),
    AssociationType("companies", "contacts", 280, 279, None, "company_to_contact_unlabeled", default=True),
    AssociationType("companies", "contacts", 2, 1, "Primary", "company_to_contact"),
    AssociationType("notes", "contacts", 202, 201, None, "note_to_contact", default=True),
    AssociationType("contacts", "notes", 201, 202, None, "contact_to_note", default=True),
    AssociationType("notes", "companies", 190, 189, None, "note_to_company", default=True),
    AssociationType("companies", "notes", 189, 190, None, "company_to_note", default=True),
    AssociationType("deals", "contacts", 3, 4, None, "deal_to_contact", default=True),
    AssociationType("contacts", "deals", 4, 3, None, "contact_to_deal", default=True),
    AssociationType("deals", "companies", 341, 342, None, "deal_to_company_unlabeled", default=True),
    AssociationType("deals", "companies", 5, 6, "Primary", "deal_to_company"),
    AssociationType("companies", "deals", 342, 341, None, "company_to_deal_unlabeled", default=True),
    AssociationType("companies", "deals", 6, 5, "Primary", "company_to_deal"),
    AssociationType("notes", "deals", 214, 213, None, "note_to_deal", default=True),
    AssociationType("deals", "notes", 213, 214, None, "deal_to_note", default=True),
)
ASSOCIATIONS_BY_ID: dict[tuple[str, int], AssociationType] = {(a.from_type, a.type_id): a for a in ASSOCIATION_TYPES}


# ------------------------------------------------------------------------------------------------ pipelines

PIPELINE_OBJECT_TYPES = frozenset({"deals"})  # the object types of the fake that have pipelines
DEFAULT_PIPELINE_ID = "default"
DEFAULT_PIPELINE_LABEL = "Sales Pipeline"
MAX_PIPELINE_STAGES = 100  # deal pipelines (HubSpot's pipelines guide)


@dataclass(frozen=True)
class StageSpec:
    """A deal stage to seed: its id and label, its deal probability (0.0 to 1.0, as HubSpot's pipeline settings
    take it; None leaves it out of the stage's metadata), whether it closes the deal, and, for a closed stage whose
    probability is neither 1.0 (won) nor 0.0 (lost), what ``hs_is_closed_won`` is to say of its deals."""

    id: str
    label: str
    probability: float | None
    closed: bool = False
    won: bool | None = None


# HubSpot's default deal pipeline, as its (legacy) deal pipelines documentation lists it
DEFAULT_DEAL_STAGES: tuple[StageSpec, ...] = (
    StageSpec("appointmentscheduled", "Appointment Scheduled", 0.2),
    StageSpec("qualifiedtobuy", "Qualified To Buy", 0.4),
    StageSpec("presentationscheduled", "Presentation Scheduled", 0.6),
    StageSpec("decisionmakerboughtin", "Decision Maker Bought-In", 0.8),
    StageSpec("contractsent", "Contract Sent", 0.9),
    StageSpec("closedwon", "Closed Won", 1.0, closed=True),
    StageSpec("closedlost", "Closed Lost", 0.0, closed=True),
)


@dataclass
class PipelineStage:
    id: str
    label: str
    display_order: int
    metadata: dict[str, str]  # deals: {"isClosed": "true"|"false", "probability": "0.2"}: strings, as HubSpot sends
    created_at: float
    updated_at: float
    won_override: bool | None = None  # StageSpec.won
    archived: bool = False

    @property
    def closed(self) -> bool:
        return self.metadata.get("isClosed", "false").lower() == "true"

    def outcome(self) -> tuple[bool, bool, bool]:
        """``hs_is_closed``, ``hs_is_closed_won``, ``hs_is_closed_lost`` of a deal in this stage: closed at a
        probability of 1.0 is won, at 0.0 lost."""
        if not self.closed:
            return False, False, False
        if self.won_override is not None:
            return True, self.won_override, not self.won_override
        try:
            probability = float(self.metadata.get("probability", ""))
        except ValueError:
            return True, False, False
        return True, probability == 1.0, probability == 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "archived": self.archived,
            "createdAt": iso(self.created_at),
            "displayOrder": self.display_order,
            "id": self.id,
            "label": self.label,
            "metadata": dict(self.metadata),
            "updatedAt": iso(self.updated_at),
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    stages: list[PipelineStage]
    created_at: float
    updated_at: float
    archived: bool = False

    def stage(self, stage_id: str) -> PipelineStage | None:
        return next((s for s in self.stages if s.id == stage_id and not s.archived), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "archived": self.archived,
            "createdAt": iso(self.created_at),
            "displayOrder": self.display_order,
            "id": self.id,
            "label": self.label,
            "stages": [s.to_json() for s in sorted(self.stages, key=lambda s: s.display_order) if not s.archived],
            "updatedAt": iso(self.updated_at),
        }


# ------------------------------------------------------------------------------------------------ records


@dataclass
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    display_order: int = -1
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    hubspot_defined: bool = False
    read_only: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "updatedAt": iso(self.updated_at),
            "createdAt": iso(self.created_at),
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [dict(o) for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": self.form_field,
            "archived": self.archived,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body


@dataclass
class CrmObject:
    id: str
    type: str
    properties: dict[str, str]
    created_at: float
    updated_at: float
    archived: bool = False
    archived_at: float | None = None
    # what search sees: (visible from, a copy of the properties, or None once archived), oldest first
    index: list[tuple[float, dict[str, str] | None]] = field(default_factory=list)


class Refusal(Exception):
    """Ends a request early with an error answer (raised deep inside a handler, caught by the API wrapper)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class _Planned:
    """One batch input after validation: what to write, or why it failed."""

    index: int
    trace_id: str | None
    obj: CrmObject | None = None  # an existing record (update, upsert) or None (create)
    properties: dict[str, str] = field(default_factory=dict)
    associations: list[tuple[AssociationType, str]] = field(default_factory=list)
    failure: dict[str, Any] | None = None  # {"status", "category", "message", "details"}
    missing_id: str | None = None  # update of a record that does not exist


# ------------------------------------------------------------------------------------------------ helpers


def iso(epoch: float) -> str:
    """HubSpot's timestamps: ``2019-10-30T03:30:17.883Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(value: str) -> int | None:
    """A datetime property value (``1572480000000`` or ISO 8601, ``Z`` or offset) or a date as epoch ms."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def signature_v3(client_secret: str, method: str, url: str, body: str, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3``: base64(HMAC-SHA256(client secret, method + URI + body + timestamp))."""
    source = f"{method}{url}{body}{timestamp}".encode()
    return base64.b64encode(hmac.new(client_secret.encode(), source, hashlib.sha256).digest()).decode()


def signed_uri(url: str) -> str:
    """The URI as v3 signs it: the full URL with ``%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`` decoded."""
    for encoded, char in SIGNATURE_DECODED.items():
        url = re.sub(encoded, char, url, flags=re.IGNORECASE)
    return url


def _as_value(raw: Any) -> str:
    """HubSpot stores every property value as a string."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float):
        return repr(raw) if isinstance(raw, float) and not raw.is_integer() else str(int(raw))
    return json.dumps(raw)


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w]+", text) if t]


def _int_arg(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return None


def api(*, search: bool = False) -> Callable[[Handler], Handler]:
    """Marks a HubSpot API route: the token is checked, the call counted against the rate limits, ``Refusal`` turned
    into its answer, and the rate-limit headers added (not on search, as HubSpot does)."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def handler(fake: FakeHubSpot, request: Request) -> Reply:
            return fake._serve_api(request, lambda: fn(fake, request), search=search)

        return handler

    return wrap


# ------------------------------------------------------------------------------------------------ the fake


class FakeHubSpot(FakeServer):
    name = "hubspot"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = "pat-local-fake",  # noqa: S107 - the fake's own credentials
        portal_id: int = 62515,
        app_id: int = 9001,
        client_secret: str = "fake-client-secret",  # noqa: S107
        burst_limit: int = 100,
        burst_window: float = 10.0,
        daily_limit: int = 250_000,
        search_per_second: int = 5,
        search_cap: int = 10_000,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.time,
        search_lag: float = 0.0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.token = token
        self.portal_id = portal_id
        self.app_id = app_id
        self.clock = clock
        self.ui_user_id = 76023669  # ``sourceId: "userId:..."`` of edits made through /_fake/contacts
        self._initial_config: dict[str, Any] = {
            "burst_limit": burst_limit,
            "burst_window": burst_window,
            "daily_limit": daily_limit,
            "search_per_second": search_per_second,
            "search_cap": search_cap,
            "search_lag": search_lag,
            "webhook_url": webhook_url,
            "client_secret": client_secret,
        }
        self.burst_limit = burst_limit
        self.burst_window = burst_window
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self.search_cap = search_cap
        self.search_lag = search_lag
        self.webhook_url = webhook_url
        self.client_secret = client_secret
        self._tunables()

        self._mutex = threading.RLock()
        self._wake = threading.Condition(self._mutex)
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._generation = 0
        self._in_flight = 0
        self._init_state()

    # ------------------------------------------------------------------------------------------------- state

    def _tunables(self) -> None:
        # webhook delivery: a short wait gathers the events of one call (and lets its answer go out first);
        # then up to ``len(webhook_retry_delays)`` retries, ``attemptNumber`` 1, 2, ...
        self.webhook_delay = 0.2
        self.webhook_retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
        self.webhook_timeout = 5.0  # HubSpot counts a slower answer as a failure
        self.creation_property_events = True  # propertyChange events for the values a record is created with
        # associations of one record a v4 batch read answers before its ``paging.next.after`` (HubSpot's page size
        # there is not documented; 500 is the most its single-record read answers)
        self.association_page_size = DEFAULT_ASSOCIATION_LIMIT

    def _init_state(self) -> None:
        now = self.clock()
        self._objects: dict[str, dict[str, CrmObject]] = {name: {} for name in OBJECT_TYPES}
        self._emails: dict[str, dict[str, str]] = {name: {} for name in OBJECT_TYPES}  # live records by email
        self._properties: dict[str, dict[str, PropertyDef]] = {}
        self._groups: dict[str, dict[str, dict[str, Any]]] = {}
        for type_name, specs in DEFAULT_PROPERTIES.items():
            object_type = OBJECT_TYPES[type_name]
            self._properties[type_name] = {
                name: PropertyDef(
                    name=name,
                    label=label,
                    type=ptype,
                    field_type=ftype,
                    group_name=group or object_type.group,
                    options=[
                        {"label": v.title(), "value": v, "description": "", "displayOrder": i, "hidden": False}
                        for i, v in enumerate(options)
                    ],
                    display_order=position,
                    form_field=not read_only,
                    hubspot_defined=True,
                    read_only=read_only,
                    created_at=now,
                    updated_at=now,
                    has_unique_value=name == "hs_object_id",
                )
                for position, (name, label, ptype, ftype, group, read_only, options) in enumerate(specs)
            }
            self._groups[type_name] = {
                name: {"name": name, "label": label, "displayOrder": i, "archived": False}
                for i, (name, label) in enumerate(DEFAULT_GROUPS[type_name])
            }
        # (from type, from id, to type) -> {to id: {association type ids}}
        self._associations: dict[tuple[str, str, str], dict[str, set[int]]] = {}
        # object type -> pipeline id -> pipeline; every portal starts with its default deal pipeline
        self._pipelines: dict[str, dict[str, Pipeline]] = {name: {} for name in PIPELINE_OBJECT_TYPES}
        self._next_pipeline_id = 75_000_001
        self._add_pipeline("deals", DEFAULT_PIPELINE_LABEL, DEFAULT_DEAL_STAGES, pipeline_id=DEFAULT_PIPELINE_ID)
        self._next_id = 1
        self._next_event_id = 1
        self._subscriptions: dict[str, int] = {}
        # rate limits: accepted call times per token, daily counts, search call times
        self._burst: dict[str, deque[float]] = {}
        self._search_calls: dict[str, deque[float]] = {}
        self._daily: dict[str, tuple[int, int]] = {}  # token -> (UTC day, calls)
        self.api_calls = 0
        self.throttled = 0
        self.throttled_by_policy: Counter[str] = Counter()
        self._per_second: Counter[int] = Counter()
        # webhooks
        self.events: list[dict[str, Any]] = []  # every event raised, sent or not
        self.delivered: list[dict[str, Any]] = []  # every delivery attempt: what was sent and what came back
        self._pending: list[tuple[float, dict[str, Any]]] = []  # (due, event)
        self._retries: list[tuple[float, int, list[dict[str, Any]]]] = []  # (due, attempt, events)

    def reset(self) -> None:
        """Back to the state after construction (records, properties, counters, webhooks, request log, faults,
        config), so one running server can serve many tests."""
        with self._mutex:
            for name, value in self._initial_config.items():
                setattr(self, name, value)
            self._tunables()
            self._generation += 1
            self._init_state()
            self._wake.notify_all()
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.latency = 0.0

    def start(self) -> FakeHubSpot:
        super().start()
        with self._mutex:
            self._stopping = False
        self._worker = threading.Thread(target=self._deliver_forever, daemon=True, name="fake-hubspot-webhooks")
        self._worker.start()
        return self

    def stop(self) -> None:
        with self._mutex:
            self._stopping = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=self.webhook_timeout + 1)
            self._worker = None
        super().stop()

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._initial_config}

    def counts(self) -> dict[str, Any]:
        with self._mutex:
            return {
                **{name: sum(1 for o in objs.values() if not o.archived) for name, objs in self._objects.items()},
                "archived": sum(1 for objs in self._objects.values() for o in objs.values() if o.archived),
                "associations": sum(len(ids) for ids in self._associations.values()),
                "api_calls": self.api_calls,
                "throttled": self.throttled,
                "throttled_by_policy": dict(self.throttled_by_policy),
                "webhooks": {
                    "events": len(self.events),
                    "pending": len(self._pending) + sum(len(e) for _, _, e in self._retries),
                    "deliveries": len(self.delivered),
                    "delivered_events": sum(len(d["events"]) for d in self.delivered if d["ok"]),
                },
            }

    def requests_per_second(self, window: float = 1.0) -> float:
        """Accepted API calls a second over the last ``window`` seconds of ``clock``."""
        now = self.clock()
        with self._mutex:
            calls = sum(sum(1 for t in times if t > now - window) for times in self._burst.values())
        return calls / window

    def peak_requests_per_second(self) -> int:
        """The most accepted API calls in any one second of ``clock`` (whole seconds)."""
        with self._mutex:
            return max(self._per_second.values(), default=0)

    def get(self, type_name: str, object_id: str) -> dict[str, Any] | None:
        """A record's properties as stored (tests and demos), or None."""
        with self._mutex:
            obj = self._objects[TYPE_ALIASES[type_name]].get(str(object_id))
            return None if obj is None else dict(obj.properties)

    # ------------------------------------------------------------------------------------------------- seeding

    def add_pipeline(
        self,
        label: str,
        stages: Iterable[StageSpec | tuple[Any, ...]],
        *,
        pipeline_id: str | None = None,
        object_type: str = "deals",
    ) -> str:
        """A pipeline with the given stages, as a portal admin would set it up in HubSpot's settings (no API call,
        no rate limit). Stages are ``StageSpec`` or tuples of its fields: ``("9912345", "Signed", 1.0, True)``.
        Stage ids must be unique across the type's pipelines. Returns the pipeline id (numeric unless given)."""
        specs = [s if isinstance(s, StageSpec) else StageSpec(*s) for s in stages]
        with self._mutex:
            return self._add_pipeline(TYPE_ALIASES[object_type], label, specs, pipeline_id=pipeline_id)

    def _add_pipeline(
        self, type_name: str, label: str, specs: Iterable[StageSpec], *, pipeline_id: str | None = None
    ) -> str:
        if type_name not in PIPELINE_OBJECT_TYPES:
            raise ValueError(f"{type_name} have no pipelines in the fake")
        pipelines = self._pipelines[type_name]
        if pipeline_id is None:
            pipeline_id = str(self._next_pipeline_id)
            self._next_pipeline_id += 1
        if pipeline_id in pipelines:
            raise ValueError(f"pipeline {pipeline_id} exists")
        taken = {s.id for p in pipelines.values() for s in p.stages}
        now = self.clock()
        stages: list[PipelineStage] = []
        for position, spec in enumerate(specs):
            if not spec.id or spec.id in taken:
                raise ValueError(f"stage id {spec.id!r} is empty or already used")
            if spec.probability is not None and not 0.0 <= spec.probability <= 1.0:
                raise ValueError(f"stage {spec.id}: probability {spec.probability} is not between 0.0 and 1.0")
            taken.add(spec.id)
            metadata = {"isClosed": _as_value(spec.closed)}
            if spec.probability is not None:
                metadata["probability"] = repr(float(spec.probability))
            stages.append(PipelineStage(spec.id, spec.label, position, metadata, now, now, won_override=spec.won))
        if not stages or len(stages) > MAX_PIPELINE_STAGES:
            raise ValueError(f"a pipeline has 1 to {MAX_PIPELINE_STAGES} stages")
        pipelines[pipeline_id] = Pipeline(pipeline_id, label, len(pipelines), stages, now, now)
        self._sync_pipeline_options(type_name)
        return pipeline_id

    def _sync_pipeline_options(self, type_name: str) -> None:
        """The ``pipeline`` and ``dealstage`` properties are enumerations of the pipelines and their stages."""
        pipelines = sorted(self._pipelines[type_name].values(), key=lambda p: (p.display_order, p.label))
        live = [p for p in pipelines if not p.archived]
        definitions = self._properties[type_name]
        definitions["pipeline"].options = [
            {"label": p.label, "value": p.id, "description": "", "displayOrder": i, "hidden": False}
            for i, p in enumerate(live)
        ]
        stages = [s for p in live for s in sorted(p.stages, key=lambda s: s.display_order) if not s.archived]
        definitions["dealstage"].options = [
            {"label": s.label, "value": s.id, "description": "", "displayOrder": i, "hidden": False}
            for i, s in enumerate(stages)
        ]

    def add_record(
        self, type_name: str, properties: Mapping[str, Any], *, associations: Iterable[tuple[str, str, int]] = ()
    ) -> str:
        """A record created as through the API but without a call (no rate limit): its properties are validated as
        a create's are (``ValueError`` on failures); ``associations``: (to type, to id, association type id).
        Returns its id."""
        with self._mutex:
            object_type = OBJECT_TYPES[TYPE_ALIASES[type_name]]
            clean, errors = self._validate(object_type, properties, creating=True)
            if errors:
                raise ValueError(self._invalid_message(errors))
            if self._email_owner(object_type, clean.get(object_type.email_property or "", "")) is not None:
                raise ValueError(f"a {object_type.singular} with that email exists")
            links: list[tuple[AssociationType, str]] = []
            for to_name, to_id, type_id in associations:
                association = ASSOCIATIONS_BY_ID.get((object_type.name, type_id))
                target = self._objects[TYPE_ALIASES[to_name]].get(str(to_id))
                if association is None or association.to_type != TYPE_ALIASES[to_name]:
                    raise ValueError(f"{type_id} is not an association type from {object_type.name} to {to_name}")
                if target is None or target.archived:
                    raise ValueError(f"{to_name} {to_id} does not exist")
                links.append((association, str(to_id)))
            return self._create(object_type, clean, source="INTEGRATION", associations=links).id

    def add_deal(
        self,
        name: str,
        *,
        stage: str,
        amount: float | None = None,
        pipeline: str = DEFAULT_PIPELINE_ID,
        closed_at: datetime | None = None,
        contact_ids: Iterable[str] = (),
        company_ids: Iterable[str] = (),
        properties: Mapping[str, Any] | None = None,
    ) -> str:
        """A deal in ``pipeline`` at ``stage``, closed at ``closed_at`` (its ``closedate``), associated with contacts
        (type 3) and companies (type 341), without an API call. Returns its id."""
        values: dict[str, Any] = {"dealname": name, "pipeline": pipeline, "dealstage": stage, **(properties or {})}
        if amount is not None:
            values["amount"] = amount
        if closed_at is not None:
            moment = closed_at if closed_at.tzinfo is not None else closed_at.replace(tzinfo=UTC)
            values["closedate"] = int(moment.timestamp() * 1000)
        links = [("contacts", str(i), 3) for i in contact_ids] + [("companies", str(i), 341) for i in company_ids]
        return self.add_record("deals", values, associations=links)

    def rate_limit_fault(self, times: int = 1, policy: str = "TEN_SECONDLY_ROLLING", **kwargs: Any) -> Fault:
        """The documented ``429`` (body and headers) as a ``Fault``, for storms the counters would not produce."""
        body = self._limit_body(policy)
        headers = {} if policy == "SECONDLY" else self._limit_headers(self.token, remaining=0)
        return Fault(status=429, body=body, headers=headers, times=times, **kwargs)

    # ------------------------------------------------------------------------------------------------- errors

    def _error(self, status: int, message: str, category: str, **extra: Any) -> Reply:
        correlation = str(uuid.uuid4())
        body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation}
        body.update(extra)
        body["category"] = category
        return Reply(status, body, {"X-HubSpot-Correlation-Id": correlation})

    def _refuse(self, status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> Refusal:
        return Refusal(self._error(status, message, category, **extra))

    def _property_error(self, name: str, code: str, message: str) -> dict[str, Any]:
        return {
            "isValid": False,
            "message": message,
            "error": code,
            "name": name,
            "localizedErrorMessage": message,
            "portalId": self.portal_id,
        }

    @staticmethod
    def _invalid_message(results: list[dict[str, Any]]) -> str:
        return "Property values were not valid: " + json.dumps(results, separators=(",", ":"))

    # ------------------------------------------------------------------------------------------------- gate

    def _serve_api(self, request: Request, call: Callable[[], Reply], *, search: bool) -> Reply:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip() or presented.strip() != self.token:
            return self._error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        token = presented.strip()
        with self._mutex:
            refused = self._admit(token, search=search)
        if refused is not None:
            return refused
        try:
            reply = call()
        except Refusal as refusal:
            reply = refusal.reply
        if not search:
            with self._mutex:
                reply.headers.update(self._limit_headers(token))
        return reply

    def _admit(self, token: str, *, search: bool) -> Reply | None:
        now = self.clock()
        day = int(now // 86_400)
        counted_day, used_today = self._daily.get(token, (day, 0))
        if counted_day != day:
            used_today = 0
        if used_today >= self.daily_limit:
            return self._throttle("DAILY", token, headers=not search)
        if search:
            calls = self._search_calls.setdefault(token, deque())
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= self.search_per_second:
                return self._throttle("SECONDLY", token, headers=False)
            calls.append(now)
        else:
            burst = self._burst.setdefault(token, deque())
            while burst and burst[0] <= now - self.burst_window:
                burst.popleft()
            if len(burst) >= self.burst_limit:
                return self._throttle("TEN_SECONDLY_ROLLING", token, headers=True)
            burst.append(now)
        self._daily[token] = (day, used_today + 1)
        self.api_calls += 1
        self._per_second[int(now)] += 1
        return None

    def _throttle(self, policy: str, token: str, *, headers: bool) -> Reply:
        self.throttled += 1
        self.throttled_by_policy[policy] += 1
        reply = Reply(429, self._limit_body(policy))
        reply.headers["X-HubSpot-Correlation-Id"] = reply.body["correlationId"]
        if headers:
            remaining = 0 if policy == "TEN_SECONDLY_ROLLING" else None
            reply.headers.update(self._limit_headers(token, remaining=remaining))
        return reply

    def _limit_body(self, policy: str) -> dict[str, Any]:
        correlation = str(uuid.uuid4())
        if policy == "SECONDLY":  # the search API's own limit
            return {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation,
            }
        daily = policy == "DAILY"
        return {
            "status": "error",
            "message": "You have reached your daily limit."
            if daily
            else "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation,
            "policyName": policy,
            "groupName": f"publicapi:private_app-api-calls-{'daily' if daily else 'ten-secondly'}:"
            f"{self.app_id}:{self.portal_id}",
        }

    def _limit_headers(self, token: str, remaining: int | None = None) -> dict[str, str]:
        now = self.clock()
        burst = self._burst.get(token, deque())
        used = sum(1 for t in burst if t > now - self.burst_window)
        day = int(now // 86_400)
        counted_day, used_today = self._daily.get(token, (day, 0))
        if counted_day != day:
            used_today = 0
        left = max(0, self.burst_limit - used) if remaining is None else remaining
        return {
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(left),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.burst_window * 1000)),
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - used_today)),
        }

    # ------------------------------------------------------------------------------------------------- parsing

    def _type(self, name: str) -> ObjectType:
        resolved = TYPE_ALIASES.get(name.lower())
        if resolved is None:
            raise self._refuse(400, f"Unable to infer object type from: {name}")
        return OBJECT_TYPES[resolved]

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise self._refuse(400, f"Invalid input JSON on line 1, column 1: {exc}") from None
        if not isinstance(body, dict):
            raise self._refuse(400, "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: Mapping[str, Any], *, limit: int = MAX_BATCH) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise self._refuse(400, "Invalid input JSON: inputs must be a list of objects")
        if len(inputs) > limit:
            raise self._refuse(
                400,
                f"Batch of {len(inputs)} inputs exceeds the limit of {limit} inputs per request",
                context={"inputs": [str(len(inputs))]},
            )
        return inputs

    @staticmethod
    def _multi(request: Request, name: str) -> list[str] | None:
        values = request.query.get(name)
        if values is None:
            return None
        return [part for value in values for part in value.split(",") if part]

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        return (request.arg(name) or "false").lower() == "true"

    def _id_property(self, object_type: ObjectType, name: str | None, *, batch_update: bool = False) -> str:
        """``hs_object_id`` for None; otherwise a property that may identify a record, else the documented 400."""
        if name in (None, "", "hs_object_id"):
            return "hs_object_id"
        definition = self._properties[object_type.name].get(name)
        allowed = object_type.update_id_properties if batch_update else object_type.read_id_properties
        if definition is not None and (name in allowed or definition.has_unique_value):
            return name
        raise self._refuse(400, f"Unable to perform update/upsert by non-unique {object_type.type_id} property {name}")

    def _find(
        self, object_type: ObjectType, value: str, id_property: str, *, archived: bool = False
    ) -> CrmObject | None:
        objects = self._objects[object_type.name]
        if id_property == "hs_object_id":
            found = objects.get(value)
        elif id_property == object_type.email_property and not archived:
            found = objects.get(self._emails[object_type.name].get(value.strip().lower(), ""))
        else:
            wanted = value.strip().lower() if id_property == object_type.email_property else value
            found = next(
                (o for o in objects.values() if o.properties.get(id_property) == wanted and o.archived == archived),
                None,
            )
        if found is None or found.archived != archived:
            return None
        return found

    # ------------------------------------------------------------------------------------------------- values

    def _validate(
        self,
        object_type: ObjectType,
        raw: Mapping[str, Any],
        *,
        creating: bool,
        current: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Property values as HubSpot stores them, and the failures in HubSpot's ``Property values were not valid``
        form (``PROPERTY_DOESNT_EXIST``, ``READ_ONLY_VALUE``, ``INVALID_EMAIL``, ``INVALID_INTEGER``...).
        ``current``: the record's stored values, for an update (a deal's stage is checked against its pipeline)."""
        clean: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        definitions = self._properties[object_type.name]
        for name, given in raw.items():
            value = _as_value(given)
            definition = definitions.get(name)
            if definition is None or definition.archived:
                errors.append(self._property_error(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if definition.read_only:
                errors.append(
                    self._property_error(
                        name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
                    )
                )
                continue
            if value == "":
                clean[name] = ""
                continue
            problem = self._check_value(object_type, definition, value)
            if problem is not None:
                errors.append(self._property_error(name, *problem))
                continue
            clean[name] = self._normalise(object_type, definition, value)
        if creating:
            for name in object_type.required_properties:
                if not clean.get(name) and not any(e["name"] == name for e in errors):
                    errors.append(self._property_error(name, "REQUIRED_FIELD", f"{name} is required"))
        if object_type.name in PIPELINE_OBJECT_TYPES and not errors:
            stage_problem = self._stage_problem(object_type, clean, current or {})
            if stage_problem is not None:
                errors.append(self._property_error("dealstage", "INVALID_OPTION", stage_problem))
        return clean, errors

    def _stage_problem(
        self, object_type: ObjectType, clean: Mapping[str, str], current: Mapping[str, str]
    ) -> str | None:
        """A deal's stage must be a stage of its pipeline (the default pipeline when none is given)."""
        pipeline_id = clean.get("pipeline") or current.get("pipeline") or DEFAULT_PIPELINE_ID
        stage_id = clean.get("dealstage") if "dealstage" in clean else current.get("dealstage")
        if not stage_id:
            return None
        pipeline = self._pipelines[object_type.name].get(pipeline_id)
        if pipeline is None or pipeline.archived:
            return f"Pipeline {pipeline_id} does not exist"
        if pipeline.stage(stage_id) is None:
            return f"{stage_id} is not a stage of pipeline {pipeline_id} ({pipeline.label})"
        return None

    def _pipeline_state(self, object_type: ObjectType, values: Mapping[str, str]) -> dict[str, str]:
        """What HubSpot derives from a deal's stage: its pipeline when none was given, and ``hs_is_closed``,
        ``hs_is_closed_won`` and ``hs_is_closed_lost`` from the stage's metadata (closed at a probability of 1.0 is
        won, at 0.0 lost)."""
        pipeline_id = values.get("pipeline") or DEFAULT_PIPELINE_ID
        pipeline = self._pipelines[object_type.name].get(pipeline_id)
        stage = pipeline.stage(values.get("dealstage", "")) if pipeline is not None else None
        closed, won, lost = stage.outcome() if stage is not None else (False, False, False)
        derived = {
            "hs_is_closed": _as_value(closed),
            "hs_is_closed_won": _as_value(won),
            "hs_is_closed_lost": _as_value(lost),
        }
        if not values.get("pipeline") and pipeline is not None:
            derived["pipeline"] = pipeline_id
        return derived

    @staticmethod
    def _check_value(object_type: ObjectType, definition: PropertyDef, value: str) -> tuple[str, str] | None:
        if definition.name == object_type.email_property and not EMAIL_RE.match(value.strip()):
            return "INVALID_EMAIL", f"Email address {value} is invalid"
        if definition.type == "number":
            try:
                float(value)
            except ValueError:
                return "INVALID_FLOAT", f"{value} was not a valid number."
        if definition.type in ("datetime", "date") and epoch_ms(value) is None:
            return "INVALID_DATE", f"{value} was not a valid date."
        if definition.type == "bool" and value.lower() not in ("true", "false"):
            return "INVALID_BOOLEAN", f"{value} was not a valid boolean."
        if definition.type == "enumeration":
            allowed = {o["value"] for o in definition.options}
            chosen = value.split(";") if definition.field_type == "checkbox" else [value]
            for item in chosen:
                if item not in allowed:
                    options = ", ".join(sorted(allowed))
                    return "INVALID_OPTION", f"{item} was not one of the allowed options: [{options}]"
        return None

    @staticmethod
    def _normalise(object_type: ObjectType, definition: PropertyDef, value: str) -> str:
        if definition.name == object_type.email_property:
            return value.strip().lower()
        if definition.type == "datetime":
            ms = epoch_ms(value)
            return iso(ms / 1000) if ms is not None else value
        if definition.type == "date":
            ms = epoch_ms(value)
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d") if ms is not None else value
        if definition.type == "bool":
            return value.lower()
        return value

    def _email_owner(self, object_type: ObjectType, email: str, *, exclude: str | None = None) -> CrmObject | None:
        if object_type.email_property is None or not email:
            return None
        owner = self._objects[object_type.name].get(self._emails[object_type.name].get(email, ""))
        return None if owner is None or owner.id == exclude else owner

    def _index_email(self, object_type: ObjectType, obj: CrmObject, old: str | None = None) -> None:
        """Keeps the email -> id index of live records (emails are unique among them)."""
        if object_type.email_property is None:
            return
        emails = self._emails[object_type.name]
        if old and emails.get(old) == obj.id:
            del emails[old]
        current = obj.properties.get(object_type.email_property)
        if current and not obj.archived:
            emails[current] = obj.id

    def _parse_associations(self, object_type: ObjectType, given: Any) -> list[tuple[AssociationType, str]]:
        """A create input's ``associations``: ``[{"to": {"id"}, "types": [{category, typeId}]}]``."""
        if given is None:
            return []
        if not isinstance(given, list):
            raise self._refuse(400, "Invalid input JSON: associations must be a list")
        found: list[tuple[AssociationType, str]] = []
        for entry in given:
            to_id = str(((entry or {}).get("to") or {}).get("id") or "")
            types = (entry or {}).get("types") or []
            if not to_id or not types:
                raise self._refuse(400, "Each association needs a to.id and at least one type")
            for spec in types:
                association = self._association_type(object_type.name, spec)
                target = self._objects[association.to_type].get(to_id)
                if target is None or target.archived:
                    raise self._refuse(
                        400,
                        f"{OBJECT_TYPES[association.to_type].label} {to_id} does not exist; "
                        f"cannot associate it with a {object_type.singular}",
                        context={"toObjectId": [to_id]},
                    )
                found.append((association, to_id))
        return found

    def _association_type(self, from_type: str, spec: Any, to_type: str | None = None) -> AssociationType:
        type_id = (spec or {}).get("associationTypeId")
        category = (spec or {}).get("associationCategory")
        try:
            association = ASSOCIATIONS_BY_ID.get((from_type, int(str(type_id))))
        except (TypeError, ValueError):
            association = None
        if (
            association is None
            or category != "HUBSPOT_DEFINED"
            or (to_type is not None and association.to_type != to_type)
        ):
            raise self._refuse(
                400,
                f"{category}:{type_id} is not a valid association type from {from_type} to {to_type or 'that object'}",
            )
        return association

    # ------------------------------------------------------------------------------------------------- records

    def _new_id(self) -> str:
        value = self._next_id
        self._next_id += 1
        return str(value)

    def _reindex(self, obj: CrmObject, now: float) -> None:
        snapshot = None if obj.archived else dict(obj.properties)
        obj.index.append((now + self.search_lag, snapshot))
        visible = [i for i, (at, _) in enumerate(obj.index) if at <= now]
        if len(visible) > 1:
            del obj.index[: visible[-1]]

    def _create(
        self,
        object_type: ObjectType,
        properties: Mapping[str, str],
        *,
        source: str,
        associations: Iterable[tuple[AssociationType, str]] = (),
    ) -> CrmObject:
        now = self.clock()
        object_id = self._new_id()
        stamp = iso(now)
        values = {k: v for k, v in properties.items() if v != ""}
        values.setdefault(object_type.created_property, stamp)
        values.update({object_type.modified_property: stamp, "hs_object_id": object_id})
        if object_type.name in PIPELINE_OBJECT_TYPES:
            values.update(self._pipeline_state(object_type, values))
        obj = CrmObject(object_id, object_type.name, values, now, now)
        self._objects[object_type.name][object_id] = obj
        self._index_email(object_type, obj)
        self._reindex(obj, now)
        for association, to_id in associations:
            self._associate(association, object_id, to_id)
        if object_type.webhooks:
            self._raise_event(object_type, obj, "creation", source, change_flag="CREATED")
            if self.creation_property_events:
                for name, value in values.items():
                    if name not in object_type.system_properties:
                        self._raise_event(object_type, obj, "propertyChange", source, name=name, value=value)
        return obj

    def _update(self, object_type: ObjectType, obj: CrmObject, properties: Mapping[str, str], *, source: str) -> None:
        changed = {k: v for k, v in properties.items() if obj.properties.get(k, "") != v}
        if not changed:
            return
        now = self.clock()
        old_email = obj.properties.get(object_type.email_property or "")
        for name, value in changed.items():
            if value == "":
                obj.properties.pop(name, None)
            else:
                obj.properties[name] = value
        self._index_email(object_type, obj, old_email)
        if object_type.name in PIPELINE_OBJECT_TYPES:
            obj.properties.update(self._pipeline_state(object_type, obj.properties))
        obj.properties[object_type.modified_property] = iso(now)
        obj.updated_at = now
        self._reindex(obj, now)
        if object_type.webhooks:
            for name, value in changed.items():
                self._raise_event(object_type, obj, "propertyChange", source, name=name, value=value)

    def _archive(self, object_type: ObjectType, obj: CrmObject, *, source: str) -> None:
        if obj.archived:
            return
        now = self.clock()
        obj.archived = True
        obj.archived_at = now
        obj.updated_at = now
        self._index_email(object_type, obj, obj.properties.get(object_type.email_property or ""))
        self._reindex(obj, now)
        if object_type.webhooks:
            self._raise_event(object_type, obj, "deletion", source, change_flag="DELETED")

    def _purge(self, object_type: ObjectType, obj: CrmObject, *, source: str) -> None:
        del self._objects[object_type.name][obj.id]
        obj.archived = True
        self._index_email(object_type, obj, obj.properties.get(object_type.email_property or ""))
        for key in [k for k in self._associations if k[0] == object_type.name and k[1] == obj.id]:
            for to_id in self._associations.pop(key):
                self._associations.get((key[2], to_id, key[0]), {}).pop(obj.id, None)
        if object_type.webhooks:
            self._raise_event(object_type, obj, "privacyDeletion", source)

    def _project(self, obj: CrmObject, wanted: list[str] | None, *, written: Iterable[str] = ()) -> dict[str, Any]:
        """A record in ``SimplePublicObject`` form: the default properties (or those asked for, ``null`` when
        empty) and always the system ones."""
        object_type = OBJECT_TYPES[obj.type]
        names = list(object_type.default_properties) if wanted is None else list(wanted)
        names += [n for n in (*object_type.system_properties, *written) if n not in names]
        body: dict[str, Any] = {
            "id": obj.id,
            "properties": {name: obj.properties.get(name) for name in names},
            "createdAt": iso(obj.created_at),
            "updatedAt": iso(obj.updated_at),
            "archived": obj.archived,
        }
        if obj.archived and obj.archived_at is not None:
            body["archivedAt"] = iso(obj.archived_at)
        return body

    # ------------------------------------------------------------------------------------------------- associations

    def _associate(self, association: AssociationType, from_id: str, to_id: str) -> None:
        self._associations.setdefault((association.from_type, from_id, association.to_type), {}).setdefault(
            to_id, set()
        ).add(association.type_id)
        self._associations.setdefault((association.to_type, to_id, association.from_type), {}).setdefault(
            from_id, set()
        ).add(association.inverse_id)

    def _dissociate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: set[int] | None = None
    ) -> None:
        for a_type, a_id, b_type, b_id in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
            targets = self._associations.get((a_type, a_id, b_type), {})
            if b_id not in targets:
                continue
            if type_ids is None:
                del targets[b_id]
                continue
            ids = type_ids if a_type == from_type else {ASSOCIATIONS_BY_ID[(from_type, t)].inverse_id for t in type_ids}
            targets[b_id] -= ids
            if not targets[b_id]:
                del targets[b_id]

    def _associated(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, set[int]]]:
        targets = self._associations.get((from_type, from_id, to_type), {})
        alive = self._objects[to_type]
        return sorted(
            ((to_id, types) for to_id, types in targets.items() if to_id in alive and not alive[to_id].archived),
            key=lambda item: int(item[0]),
        )

    @staticmethod
    def _types_json(from_type: str, type_ids: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": ASSOCIATIONS_BY_ID[(from_type, t)].label}
            for t in sorted(type_ids, key=lambda t: (ASSOCIATIONS_BY_ID[(from_type, t)].label is not None, t))
        ]

    def _v3_associations(self, obj: CrmObject, to_types: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in to_types:
            to_type = self._type(name)
            results = [
                {"id": to_id, "type": ASSOCIATIONS_BY_ID[(obj.type, t)].v3_name}
                for to_id, types in self._associated(obj.type, obj.id, to_type.name)
                for t in sorted(types)
            ]
            if results:
                body[to_type.name] = {"results": results}
        return body

    # ------------------------------------------------------------------------------------------------- webhooks

    def _raise_event(
        self,
        object_type: ObjectType,
        obj: CrmObject,
        kind: str,
        source: str,
        *,
        name: str | None = None,
        value: str | None = None,
        change_flag: str | None = None,
    ) -> None:
        subscription = f"{object_type.singular}.{kind}"
        key = subscription if name is None else f"{subscription}:{name}"
        if key not in self._subscriptions:
            self._subscriptions[key] = 3_100_001 + len(self._subscriptions)
        event: dict[str, Any] = {
            "eventId": self._next_event_id,
            "subscriptionId": self._subscriptions[key],
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": int(self.clock() * 1000),
            "subscriptionType": subscription,
            "objectId": int(obj.id),
        }
        self._next_event_id += 1
        if name is not None:
            event["propertyName"] = name
            event["propertyValue"] = value or ""
        if change_flag is not None:
            event["changeFlag"] = change_flag
        if source == "CRM_UI":
            event["changeSource"] = "CRM_UI"
            event["sourceId"] = f"userId:{self.ui_user_id}"
        else:
            event["changeSource"] = "INTEGRATION"
            event["sourceId"] = str(self.app_id)
        self.events.append(event)
        if self.webhook_url:
            self._pending.append((time.monotonic() + self.webhook_delay, event))
            self._wake.notify_all()

    @staticmethod
    def _event_body(event: Mapping[str, Any], attempt: int) -> dict[str, Any]:
        body = {
            k: event[k] for k in ("eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType")
        }
        body["attemptNumber"] = attempt
        body["objectId"] = event["objectId"]
        body.update(
            {
                k: event[k]
                for k in ("propertyName", "propertyValue", "changeFlag", "changeSource", "sourceId")
                if k in event
            }
        )
        return body

    def _deliver_forever(self) -> None:
        while True:
            with self._mutex:
                batch: list[dict[str, Any]] = []
                attempt = 0
                while not batch:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    due = [e for at, e in self._pending if at <= now][:MAX_WEBHOOK_EVENTS]
                    if due:
                        taken = {id(e) for e in due}
                        self._pending = [(at, e) for at, e in self._pending if id(e) not in taken]
                        batch = due
                        break
                    ready = [r for r in self._retries if r[0] <= now]
                    if ready:
                        first = min(ready, key=lambda r: r[0])
                        self._retries.remove(first)
                        _, attempt, batch = first
                        break
                    waits = [at for at, _ in self._pending] + [r[0] for r in self._retries]
                    self._wake.wait(timeout=max(0.0, min(waits) - now) if waits else None)
                url, secret, generation = self.webhook_url, self.client_secret, self._generation
                self._in_flight += 1
            record: dict[str, Any] | None = None
            try:
                record = self._post(url, secret, batch, attempt) if url else None
            finally:
                with self._mutex:
                    self._in_flight -= 1
                    if record is not None and generation == self._generation:
                        self.delivered.append(record)
                        if not record["ok"] and attempt < len(self.webhook_retry_delays):
                            due_at = time.monotonic() + self.webhook_retry_delays[attempt]
                            self._retries.append((due_at, attempt + 1, batch))
                    self._wake.notify_all()

    def _post(self, url: str, secret: str, events: list[dict[str, Any]], attempt: int) -> dict[str, Any]:
        payload = [self._event_body(e, attempt) for e in events]
        body = json.dumps(payload, separators=(",", ":"))
        timestamp = str(int(time.time() * 1000))  # wall clock: receivers compare it with theirs (5 minutes)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": WEBHOOK_USER_AGENT,
            "X-HubSpot-Signature-v3": signature_v3(secret, "POST", signed_uri(url), body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-Version": "v3",
        }
        record: dict[str, Any] = {
            "url": url,
            "attempt": attempt,
            "events": payload,
            "body": body,
            "headers": headers,
            "status": None,
            "answer": None,
            "error": None,
            "ok": False,
            "at": time.time(),
        }
        connection: http.client.HTTPConnection | None = None
        try:
            parts = urlsplit(url)
            connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=self.webhook_timeout)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target, body=body.encode(), headers=headers)
            response = connection.getresponse()
            answer = response.read()
            record["status"] = response.status
            record["answer"] = answer.decode("utf-8", "replace")
            record["ok"] = 200 <= response.status < 300
        except Exception as exc:  # any failure to deliver is the receiver's failure, retried; the worker goes on
            record["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if connection is not None:
                connection.close()
        return record

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Waits until every raised event was delivered or gave up retrying; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._mutex:
            while self._pending or self._retries or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(timeout=left)
            return True

    # ------------------------------------------------------------------------------------------------- objects

    @route("GET", "/crm/v3/objects/{type}")
    @api()
    def list_objects(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        limit = _int_arg(request.arg("limit"), DEFAULT_LIST_LIMIT)
        if limit is None or not 1 <= limit <= MAX_LIST_LIMIT:
            raise self._refuse(400, f"limit must be between 1 and {MAX_LIST_LIMIT}; got {request.arg('limit')}")
        after = _int_arg(request.arg("after"), 0)
        if after is None:
            raise self._refuse(400, f"Invalid after: {request.arg('after')}")
        archived = self._flag(request, "archived")
        wanted = self._multi(request, "properties")
        to_types = self._multi(request, "associations") or []
        with self._mutex:
            records = sorted(
                (o for o in self._objects[object_type.name].values() if o.archived == archived and int(o.id) >= after),
                key=lambda o: int(o.id),
            )
            page = records[:limit]
            results = []
            for obj in page:
                item = self._project(obj, wanted)
                if to_types:
                    item["associations"] = self._v3_associations(obj, to_types)
                results.append(item)
        body: dict[str, Any] = {"results": results}
        if len(records) > limit:
            next_after = records[limit].id
            query = {k: ",".join(v) for k, v in request.query.items() if k != "after"}
            query["after"] = next_after
            body["paging"] = {"next": {"after": next_after, "link": f"{self.url}{request.path}?{urlencode(query)}"}}
        return Reply(200, body)

    @route("GET", "/crm/v3/objects/{type}/{id}")
    @api()
    def get_object(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        value = request.params["id"]
        with self._mutex:
            id_property = self._id_property(object_type, request.arg("idProperty"))
            obj = self._find(object_type, value, id_property, archived=self._flag(request, "archived"))
            if obj is None:
                raise self._refuse(404, "resource not found", "OBJECT_NOT_FOUND")
            body = self._project(obj, self._multi(request, "properties"))
            to_types = self._multi(request, "associations")
            if to_types:
                body["associations"] = self._v3_associations(obj, to_types)
        return Reply(200, body)

    @route("POST", "/crm/v3/objects/{type}")
    @api()
    def create_object(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        body = self._body(request)
        raw = body.get("properties")
        if not isinstance(raw, dict):
            raise self._refuse(400, "Invalid input JSON: properties must be an object")
        with self._mutex:
            clean, errors = self._validate(object_type, raw, creating=True)
            if errors:
                raise self._refuse(400, self._invalid_message(errors))
            associations = self._parse_associations(object_type, body.get("associations"))
            self._refuse_taken_email(object_type, clean)
            obj = self._create(object_type, clean, source="INTEGRATION", associations=associations)
            return Reply(201, self._project(obj, [], written=clean))

    def _refuse_taken_email(
        self, object_type: ObjectType, clean: Mapping[str, str], exclude: str | None = None
    ) -> None:
        email = clean.get(object_type.email_property or "", "")
        owner = self._email_owner(object_type, email, exclude=exclude)
        if owner is not None:
            raise self._refuse(409, f"{object_type.label.title()} already exists. Existing ID: {owner.id}", "CONFLICT")

    @route("PATCH", "/crm/v3/objects/{type}/{id}")
    @api()
    def update_object(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        body = self._body(request)
        raw = body.get("properties")
        if not isinstance(raw, dict):
            raise self._refuse(400, "Invalid input JSON: properties must be an object")
        with self._mutex:
            id_property = self._id_property(object_type, request.arg("idProperty"))
            obj = self._find(object_type, request.params["id"], id_property)
            if obj is None:
                raise self._refuse(404, "resource not found", "OBJECT_NOT_FOUND")
            clean, errors = self._validate(object_type, raw, creating=False, current=obj.properties)
            if errors:
                raise self._refuse(400, self._invalid_message(errors))
            self._refuse_taken_email(object_type, clean, exclude=obj.id)
            self._update(object_type, obj, clean, source="INTEGRATION")
            return Reply(200, self._project(obj, [], written=clean))

    @route("DELETE", "/crm/v3/objects/{type}/{id}")
    @api()
    def archive_object(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        with self._mutex:
            obj = self._objects[object_type.name].get(request.params["id"])
            if obj is not None:
                self._archive(object_type, obj, source="INTEGRATION")
        return Reply(204, None)

    @route("POST", "/crm/v3/objects/contacts/gdpr-delete")
    @api()
    def gdpr_delete(self, request: Request) -> Reply:
        object_type = OBJECT_TYPES["contacts"]
        body = self._body(request)
        value = str(body.get("objectId") or "")
        if not value:
            raise self._refuse(400, "objectId is required")
        with self._mutex:
            id_property = self._id_property(object_type, body.get("idProperty"))
            obj = self._find(object_type, value, id_property) or self._find(
                object_type, value, id_property, archived=True
            )
            if obj is not None:
                self._purge(object_type, obj, source="INTEGRATION")
        return Reply(204, None)

    # ------------------------------------------------------------------------------------------------- batches

    @route("POST", "/crm/v3/objects/{type}/batch/read")
    @api()
    def batch_read(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        body = self._body(request)
        history = body.get("propertiesWithHistory") or []
        inputs = self._inputs(body, limit=MAX_BATCH_WITH_HISTORY if history else MAX_BATCH)
        wanted = body.get("properties")
        wanted = [str(p) for p in wanted] if isinstance(wanted, list) and wanted else None
        ids = [str(i.get("id") or "") for i in inputs]
        self._refuse_duplicates(ids)
        archived = self._flag(request, "archived")
        with self._mutex:
            id_property = self._id_property(object_type, body.get("idProperty"))
            results, missing = [], []
            for value in ids:
                obj = self._find(object_type, value, id_property, archived=archived)
                if obj is None:
                    missing.append(value)
                else:
                    results.append(self._project(obj, wanted))
        errors = []
        if missing:
            errors.append(self._not_found_error(object_type, missing, []))
        return self._batch_reply(200, results, errors, started)

    @route("POST", "/crm/v3/objects/{type}/batch/create")
    @api()
    def batch_create(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        inputs = self._inputs(self._body(request))
        with self._mutex:
            plans: list[_Planned] = []
            emails: dict[str, int] = {}
            for index, item in enumerate(inputs):
                plan = _Planned(index, self._trace_id(item))
                raw = item.get("properties")
                if not isinstance(raw, dict):
                    raise self._refuse(400, f"Invalid input JSON: inputs[{index}].properties must be an object")
                plan.properties, errors = self._validate(object_type, raw, creating=True)
                plan.associations = self._parse_associations(object_type, item.get("associations"))
                if errors:
                    plan.failure = self._invalid_failure(errors)
                else:
                    plan.failure = self._conflict_failure(object_type, plan.properties, emails)
                plans.append(plan)
            self._fail_whole_batch(plans)
            results = []
            for plan in plans:
                if plan.failure is None:
                    obj = self._create(
                        object_type, plan.properties, source="INTEGRATION", associations=plan.associations
                    )
                    results.append(self._traced(self._project(obj, [], written=plan.properties), plan.trace_id))
        return self._batch_reply(201, results, self._plan_errors(object_type, plans), started)

    @route("POST", "/crm/v3/objects/{type}/batch/update")
    @api()
    def batch_update(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        body = self._body(request)
        inputs = self._inputs(body)
        with self._mutex:
            plans: list[_Planned] = []
            seen: list[str] = []
            for index, item in enumerate(inputs):
                plan = _Planned(index, self._trace_id(item))
                id_property = self._id_property(
                    object_type, item.get("idProperty") or body.get("idProperty"), batch_update=True
                )
                value = str(item.get("id") or "")
                seen.append(value.lower() if id_property == object_type.email_property else value)
                raw = item.get("properties")
                if not isinstance(raw, dict):
                    raise self._refuse(400, f"Invalid input JSON: inputs[{index}].properties must be an object")
                plan.obj = self._find(object_type, value, id_property)
                if plan.obj is None:
                    plan.missing_id = value
                else:
                    plan.properties, errors = self._validate(
                        object_type, raw, creating=False, current=plan.obj.properties
                    )
                    if errors:
                        plan.failure = self._invalid_failure(errors)
                    else:
                        plan.failure = self._conflict_failure(object_type, plan.properties, {}, exclude=plan.obj.id)
                plans.append(plan)
            self._refuse_duplicates(seen)
            self._fail_whole_batch(plans)
            results = []
            for plan in plans:
                if plan.failure is None and plan.obj is not None:
                    self._update(object_type, plan.obj, plan.properties, source="INTEGRATION")
                    results.append(self._traced(self._project(plan.obj, [], written=plan.properties), plan.trace_id))
        return self._batch_reply(200, results, self._plan_errors(object_type, plans), started)

    @route("POST", "/crm/v3/objects/{type}/batch/upsert")
    @api()
    def batch_upsert(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        body = self._body(request)
        inputs = self._inputs(body)
        with self._mutex:
            plans: list[_Planned] = []
            seen: list[str] = []
            emails: dict[str, int] = {}
            for index, item in enumerate(inputs):
                plan = _Planned(index, self._trace_id(item))
                given = item.get("idProperty") or body.get("idProperty")
                if not given:
                    raise self._refuse(400, f"inputs[{index}].idProperty is required to upsert")
                id_property = self._id_property(object_type, given)
                if id_property == "hs_object_id":
                    raise self._refuse(
                        400,
                        f"Unable to perform update/upsert by non-unique {object_type.type_id} property hs_object_id",
                    )
                raw = item.get("properties")
                if not isinstance(raw, dict):
                    raise self._refuse(400, f"Invalid input JSON: inputs[{index}].properties must be an object")
                value = str(item.get("id") or "")
                is_email = id_property == object_type.email_property
                seen.append(value.strip().lower() if is_email else value)
                plan.obj = self._find(object_type, value.strip(), id_property)
                raw = {**raw, id_property: value}
                plan.properties, errors = self._validate(
                    object_type,
                    raw,
                    creating=plan.obj is None,
                    current=plan.obj.properties if plan.obj is not None else None,
                )
                if errors:
                    plan.failure = self._invalid_failure(errors)
                elif plan.obj is None:
                    plan.failure = self._conflict_failure(object_type, plan.properties, emails)
                else:
                    plan.failure = self._conflict_failure(object_type, plan.properties, {}, exclude=plan.obj.id)
                plans.append(plan)
            self._refuse_duplicates(seen)
            self._fail_whole_batch(plans)
            results = []
            for plan in plans:
                if plan.failure is not None:
                    continue
                if plan.obj is None:
                    obj = self._create(object_type, plan.properties, source="INTEGRATION")
                    item = self._project(obj, [], written=plan.properties)
                    item["new"] = True
                else:
                    self._update(object_type, plan.obj, plan.properties, source="INTEGRATION")
                    item = self._project(plan.obj, [], written=plan.properties)
                    item["new"] = False
                results.append(self._traced(item, plan.trace_id))
        return self._batch_reply(200, results, self._plan_errors(object_type, plans), started)

    @route("POST", "/crm/v3/objects/{type}/batch/archive")
    @api()
    def batch_archive(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        inputs = self._inputs(self._body(request))
        with self._mutex:
            for item in inputs:
                obj = self._objects[object_type.name].get(str(item.get("id") or ""))
                if obj is not None:
                    self._archive(object_type, obj, source="INTEGRATION")
        return Reply(204, None)

    @staticmethod
    def _trace_id(item: Mapping[str, Any]) -> str | None:
        trace = item.get("objectWriteTraceId")
        return None if trace in (None, "") else str(trace)

    @staticmethod
    def _traced(body: dict[str, Any], trace_id: str | None) -> dict[str, Any]:
        if trace_id is not None:
            body["objectWriteTraceId"] = trace_id
        return body

    def _refuse_duplicates(self, ids: list[str]) -> None:
        counts = Counter(ids)
        duplicates = [i for i in dict.fromkeys(ids) if counts[i] > 1]
        if duplicates:
            raise self._refuse(
                400,
                f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique",
                context={"ids": duplicates},
            )

    def _invalid_failure(self, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "status": 400,
            "category": "VALIDATION_ERROR",
            "message": self._invalid_message(errors),
            "details": [{"message": e["message"], "code": e["error"], "in": e["name"]} for e in errors],
        }

    def _conflict_failure(
        self, object_type: ObjectType, clean: Mapping[str, str], planned: dict[str, int], *, exclude: str | None = None
    ) -> dict[str, Any] | None:
        email = clean.get(object_type.email_property or "", "")
        if not email:
            return None
        owner = self._email_owner(object_type, email, exclude=exclude)
        if owner is None and email not in planned:
            planned[email] = 1
            return None
        existing = f" Existing ID: {owner.id}" if owner is not None else ""
        return {
            "status": 409,
            "category": "CONFLICT",
            "message": f"{object_type.label.title()} already exists.{existing}",
            "details": [],
        }

    def _fail_whole_batch(self, plans: list[_Planned]) -> None:
        """Without an ``objectWriteTraceId`` on the failing input, one bad record fails the whole batch."""
        for plan in plans:
            if plan.failure is not None and plan.trace_id is None:
                failure = plan.failure
                raise self._refuse(failure["status"], failure["message"], failure["category"])

    def _not_found_error(self, object_type: ObjectType, ids: list[str], traces: list[str]) -> dict[str, Any]:
        context: dict[str, list[str]] = {"ids": ids}
        if traces:
            context["objectWriteTraceId"] = traces
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {object_type.label} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": context,
        }

    def _plan_errors(self, object_type: ObjectType, plans: list[_Planned]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        missing = [p for p in plans if p.missing_id is not None]
        if missing:
            traces = [p.trace_id for p in missing if p.trace_id is not None]
            errors.append(self._not_found_error(object_type, [p.missing_id or "" for p in missing], traces))
        for plan in plans:
            if plan.failure is None:
                continue
            error: dict[str, Any] = {
                "status": "error",
                "category": plan.failure["category"],
                "message": plan.failure["message"],
                "context": {"objectWriteTraceId": [plan.trace_id or ""]},
            }
            if plan.failure["details"]:
                error["errors"] = plan.failure["details"]
            errors.append(error)
        return errors

    def _batch_reply(
        self, status: int, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: float
    ) -> Reply:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            status = 207
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body["startedAt"] = iso(started)
        body["completedAt"] = iso(self.clock())
        return Reply(status, body)

    # ------------------------------------------------------------------------------------------------- search

    @route("POST", "/crm/v3/objects/{type}/search")
    @api(search=True)
    def search(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        body = self._body(request)
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise self._refuse(400, "Invalid input JSON: filterGroups must be a list")
        if len(groups) > MAX_FILTER_GROUPS:
            raise self._refuse(400, f"Too many filter groups ({len(groups)}); the maximum is {MAX_FILTER_GROUPS}")
        total_filters = 0
        for group in groups:
            filters = (group or {}).get("filters") or []
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise self._refuse(
                    400, f"Too many filters in a filter group ({len(filters)}); the maximum is {MAX_FILTERS_PER_GROUP}"
                )
            total_filters += len(filters)
        if total_filters > MAX_FILTERS:
            raise self._refuse(400, f"Too many filters ({total_filters}); the maximum is {MAX_FILTERS} in all groups")
        sorts = body.get("sorts") or []
        if len(sorts) > MAX_SORTS:
            raise self._refuse(400, f"Too many sorts ({len(sorts)}); the maximum is {MAX_SORTS}")
        limit = body.get("limit", DEFAULT_SEARCH_LIMIT)
        if not isinstance(limit, int) or not 0 <= limit <= MAX_SEARCH_LIMIT:
            raise self._refuse(400, f"limit must be between 0 and {MAX_SEARCH_LIMIT}; got {limit}")
        after = _int_arg(str(body.get("after") or ""), 0)
        if after is None or after < 0:
            raise self._refuse(400, f"Invalid after: {body.get('after')}")
        if after + limit > self.search_cap:
            raise self._refuse(
                400,
                f"The search API returns at most {self.search_cap} results for a query; after {after} with limit "
                f"{limit} goes past it. Narrow the query (e.g. by a date range) instead of paging further.",
            )
        wanted = body.get("properties")
        wanted = [str(p) for p in wanted] if isinstance(wanted, list) and wanted else None
        query = str(body.get("query") or "").strip().lower()
        now = self.clock()
        with self._mutex:
            definitions = self._properties[object_type.name]
            checks = [
                [self._filter(object_type, definitions, f or {}) for f in (g or {}).get("filters") or []]
                for g in groups
            ]
            sort = self._sort_spec(definitions, sorts[0]) if sorts else None
            matches: list[tuple[CrmObject, dict[str, str]]] = []
            for obj in self._objects[object_type.name].values():
                visible = [snap for at, snap in obj.index if at <= now]
                snapshot = visible[-1] if visible else None
                if snapshot is None:
                    continue
                if checks and not any(all(check(snapshot) for check in group) for group in checks):
                    continue
                if query and not self._query_matches(object_type, snapshot, query):
                    continue
                matches.append((obj, snapshot))
            matches.sort(key=lambda m: int(m[0].id))
            if sort is not None:
                name, descending, key = sort
                present = [m for m in matches if m[1].get(name)]
                absent = [m for m in matches if not m[1].get(name)]
                present.sort(key=lambda m: key(m[1][name]), reverse=descending)
                matches = present + absent
            page = matches[after : after + limit]
            results = []
            for obj, snapshot in page:
                item = self._project(CrmObject(obj.id, obj.type, snapshot, obj.created_at, obj.updated_at), wanted)
                results.append(item)
        reply: dict[str, Any] = {"total": len(matches), "results": results}
        if after + limit < len(matches):
            reply["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, reply)

    def _comparable(self, definition: PropertyDef | None, value: str) -> Any:
        kind = definition.type if definition is not None else "string"
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                return None
        if kind in ("datetime", "date"):
            return epoch_ms(value)
        return value.lower()

    def _filter(
        self, object_type: ObjectType, definitions: Mapping[str, PropertyDef], spec: Mapping[str, Any]
    ) -> Callable[[Mapping[str, str]], bool]:
        name = str(spec.get("propertyName") or "")
        operator = str(spec.get("operator") or "EQ")
        if operator not in OPERATORS:
            raise self._refuse(
                400, f"Unknown filter operator {operator}; expected one of {', '.join(sorted(OPERATORS))}"
            )
        definition = definitions.get(name)
        if definition is None:
            raise self._refuse(400, f"Property {name!r} does not exist on {object_type.name}; it cannot be filtered on")
        if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            present = operator == "HAS_PROPERTY"
            return lambda snap: bool(snap.get(name)) == present
        if operator in ("IN", "NOT_IN"):
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise self._refuse(400, f"{operator} on {name} needs a list of values")
            wanted = {self._comparable(definition, _as_value(v)) for v in values}
            inside = operator == "IN"
            return lambda snap: (bool(snap.get(name)) and self._comparable(definition, snap[name]) in wanted) == inside
        raw = spec.get("value")
        if raw is None:
            raise self._refuse(400, f"{operator} on {name} needs a value")
        text = _as_value(raw)
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            contains = operator == "CONTAINS_TOKEN"
            return lambda snap: self._contains_token(snap.get(name, ""), text) == contains
        target = self._comparable(definition, text)
        if target is None:
            raise self._refuse(400, f"{text} is not a valid value for {name}")
        if operator == "BETWEEN":
            high_raw = spec.get("highValue")
            high = self._comparable(definition, _as_value(high_raw)) if high_raw is not None else None
            if high is None:
                raise self._refuse(400, f"BETWEEN on {name} needs a highValue")
            return lambda snap: self._holds(definition, snap.get(name), lambda v: target <= v <= high)
        tests: dict[str, Callable[[Any], bool]] = {
            "EQ": lambda v: v == target,
            "NEQ": lambda v: v != target,
            "LT": lambda v: v < target,
            "LTE": lambda v: v <= target,
            "GT": lambda v: v > target,
            "GTE": lambda v: v >= target,
        }
        test = tests[operator]
        if operator == "NEQ":
            return lambda snap: not snap.get(name) or self._holds(definition, snap.get(name), test)
        return lambda snap: self._holds(definition, snap.get(name), test)

    def _holds(self, definition: PropertyDef, value: str | None, test: Callable[[Any], bool]) -> bool:
        if not value:
            return False
        comparable = self._comparable(definition, value)
        if comparable is None:
            return False
        try:
            return bool(test(comparable))
        except TypeError:
            return False

    @staticmethod
    def _contains_token(value: str, pattern: str) -> bool:
        text, wanted = value.lower(), pattern.lower().strip()
        if not text or not wanted:
            return False
        if "*" in wanted:
            return fnmatch.fnmatchcase(text, wanted) or any(fnmatch.fnmatchcase(t, wanted) for t in _tokens(text))
        return re.search(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", text) is not None

    @staticmethod
    def _query_matches(object_type: ObjectType, snapshot: Mapping[str, str], query: str) -> bool:
        haystack = " ".join(snapshot.get(p, "") for p in object_type.query_properties).lower()
        return all(word in haystack for word in query.split())

    def _sort_spec(self, definitions: Mapping[str, PropertyDef], spec: Any) -> tuple[str, bool, Callable[[str], Any]]:
        if isinstance(spec, str):
            descending = spec.startswith("-")
            name = spec.lstrip("-")
        elif isinstance(spec, dict):
            name = str(spec.get("propertyName") or "")
            direction = str(spec.get("direction") or "ASCENDING").upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise self._refuse(400, f"Unknown sort direction {direction}; expected ASCENDING or DESCENDING")
            descending = direction == "DESCENDING"
        else:
            raise self._refuse(400, "Invalid input JSON: a sort is a property name or {propertyName, direction}")
        definition = definitions.get(name)
        if definition is None:
            raise self._refuse(400, f"Property {name!r} does not exist; it cannot be sorted on")

        def key(value: str) -> Any:
            comparable = self._comparable(definition, value)
            return (0, comparable) if comparable is not None else (1, value)

        return name, descending, key

    # ------------------------------------------------------------------------------------------------- properties

    @route("GET", "/crm/v3/properties/{type}")
    @api()
    def list_properties(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        archived = self._flag(request, "archived")
        with self._mutex:
            results = [p.to_json() for p in self._properties[object_type.name].values() if p.archived == archived]
        return Reply(200, {"results": results})

    @route("GET", "/crm/v3/properties/{type}/{name}")
    @api()
    def get_property(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        name = request.params["name"]
        with self._mutex:
            definition = self._properties[object_type.name].get(name)
            if definition is None or definition.archived != self._flag(request, "archived"):
                raise self._refuse(404, f"Unable to find property {name} on {object_type.name}", "OBJECT_NOT_FOUND")
            return Reply(200, definition.to_json())

    @route("POST", "/crm/v3/properties/{type}")
    @api()
    def create_property(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        body = self._body(request)
        with self._mutex:
            definition = self._property_from(object_type, body)
            existing = self._properties[object_type.name].get(definition.name)
            if existing is not None and not existing.archived:
                raise self._refuse(
                    409,
                    f"Property named '{definition.name}' already exists.",
                    "OBJECT_ALREADY_EXISTS",
                    context={"name": [definition.name]},
                )
            self._properties[object_type.name][definition.name] = definition
            return Reply(201, definition.to_json())

    @route("PATCH", "/crm/v3/properties/{type}/{name}")
    @api()
    def update_property(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        name = request.params["name"]
        body = self._body(request)
        with self._mutex:
            definition = self._properties[object_type.name].get(name)
            if definition is None or definition.archived:
                raise self._refuse(404, f"Unable to find property {name} on {object_type.name}", "OBJECT_NOT_FOUND")
            if definition.hubspot_defined and set(body) - {
                "label",
                "description",
                "displayOrder",
                "hidden",
                "formField",
            }:
                raise self._refuse(400, f"The definition of the HubSpot-defined property {name} cannot be changed")
            merged = {**self._definition_json(definition), **body, "name": name}
            updated = self._property_from(object_type, merged)
            updated.created_at = definition.created_at
            updated.hubspot_defined = definition.hubspot_defined
            updated.read_only = definition.read_only
            self._properties[object_type.name][name] = updated
            return Reply(200, updated.to_json())

    @route("DELETE", "/crm/v3/properties/{type}/{name}")
    @api()
    def archive_property(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        name = request.params["name"]
        with self._mutex:
            definition = self._properties[object_type.name].get(name)
            if definition is None:
                raise self._refuse(404, f"Unable to find property {name} on {object_type.name}", "OBJECT_NOT_FOUND")
            if definition.hubspot_defined:
                raise self._refuse(400, f"The HubSpot-defined property {name} cannot be archived")
            definition.archived = True
            definition.updated_at = self.clock()
        return Reply(204, None)

    @route("POST", "/crm/v3/properties/{type}/batch/create")
    @api()
    def batch_create_properties(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        inputs = self._inputs(self._body(request))
        results, errors = [], []
        with self._mutex:
            definitions = [self._property_from(object_type, item) for item in inputs]
            for definition in definitions:
                existing = self._properties[object_type.name].get(definition.name)
                if existing is not None and not existing.archived:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_ALREADY_EXISTS",
                            "message": f"Property named '{definition.name}' already exists.",
                            "context": {"name": [definition.name]},
                        }
                    )
                    continue
                self._properties[object_type.name][definition.name] = definition
                results.append(definition.to_json())
        return self._batch_reply(201, results, errors, started)

    @route("POST", "/crm/v3/properties/{type}/batch/read")
    @api()
    def batch_read_properties(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        started = self.clock()
        body = self._body(request)
        inputs = self._inputs(body)
        archived = bool(body.get("archived"))
        results, missing = [], []
        with self._mutex:
            for item in inputs:
                name = str(item.get("name") or "")
                definition = self._properties[object_type.name].get(name)
                if definition is None or definition.archived != archived:
                    missing.append(name)
                else:
                    results.append(definition.to_json())
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Unable to find properties {', '.join(missing)} on {object_type.name}",
                    "context": {"names": missing},
                }
            )
        return self._batch_reply(200, results, errors, started)

    @staticmethod
    def _definition_json(definition: PropertyDef) -> dict[str, Any]:
        return {
            "name": definition.name,
            "label": definition.label,
            "type": definition.type,
            "fieldType": definition.field_type,
            "groupName": definition.group_name,
            "description": definition.description,
            "options": definition.options,
            "displayOrder": definition.display_order,
            "hasUniqueValue": definition.has_unique_value,
            "hidden": definition.hidden,
            "formField": definition.form_field,
        }

    def _property_from(self, object_type: ObjectType, body: Mapping[str, Any]) -> PropertyDef:
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise self._refuse(
                400,
                f"Some required fields were not set: [{', '.join(missing)}]",
                errors=[{"message": f"{k} is required", "in": k, "code": "REQUIRED_FIELD"} for k in missing],
            )
        name = str(body["name"])
        if not NAME_RE.match(name):
            raise self._refuse(
                400, f"Property name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _"
            )
        ptype, ftype = str(body["type"]), str(body["fieldType"])
        if ptype not in PROPERTY_TYPES:
            raise self._refuse(400, f"{ptype} is not a valid property type; expected one of {sorted(PROPERTY_TYPES)}")
        if ftype not in FIELD_TYPES:
            raise self._refuse(400, f"{ftype} is not a valid field type; expected one of {sorted(FIELD_TYPES)}")
        group = str(body["groupName"])
        if group not in self._groups[object_type.name]:
            raise self._refuse(400, f"Property group {group} does not exist on {object_type.name}")
        options = []
        for position, option in enumerate(body.get("options") or []):
            if not isinstance(option, dict) or not option.get("label") or option.get("value") in (None, ""):
                raise self._refuse(400, "Each option needs a label and a value")
            options.append(
                {
                    "label": str(option["label"]),
                    "value": str(option["value"]),
                    "description": str(option.get("description") or ""),
                    "displayOrder": int(option.get("displayOrder", position)),
                    "hidden": bool(option.get("hidden", False)),
                }
            )
        if ptype == "enumeration" and not options:
            raise self._refuse(400, f"An enumeration property ({name}) needs options")
        now = self.clock()
        return PropertyDef(
            name=name,
            label=str(body["label"]),
            type=ptype,
            field_type=ftype,
            group_name=group,
            description=str(body.get("description") or ""),
            options=options,
            display_order=int(body.get("displayOrder", -1)),
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            form_field=bool(body.get("formField", False)),
            created_at=now,
            updated_at=now,
        )

    @route("GET", "/crm/v3/properties/{type}/groups")
    @api()
    def list_groups(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        with self._mutex:
            return Reply(200, {"results": [dict(g) for g in self._groups[object_type.name].values()]})

    @route("GET", "/crm/v3/properties/{type}/groups/{name}")
    @api()
    def get_group(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        name = request.params["name"]
        with self._mutex:
            group = self._groups[object_type.name].get(name)
            if group is None:
                raise self._refuse(
                    404, f"Unable to find property group {name} on {object_type.name}", "OBJECT_NOT_FOUND"
                )
            return Reply(200, dict(group))

    @route("POST", "/crm/v3/properties/{type}/groups")
    @api()
    def create_group(self, request: Request) -> Reply:
        object_type = self._type(request.params["type"])
        body = self._body(request)
        missing = [k for k in ("name", "label") if not body.get(k)]
        if missing:
            raise self._refuse(400, f"Some required fields were not set: [{', '.join(missing)}]")
        name = str(body["name"])
        if not NAME_RE.match(name):
            raise self._refuse(
                400, f"Group name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _"
            )
        with self._mutex:
            groups = self._groups[object_type.name]
            if name in groups:
                raise self._refuse(
                    409,
                    f"Property group named '{name}' already exists.",
                    "OBJECT_ALREADY_EXISTS",
                    context={"name": [name]},
                )
            groups[name] = {
                "name": name,
                "label": str(body["label"]),
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            return Reply(201, dict(groups[name]))

    # ------------------------------------------------------------------------------------------------- associations v4

    def _pair(self, request: Request) -> tuple[ObjectType, ObjectType]:
        return self._type(request.params["from"]), self._type(request.params["to"])

    def _default_association(self, from_type: ObjectType, to_type: ObjectType) -> AssociationType:
        found = next(
            (a for a in ASSOCIATION_TYPES if a.from_type == from_type.name and a.to_type == to_type.name and a.default),
            None,
        )
        if found is None:
            raise self._refuse(400, f"No default association type between {from_type.name} and {to_type.name}")
        return found

    def _endpoint_missing(
        self, from_type: ObjectType, from_id: str, to_type: ObjectType, to_id: str
    ) -> dict[str, Any] | None:
        missing = [
            (t, i)
            for t, i in ((from_type, from_id), (to_type, to_id))
            if (o := self._objects[t.name].get(i)) is None or o.archived
        ]
        if not missing:
            return None
        kind, object_id = missing[0]
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": f"{kind.label.title()} {object_id} does not exist or was deleted",
            "context": {"fromObjectId": [from_id], "toObjectId": [to_id]},
        }

    @route("POST", "/crm/v4/associations/{from}/{to}/batch/associate/default")
    @api()
    def associate_default(self, request: Request) -> Reply:
        from_type, to_type = self._pair(request)
        started = self.clock()
        inputs = self._inputs(self._body(request))
        results, errors = [], []
        with self._mutex:
            association = self._default_association(from_type, to_type)
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id") or "")
                to_id = str((item.get("to") or {}).get("id") or "")
                problem = self._endpoint_missing(from_type, from_id, to_type, to_id)
                if problem is not None:
                    errors.append(problem)
                    continue
                self._associate(association, from_id, to_id)
                results.append(
                    {
                        "from": {"id": from_id},
                        "to": {"id": to_id},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": association.type_id,
                        },
                    }
                )
        return self._batch_reply(200, results, errors, started)

    @route("POST", "/crm/v4/associations/{from}/{to}/batch/create")
    @api()
    def associate_labelled(self, request: Request) -> Reply:
        from_type, to_type = self._pair(request)
        started = self.clock()
        inputs = self._inputs(self._body(request))
        results, errors = [], []
        with self._mutex:
            planned = []
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id") or "")
                to_id = str((item.get("to") or {}).get("id") or "")
                types = item.get("types") or []
                if not types:
                    raise self._refuse(400, "Each input needs at least one association type")
                kinds = [self._association_type(from_type.name, spec, to_type.name) for spec in types]
                planned.append((from_id, to_id, kinds))
            for from_id, to_id, kinds in planned:
                problem = self._endpoint_missing(from_type, from_id, to_type, to_id)
                if problem is not None:
                    errors.append(problem)
                    continue
                for association in kinds:
                    self._associate(association, from_id, to_id)
                results.append(self._labels_between(from_type, from_id, to_type, to_id))
        return self._batch_reply(201, results, errors, started)

    def _labels_between(self, from_type: ObjectType, from_id: str, to_type: ObjectType, to_id: str) -> dict[str, Any]:
        types = self._associations.get((from_type.name, from_id, to_type.name), {}).get(to_id, set())
        labels = sorted({label for t in types if (label := ASSOCIATIONS_BY_ID[(from_type.name, t)].label)})
        return {
            "fromObjectTypeId": from_type.type_id,
            "fromObjectId": int(from_id),
            "toObjectTypeId": to_type.type_id,
            "toObjectId": int(to_id),
            "labels": labels,
        }

    @route("POST", "/crm/v4/associations/{from}/{to}/batch/read")
    @api()
    def read_associations(self, request: Request) -> Reply:
        from_type, to_type = self._pair(request)
        started = self.clock()
        inputs = self._inputs(self._body(request), limit=MAX_ASSOCIATION_READ)
        results, errors = [], []
        with self._mutex:
            size = self.association_page_size
            for item in inputs:
                from_id = str(item.get("id") or "")
                after = _int_arg(str(item.get("after") or ""), 0)
                if after is None:
                    raise self._refuse(400, f"Invalid after for {from_id}: {item.get('after')}")
                targets = [
                    (i, t) for i, t in self._associated(from_type.name, from_id, to_type.name) if int(i) >= after
                ]
                if not targets:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "message": f"No {to_type.singular} is associated with {from_type.singular} {from_id}.",
                            "context": {"fromObjectId": [from_id]},
                        }
                    )
                    continue
                result: dict[str, Any] = {
                    "from": {"id": from_id},
                    "to": [
                        {"toObjectId": int(to_id), "associationTypes": self._types_json(from_type.name, types)}
                        for to_id, types in targets[:size]
                    ],
                }
                if len(targets) > size:  # only when there are more, as HubSpot documents
                    result["paging"] = {"next": {"after": targets[size][0]}}
                results.append(result)
        return self._batch_reply(200, results, errors, started)

    @route("POST", "/crm/v4/associations/{from}/{to}/batch/archive")
    @api()
    def archive_associations(self, request: Request) -> Reply:
        from_type, to_type = self._pair(request)
        inputs = self._inputs(self._body(request), limit=2000)
        with self._mutex:
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id") or "")
                for target in item.get("to") or []:
                    self._dissociate(from_type.name, from_id, to_type.name, str((target or {}).get("id") or ""))
        return Reply(204, None)

    @route("GET", "/crm/v4/objects/{type}/{id}/associations/{to}")
    @api()
    def list_associations(self, request: Request) -> Reply:
        from_type, to_type = self._type(request.params["type"]), self._type(request.params["to"])
        from_id = request.params["id"]
        limit = _int_arg(request.arg("limit"), DEFAULT_ASSOCIATION_LIMIT)
        after = _int_arg(request.arg("after"), 0)
        if limit is None or after is None or not 1 <= limit <= DEFAULT_ASSOCIATION_LIMIT:
            raise self._refuse(400, "limit must be between 1 and 500 and after a number")
        with self._mutex:
            targets = [(i, t) for i, t in self._associated(from_type.name, from_id, to_type.name) if int(i) >= after]
            results = [
                {"toObjectId": int(to_id), "associationTypes": self._types_json(from_type.name, types)}
                for to_id, types in targets[:limit]
            ]
        body: dict[str, Any] = {"results": results}
        if len(targets) > limit:
            next_after = targets[limit][0]
            body["paging"] = {
                "next": {"after": next_after, "link": f"{self.url}{request.path}?{urlencode({'after': next_after})}"}
            }
        return Reply(200, body)

    @route("PUT", "/crm/v4/objects/{type}/{id}/associations/{to}/{toId}")
    @api()
    def put_association(self, request: Request) -> Reply:
        from_type, to_type = self._type(request.params["type"]), self._type(request.params["to"])
        from_id, to_id = request.params["id"], request.params["toId"]
        try:
            specs = json.loads(request.body or b"[]")
        except ValueError:
            raise self._refuse(400, "Invalid input JSON: expected a list of association types") from None
        if not isinstance(specs, list) or not specs:
            raise self._refuse(400, "Invalid input JSON: expected a list of association types")
        with self._mutex:
            kinds = [self._association_type(from_type.name, spec, to_type.name) for spec in specs]
            problem = self._endpoint_missing(from_type, from_id, to_type, to_id)
            if problem is not None:
                raise self._refuse(400, problem["message"])
            for association in kinds:
                self._associate(association, from_id, to_id)
            return Reply(201, self._labels_between(from_type, from_id, to_type, to_id))

    @route("PUT", "/crm/v4/objects/{type}/{id}/associations/default/{to}/{toId}")
    @api()
    def put_default_association(self, request: Request) -> Reply:
        from_type, to_type = self._type(request.params["type"]), self._type(request.params["to"])
        from_id, to_id = request.params["id"], request.params["toId"]
        started = self.clock()
        with self._mutex:
            association = self._default_association(from_type, to_type)
            problem = self._endpoint_missing(from_type, from_id, to_type, to_id)
            if problem is not None:
                return self._batch_reply(200, [], [problem], started)
            self._associate(association, from_id, to_id)
            result = {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association.type_id},
            }
        return self._batch_reply(200, [result], [], started)

    @route("DELETE", "/crm/v4/objects/{type}/{id}/associations/{to}/{toId}")
    @api()
    def delete_association(self, request: Request) -> Reply:
        from_type, to_type = self._type(request.params["type"]), self._type(request.params["to"])
        with self._mutex:
            self._dissociate(from_type.name, request.params["id"], to_type.name, request.params["toId"])
        return Reply(204, None)

    # ------------------------------------------------------------------------------------------------- pipelines

    def _pipelines_of(self, request: Request) -> dict[str, Pipeline]:
        object_type = self._type(request.params["type"])
        if object_type.name not in PIPELINE_OBJECT_TYPES:
            raise self._refuse(400, f"Object type {object_type.type_id} ({object_type.name}) has no pipelines")
        return self._pipelines[object_type.name]

    def _pipeline(self, request: Request) -> Pipeline:
        pipeline_id = request.params["pipelineId"]
        pipeline = self._pipelines_of(request).get(pipeline_id)
        if pipeline is None or pipeline.archived:
            raise self._refuse(404, f"Unable to find pipeline {pipeline_id}", "OBJECT_NOT_FOUND")
        return pipeline

    @route("GET", "/crm/v3/pipelines/{type}")
    @api()
    def list_pipelines(self, request: Request) -> Reply:
        with self._mutex:
            pipelines = sorted(self._pipelines_of(request).values(), key=lambda p: (p.display_order, p.label))
            return Reply(200, {"results": [p.to_json() for p in pipelines if not p.archived]})

    @route("GET", "/crm/v3/pipelines/{type}/{pipelineId}")
    @api()
    def get_pipeline(self, request: Request) -> Reply:
        with self._mutex:
            return Reply(200, self._pipeline(request).to_json())

    @route("GET", "/crm/v3/pipelines/{type}/{pipelineId}/stages")
    @api()
    def list_stages(self, request: Request) -> Reply:
        with self._mutex:
            return Reply(200, {"results": self._pipeline(request).to_json()["stages"]})

    @route("GET", "/crm/v3/pipelines/{type}/{pipelineId}/stages/{stageId}")
    @api()
    def get_stage(self, request: Request) -> Reply:
        with self._mutex:
            pipeline = self._pipeline(request)
            stage = pipeline.stage(request.params["stageId"])
            if stage is None:
                raise self._refuse(
                    404,
                    f"Unable to find stage {request.params['stageId']} in pipeline {pipeline.id}",
                    "OBJECT_NOT_FOUND",
                )
            return Reply(200, stage.to_json())

    # ------------------------------------------------------------------------------------------------- admin

    @route("POST", "/_fake/reset")
    def admin_reset(self, request: Request) -> Reply:
        self.reset()
        return Reply(200, {"reset": True})

    @route("GET", "/_fake/state")
    def admin_state(self, request: Request) -> Reply:
        return Reply(200, {"counts": self.counts(), "config": self.config()})

    @route("GET", "/_fake/webhooks")
    def admin_webhooks(self, request: Request) -> Reply:
        with self._mutex:
            return Reply(200, {"events": list(self.events), "delivered": list(self.delivered)})

    @route("PATCH", "/_fake/contacts/{id}")
    def admin_edit_contact(self, request: Request) -> Reply:
        """An edit made by a person in HubSpot's UI: no token, no rate limit, webhooks with ``CRM_UI``."""
        object_type = OBJECT_TYPES["contacts"]
        try:
            body = self._body(request)
            raw = body.get("properties")
            if not isinstance(raw, dict):
                raise self._refuse(400, "Invalid input JSON: properties must be an object")
            with self._mutex:
                obj = self._find(object_type, request.params["id"], "hs_object_id")
                if obj is None:
                    raise self._refuse(404, "resource not found", "OBJECT_NOT_FOUND")
                clean, errors = self._validate(object_type, raw, creating=False)
                if errors:
                    raise self._refuse(400, self._invalid_message(errors))
                self._refuse_taken_email(object_type, clean, exclude=obj.id)
                self._update(object_type, obj, clean, source="CRM_UI")
                return Reply(200, self._project(obj, [], written=clean))
        except Refusal as refusal:
            return refusal.reply

    @route("POST", "/_fake/config")
    def admin_config(self, request: Request) -> Reply:
        try:
            body = self._body(request)
        except Refusal as refusal:
            return refusal.reply
        types: dict[str, Callable[[Any], Any]] = {
            "burst_limit": int,
            "burst_window": float,
            "daily_limit": int,
            "search_per_second": int,
            "search_cap": int,
            "search_lag": float,
            "webhook_url": lambda v: None if v in (None, "") else str(v),
            "client_secret": str,
        }
        unknown = sorted(set(body) - set(types))
        if unknown:
            return Reply(400, {"error": f"unknown settings: {', '.join(unknown)}", "settings": sorted(types)})
        with self._mutex:
            for name, value in body.items():
                setattr(self, name, types[name](value))
            return Reply(200, self.config())


# ------------------------------------------------------------------------------------------------ command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m leadpipe_local.fakes.hubspot", description="Serve a local HubSpot fake until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--webhook-url", default=None, help="where to POST webhook events (none: events are kept)")
    parser.add_argument("--token", default="pat-local-fake", help="the private-app token callers must send")
    parser.add_argument("--client-secret", default="fake-client-secret", help="key of the v3 webhook signatures")
    parser.add_argument("--portal-id", type=int, default=62515)
    parser.add_argument("--app-id", type=int, default=9001)
    parser.add_argument("--burst-limit", type=int, default=100, help="calls per 10-second window")
    parser.add_argument("--search-lag", type=float, default=0.0, help="seconds before writes show in search")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> FakeHubSpot:
    return FakeHubSpot(
        args.host,
        args.port,
        token=args.token,
        portal_id=args.portal_id,
        app_id=args.app_id,
        client_secret=args.client_secret,
        burst_limit=args.burst_limit,
        webhook_url=args.webhook_url,
        search_lag=args.search_lag,
    )


def main(argv: list[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Serves until Ctrl-C (or until ``stop`` is set), after printing where and with which credentials."""
    fake = build(parse_args(argv)).start()
    print(f"HubSpot fake serving at {fake.url}", flush=True)
    print(f"  token:         {fake.token}")
    print(f"  portal id:     {fake.portal_id}")
    print(f"  app id:        {fake.app_id}")
    print(f"  client secret: {fake.client_secret}")
    print(f"  webhooks:      {fake.webhook_url or '(none: events are kept, see GET /_fake/webhooks)'}")
    print("Ctrl-C to stop.", flush=True)
    waiter = stop or threading.Event()
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
