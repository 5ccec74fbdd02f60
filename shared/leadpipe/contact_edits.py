"""Editing contacts through the API: tags, custom fields, the do-not-enrich flag and the lifecycle stage.

The values follow the import's rules (``normalize.py``, ``csvfile.py``), so a tag or a custom field set here is
the same as one read from a CSV column:

- a tag is trimmed, its whitespace collapsed and lower-cased; at most ``MAX_TAG_LENGTH`` characters, no ``, ; |``
  (the import splits a tags cell on them), at most ``MAX_TAGS`` per contact;
- a custom-field key is what the import makes of a column header (``custom_key``: ``"Lead Source"`` becomes
  ``lead_source``): lower-case ASCII letters, digits and ``_``, at most 64 characters. A key in any other form is
  refused with the form to use, rather than silently changed; at most ``MAX_CUSTOM_FIELDS`` per contact;
- a custom value is trimmed, control characters dropped and whitespace collapsed (``clean_text``), non-empty, at
  most ``LIMITS.custom`` characters. Removing a field is ``remove``, not an empty value.

Every write goes through ``ContactRepository.upsert`` (read, change, write conditioned on the version read), which
also keeps the tag member items that list contacts by tag in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.csvfile import MAX_CUSTOM_COLUMNS
from leadpipe.errors import BadRequest, NotFound
from leadpipe.models import Contact, LifecycleStage
from leadpipe.normalize import (
    LIMITS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    FieldProblem,
    clean_text,
    custom_key,
    normalize_email,
)

MAX_CUSTOM_FIELDS = MAX_CUSTOM_COLUMNS
MAX_CHANGES = 50  # tags added + removed, or custom fields set + removed, in one request
MAX_BULK_EMAILS = 100
MAX_CUSTOM_FILTERS = 5
TAG_SEPARATORS = ",;|"

# ---------------------------------------------------------------------------------------------------- values


def normalize_tag(raw: str) -> str:
    tag = clean_text(raw).lower()
    if not tag:
        raise ValueError("a tag cannot be empty")
    if any(c in tag for c in TAG_SEPARATORS):
        raise ValueError(f"tag {tag[:70]!r} contains one of {' '.join(TAG_SEPARATORS)} (they separate tags)")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"tag '{tag[:20]}…' is {len(tag)} characters long (at most {MAX_TAG_LENGTH})")
    return tag


def check_custom_key(raw: str) -> str:
    key = raw.strip()
    canonical = custom_key(key)
    if not key or key != canonical:
        hint = f": use '{canonical}'" if key and canonical != "column" else ""
        raise ValueError(
            f"custom field key {raw[:70]!r} is not valid{hint} (lower-case letters, digits and _, at most 64, "
            "as the import names a column)"
        )
    return key


def normalize_custom_value(raw: str) -> str:
    value = clean_text(raw)
    if not value:
        raise ValueError("the value is empty: to clear a field, list its key in 'remove'")
    if len(value) > LIMITS.custom:
        raise ValueError(f"the value is {len(value)} characters long (at most {LIMITS.custom})")
    return value


def parse_custom_filter(raw: str) -> tuple[str, str]:
    """``key:value`` (a query parameter) -> (key, value), with the same rules as a value being set."""
    key, sep, value = raw.partition(":")
    if not sep:
        raise FieldProblem("invalid_custom_filter", f"{raw[:70]!r} is not key:value (e.g. lead_source:webinar)")
    try:
        return check_custom_key(key), normalize_custom_value(value)
    except ValueError as exc:
        raise FieldProblem("invalid_custom_filter", str(exc)) from exc


Tag = Annotated[StrictStr, Field(max_length=1000), AfterValidator(normalize_tag)]
CustomKey = Annotated[StrictStr, Field(max_length=200), AfterValidator(check_custom_key)]
CustomValue = Annotated[StrictStr, Field(max_length=20_000), AfterValidator(normalize_custom_value)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _tag_lists(add: list[str], remove: list[str]) -> tuple[list[str], list[str]]:
    """Tags to add and remove, each once; a tag in both, or too many changes, is refused."""
    add, remove = _unique(add), _unique(remove)
    both = sorted(set(add) & set(remove))
    if both:
        raise ValueError(f"tag(s) both added and removed: {', '.join(both)}")
    if len(add) + len(remove) > MAX_CHANGES:
        raise ValueError(f"{len(add) + len(remove)} tag changes (at most {MAX_CHANGES} per request)")
    return add, remove


# ---------------------------------------------------------------------------------------------------- requests


class TagChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[Tag] = Field(default_factory=list, max_length=MAX_CHANGES, description="tags to add")
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_CHANGES, description="tags to take off")

    @model_validator(mode="after")
    def _consistent(self) -> TagChanges:
        self.add, self.remove = _tag_lists(self.add, self.remove)
        return self


class CustomChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[CustomKey, CustomValue] = Field(
        default_factory=dict, max_length=MAX_CHANGES, description="custom fields to set: key -> value"
    )
    remove: list[CustomKey] = Field(default_factory=list, max_length=MAX_CHANGES, description="keys to clear")

    @model_validator(mode="after")
    def _consistent(self) -> CustomChanges:
        self.remove = _unique(self.remove)
        both = sorted(set(self.set) & set(self.remove))
        if both:
            raise ValueError(f"custom field(s) both set and removed: {', '.join(both)}")
        if len(self.set) + len(self.remove) > MAX_CHANGES:
            raise ValueError(f"{len(self.set) + len(self.remove)} custom field changes (at most {MAX_CHANGES})")
        return self


class ContactPatch(BaseModel):
    """The body of PATCH /contacts/{email}: only what it names changes."""

    model_config = ConfigDict(extra="forbid")

    tags: TagChanges | None = None
    custom: CustomChanges | None = None
    do_not_enrich: StrictBool | None = Field(
        None, description="true: enrichment skips this contact (status skipped, reason do_not_enrich)"
    )
    lifecycle: LifecycleStage | None = Field(
        None,
        description="set the stage explicitly (e.g. disqualified, or new to requalify); engagements and "
        "enrichment only ever move a contact forward, and never out of disqualified",
    )

    @model_validator(mode="after")
    def _something(self) -> ContactPatch:
        if self.tags is None and self.custom is None and self.do_not_enrich is None and self.lifecycle is None:
            raise ValueError("nothing to change: give tags, custom, do_not_enrich or lifecycle")
        return self


class BulkTagRequest(BaseModel):
    """The body of POST /contacts/tags: the same tag changes on up to 100 contacts."""

    model_config = ConfigDict(extra="forbid")

    emails: list[Annotated[StrictStr, Field(max_length=400)]] = Field(
        min_length=1, max_length=MAX_BULK_EMAILS, description=f"at most {MAX_BULK_EMAILS} contacts"
    )
    add: list[Tag] = Field(default_factory=list, max_length=MAX_CHANGES)
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_CHANGES)

    @model_validator(mode="after")
    def _consistent(self) -> BulkTagRequest:
        if not self.add and not self.remove:
            raise ValueError("nothing to change: give add and/or remove")
        self.add, self.remove = _tag_lists(self.add, self.remove)
        return self


class InvalidEmail(BaseModel):
    value: str
    reason: str


class RejectedContact(BaseModel):
    email: str
    code: str
    reason: str


class BulkTagResult(BaseModel):
    updated: list[str] = Field(description="contacts whose tags changed")
    unchanged: list[str] = Field(description="contacts that already had (or lacked) these tags")
    not_found: list[str]
    invalid: list[InvalidEmail]
    rejected: list[RejectedContact] = Field(description="contacts the change would take past a limit")


# ---------------------------------------------------------------------------------------------------- changes


def _tag_changes(contact: Contact, changes: TagChanges, now: datetime) -> None:
    for tag in changes.remove:
        contact.tags.pop(tag, None)
    for tag in changes.add:
        contact.tags.setdefault(tag, now)  # a tag already there keeps the time it was first added
    if len(contact.tags) > MAX_TAGS:
        raise BadRequest(
            f"{contact.email} would have {len(contact.tags)} tags (at most {MAX_TAGS})",
            code="too_many_tags",
            details=[{"location": "body.tags.add", "message": f"at most {MAX_TAGS} tags per contact"}],
        )


def apply_patch(contact: Contact, patch: ContactPatch, now: datetime) -> Contact | Unchanged:
    """The contact with ``patch`` applied, or ``UNCHANGED`` when it changes nothing. Pure (``now`` given)."""
    after = contact.model_copy(deep=True)
    if patch.tags is not None:
        _tag_changes(after, patch.tags, now)
    if patch.custom is not None:
        for key in patch.custom.remove:
            after.custom.pop(key, None)
        after.custom.update(patch.custom.set)
        if len(after.custom) > MAX_CUSTOM_FIELDS:
            raise BadRequest(
                f"{contact.email} would have {len(after.custom)} custom fields (at most {MAX_CUSTOM_FIELDS})",
                code="too_many_custom_fields",
                details=[{"location": "body.custom.set", "message": f"at most {MAX_CUSTOM_FIELDS} per contact"}],
            )
    if patch.do_not_enrich is not None:
        after.do_not_enrich = patch.do_not_enrich
    if patch.lifecycle is not None:
        after.lifecycle = patch.lifecycle
    same = (
        set(after.tags) == set(contact.tags)
        and after.custom == contact.custom
        and after.do_not_enrich == contact.do_not_enrich
        and after.lifecycle == contact.lifecycle
    )
    if same:
        return UNCHANGED
    after.updated_at = now
    return after


def update_contact(
    contacts: ContactRepository, workspace: str, email: str, patch: ContactPatch, now: datetime
) -> Contact:
    """PATCH one stored contact; 404 when there is none, 400 when the result would pass a limit."""

    def mutate(_: str, stored: Contact | None) -> Contact | Unchanged:
        return UNCHANGED if stored is None else apply_patch(stored, patch, now)

    contact = contacts.upsert(workspace, [email], mutate).get(email)
    if contact is None:
        raise NotFound(f"no contact {email}", code="contact_not_found")
    return contact


def bulk_tags(contacts: ContactRepository, workspace: str, request: BulkTagRequest, now: datetime) -> BulkTagResult:
    """The same tag changes on many contacts: one batch read, then transactional batch writes (``upsert``).
    A contact the change would take past ``MAX_TAGS`` is left as it was and reported in ``rejected``."""
    invalid: list[InvalidEmail] = []
    wanted: list[str] = []
    for raw in request.emails:
        try:
            wanted.append(normalize_email(raw))
        except FieldProblem as exc:
            invalid.append(InvalidEmail(value=raw[:254], reason=exc.message))
    wanted = _unique(wanted)
    changes = TagChanges(add=request.add, remove=request.remove)
    rejected: dict[str, RejectedContact] = {}
    changed: dict[str, bool] = {}  # what the last round of ``mutate`` decided, per contact

    def mutate(email: str, stored: Contact | None) -> Contact | Unchanged:
        rejected.pop(email, None)
        changed[email] = False
        if stored is None:
            return UNCHANGED
        after = stored.model_copy(deep=True)
        try:
            _tag_changes(after, changes, now)
        except BadRequest as exc:
            rejected[email] = RejectedContact(email=email, code=exc.code, reason=exc.message)
            return UNCHANGED
        if set(after.tags) == set(stored.tags):
            return UNCHANGED
        changed[email] = True
        after.updated_at = now
        return after

    result = contacts.upsert(workspace, wanted, mutate)
    updated = [e for e in wanted if result.get(e) is not None and changed.get(e)]
    unchanged = [e for e in wanted if result.get(e) is not None and not changed.get(e) and e not in rejected]
    return BulkTagResult(
        updated=updated,
        unchanged=unchanged,
        not_found=[e for e in wanted if result.get(e) is None],
        invalid=invalid,
        rejected=[rejected[e] for e in wanted if e in rejected],
    )
