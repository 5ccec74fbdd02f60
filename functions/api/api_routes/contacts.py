"""/contacts: list with filters and cursor pagination, get one."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import deps
from api_routes.schemas import ContactList, ContactView
from leadpipe.errors import BadRequest, NotFound
from leadpipe.models import PipelineStatus
from leadpipe.normalize import FieldProblem, normalize_domain, normalize_email

router = APIGatewayHttpRouter()


@router.get("/contacts", summary="List contacts, newest first", tags=["contacts"])
def list_contacts(
    status: Annotated[PipelineStatus | None, Query(description="pipeline status")] = None,
    domain: Annotated[str | None, Query(max_length=253, description="company domain")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
) -> ContactList:
    if domain:
        try:
            domain = normalize_domain(domain)
        except FieldProblem as exc:
            raise BadRequest(exc.message, code="invalid_domain") from exc
    page = deps.contacts().find(
        router.context["workspace"],
        status=status,
        domain=domain,
        tag=tag.strip().lower() if tag else None,
        limit=limit,
        cursor=cursor,
    )
    return ContactList(items=[ContactView.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/contacts/<email>", summary="One contact, with its sources", tags=["contacts"])
def get_contact(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
) -> ContactView:
    try:
        normalized = normalize_email(unquote(email))
    except FieldProblem as exc:
        raise BadRequest(f"not a valid email: {exc.message}", code="invalid_email") from exc
    contact = deps.contacts().get(router.context["workspace"], normalized)
    if contact is None:
        raise NotFound(f"no contact {normalized}", code="contact_not_found")
    return ContactView.of(contact)
