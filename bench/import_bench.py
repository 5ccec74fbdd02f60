"""Import benchmark (issue 2). Not a test: it measures and prints; anyone can rerun it.

    .venv/bin/python bench/import_bench.py                  # --rows 100000 --moto-rows 20000
    .venv/bin/python bench/import_bench.py --rows 1000000   # the memory target is stated for 1M rows

(a) parse + validate + normalise throughput, one core: ``sniff`` on the head, ``iter_records`` over 256 KB
    reads, ``RowParser.parse`` on chunks of 500 records: the import path's pure functions, generated file.
(b) peak RSS of (a) in a fresh process, for 10 rows and for --rows rows (``ru_maxrss`` in the child).
(c) DynamoDB calls per imported contact: the template's resources created in moto (in-process ``mock_aws``) by
    ``leadpipe_local``'s Resolver + Provisioner, a generated CSV dropped under ``incoming/``, the resulting S3
    notification handled by ``ImportService`` wired as ``functions/import/import_handler.py`` wires it.
(d) cold import time of every function's handler module, in fresh interpreters with the function's code and
    layer directories first on ``sys.path`` and the environment variables of a deployed function.

Generated files go to --out-dir (default bench/out, git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gen_csv
from bench_setup import BENCH, ROOT  # first: this checkout on sys.path, Powertools quiet

REGION = "us-east-1"
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
COLD_IMPORT_RUNS = 5

TARGET_ROWS_PER_S = 20_000
TARGET_RSS_DELTA_MB = 150
TARGET_WRITES_PER_CONTACT = 0.04
TARGET_COLD_IMPORT_MS = 600


def heading(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


def line(label: str, value: object) -> None:
    print(f"  {label:<44} {value}", flush=True)


# ---------------------------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "nproc": str(os.cpu_count()),
        "load average (1/5/15 min)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "cpu": cpu,
        "code measured": code_fingerprint(),
    }


def code_fingerprint() -> str:
    """SHA-256 of the library, handlers and template as they are now (the checkout may have no commit)."""
    files = sorted(
        [
            *(ROOT / "shared" / "leadpipe").rglob("*.py"),
            *(ROOT / "functions").rglob("*.py"),
            *(ROOT / "local" / "leadpipe_local").rglob("*.py"),
            ROOT / "template.yaml",
        ]
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    newest = max(path.stat().st_mtime for path in files)
    when = dt.datetime.fromtimestamp(newest, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"sha256 {digest.hexdigest()[:16]} over {len(files)} files (newest change {when})"


# ---------------------------------------------------------------------------------------------- (a) + (b)


def parse_file(path: Path, chunk_bytes: int, chunk_rows: int, max_row_bytes: int) -> dict[str, Any]:
    """The import path's pure functions over a local file. Runs in a fresh child process (see ``main``)."""
    from leadpipe.csvfile import HEAD_BYTES, RowParser, iter_records, sniff

    counts: Counter[str] = Counter(chunks=0, valid=0, invalid=0, blank=0)
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after imports, before any row
    started, cpu_started = time.perf_counter(), time.process_time()
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(HEAD_BYTES)
        layout, _warnings = sniff(head, at_eof=len(head) >= size, max_record_bytes=max_row_bytes)
        fh.seek(layout.data_offset)
        records = iter_records(
            iter(partial(fh.read, chunk_bytes), b""),
            start_offset=layout.data_offset,
            start_row=layout.header_row + 1,
            delimiter=layout.delimiter,
            newline=layout.newline,
            max_record_bytes=max_row_bytes,
        )
        parser = RowParser(layout, max_row_bytes=max_row_bytes)
        for chunk in _batches(records, chunk_rows):
            counts["chunks"] += 1
            for parsed in parser.parse(chunk):
                if parsed.blank:
                    counts["blank"] += 1
                elif parsed.errors or parsed.draft is None:
                    counts["invalid"] += 1
                else:
                    counts["valid"] += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "rows": counts["valid"] + counts["invalid"],
        **counts,
        "bytes": size,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # kilobytes on Linux
        "maxrss_before_kb": maxrss_before,
        "vmhwm_kb": _vm_hwm_kb(),
    }


def _vm_hwm_kb() -> int | None:
    """Peak RSS of this process's address space (Linux ``VmHWM``), a cross-check of ``ru_maxrss``."""
    try:
        for text in Path("/proc/self/status").read_text().splitlines():
            if text.startswith("VmHWM:"):
                return int(text.split()[1])
    except OSError:
        pass
    return None


def _batches[T](items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_in_child(path: Path, chunk_bytes: int, chunk_rows: int, max_row_bytes: int) -> dict[str, Any]:
    # Through a shell that forks (not execs) the child: ru_maxrss survives exec, so a child spawned directly from
    # this (larger) process would start with this process's peak RSS and the 10-row baseline would be ours.
    command = [
        "/bin/sh",
        "-c",
        '"$0" "$@"; exit $?',
        sys.executable,
        str(Path(__file__).resolve()),
        "--parse-child",
        str(path),
        "--chunk-bytes",
        str(chunk_bytes),
        "--chunk-rows",
        str(chunk_rows),
        "--max-row-bytes",
        str(max_row_bytes),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the parse child failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def generate(out_dir: Path, rows: int, seed: int) -> tuple[Path, gen_csv.GenStats]:
    path = out_dir / f"contacts-{rows}-s{seed}.csv"
    stats = gen_csv.write_csv(path, rows, seed=seed)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(
        f"  generated {shown}: {stats.rows:,} rows, {stats.bytes / 1e6:,.1f} MB in {stats.seconds:.1f} s "
        f"({stats.invalid:,} invalid, {stats.duplicates:,} duplicate emails, "
        f"{stats.quoted_rows:,} rows with quoted fields)",
        flush=True,
    )
    return path, stats


def bench_parse(out_dir: Path, rows: int, seed: int) -> dict[str, Any]:
    from leadpipe.importer import STREAM_CHUNK_BYTES
    from leadpipe.settings import Settings

    defaults = Settings()
    chunk_rows, max_row_bytes = defaults.import_chunk_rows, defaults.max_row_bytes
    heading(f"(a) parse + validate + normalise, one core, {rows:,} rows")
    line(
        "read size / chunk rows / max row bytes",
        f"{STREAM_CHUNK_BYTES // 1024} KB / {chunk_rows} / {max_row_bytes:,}",
    )
    small_path, _ = generate(out_dir, 10, seed)
    big_path, stats = generate(out_dir, rows, seed)
    big = parse_in_child(big_path, STREAM_CHUNK_BYTES, chunk_rows, max_row_bytes)
    small = parse_in_child(small_path, STREAM_CHUNK_BYTES, chunk_rows, max_row_bytes)
    rate = big["rows"] / big["seconds"]
    line(
        "rows parsed (valid / invalid / blank)",
        f"{big['rows']:,} ({big['valid']:,} / {big['invalid']:,} / {big['blank']:,})",
    )
    expected = (stats.rows, stats.valid_rows, stats.invalid)
    agree = (big["rows"], big["valid"], big["invalid"]) == expected
    line(
        "generator expected (rows / valid / invalid)",
        f"{expected[0]:,} / {expected[1]:,} / {expected[2]:,}" + ("  (agrees)" if agree else "  (DISAGREES)"),
    )
    line("wall time / CPU time (one thread)", f"{big['seconds']:.2f} s / {big['cpu_seconds']:.2f} s")
    line("throughput (wall time)", f"{rate:,.0f} rows/s  ({big['bytes'] / big['seconds'] / 1e6:,.1f} MB/s)")
    line("throughput (CPU time)", f"{big['rows'] / big['cpu_seconds']:,.0f} rows/s")

    heading("(b) peak RSS of (a) in a fresh process")
    small_mb, big_mb = small["maxrss_kb"] / 1024, big["maxrss_kb"] / 1024
    line("10 rows", f"{small_mb:,.1f} MB")
    line(f"{rows:,} rows", f"{big_mb:,.1f} MB")
    line("difference", f"{big_mb - small_mb:+,.1f} MB")
    line(f"{rows:,} rows: peak before the first row", f"{big['maxrss_before_kb'] / 1024:,.1f} MB (imports)")
    if small["vmhwm_kb"] and big["vmhwm_kb"]:
        line(
            "cross-check, VmHWM 10 rows / --rows",
            f"{small['vmhwm_kb'] / 1024:,.1f} MB / {big['vmhwm_kb'] / 1024:,.1f} MB",
        )
    return {"rows": rows, "rate": rate, "agree": agree, "rss_small": small_mb, "rss_big": big_mb}


# ---------------------------------------------------------------------------------------------- (c)


@dataclass
class CallLog:
    """AWS calls seen through botocore event hooks, by service and operation."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    tables: Counter[tuple[str, str]] = field(default_factory=Counter)  # (operation, table) for DynamoDB
    transact_items: int = 0
    batch_get_keys: int = 0

    def before_call(self, service: str) -> Callable[..., None]:
        def hook(model: Any, **_: Any) -> None:
            self.calls[(service, model.name)] += 1

        return hook

    def dynamodb_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "TransactWriteItems":
            items = params.get("TransactItems", [])
            self.transact_items += len(items)
            for table in {op.get("TableName", "?") for item in items for op in item.values()}:
                self.tables[(name, table)] += 1
        elif name == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                self.batch_get_keys += len(request.get("Keys", []))
                self.tables[(name, table)] += 1
        elif "TableName" in params:
            self.tables[(name, params["TableName"])] += 1


def bench_dynamodb(out_dir: Path, rows: int, seed: int, *, exact_moto: bool) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from leadpipe.aws import AwsClients
    from leadpipe.contacts import ContactRepository
    from leadpipe.events import EventPublisher
    from leadpipe.importer import ImportService
    from leadpipe.jobs import JobRepository
    from leadpipe.models import JobStatus
    from leadpipe.settings import Settings
    from leadpipe_local.cfn import Resolver, load_template, merge_globals
    from leadpipe_local.provision import Provisioner

    heading(f"(c) DynamoDB calls per imported contact, moto, {rows:,} rows")
    path, stats = generate(out_dir, rows, seed)
    if not exact_moto:
        from leadpipe_local import motofix

        motofix.install()
    line(
        "moto TransactWriteItems rollback",
        "moto's own (table deep copies)"
        if exact_moto
        else "copies only the touched items (leadpipe_local.motofix, as in tests and the local runtime)",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        setup_clients: dict[str, Any] = {}

        def setup_client(service: str) -> Any:
            return setup_clients.setdefault(service, session.client(service, region_name=REGION))

        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, region=REGION)
        Provisioner(resolver, setup_client).provision()
        function = template["Resources"]["ImportFunction"]
        props = merge_globals(template, function["Type"], function.get("Properties", {}))
        env = {k: str(v) for k, v in resolver.resolve(props["Environment"]["Variables"]).items()}
        settings = Settings.from_env(env)

        # Wired like functions/import/import_handler.py: the library's own client configuration.
        clients = AwsClients(session=session)
        log = CallLog()
        for service in ("s3", "sqs", "events"):
            clients.get(service).meta.events.register("before-call", log.before_call(service))
        clients.dynamodb.meta.events.register("before-call.dynamodb", log.before_call("dynamodb"))
        clients.dynamodb.meta.events.register("provide-client-params.dynamodb", log.dynamodb_params)
        publisher = EventPublisher(clients.events, settings.event_bus_name)
        repository = ContactRepository(clients.dynamodb, settings.contacts_table)
        service = ImportService(
            s3=clients.s3,
            sqs=clients.sqs,
            contacts=repository,
            jobs=JobRepository(clients.dynamodb, settings.state_table),
            publisher=publisher,
            settings=settings,
        )

        key = f"incoming/bench/{path.name}"
        setup_client("s3").upload_file(str(path), settings.uploads_bucket, key)
        line("uploaded", f"s3://{settings.uploads_bucket}/{key}")

        never_runs_out: Callable[[], int] = lambda: 15 * 60 * 1000  # noqa: E731
        outcomes: Counter[str] = Counter()
        jobs: dict[tuple[str, str], Any] = {}
        queue = setup_client("sqs")
        started = time.perf_counter()
        while True:  # what the ImportQueue event source does: S3 notification, then any follow-up messages
            response = queue.receive_message(
                QueueUrl=settings.import_queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            message = messages[0]
            results = service.handle_message(
                message["Body"],
                remaining_ms=never_runs_out,
                receive_count=int(message["Attributes"].get("ApproximateReceiveCount", 1)),
            )
            for result in results:
                outcomes[result.outcome] += 1
                if result.job is not None:
                    jobs[(result.job.workspace, result.job.job_id)] = result.job
            queue.delete_message(QueueUrl=settings.import_queue_url, ReceiptHandle=message["ReceiptHandle"])
        seconds = time.perf_counter() - started
        if len(jobs) != 1:
            raise SystemExit(f"expected one import job from the S3 notification, got {len(jobs)}: {outcomes}")
        (workspace, job_id), _ = jobs.popitem()

        # Verification reads go through the setup client: they are not counted.
        job = JobRepository(setup_client("dynamodb"), settings.state_table).require(workspace, job_id)
        stored = _count_contacts(setup_client("dynamodb"), settings.contacts_table)
        counters = sum(ContactRepository(setup_client("dynamodb"), settings.contacts_table).counts(workspace).values())

    c = job.counts
    completed = job.status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS)
    line(
        "job",
        f"{job_id} ({job.source.value}, workspace {workspace}), {job.invocations} invocation(s), "
        f"outcomes {dict(outcomes)}",
    )
    line("job status", job.status.value + ("" if completed else "  (NOT COMPLETED)"))
    line(
        "job counts",
        f"rows_read {c.rows_read:,}, valid {c.valid:,}, invalid {c.invalid:,}, "
        f"imported {c.imported:,}, merged {c.merged:,}, blank {c.blank:,}",
    )
    line(
        "generator expected",
        f"rows {stats.rows:,}, valid {stats.valid_rows:,}, invalid {stats.invalid:,}, "
        f"distinct valid emails {stats.distinct_valid_emails:,}, duplicates {stats.duplicates:,}",
    )
    line("contacts in the table (scan, sk = C)", f"{stored:,}")
    line("contacts by the status counters", f"{counters:,}")
    line("distinct valid emails in the file", f"{stats.distinct_valid_emails:,}")
    counts_ok = completed and stored == counters == c.imported == stats.distinct_valid_emails
    counts_ok = counts_ok and c.invalid == stats.invalid and c.merged == stats.duplicates
    line("contacts == distinct valid emails", "yes" if counts_ok else "NO")
    line("import wall time in moto (not AWS)", f"{seconds:.1f} s")

    imported = max(c.imported, 1)
    ddb = {op: n for (svc, op), n in log.calls.items() if svc == "dynamodb"}
    writes = sum(n for op, n in ddb.items() if op in WRITE_OPERATIONS)
    total = sum(ddb.values())
    print("\n  DynamoDB calls by operation (per imported contact):")
    for op, n in sorted(ddb.items(), key=lambda kv: -kv[1]):
        by_table = ", ".join(
            f"{table.removeprefix(resolver.stack_name + '-')} {k}"
            for (o, table), k in sorted(log.tables.items())
            if o == op and k
        )
        kind = "write" if op in WRITE_OPERATIONS else "read"
        print(f"    {op:<20} {kind:<5} {n:>7,}  {n / imported:.4f}   [{by_table}]")
    if ddb.get("TransactWriteItems"):
        line("items per TransactWriteItems (average)", f"{log.transact_items / ddb['TransactWriteItems']:.1f}")
    if ddb.get("BatchGetItem"):
        line("keys per BatchGetItem (average)", f"{log.batch_get_keys / ddb['BatchGetItem']:.1f}")
    own = {op: n for op, n in repository.calls.items() if n}
    agree = all(log.tables[(op, settings.contacts_table)] == n for op, n in own.items())
    line("ContactRepository.calls (its own count)", f"{dict(own)}" + ("  (agrees)" if agree else "  (DISAGREES)"))
    line("EventPublisher.calls (its own count)", publisher.calls)
    other = ", ".join(f"{svc}:{op} {n}" for (svc, op), n in sorted(log.calls.items()) if svc != "dynamodb")
    line("other AWS calls", other or "none")
    line("write calls per imported contact", f"{writes / imported:.4f}  ({writes:,} / {c.imported:,})")
    line("all DynamoDB calls per imported contact", f"{total / imported:.4f}  ({total:,} / {c.imported:,})")
    return {
        "rows": rows,
        "writes_per_contact": writes / imported,
        "calls_per_contact": total / imported,
        "counts_ok": counts_ok,
        "status": job.status.value,
        "stored": stored,
        "expected": stats.distinct_valid_emails,
    }


def _count_contacts(client: Any, table: str) -> int:
    total = 0
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :c",
        "ExpressionAttributeValues": {":c": {"S": "C"}},
        "Select": "COUNT",
    }
    while True:
        response = client.scan(**request)
        total += int(response["Count"])
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# ---------------------------------------------------------------------------------------------- (d)

_IMPORT_CHILD = """
import importlib, json, sys, time
paths, module_name, attribute = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[:0] = paths
started, cpu_started = time.perf_counter(), time.process_time()
module = importlib.import_module(module_name)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
assert callable(getattr(module, attribute))
leadpipe = sys.modules.get("leadpipe")
print(json.dumps({"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "modules": len(sys.modules),
                  "leadpipe": getattr(leadpipe, "__file__", None)}))
"""


@dataclass
class FunctionUnderTest:
    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    memory: int


def deployed_functions() -> list[FunctionUnderTest]:
    """Every AWS::Serverless::Function of the template with its code, layers and deployed environment.

    The template is resolved against resources created in a throwaway moto, so the environment values are the
    ones the local runtime would give (real-looking names, URLs); the variables Lambda itself sets are added.
    """
    import boto3
    from moto import mock_aws

    from leadpipe_local.cfn import Resolver, load_template, merge_globals
    from leadpipe_local.provision import Provisioner

    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    out = []
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        cache: dict[str, Any] = {}
        resolver = Resolver(template, region=REGION, stack_name="leadpipe-dev")
        Provisioner(resolver, lambda s: cache.setdefault(s, session.client(s, region_name=REGION))).provision()
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function" or not resolver.active(logical_id):
                continue
            raw = merge_globals(template, resource["Type"], resource.get("Properties", {}))
            raw.pop("Events", None)
            props = resolver.resolve(raw)
            layer_dirs = []
            for layer in props.get("Layers", []):
                layer_id = next(lid for lid, state in resolver.resources.items() if state.ref == layer)
                layer_dirs.append((ROOT / resources[layer_id]["Properties"]["ContentUri"]).resolve())
            name = str(resolver.resources[logical_id].ref)
            env = {k: str(v) for k, v in (props.get("Environment", {}).get("Variables", {}) or {}).items()}
            env.update(_lambda_environment(name, props, ROOT / str(props["CodeUri"])))
            out.append(
                FunctionUnderTest(
                    logical_id=logical_id,
                    code_dir=(ROOT / str(props["CodeUri"])).resolve(),
                    handler=str(props["Handler"]),
                    layer_dirs=layer_dirs,
                    environment=env,
                    memory=int(props.get("MemorySize", 128)),
                )
            )
    return out


def _lambda_environment(function_name: str, props: dict[str, Any], code_dir: Path) -> dict[str, str]:
    """What the Lambda python3.13 runtime sets besides the function's own variables (dummy credentials)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIAXXXXXXXXXXXXXXXX",
        "AWS_SECRET_ACCESS_KEY": "dummy-secret-access-key",
        "AWS_SESSION_TOKEN": "dummy-session-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{props.get('Runtime', 'python3.13')}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/06/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(code_dir.resolve()),
        "_HANDLER": str(props["Handler"]),
    }


def lambda_like_python(out_dir: Path) -> tuple[str, str]:
    """An interpreter with what a deployed function has: the deps layer's requirements and the runtime's boto3.

    The dev venv also holds what SAM CLI and moto pull in (awscrt, pyOpenSSL, ...), which botocore and urllib3
    import when present, so importing a handler there costs more than in Lambda. The venv is built once with
    pip (network needed the first time) and rebuilt when the requirements change.
    """
    requirements = [
        line.strip()
        for line in (ROOT / "layers" / "deps" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    boto3_pin = next(
        line.strip()
        for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines()
        if line.startswith("boto3")
    )
    wanted = "\n".join([*requirements, boto3_pin])
    venv = (out_dir / "lambda-venv").resolve()
    python = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        base = getattr(sys, "_base_executable", sys.executable)
        created = subprocess.run(
            [base, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True, check=False
        )
        installed = (
            created.returncode == 0
            and subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *requirements, boto3_pin],
                capture_output=True,
                text=True,
                check=False,
            ).returncode
            == 0
        )
        if not installed:
            return (
                sys.executable,
                "the dev venv (could not build the Lambda-like venv; figures include SAM CLI's extras)",
            )
        stamp.write_text(wanted)
    return str(python), f"bench/out/lambda-venv ({', '.join([*requirements, boto3_pin])})"


def bench_cold_imports(runs: int, out_dir: Path, python: str | None = None) -> list[dict[str, Any]]:
    heading(f"(d) cold import of each handler module, {runs} fresh interpreters each")
    if python is None:
        python, described = lambda_like_python(out_dir)
    else:
        described = "the dev venv (--cold-python dev)"
    line("interpreter", described)
    results = []
    for fn in deployed_functions():
        module, attribute = fn.handler.rsplit(".", 1)
        paths = [str(fn.code_dir), *(str(p) for p in fn.layer_dirs)]
        samples, cpu_samples, info = [], [], {}
        for _ in range(runs):
            done = subprocess.run(
                [python, "-c", _IMPORT_CHILD, json.dumps(paths), module, attribute],
                cwd=fn.code_dir,
                env=fn.environment,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"importing {fn.handler} of {fn.logical_id} failed:\n{done.stderr}")
            info = json.loads(done.stdout.strip().splitlines()[-1])
            samples.append(info["ms"])
            cpu_samples.append(info["cpu_ms"])
        median, worst = statistics.median(samples), max(samples)
        rel = [os.path.relpath(p, ROOT) + "/" for p in paths]
        print(f"  {fn.logical_id} ({fn.handler}, {fn.memory} MB)")
        line("  sys.path first", " ".join(rel))
        line("  environment variable names", " ".join(sorted(fn.environment)))
        line("  leadpipe imported from", os.path.relpath(info["leadpipe"], ROOT) if info["leadpipe"] else "-")
        line("  modules loaded", info["modules"])
        line("  runs (ms)", " ".join(f"{s:.0f}" for s in samples))
        line("  CPU time of the same runs (ms)", " ".join(f"{s:.0f}" for s in cpu_samples))
        line("  median / max", f"{median:.0f} ms / {worst:.0f} ms")
        results.append({"function": fn.logical_id, "handler": fn.handler, "median": median, "max": worst})
    return results


# ---------------------------------------------------------------------------------------------- summary


def summary(parse: dict[str, Any], ddb: dict[str, Any], cold: list[dict[str, Any]]) -> bool:
    heading("summary")
    line("load average at the end (1/5/15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows: list[tuple[str, str, str, bool]] = []
    rows.append(
        (
            f"(a) parse+validate+normalise ({parse['rows']:,} rows)",
            f"{parse['rate']:,.0f} rows/s",
            f">= {TARGET_ROWS_PER_S:,} rows/s",
            parse["rate"] >= TARGET_ROWS_PER_S and parse["agree"],
        )
    )
    delta = parse["rss_big"] - parse["rss_small"]
    note = "" if parse["rows"] >= 1_000_000 else " (target set for 1M rows)"
    rows.append(
        (
            f"(b) peak RSS, {parse['rows']:,} rows - 10 rows",
            f"{delta:+,.1f} MB ({parse['rss_big']:,.0f} - {parse['rss_small']:,.0f})",
            f"<= {TARGET_RSS_DELTA_MB} MB{note}",
            delta <= TARGET_RSS_DELTA_MB,
        )
    )
    rows.append(
        (
            f"(c) DynamoDB write calls/contact ({ddb['rows']:,} rows)",
            f"{ddb['writes_per_contact']:.4f}",
            f"<= {TARGET_WRITES_PER_CONTACT}",
            ddb["writes_per_contact"] <= TARGET_WRITES_PER_CONTACT,
        )
    )
    rows.append(
        (
            "(c) all DynamoDB calls/contact",
            f"{ddb['calls_per_contact']:.4f}",
            "(reported)",
            True,
        )
    )
    rows.append(
        (
            "(c) job completed, contacts == distinct valid emails",
            f"{ddb['status']}, {ddb['stored']:,} == {ddb['expected']:,}",
            "equal",
            ddb["counts_ok"],
        )
    )
    for c in cold:
        rows.append(
            (
                f"(d) cold import {c['handler']} (median / max)",
                f"{c['median']:.0f} / {c['max']:.0f} ms",
                f"<= {TARGET_COLD_IMPORT_MS} ms (max)",
                c["max"] <= TARGET_COLD_IMPORT_MS,
            )
        )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    target_width = max(len(r[2]) for r in rows)
    print(f"  {'figure':<{width}}  {'measured':<{value_width}}  {'target':<{target_width}}  result")
    for name, value, target, ok in rows:
        result = "-" if target == "(reported)" else ("PASS" if ok else "MISS")
        print(f"  {name:<{width}}  {value:<{value_width}}  {target:<{target_width}}  {result}")
    return all(ok for *_, ok in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="leadpipe import benchmark (issue 2)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for (a) and (b) (default 100000)")
    parser.add_argument("--moto-rows", type=int, default=20_000, help="rows for (c) (default 20000)")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "out", help="generated files (default bench/out)")
    parser.add_argument("--seed", type=int, default=gen_csv.DEFAULT_SEED, help="generator seed")
    parser.add_argument("--cold-runs", type=int, default=COLD_IMPORT_RUNS, help="fresh interpreters per function")
    parser.add_argument(
        "--exact-moto", action="store_true", help="keep moto's own TransactWriteItems rollback (very slow)"
    )
    parser.add_argument(
        "--cold-python",
        choices=["lambda", "dev"],
        default="lambda",
        help="interpreter for (d): a venv with only the deps layer and the runtime's boto3 (default), or the dev venv",
    )
    parser.add_argument("--parse-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-row-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.parse_child is not None:
        result = parse_file(args.parse_child, args.chunk_bytes, args.chunk_rows, args.max_row_bytes)
        print(json.dumps(result))
        return 0

    print("leadpipe import benchmark (issue 2)")
    print("  command: " + " ".join([os.path.relpath(sys.executable, Path.cwd()), *sys.argv]))
    for key, value in machine().items():
        line(key, value)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    parse = bench_parse(args.out_dir, args.rows, args.seed)
    ddb = bench_dynamodb(args.out_dir, args.moto_rows, args.seed, exact_moto=args.exact_moto)
    cold = bench_cold_imports(args.cold_runs, args.out_dir, sys.executable if args.cold_python == "dev" else None)
    summary(parse, ddb, cold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
