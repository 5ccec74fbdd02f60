"""A fake of an OpenAI-compatible Chat Completions endpoint, for the intelligence step.

``POST /v1/chat/completions`` answers in the documented shape (``id``, ``object: "chat.completion"``, ``created``,
``model``, ``choices[0].message.content`` holding the JSON, ``finish_reason``, ``usage``, ``system_fingerprint``)
with deterministic content derived from the contacts in the prompt: pain points from department, industry and size
templates, hooks from the first name, title and company (``FakeLlm.insight_for`` gives the expected answer for one
contact). A wrong key gets 401 with OpenAI's error body; ``rate_limit`` and ``quota_exhausted`` inject 429s with the
documented bodies and headers. ``mode`` (or ``queue`` for the next calls) makes the model misbehave: invalid JSON,
a schema-violating object, a sloppy answer (extra items, over-long items, an upper-cased, an unknown and a missing
contact id), a refusal, or JSON cut off at the token limit.

The fake reads the contacts from the user message (``{"contacts": [{"id": "c1", ...}, ...]}``, as
``leadpipe.enrichment.intelligence`` sends them) and the contact ids to answer for from the ``response_format``
schema's ``required`` list.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, get_args

from leadpipe_local.fakes.base import FakeServer, Fault, Reply, Request, route

Mode = Literal["ok", "sloppy", "invalid_json", "schema_violation", "not_object", "refusal", "truncated"]
MODES: tuple[Mode, ...] = get_args(Mode)

DEPARTMENT_PAINS: dict[str, str] = {
    "executive": "Growing revenue predictably without adding headcount",
    "sales": "Reps spend hours researching accounts instead of selling",
    "marketing": "Proving which campaigns actually create pipeline",
    "revenue_operations": "Keeping CRM data complete and current as lead volume grows",
    "customer_success": "Spotting churn risk early enough to act on it",
    "engineering": "Delivering the roadmap with a stretched team",
    "product": "Prioritising the roadmap with little reliable customer data",
    "data": "Reconciling inconsistent data from too many tools",
    "it": "Securing and integrating a growing number of SaaS tools",
    "operations": "Scaling processes without scaling costs",
    "finance": "Forecasting accurately while controlling spend",
    "hr": "Hiring fast enough to keep up with growth",
    "legal": "Reviewing contracts quickly without adding risk",
    "design": "Keeping a consistent experience across products",
}
INDUSTRY_PAINS: dict[str, str] = {
    "software": "Standing out in a crowded software market",
    "computer software": "Standing out in a crowded software market",
    "information technology": "Winning deals against larger IT vendors",
    "financial services": "Meeting compliance requirements while moving fast",
    "healthcare": "Adopting new tools within strict privacy rules",
    "manufacturing": "Digitising operations on the shop floor",
    "retail": "Protecting margins against rising acquisition costs",
    "logistics": "Absorbing volatile shipping costs",
    "education": "Doing more with tight, fixed budgets",
    "marketing and advertising": "Showing clients clear return on their spend",
}
SMALL = ("1-10", "11-50")
LARGE = ("1001-5000", "5001-10000", "10001+")


class FakeLlm(FakeServer):
    name = "llm"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = "sk-test-fake-llm-key-0001",
        snapshot: str = "2025-04-14",
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_key = api_key
        self.snapshot = snapshot  # the API answers with the dated model it resolved the alias to
        self.mode: Mode = "ok"
        self.modes: deque[Mode] = deque()  # per-call modes, used before ``mode``
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------------------------------------ control

    def queue(self, *modes: Mode) -> None:
        """The next calls (that pass auth and the fault injection) answer in these modes, in order."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        with self.lock:
            self.modes.extend(modes)

    def rate_limit(self, *, times: int = 1, retry_after: float | None = 2.0, reset: str = "2s") -> Fault:
        """429 "Rate limit reached ... on requests per min (RPM)" for the next ``times`` calls."""
        headers = {
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": "40000",
            "x-ratelimit-remaining-tokens": "39000",
            "x-ratelimit-reset-tokens": "1.5s",
        }
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        body = _error(
            "Rate limit reached for gpt-4.1-mini in organization org-fake on requests per min (RPM): Limit 3, "
            "Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
            "to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
        return self.inject(Fault(status=429, body=body, headers=headers, times=times, path=r"/chat/completions"))

    def quota_exhausted(self, *, times: int = 1) -> Fault:
        """429 insufficient_quota: out of credits; waiting does not help."""
        body = _error(
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        )
        return self.inject(Fault(status=429, body=body, times=times, path=r"/chat/completions"))

    @staticmethod
    def insight_for(contact: dict[str, Any]) -> dict[str, list[str]]:
        """The deterministic answer for one contact of the prompt."""
        company = contact.get("company_name") or "your company"
        industry = (contact.get("industry") or "").lower()
        department = contact.get("department") or ""
        size = contact.get("employee_range") or ""
        pains = [
            DEPARTMENT_PAINS.get(department, "Finding reliable data to prioritise the team's work"),
            INDUSTRY_PAINS.get(
                industry, f"Keeping up with change in {industry}" if industry else "Competing for attention"
            ),
            "Doing more with a small team and a tight budget"
            if size in SMALL
            else "Coordinating teams and tools across the organisation"
            if size in LARGE
            else "Keeping processes efficient through fast growth",
        ]
        greeting = contact.get("first_name") or "Hi"
        role = contact.get("title") or "your role"
        hooks = [
            f"{greeting}, how is {company} tackling this quarter's priorities?",
            f"Ideas that worked for other teams in {industry or 'your market'}",
            f"A quick thought for someone working as {role}",
        ]
        return {"pain_points": pains, "hooks": hooks}

    # ------------------------------------------------------------------------------------------------ serving

    @route("POST", "/v1/chat/completions")
    def chat_completions(self, request: Request) -> Reply:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[len("Bearer ") :].strip():
            return Reply(
                401,
                _error(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                    None,
                ),
            )
        given = authorization[len("Bearer ") :].strip()
        if given != self.api_key:
            return Reply(
                401,
                _error(
                    f"Incorrect API key provided: {_mask(given)}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
        try:
            body = request.json()
        except ValueError:
            return Reply(400, _error("We could not parse the JSON body of your request.", "invalid_request_error"))
        if not isinstance(body, dict):
            return Reply(400, _error("The request body must be a JSON object.", "invalid_request_error"))
        for name in ("model", "messages"):
            if not body.get(name):
                return Reply(
                    400,
                    _error(
                        f"Missing required parameter: '{name}'.",
                        "invalid_request_error",
                        "missing_required_parameter",
                        param=name,
                    ),
                )
        contacts, ids = _read_prompt(body)
        with self.lock:
            mode = self.modes.popleft() if self.modes else self.mode
        content, finish_reason, refusal = _answer(mode, contacts, ids, self.insight_for)
        model = f"{body['model']}-{self.snapshot}" if self.snapshot else str(body["model"])
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"] if isinstance(m, dict)) // 4
        completion_tokens = len(content or refusal or "") // 4
        number = next(self._ids)
        return Reply(
            200,
            {
                "id": f"chatcmpl-fake{number:06d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
            },
            {
                "x-request-id": f"req_fake{number:06d}",
                "openai-processing-ms": "42",
                "x-ratelimit-limit-requests": "5000",
                "x-ratelimit-remaining-requests": "4999",
                "x-ratelimit-reset-requests": "12ms",
            },
        )


def _error(message: str, kind: str, code: str | None = None, *, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _mask(key: str) -> str:
    """How OpenAI echoes a wrong key: the first and last few characters."""
    return key if len(key) <= 8 else f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def _read_prompt(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The contacts in the last user message and the contact ids the schema requires."""
    contacts: list[dict[str, Any]] = []
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            try:
                data = json.loads(message.get("content") or "")
            except (TypeError, ValueError):
                data = None
            if isinstance(data, dict) and isinstance(data.get("contacts"), list):
                contacts = [c for c in data["contacts"] if isinstance(c, dict) and isinstance(c.get("id"), str)]
            break
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    ids = [i for i in schema.get("required") or [] if isinstance(i, str)] or [c["id"] for c in contacts]
    return contacts, ids


def _answer(
    mode: str,
    contacts: list[dict[str, Any]],
    ids: list[str],
    insight_for: Callable[[dict[str, Any]], dict[str, list[str]]],
) -> tuple[str | None, str, str | None]:
    """(content, finish_reason, refusal) for a mode."""
    by_id = {c["id"]: c for c in contacts}
    answer = {contact_id: insight_for(by_id.get(contact_id, {"id": contact_id})) for contact_id in ids}
    if mode == "invalid_json":
        return "Sure! Here are the insights you asked for: {" + json.dumps(answer)[1:40], "stop", None
    if mode == "truncated":
        return json.dumps(answer)[:60], "length", None
    if mode == "refusal":
        return None, "stop", "I'm sorry, but I can't help with that request."
    if mode == "not_object":
        return json.dumps([{"id": i, **v} for i, v in answer.items()]), "stop", None
    if mode == "schema_violation":
        broken = {i: {"pain_points": " / ".join(v["pain_points"]), "hooks": 3} for i, v in answer.items()}
        return json.dumps(broken), "stop", None
    if mode == "sloppy":
        sloppy: dict[str, Any] = {}
        for index, (contact_id, value) in enumerate(answer.items()):
            if index == len(answer) - 1 and len(answer) > 1:
                break  # the last contact is left out
            key = contact_id.upper() if index == 0 else contact_id
            sloppy[key] = {
                "pain_points": [("Budget pressure " * 16).strip(), *value["pain_points"], "A fourth pain point"],
                "hooks": ["   ", *value["hooks"], value["hooks"][0], "A fourth hook"],
                "confidence": "high",
            }
        stranger = next(f"c{n}" for n in itertools.count(len(answer) + 1) if f"c{n}" not in answer)
        sloppy[stranger] = {"pain_points": ["Not asked about"], "hooks": []}  # a contact nobody asked about
        return json.dumps(sloppy), "stop", None
    return json.dumps(answer), "stop", None
