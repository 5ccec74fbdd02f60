"""The ``leadpipe`` command.

Local stack:  ``leadpipe up``, ``leadpipe demo``.
API clients:  ``leadpipe import FILE``, ``leadpipe jobs``, ``leadpipe job ID``, ``leadpipe contacts``,
              ``leadpipe contact EMAIL``, ``leadpipe status``, ``leadpipe summary``, ``leadpipe activity``,
              ``leadpipe settings`` — against ``--api-url``
              (default the local stack, or $LEADPIPE_API_URL; a deployed stack's ApiUrl output works too, signed
              with your AWS credentials).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from leadpipe_local.client import DEFAULT_API_URL, DEV_KEY_FILE, ApiClient, ApiError, write_dev_key
from leadpipe_local.render import Progress, contacts_table, row_errors, table

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_template(given: str | None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("LEADPIPE_TEMPLATE"):
        return Path(os.environ["LEADPIPE_TEMPLATE"])
    for directory in [Path.cwd(), *Path.cwd().parents]:
        if (directory / "template.yaml").exists():
            return directory / "template.yaml"
    return REPO_ROOT / "template.yaml"


def _params(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param expects Key=Value, got {item!r}")
        out[key] = value
    return out


# ------------------------------------------------------------------------------------------------ commands


def cmd_up(args: argparse.Namespace) -> int:
    from leadpipe_local.runtime import LocalRuntime

    template = find_template(args.template)
    runtime = LocalRuntime(
        template,
        parameters=_params(args.param),
        host=args.host,
        api_port=args.port,
        aws_port=args.aws_port,
        state_dir=Path(args.state_dir),
        hubspot_port=args.hubspot_port,
    )
    runtime.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bucket = runtime.provisioned.ref("UploadsBucket") if runtime.provisioned else "?"
    print("leadpipe local stack is up (moto as AWS, resources from " + str(template) + ")")
    print(f"  HTTP API    {runtime.api_url}    OpenAPI: {runtime.api_url}/openapi.json")
    print(f"  console     {runtime.api_url}/    the web console: sign in with the API key below")
    dev_key = runtime.api_key("default", "leadpipe up (development)")
    state_dir = Path(args.state_dir)
    write_dev_key(state_dir / DEV_KEY_FILE.name, runtime.api_url, dev_key, "default")
    (state_dir / STACK_FILE).write_text(
        json.dumps({"aws_endpoint": runtime.aws_endpoint, "state_table": runtime.provisioned.ref("StateTable")})
        if runtime.provisioned
        else "{}"
    )
    print(f"  API key     {dev_key}")
    print(f"              workspace default; saved to {state_dir / DEV_KEY_FILE.name} for leadpipe commands;")
    print("              send it as 'Authorization: Bearer <key>' (or x-api-key). More: leadpipe keys create")
    print(f"  AWS (moto)  {runtime.aws_endpoint}    e.g. AWS_ENDPOINT_URL={runtime.aws_endpoint} aws s3 ls")
    print(f"  uploads     s3://{bucket}/incoming/   (drop CSV files here to import them)")
    if runtime.hubspot is not None:
        print(
            f"  HubSpot     {runtime.hubspot.url}   (local fake; token {runtime.hubspot.token}; "
            f"edit contacts as a person would: PATCH {runtime.hubspot.url}/_fake/contacts/ID)"
        )
    for name, pool in runtime.pools.items():
        sources = [r.route_key for r in runtime.routes if r.function == name]
        sources += [
            f"SQS {s.queue_url.rsplit('/', 1)[-1]} (batch {s.batch_size})"
            for s in runtime.sqs_sources
            if s.function == name
        ]
        sources += [f"schedule {s.expression}" for s in runtime.schedules if s.function == name]
        print(f"  {name:<16}{len(sources)} event source(s); cold start {pool.cold_starts_ms[-1]:.0f} ms")
    print(f"  logs        {runtime.state_dir / 'logs'}/")
    print("Press Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        stop.wait()
    finally:
        print("\nstopping…")
        (state_dir / STACK_FILE).unlink(missing_ok=True)
        runtime.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from leadpipe_local.demo import DemoFailed, run_demo

    template = find_template(args.template)
    csv_path = Path(args.file) if args.file else template.parent / "examples" / "contacts.csv"
    try:
        run_demo(template, csv_path, port=args.port, state_dir=Path(args.state_dir), serve=args.serve)
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run one function once with an event file, in a fresh local stack (what ``sam local invoke`` does, without
    Docker)."""
    from leadpipe_local.runtime import InvokeError, LocalRuntime

    event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    with LocalRuntime(find_template(args.template), api_port=0, state_dir=Path(args.state_dir)) as runtime:
        if args.function not in runtime.pools:
            print(f"error: no function {args.function}; the template has {', '.join(runtime.pools)}", file=sys.stderr)
            return 2
        http = event.get("requestContext", {}).get("http") if isinstance(event, dict) else None
        headers = event.get("headers") if isinstance(event, dict) else None
        if http and isinstance(headers, dict) and not {"authorization", "x-api-key"} & {h.lower() for h in headers}:
            # the fresh stack has no keys yet: give the event one of its default workspace, as a caller would
            headers["authorization"] = f"Bearer {runtime.api_key('default', 'leadpipe invoke')}"
            print("(the event carries no API key: added a new key of this stack's default workspace)", file=sys.stderr)
        try:
            result = runtime.invoke(args.function, event)
        except InvokeError as exc:
            print(f"{args.function} failed: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    remote = args.hubspot or args.lemlist
    if bool(remote) == bool(args.file):
        print("error: give a CSV file, or --hubspot, or --lemlist CAMPAIGN_ID", file=sys.stderr)
        return 2
    path = Path(args.file) if args.file else None
    if path is not None and not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return 2
    with ApiClient(args.api_url) as api:
        if path is not None:
            job = api.import_file(path, upload=True if args.upload else None)
        else:
            job = api.import_from("hubspot") if args.hubspot else api.import_from("lemlist", args.lemlist)
        if args.no_wait:
            _print(args, job, f"job {job['job_id']} {job['status']}")
            return 0
        what = path.name if path is not None else ("the HubSpot portal" if args.hubspot else f"campaign {args.lemlist}")
        print(f"job {job['job_id']} ({job['source']}): {what}", file=sys.stderr)
        job = api.wait_job(job["job_id"], on_progress=None if args.json else Progress(sys.stderr))
        if args.json:
            _print(args, job, "")
        else:
            _print_job(job)
        return 1 if job["status"] == "failed" else 0


def _print_job(job: dict[str, Any]) -> None:
    c = job["counts"]
    what = job["filename"] or job.get("campaign_id") or "portal"
    print(f"job {job['job_id']}  {job['status']}  ({job['source']}: {what})")
    print(
        f"  rows {c['rows_read']}  valid {c['valid']}  invalid {c['invalid']}  new {c['imported']}  "
        f"merged {c['merged']}  blank {c['blank']}"
    )
    if job.get("error"):
        print(f"  error: {job['error']['code']}: {job['error']['message']}")
    for warning in job.get("warnings") or []:
        print(f"  warning: {warning}")
    if job["errors"]:
        print(row_errors(job))


def cmd_enrich(args: argparse.Namespace) -> int:
    selector = {k: v for k, v in (("status", args.status), ("tag", args.tag), ("domain", args.domain)) if v}
    if bool(args.emails) == bool(selector):
        print("error: give emails, or one of --status/--tag/--domain", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"cache": not args.no_cache, "includeIntelligence": args.intelligence}
    if args.min_quality is not None:
        options["minQuality"] = args.min_quality
    with ApiClient(args.api_url) as api:
        accepted = api.enrich(args.emails or None, filter=selector or None, limit=args.limit, options=options)
        lines = [f"request {accepted['request_id']}: {accepted['queued']} contact(s) queued"]
        lines += [f"  not found: {e}" for e in accepted["not_found"]]
        lines += [f"  invalid: {i['value']!r} ({i['reason']})" for i in accepted["invalid"]]
        if args.wait and accepted["request_id"] and args.emails:
            done = _wait_enriched(api, accepted, args.emails)
            lines.append(contacts_table(done, ["email", "status", "quality", "status_reason"]))
        _print(args, accepted, "\n".join(lines))
    return 0


def _wait_enriched(
    api: ApiClient, accepted: dict[str, Any], emails: list[str], timeout: float = 300
) -> list[dict[str, Any]]:
    import time

    wanted = {e.strip().lower() for e in emails} - set(accepted["not_found"])
    deadline = time.monotonic() + timeout
    while True:
        contacts = [api.contact(e) for e in sorted(wanted)]
        finished = [
            c
            for c in contacts
            if (c.get("enrichment_meta") or {}).get("request_id") == accepted["request_id"]
            and c["status"] in {"enriched", "failed", "skipped"}
        ]
        if len(finished) == len(contacts) or time.monotonic() > deadline:
            return contacts
        time.sleep(0.5)


def cmd_sync(args: argparse.Namespace) -> int:
    selector = {k: v for k, v in (("status", args.status), ("tag", args.tag), ("domain", args.domain)) if v}
    if bool(args.emails) == bool(selector):
        print("error: give emails, or one of --status/--tag/--domain", file=sys.stderr)
        return 2
    turned_off = {
        "createIfNew": args.no_create,
        "updateIfExists": args.no_update,
        "associateCompany": args.no_company,
        "logActivity": args.no_activity,
        "deduplicate": args.no_dedupe,
    }
    options = {name: False for name, off in turned_off.items() if off} or None
    with ApiClient(args.api_url) as api:
        if options:  # the others keep the workspace's defaults
            defaults = api.sync_settings()["options"]
            options = {**{k: defaults[k] for k in turned_off}, **options}
        accepted = api.sync(args.emails or None, filter=selector or None, limit=args.limit, options=options)
        lines = [f"request {accepted['request_id']}: {accepted['queued']} contact(s) queued for HubSpot"]
        lines += [f"  not found: {e}" for e in accepted["not_found"]]
        lines += [f"  invalid: {i['value']!r} ({i['reason']})" for i in accepted["invalid"]]
        if args.wait and accepted["request_id"] and args.emails:
            done = _wait_synced(api, accepted, args.emails)
            rows = [
                (
                    c["email"],
                    c["status"],
                    (c.get("hubspot") or {}).get("contact_id") or "",
                    (c.get("hubspot") or {}).get("company_id") or "",
                    c["status_reason"] or ((c.get("failure") or {}).get("error") or ""),
                )
                for c in done
            ]
            lines.append(table(rows, ["email", "status", "HubSpot contact", "HubSpot company", "reason"]))
        _print(args, accepted, "\n".join(lines))
    return 0


def _wait_synced(
    api: ApiClient, accepted: dict[str, Any], emails: list[str], timeout: float = 300
) -> list[dict[str, Any]]:
    import time

    wanted = {e.strip().lower() for e in emails} - set(accepted["not_found"])
    deadline = time.monotonic() + timeout
    while True:
        contacts = [api.contact(e) for e in sorted(wanted)]
        finished = [
            c
            for c in contacts
            if (c.get("hubspot") or {}).get("request_id") == accepted["request_id"] and c["status"] != "syncing"
        ]
        if len(finished) == len(contacts) or time.monotonic() > deadline:
            return contacts
        time.sleep(0.5)


def cmd_sync_log(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        entries = api.sync_log(limit=args.limit)
    rows = [
        (
            e["at"][:19],
            e["request_id"],
            e["created"],
            e["updated"],
            e["unchanged"],
            e["failed"],
            e["companies_created"],
            e["associations"],
            e["notes"],
            e["hubspot_calls"],
            e["throttled"],
        )
        for e in entries
    ]
    headers = ["at", "request", "created", "updated", "unchanged", "failed", "companies", "assoc", "notes", "calls"]
    text = table(rows, [*headers, "429s"])
    problems = sorted({p for e in entries for p in e["mapping_problems"]})
    errors = [f"  {err['email']}: {err['error']}" for e in entries for err in e["errors"]]
    if problems:
        text += "\nmapping problems:\n" + "\n".join(f"  {p}" for p in problems)
    if errors:
        text += "\nerrors:\n" + "\n".join(errors)
    _print(args, entries, text)
    return 0


def cmd_hubspot_fake(args: argparse.Namespace) -> int:
    from leadpipe_local.fakes.hubspot import main as fake_main

    argv = ["--port", str(args.port), "--host", args.host]
    if args.webhook_url:
        argv += ["--webhook-url", args.webhook_url]
    fake_main(argv)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        jobs = api.jobs(limit=args.limit)
        rows = [
            (
                j["job_id"],
                j["source"],
                j["filename"],
                j["status"],
                j["counts"]["rows_read"],
                j["counts"]["imported"],
                j["counts"]["merged"],
                j["counts"]["invalid"],
                j["created_at"][:19],
            )
            for j in jobs
        ]
        _print(
            args,
            jobs,
            table(rows, ["job", "source", "file", "status", "rows", "new", "merged", "invalid", "created"]),
        )
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        job = api.job(args.job_id)
        if args.json:
            _print(args, job, "")
        else:
            _print_job(job)
    return 0


def cmd_contacts(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        items: list[dict[str, Any]] = []
        cursor = args.cursor
        while True:
            page = api.contacts(
                status=args.status,
                domain=args.domain,
                tag=args.tag,
                custom=args.custom,
                limit=args.limit,
                cursor=cursor,
            )
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not args.all or not cursor:
                break
        text = contacts_table(items, ["email", "name", "company", "title", "domain", "status", "tags"])
        if cursor and not args.all:
            text += f"\n(more: --cursor {cursor})"
        _print(args, {"items": items, "next_cursor": cursor}, text)
    return 0


def cmd_contact(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        contact = api.contact(args.email)
        if args.json:
            _print(args, contact, "")
            return 0
        fields = [
            "email",
            "first_name",
            "last_name",
            "company",
            "title",
            "phone",
            "linkedin",
            "website",
            "domain",
            "country",
            "city",
            "tags",
            "status",
            "lifecycle",
            "quality",
            "created_at",
            "updated_at",
        ]
        print(
            table(
                [(f, contact.get(f)) for f in fields] + [(f"custom.{k}", v) for k, v in contact["custom"].items()],
                ["field", "value"],
            )
        )
        print()
        print(
            table(
                [(s["source"], s["ref"], s["row"], s["effect"], s["at"][:19]) for s in contact["sources"]],
                ["source", "file", "row", "effect", "at"],
            )
        )
    return 0


STACK_FILE = "stack.json"  # written by `leadpipe up`: where the running local stack's AWS (moto) and tables are


def _key_store(args: argparse.Namespace) -> Any:
    """The API key store of a deployed stack (``--stack``: its StateTableName output, your AWS credentials) or of
    the local stack that ``leadpipe up`` is running."""
    import boto3

    from leadpipe.apikeys import ApiKeyStore

    if args.stack:
        region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        cfn = boto3.client("cloudformation", region_name=region)
        try:
            stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
        except Exception as exc:
            raise SystemExit(f"cannot read stack {args.stack}: {exc}") from exc
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if "StateTableName" not in outputs:
            raise SystemExit(f"stack {args.stack} has no StateTableName output: is it a leadpipe stack?")
        return ApiKeyStore(boto3.client("dynamodb", region_name=region), outputs["StateTableName"])
    stack_file = Path(args.state_dir) / STACK_FILE
    try:
        local = json.loads(stack_file.read_text(encoding="utf-8"))
        endpoint, table = local["aws_endpoint"], local["state_table"]
    except (OSError, ValueError, KeyError):
        raise SystemExit(
            f"no local stack found ({stack_file} is missing): start one with `leadpipe up`, "
            "or pass --stack NAME for a deployed stack"
        ) from None
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )
    return ApiKeyStore(client, table)


def cmd_keys(args: argparse.Namespace) -> int:
    from leadpipe.errors import LeadpipeError

    store = _key_store(args)
    try:
        if args.action == "create":
            key, record = store.create(args.workspace, args.name or "")
            if args.json:
                print(json.dumps(record.view() | {"api_key": key}, indent=2))
            else:
                print(key)
                print(
                    f"(key {record.key_id} for workspace {record.workspace}; shown once — only its hash is kept)",
                    file=sys.stderr,
                )
            return 0
        if args.action == "revoke":
            record = store.revoke(args.workspace, args.key_id)
            print(f"revoked key {record.key_id} ({record.hint}…) of workspace {record.workspace}")
            return 0
        records = store.list(args.workspace)
    except LeadpipeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    rows = [
        [r.key_id, r.hint + "…", r.name, r.created_at.isoformat(timespec="seconds"), "revoked" if r.revoked_at else ""]
        for r in records
    ]
    _print(args, [r.view() for r in records], table(rows, ["id", "key", "name", "created", ""]))
    return 0


def _setting_value(text: str) -> Any:
    """A ``settings set`` value: default/null -> None (back to the default), true/false, a number, else text."""
    lowered = text.strip().lower()
    if lowered in ("default", "null", "none"):
        return None
    if lowered in ("true", "on", "yes"):
        return True
    if lowered in ("false", "off", "no"):
        return False
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text.strip()


def settings_changes(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a PUT /settings body; ``sync_options.X=...`` and ``overwrite.PROPERTY=...`` nest."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"not KEY=VALUE: {pair!r} (e.g. min_quality=0.6, overwrite.jobtitle=always)")
        section, dot, name = key.strip().partition(".")
        if dot:
            changes.setdefault(section, {})[name] = _setting_value(value)
        else:
            changes[section] = _setting_value(value)
    return changes


def _secret_arg(value: str | None, what: str) -> str | None:
    """A secret from the command line: ``-`` reads it from stdin, a bare flag asks for it (not echoed)."""
    if value is None:
        return None
    if value == "-":
        return sys.stdin.readline().strip()
    if value == "":
        import getpass

        return getpass.getpass(f"{what}: ")
    return value


def _secret_state(state: dict[str, Any]) -> str:
    if not state["set"]:
        return "not set"
    since = f", {state['updated_at'][:19]}" if state.get("updated_at") else ""
    return f"set ({state['source']}{since})"


def settings_text(view: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    for group in ("thresholds", "automation"):
        for name, item in view[group].items():
            origin = "workspace" if item["source"] == "workspace" else "deployment"
            default = f" (deployment: {item['deployment']})" if item["source"] == "workspace" else ""
            rows.append([name, item["value"], origin + default])
    sync = view["sync"]
    rows.append(["burst_limit", sync["burst_limit"], ""])
    rows += [[f"sync_options.{k}", v, ""] for k, v in sync["options"].items()]
    hubspot = view["hubspot"]
    rows += [[f"hubspot.{k}", "-" if hubspot[k] is None else hubspot[k], ""] for k in ("portal_id", "app_id")]
    rows += [[f"hubspot.{k}", hubspot[k], ""] for k in ("webhooks", "polling")]
    rows += [[f"hubspot.{k}", _secret_state(hubspot[k]), ""] for k in ("token", "client_secret")]
    keys = [
        [name, _secret_state(state), "yes" if state["in_waterfall"] else ""]
        for name, state in sorted(view["providers"].items())
    ]
    policies = [[m["property"], m["source"], m["policy"]] for m in sync["mapping"]]
    updated = f" (changed {view['updated_at'][:19]})" if view.get("updated_at") else " (deployment defaults)"
    return (
        f"workspace {view['workspace']}{updated}\n"
        + table(rows, ["setting", "value", "from"])
        + "\n\n"
        + table(keys, ["provider key", "state", "in waterfall"])
        + "\n\n"
        + table(policies, ["HubSpot property", "leadpipe field", "overwrite"])
    )


def cmd_settings(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        action = getattr(args, "settings_action", None)
        if action == "set":
            view = api.put_settings(settings_changes(args.pairs))
        elif action == "hubspot":
            body: dict[str, Any] = {}
            for flag, what in (("token", "HubSpot access token"), ("client_secret", "HubSpot client secret")):
                secret = _secret_arg(getattr(args, flag), what)
                if secret is not None:
                    body[flag] = secret
            for flag in ("portal_id", "app_id", "webhooks", "polling"):
                if getattr(args, flag) is not None:
                    body[flag] = getattr(args, flag)
            if not body:
                raise SystemExit(
                    "give at least one of --token, --client-secret, --portal-id, --app-id, --webhooks, --polling"
                )
            view = api.put_hubspot_settings(body)
        elif action == "provider":
            if args.remove:
                result = api.delete_provider_key(args.name)
                done = "removed" if result["removed"] else "no key was stored"
            else:
                secret = _secret_arg(args.api_key, f"{args.name} API key")
                if not secret:
                    raise SystemExit("give --api-key KEY (or --api-key - to read it from stdin), or --remove")
                result = api.put_provider_key(args.name, secret)
                done = "stored"
            _print(args, result, f"{args.name}: {done}; key {_secret_state(result)}")
            return 0
        else:
            view = api.settings()
        _print(args, view, settings_text(view))
    return 0


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def cmd_erase(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        report = api.erase(args.email, hubspot=args.hubspot)
    hubspot = report["hubspot"]
    rows = [
        (name, report[name])
        for name in (
            "contact",
            "cache_entries",
            "job_row_errors",
            "source_files",
            "sync_log_errors",
            "deal_contacts",
            "dlq_messages",
            "suppressed",
            "complete",
        )
    ]
    rows.append(("hubspot", f"{hubspot['status']}" + (f" ({hubspot['message']})" if hubspot.get("message") else "")))
    notes = "".join(f"\n  note: {n}" for n in report["notes"])
    _print(args, report, f"{report['message']}\n{table(rows, ['erased', 'count'])}{notes}")
    return 0 if report["complete"] and hubspot["status"] != "failed" else 1


def cmd_tag(args: argparse.Namespace) -> int:
    if not args.add and not args.remove:
        print("error: give --add TAG and/or --remove TAG", file=sys.stderr)
        return 2
    report: dict[str, list[Any]] = {"updated": [], "unchanged": [], "not_found": [], "invalid": [], "rejected": []}
    with ApiClient(args.api_url) as api:
        for start in range(0, len(args.emails), 100):
            done = api.tag_many(args.emails[start : start + 100], add=args.add, remove=args.remove)
            for name, found in report.items():
                found.extend(done[name])
    lines = [f"{len(report['updated'])} updated, {len(report['unchanged'])} unchanged"]
    lines += [f"  not found: {e}" for e in report["not_found"]]
    lines += [f"  invalid: {i['value']!r} ({i['reason']})" for i in report["invalid"]]
    lines += [f"  rejected: {r['email']} ({r['reason']})" for r in report["rejected"]]
    _print(args, report, "\n".join(lines))
    return 1 if report["not_found"] or report["invalid"] or report["rejected"] else 0


def cmd_edit(args: argparse.Namespace) -> int:
    custom = _pairs(args.set, "--set")
    if not (custom or args.unset or args.do_not_enrich is not None or args.lifecycle):
        print("error: give --set, --unset, --do-not-enrich/--allow-enrich or --lifecycle", file=sys.stderr)
        return 2
    with ApiClient(args.api_url) as api:
        contact = api.update_contact(
            args.email,
            set_custom=custom or None,
            remove_custom=args.unset or None,
            do_not_enrich=args.do_not_enrich,
            lifecycle=args.lifecycle,
        )
    rows = [
        ("tags", ", ".join(contact["tags"])),
        ("do_not_enrich", contact["do_not_enrich"]),
        ("lifecycle", contact["lifecycle"]),
    ] + [(f"custom.{k}", v) for k, v in sorted(contact["custom"].items())]
    _print(args, contact, table(rows, ["field", "value"]))
    return 0


def cmd_engage(args: argparse.Namespace) -> int:
    details: dict[str, Any] = dict(_pairs(args.detail, "--detail"))
    with ApiClient(args.api_url) as api:
        if args.type is None:
            listed = api.engagements(args.email, limit=args.limit)
            rows = [(e["at"][:19], e["type"], e["id"], json.dumps(e["details"])) for e in listed["items"]]
            text = f"{listed['email']}: {listed['lifecycle']}, {listed['total']} engagement(s)\n"
            _print(args, listed, text + table(rows, ["at", "type", "id", "details"]))
            return 0
        done = api.engage(args.email, args.type, at=args.at, details=details or None, id=args.id)
    moved = (
        f"{done['previous_lifecycle']} -> {done['lifecycle']}"
        if done["previous_lifecycle"] != done["lifecycle"]
        else f"still {done['lifecycle']}"
    )
    what = "already recorded" if done["duplicate"] else "recorded"
    _print(args, done, f"{done['email']}: {args.type} {what} ({done['engagement']['id']}); lifecycle {moved}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    filters = {"status": args.status, "domain": args.domain, "tag": args.tag, "custom": args.custom, "bom": args.bom}
    with ApiClient(args.api_url) as api:
        if args.out:
            with Path(args.out).open("wb") as fh:
                done = api.export(fh, **filters)
            print(f"{done['rows']} contact(s), {len(done['columns'])} columns -> {args.out}", file=sys.stderr)
        else:
            done = api.export(sys.stdout.buffer, **filters)
            sys.stdout.flush()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        status = api.status()
        stats = status["stats"]
        rate = stats["cache_hit_rate"]
        runs = [
            (
                stage,
                stats[stage]["runs"],
                stats[stage]["failed_runs"],
                (last or {}).get("at", "")[:19],
                (last or {}).get("outcome", ""),
                (last or {}).get("request_id", ""),
            )
            for stage, last in stats["last_run"].items()
        ]
        text = (
            f"workspace {status['workspace']} (stage {status['stage']}): {status['total']} contacts\n"
            + table(sorted(status["counts"].items()), ["status", "contacts"])
            + f"\n\nenriched {stats['enriched']}, synced {stats['synced']}, failed {stats['failed']} (all runs); "
            + f"cache hit rate {'-' if rate is None else f'{rate:.0%}'} of {stats['cache_lookups']} lookups; "
            + f"{stats['provider_calls']} provider calls; {stats['hubspot_calls']} HubSpot calls "
            + f"({stats['hubspot_429s']} answered 429)\n"
            + table(runs, ["runs", "count", "failed", "last run at", "outcome", "request"])
            + "\n\n"
            + table(sorted(status["config"].items()), ["setting", "value"])
        )
        _print(args, status, text)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        summary = api.summary(top=args.top)

    def facets(key: str, title: str) -> str:
        rows = [(f["value"], f["contacts"], f"{f['share']:.0%}") for f in summary[key]]
        return table(rows, [title, "contacts", "share"])

    coverage = [
        (
            c["provider"],
            c["contacts"],
            f"{c['share']:.0%}",
            "" if c["share_of_enriched"] is None else f"{c['share_of_enriched']:.0%}",
        )
        for c in summary["coverage"]
    ]
    text = "\n\n".join(
        [
            f"workspace {summary['workspace']}: {summary['total']} contacts, {summary['enriched']} scored",
            facets("industries", "industry"),
            facets("company_sizes", "employees"),
            facets("countries", "country"),
            table(coverage, ["provider", "contacts", "share", "of enriched"]),
            table([(b["range"], b["contacts"]) for b in summary["quality"]], ["quality", "contacts"]),
        ]
    )
    _print(args, summary, text)
    return 0


def cmd_activity(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        page = api.activity(limit=args.limit, since=args.since, cursor=args.cursor)
    rows = [
        (
            e["at"][:23],
            e["type"],
            e["request_id"] or e["job_id"] or "",
            ", ".join(f"{k} {v}" for k, v in e["counts"].items() if v),
            e["error"] or "",
        )
        for e in page["items"]
    ]
    text = table(rows, ["at", "event", "request / job", "counts", "error"])
    if page["next_cursor"]:
        text += f"\n\nolder: leadpipe activity --cursor {page['next_cursor']}"
    _print(args, page, text)
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        listing = api.dlq(queue=args.queue, limit=args.limit)
    queues = listing["queues"]
    rows = [
        (q["queue"], q["approximate_depth"], q["yours"], q["others"], q["unattributed"], "" if q["complete"] else "yes")
        for q in queues
    ]
    text = f"workspace {listing['workspace']}\n" + table(
        rows, ["queue", "depth (all)", "yours", "others", "unattributed", "partial scan"]
    )
    messages = [
        (
            q["queue"],
            m["message_id"],
            (m["sent_at"] or "")[:19],
            m["receive_count"] if m["receive_count"] is not None else "",
            m["type"] or "",
            m["emails"] if m["emails"] is not None else (m["changes"] if m["changes"] is not None else ""),
            m["ref"] or m["problem"] or "",
        )
        for q in queues
        for m in q["messages"]
    ]
    if messages:
        text += "\n\n" + table(messages, ["queue", "message", "sent", "receives", "type", "items", "ref"])
        text += "\n\nFix the cause, then: leadpipe redrive QUEUE"
    _print(args, listing, text)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Call the redrive route until this workspace's messages are all back (or ``--max`` of them). Never more than
    the DLQ held when it started: messages that fail again at once and come back are not moved round and round."""
    moved, failures, result = 0, [], {}
    with ApiClient(args.api_url) as api:
        [queue] = api.dlq(queue=args.queue, limit=1)["queues"]
        limit = queue["approximate_depth"] if args.max is None else min(args.max, queue["approximate_depth"])
        while moved < limit:
            result = api.redrive(args.queue, max=min(1000, limit - moved))
            moved += result["moved"]
            failures.extend(result["failures"])
            if result["moved"] == 0 or (result["remaining"] == 0 and result["complete"]):
                break
    left = result.get("remaining", 0)
    text = f"moved {moved} message(s) from the {args.queue} DLQ back to its queue"
    text += f"; {left} of yours left in the DLQ" if left or not result.get("complete", True) else ""
    if failures:
        rows = [(f["message_id"], f["stage"], f["code"], f["message"]) for f in failures]
        text += "\n" + table(rows, ["message", "stage", "code", "message"])
    _print(args, {"moved": moved, "last": result, "failures": failures}, text)
    return 0 if not failures else 1


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadpipe", description="leadpipe: contact import, enrichment and sync.")
    sub = parser.add_subparsers(dest="command", required=True)

    def local(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument("--template", help="template.yaml to run (default: found from the current directory)")
        p.add_argument("--port", type=int, default=port, help=f"HTTP API port (default {port}; 0 picks a free one)")
        p.add_argument("--state-dir", default=".leadpipe", help="where logs go (default .leadpipe)")

    up = sub.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    local(up, 3000)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--aws-port", type=int, default=3001, help="moto's port (default 3001; 0 picks a free one)")
    up.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a template parameter")
    up.add_argument("--hubspot-port", type=int, default=3002, help="the HubSpot fake's port (default 3002)")
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser("demo", help="start the local stack, run the whole loop on the example file, stop")
    local(demo, 0)
    demo.add_argument("--file", help="CSV to import (default examples/contacts.csv)")
    demo.add_argument(
        "--serve", action="store_true", help="afterwards, keep the stack and its web console up until Ctrl-C"
    )
    demo.set_defaults(func=cmd_demo)

    invoke = sub.add_parser("invoke", help="run one function with an event file (e.g. events/ApiFunction/*.json)")
    invoke.add_argument("function", help="the function's logical id in template.yaml, e.g. ApiFunction")
    invoke.add_argument("event", help="a JSON event file")
    invoke.add_argument("--template")
    invoke.add_argument("--state-dir", default=".leadpipe")
    invoke.set_defaults(func=cmd_invoke)

    def client(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--api-url",
            default=None,
            help=f"HTTP API base URL (default $LEADPIPE_API_URL or {DEFAULT_API_URL})",
        )
        p.add_argument("--json", action="store_true", help="print JSON")

    imp = sub.add_parser("import", help="import a CSV file (or a HubSpot portal, a Lemlist campaign) and follow it")
    imp.add_argument("file", nargs="?")
    imp.add_argument("--hubspot", action="store_true", help="import every contact of the workspace's HubSpot portal")
    imp.add_argument("--lemlist", metavar="CAMPAIGN_ID", help="import the leads of a Lemlist campaign")
    imp.add_argument("--upload", action="store_true", help="always use a presigned upload (automatic above 4 MB)")
    imp.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    client(imp)
    imp.set_defaults(func=cmd_import)

    enrich = sub.add_parser("enrich", help="enrich contacts now (emails, or --status/--tag/--domain)")
    enrich.add_argument("emails", nargs="*")
    enrich.add_argument("--status")
    enrich.add_argument("--tag")
    enrich.add_argument("--domain")
    enrich.add_argument("--limit", type=int, help="most contacts a filter selects (default 1000)")
    enrich.add_argument("--no-cache", action="store_true", help="ask the providers again even inside the cache TTL")
    enrich.add_argument("--min-quality", type=float, help="publish contacts.enriched from this quality (0-1)")
    enrich.add_argument("--intelligence", action="store_true", help="add LLM pain points/hooks (needs LLM_API_KEY)")
    enrich.add_argument("--wait", action="store_true", help="wait for the listed emails and show their quality")
    client(enrich)
    enrich.set_defaults(func=cmd_enrich)

    sync = sub.add_parser("sync", help="sync contacts to HubSpot now (emails, or --status/--tag/--domain)")
    sync.add_argument("emails", nargs="*")
    sync.add_argument("--status")
    sync.add_argument("--tag")
    sync.add_argument("--domain")
    sync.add_argument("--limit", type=int, help="most contacts a filter selects (default 1000)")
    sync.add_argument("--no-create", action="store_true", help="do not create contacts HubSpot does not have")
    sync.add_argument("--no-update", action="store_true", help="do not update contacts HubSpot already has")
    sync.add_argument("--no-company", action="store_true", help="do not find/create and associate companies")
    sync.add_argument("--no-activity", action="store_true", help="do not add a timeline note per enrichment")
    sync.add_argument("--no-dedupe", action="store_true", help="send repeated emails as they are (HubSpot refuses)")
    sync.add_argument("--wait", action="store_true", help="wait for the listed emails and show their HubSpot ids")
    client(sync)
    sync.set_defaults(func=cmd_sync)

    sync_log = sub.add_parser("sync-log", help="the latest sync batches: what was written to HubSpot, and errors")
    sync_log.add_argument("--limit", type=int, default=20)
    client(sync_log)
    sync_log.set_defaults(func=cmd_sync_log)

    fake = sub.add_parser("hubspot-fake", help="run the local HubSpot fake alone (Ctrl-C stops it)")
    fake.add_argument("--port", type=int, default=3002)
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--webhook-url", help="where to send its signed webhooks")
    fake.set_defaults(func=cmd_hubspot_fake)

    jobs = sub.add_parser("jobs", help="list import jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    client(jobs)
    jobs.set_defaults(func=cmd_jobs)

    job = sub.add_parser("job", help="one import job, with its row errors")
    job.add_argument("job_id")
    client(job)
    job.set_defaults(func=cmd_job)

    contacts = sub.add_parser("contacts", help="list contacts, newest first")
    contacts.add_argument("--status")
    contacts.add_argument("--domain")
    contacts.add_argument("--tag")
    contacts.add_argument("--custom", action="append", metavar="KEY:VALUE", help="custom field value (repeatable)")
    contacts.add_argument("--limit", type=int, default=50)
    contacts.add_argument("--cursor")
    contacts.add_argument("--all", action="store_true", help="follow the cursor to the end")
    client(contacts)
    contacts.set_defaults(func=cmd_contacts)

    contact = sub.add_parser("contact", help="one contact, with its source history")
    contact.add_argument("email")
    client(contact)
    contact.set_defaults(func=cmd_contact)

    erase = sub.add_parser("erase", help="erase a person (GDPR) everywhere leadpipe keeps data; suppress the email")
    erase.add_argument("email")
    erase.add_argument("--hubspot", action="store_true", help="also gdpr-delete the contact in HubSpot")
    client(erase)
    erase.set_defaults(func=cmd_erase)

    tag = sub.add_parser("tag", help="add and remove tags on contacts")
    tag.add_argument("emails", nargs="+")
    tag.add_argument("--add", action="append", default=[], metavar="TAG")
    tag.add_argument("--remove", action="append", default=[], metavar="TAG")
    client(tag)
    tag.set_defaults(func=cmd_tag)

    edit = sub.add_parser("edit", help="set custom fields, the do-not-enrich flag or the lifecycle of a contact")
    edit.add_argument("email")
    edit.add_argument("--set", action="append", metavar="KEY=VALUE", help="a custom field (repeatable)")
    edit.add_argument("--unset", action="append", metavar="KEY", help="clear a custom field (repeatable)")
    flag = edit.add_mutually_exclusive_group()
    flag.add_argument("--do-not-enrich", dest="do_not_enrich", action="store_true", default=None)
    flag.add_argument("--allow-enrich", dest="do_not_enrich", action="store_false")
    edit.add_argument("--lifecycle", help="set the stage explicitly (e.g. disqualified)")
    client(edit)
    edit.set_defaults(func=cmd_edit)

    engage = sub.add_parser("engage", help="record an engagement (or, without TYPE, list a contact's engagements)")
    engage.add_argument("email")
    engage.add_argument(
        "type",
        nargs="?",
        help="email_sent, email_opened, link_clicked, reply_received, meeting_booked or website_visit",
    )
    engage.add_argument("--at", help="when (ISO-8601 with a time zone; default now)")
    engage.add_argument("--id", help="your event id: a repeat with the same id is recorded once")
    engage.add_argument("--detail", action="append", metavar="KEY=VALUE", help="a detail (repeatable)")
    engage.add_argument("--limit", type=int, help="engagements listed (default 100)")
    client(engage)
    engage.set_defaults(func=cmd_engage)

    export = sub.add_parser("export", help="export contacts as CSV (every part of a large export, joined)")
    export.add_argument("--out", help="file to write (default standard output)")
    export.add_argument("--status")
    export.add_argument("--domain")
    export.add_argument("--tag")
    export.add_argument("--custom", action="append", metavar="KEY:VALUE", help="custom field value (repeatable)")
    export.add_argument("--bom", action="store_true", help="start with a UTF-8 byte-order mark (for Excel)")
    client(export)
    export.set_defaults(func=cmd_export)

    status = sub.add_parser("status", help="configuration, contact counts and run stats")
    client(status)
    status.set_defaults(func=cmd_status)

    summary = sub.add_parser("summary", help="top industries, sizes, countries, coverage by provider, quality")
    summary.add_argument("--top", type=int, help="industries and countries listed (default 10)")
    client(summary)
    summary.set_defaults(func=cmd_summary)

    activity = sub.add_parser("activity", help="the automation events (enrichment and sync runs, imports)")
    activity.add_argument("--limit", type=int, help="events listed (default 50, at most 100)")
    activity.add_argument("--since", help="only events at or after this ISO 8601 time")
    activity.add_argument("--cursor", help="the next_cursor of the previous page")
    client(activity)
    activity.set_defaults(func=cmd_activity)

    dlq = sub.add_parser("dlq", help="the dead-letter queues: depth, and your workspace's failed messages")
    dlq.add_argument("--queue", help="only this queue: import, enrich, sync, change or deal")
    dlq.add_argument("--limit", type=int, help="messages shown per queue (default 10, at most 50)")
    client(dlq)
    dlq.set_defaults(func=cmd_dlq)

    redrive = sub.add_parser("redrive", help="move your workspace's messages from a queue's DLQ back to the queue")
    redrive.add_argument("queue", help="import, enrich, sync, change or deal")
    redrive.add_argument("--max", type=int, help="move at most this many (default: all of yours)")
    client(redrive)
    redrive.set_defaults(func=cmd_redrive)

    settings = sub.add_parser("settings", help="the workspace's settings (secrets only as set / not set)")
    client(settings)
    settings.set_defaults(func=cmd_settings)
    settings_sub = settings.add_subparsers(dest="settings_action")
    setter = settings_sub.add_parser(
        "set",
        help="change settings: min_quality=0.6 auto_enrich_on_import=false burst_limit=190 "
        "sync_options.createIfNew=false overwrite.jobtitle=always (VALUE default: back to the default)",
    )
    setter.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    client(setter)
    setter.set_defaults(func=cmd_settings)
    hub = settings_sub.add_parser(
        "hubspot", help="the HubSpot portal, app and credentials (secrets go to SSM Parameter Store)"
    )
    secret_help = "VALUE, or - to read it from stdin, or nothing to be asked"  # noqa: S105 - help text
    hub.add_argument("--token", nargs="?", const="", help=f"the private app's access token: {secret_help}")
    hub.add_argument("--client-secret", nargs="?", const="", help=f"the app's client secret: {secret_help}")
    hub.add_argument("--portal-id", type=int, help="the portal (hub id) whose webhooks come to this workspace")
    hub.add_argument("--app-id", type=int, help="leadpipe's HubSpot app id (its own writes are recognised)")
    hub.add_argument("--webhooks", type=_setting_value, help="true/false: accept the portal's webhooks")
    hub.add_argument("--polling", type=_setting_value, help="true/false: poll the portal on the schedule")
    client(hub)
    hub.set_defaults(func=cmd_settings)
    prov = settings_sub.add_parser("provider", help="store or remove a provider's API key for the workspace")
    prov.add_argument("name", help="apollo, dropcontact, hunter, pdl, serper, lemlist")
    group = prov.add_mutually_exclusive_group(required=True)
    group.add_argument("--api-key", nargs="?", const="", help=f"the key: {secret_help}")
    group.add_argument("--remove", action="store_true", help="remove the stored key")
    client(prov)
    prov.set_defaults(func=cmd_settings)

    keys = sub.add_parser("keys", help="API keys: create (shown once), list, revoke — local stack or --stack NAME")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    for action, text in (
        ("create", "create a key for a workspace and print it (once)"),
        ("list", "list a workspace's keys"),
        ("revoke", "revoke one of a workspace's keys"),
    ):
        p = keys_sub.add_parser(action, help=text)
        p.add_argument("--workspace", default="default", help="the workspace the key belongs to (default: default)")
        p.add_argument("--stack", help="a deployed stack's name (default: the local stack `leadpipe up` runs)")
        p.add_argument("--region", help="the deployed stack's region (default $AWS_REGION)")
        p.add_argument("--state-dir", default=".leadpipe", help="the local stack's state directory")
        p.add_argument("--json", action="store_true", help="print JSON")
        if action == "create":
            p.add_argument("--name", help="what the key is for")
        if action == "revoke":
            p.add_argument("key_id", help="the key's id (see `leadpipe keys list`)")
        p.set_defaults(func=cmd_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ApiError as exc:
        print(
            f"error: {exc.message} ({exc.code}{', HTTP ' + str(exc.status) if exc.status else ''})",
            file=sys.stderr,
        )
        if exc.details:
            print(json.dumps(exc.details, indent=2), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
