"""The ``leadpipe`` command.

Local stack:  ``leadpipe up``, ``leadpipe demo``.
API clients:  ``leadpipe import FILE``, ``leadpipe jobs``, ``leadpipe job ID``, ``leadpipe contacts``,
              ``leadpipe contact EMAIL``, ``leadpipe status`` — against ``--api-url`` (default the local stack,
              or $LEADPIPE_API_URL; a deployed stack's ApiUrl output works too, signed with your AWS credentials).
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
        run_demo(template, csv_path, port=args.port, state_dir=Path(args.state_dir))
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
            page = api.contacts(status=args.status, domain=args.domain, tag=args.tag, limit=args.limit, cursor=cursor)
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


def cmd_status(args: argparse.Namespace) -> int:
    with ApiClient(args.api_url) as api:
        status = api.status()
        text = (
            f"workspace {status['workspace']} (stage {status['stage']}): {status['total']} contacts\n"
            + table(sorted(status["counts"].items()), ["status", "contacts"])
            + "\n\n"
            + table(sorted(status["config"].items()), ["setting", "value"])
        )
        _print(args, status, text)
    return 0


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
    contacts.add_argument("--limit", type=int, default=50)
    contacts.add_argument("--cursor")
    contacts.add_argument("--all", action="store_true", help="follow the cursor to the end")
    client(contacts)
    contacts.set_defaults(func=cmd_contacts)

    contact = sub.add_parser("contact", help="one contact, with its source history")
    contact.add_argument("email")
    client(contact)
    contact.set_defaults(func=cmd_contact)

    status = sub.add_parser("status", help="configuration and contact counts")
    client(status)
    status.set_defaults(func=cmd_status)

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
