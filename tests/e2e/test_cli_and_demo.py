"""The ``leadpipe`` command against the local runtime, the demo, and a checkpointed import end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from leadpipe_local.cli import main
from leadpipe_local.demo import run_demo
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import ROOT, TEMPLATE
from tests.e2e.conftest import csv_for, write


def test_import_contacts_status_jobs_and_contact_commands(
    runtime: LocalRuntime, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str], cli_key: str
) -> None:
    path = write(tmp_path, "cli.csv", csv_for(domain, 6) + b"bad-row,,,,\n")
    url = ["--api-url", runtime.api_url]
    assert main(["import", str(path), *url]) == 0
    out = capsys.readouterr().out
    assert "completed_with_errors" in out and "rows 7  valid 6  invalid 1  new 6  merged 0" in out
    assert "invalid_email" in out and "the email has no '@'" in out

    assert main(["contacts", "--domain", domain, *url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(c["email"] for c in listed["items"]) == sorted(f"p{i}@{domain}" for i in range(6))

    assert main(["contacts", "--domain", domain, "--limit", "2", "--all", *url]) == 0
    table = capsys.readouterr().out
    assert all(f"p{i}@{domain}" in table for i in range(6)) and "--cursor" not in table

    assert main(["contact", f"p2@{domain}", *url]) == 0
    assert "Title 2" in capsys.readouterr().out
    assert main(["status", *url]) == 0
    assert "imported" in capsys.readouterr().out
    assert main(["jobs", *url]) == 0
    assert "cli.csv" in capsys.readouterr().out

    assert main(["contact", "nobody@nowhere.example", *url]) == 1
    assert "contact_not_found" in capsys.readouterr().err


def test_import_refuses_a_bad_file_with_the_reason(
    runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_key: str
) -> None:
    path = write(tmp_path, "no-email.csv", b"Name,Company\nAnn,Acme\n")
    assert main(["import", str(path), "--api-url", runtime.api_url]) == 1
    assert "no email column" in capsys.readouterr().err


def test_cli_reports_an_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--api-url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_the_demo_imports_both_ways_and_reports_bad_rows(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = run_demo(TEMPLATE, ROOT / "examples" / "contacts.csv", state_dir=tmp_path, out=out)
    first, second = summary["api_job"], summary["s3_job"]
    assert first["source"] == "api" and second["source"] == "s3"
    assert first["counts"] | {"blank": 0} == {
        "rows_read": 200,
        "valid": 192,
        "invalid": 8,
        "imported": 186,
        "merged": 6,
        "blank": 0,
    }
    assert (second["counts"]["imported"], second["counts"]["merged"]) == (0, 192)
    assert summary["status"]["total"] == 186
    text = out.getvalue()
    for reason in (
        "the email is empty",
        "more than one '@'",
        "call me maybe",
        "is not a LinkedIn profile URL",
        "at most 200",
        "the header has 11 columns",
    ):
        assert reason in text
    enrichment = summary["enrichment"]
    assert enrichment["contacts"] == 186 and 0 < enrichment["published"] < 186  # some are below the threshold
    assert sum(enrichment["buckets"]) == 186 and len(enrichment["shown"]) == 3
    assert "providers asked, in order: sample, sample-web" in text
    assert "skipped (no API key — never faked): apollo, pdl, hunter, dropcontact" in text
    assert "below_threshold" in text and "confirmed by" in text
    sync = summary["sync"]["totals"]
    assert (sync["created"], sync["failed"], sync["associations"], sync["notes"]) == (186, 0, 186, 186)
    assert 0 < sync["companies_created"] < 186  # one company per domain, not per contact
    assert sync["hubspot_calls"] < 186 / 4  # batches, not a call per contact
    assert summary["sync"]["kept"] is True and "(the edit was kept)" in text
    assert summary["status"]["counts"]["synced"] == 186
    deals = summary["deals"]
    assert deals["run"]["status"] == "completed" and deals["run"]["counts"]["won"] > 0
    assert deals["run"]["counts"]["lost"] > 0 and deals["run"]["counts"]["contacts_scored"] == 186
    assert "top ICP-fit contacts" in text and deals["hubspot_fit"] is not None
    assert "the loop settled" in text
    assert "stopping the local stack" in text


def test_a_large_import_continues_across_invocations_through_the_runtime(tmp_path: Path, domain: str) -> None:
    # A tiny time budget: after every chunk of 25 rows the import function hands over to a follow-up message.
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path,
        retry_delay=0,
        env_overrides={"ImportFunction": {"IMPORT_CHUNK_ROWS": "25", "IMPORT_TIME_MARGIN_MS": str(10**9)}},
    )
    with rt, rt.api_client() as api:
        rt.wait_until_idle()  # S3's test event for the new notification configuration has been consumed
        baseline = rt.pools["ImportFunction"].stats["invocations"]
        job = api.import_csv(csv_for(domain, 240) + csv_for(domain, 10, header=""), "long.csv")
        done = api.wait_job(job["job_id"], timeout=60)
        assert done["status"] == "completed"
        assert done["counts"]["rows_read"] == 250
        assert (done["counts"]["imported"], done["counts"]["merged"]) == (240, 10)
        assert rt.pools["ImportFunction"].stats["invocations"] == baseline + 10  # 250 rows, 25 per invocation
        assert api.status()["total"] == 240  # imported, or already enriched by the AutoEnrich path


def test_up_serves_until_ctrl_c_and_stops_everything(tmp_path: Path) -> None:
    import re
    import signal
    import subprocess
    import sys
    import time

    import httpx

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadpipe_local.cli",
            "up",
            "--port",
            "0",
            "--aws-port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--template",
            str(TEMPLATE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    output = "".join(lines)
    api = re.search(r"HTTP API\s+(http://127\.0\.0\.1:\d+)", output)
    aws = re.search(r"AWS \(moto\)\s+(http://127\.0\.0\.1:\d+)", output)
    assert api and aws, output
    leadpipe = [sys.executable, "-m", "leadpipe_local.cli"]
    key = re.search(r"API key\s+(lp_[A-Za-z0-9_-]{43})", output)
    assert key, output
    assert httpx.get(api.group(1) + "/status", timeout=10).status_code == 401  # no key, no answer
    status = httpx.get(api.group(1) + "/status", headers={"x-api-key": key.group(1)}, timeout=10).json()
    assert status["total"] == 0 and status["workspace"] == "default"
    saved = json.loads((tmp_path / "dev-api-key.json").read_text())
    assert saved == {"api_url": api.group(1), "api_key": key.group(1), "workspace": "default"}
    assert (tmp_path / "dev-api-key.json").stat().st_mode & 0o077 == 0  # the owner's only
    # `leadpipe keys create` against the running local stack: a key of another workspace, printed once
    created = subprocess.run(
        [*leadpipe, "keys", "create", "--workspace", "acme", "--name", "ci", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    acme_key = created.stdout.strip()
    assert re.fullmatch(r"lp_[A-Za-z0-9_-]{43}", acme_key), created
    assert "shown once" in created.stderr
    acme = httpx.get(api.group(1) + "/status", headers={"Authorization": f"Bearer {acme_key}"}, timeout=10)
    assert acme.json()["workspace"] == "acme"
    listed = subprocess.run(
        [*leadpipe, "keys", "list", "--workspace", "acme", "--json", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [k["name"] for k in json.loads(listed.stdout)] == ["ci"] and acme_key not in listed.stdout
    assert "ImportFunction" in output and "incoming/" in output
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 3  # moto + one worker per function

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "stopping" in proc.stdout.read()

    def alive(pid: str) -> bool:
        return subprocess.run(["kill", "-0", pid], capture_output=True, check=False).returncode == 0

    grace = time.monotonic() + 10  # helpers like multiprocessing's resource tracker exit just after the parent
    while any(alive(pid) for pid in children) and time.monotonic() < grace:
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == [], "processes left over after Ctrl-C"
    try:
        httpx.get(aws.group(1), timeout=2)
        raise AssertionError("moto is still serving after Ctrl-C")
    except httpx.ConnectError:
        pass


def test_enrich_command_queues_and_waits(
    runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_key: str
) -> None:
    import csv as _csv

    domain = next(_csv.DictReader((ROOT / "shared/leadpipe/data/companies.csv").open()))["domain"]
    email = f"cli-{tmp_path.name[-6:]}@{domain}"
    path = write(tmp_path, "one.csv", f"Email,Job Title\n{email},CFO\n".encode())
    url = ["--api-url", runtime.api_url]
    assert main(["import", str(path), *url]) == 0
    runtime.wait_until_idle(60)
    capsys.readouterr()
    assert main(["enrich", email.upper(), "ghost@nowhere.example", "--min-quality", "0.2", "--wait", *url]) == 0
    out = capsys.readouterr().out
    assert "1 contact(s) queued" in out and "not found: ghost@nowhere.example" in out
    assert email in out and "enriched" in out
    assert main(["enrich", *url]) == 2  # neither emails nor a filter
