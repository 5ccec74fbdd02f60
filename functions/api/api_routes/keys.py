"""/keys: the caller's workspace's API keys — list, create (shown once), revoke."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from api_routes import deps

router = APIGatewayHttpRouter()


class NewKey(BaseModel):
    name: str = Field("", max_length=80, description="what the key is for, to recognise it in the listing")


@router.get("/keys", summary="The workspace's API keys (never the keys themselves)", tags=["keys"])
def list_keys() -> dict[str, Any]:
    records = deps.api_keys().list(router.context["workspace"])
    return {"items": [r.view() for r in records]}


@router.post("/keys", summary="Create an API key for this workspace; the key is shown once", tags=["keys"])
def create_key(body: Annotated[NewKey, Body()]) -> Response[dict[str, Any]]:
    key, record = deps.api_keys().create(router.context["workspace"], body.name)
    return Response(status_code=201, content_type="application/json", body=record.view() | {"api_key": key})


@router.delete("/keys/<key_id>", summary="Revoke one of this workspace's API keys", tags=["keys"])
def revoke_key(key_id: Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")]) -> dict[str, Any]:
    record = deps.api_keys().revoke(router.context["workspace"], key_id)
    deps.key_resolver().forget(record.digest)  # other containers stop accepting it within their cache time
    return record.view()
