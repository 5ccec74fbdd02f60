"""An import whose chunks are slower than the time margin still stops in time (found by the soak, issue 8).

On a loaded machine a chunk of 500 rows took 25-35 s, close to the 30 s margin: an invocation that checked with 35 s
left started one more chunk and was killed by the Lambda timeout, three times in a row for one message (five would
have sent the rest of the file to the DLQ). The import now keeps the margin plus its slowest chunk so far.
"""

from __future__ import annotations

from typing import Any

from leadpipe.models import JobStatus
from tests.conftest import Stack
from tests.integration.test_importer import HEADER, contact_rows, queued, service

TIMEOUT_MS = 315_000  # the invocation's time (a 300 s function, started with 315 s left: see below)
CHUNK_MS = 40_000  # each chunk takes 40 s, longer than the 30 s margin


def test_chunks_slower_than_the_margin_never_outrun_the_invocation(stack: Stack) -> None:
    svc = service(stack, import_chunk_rows=10)  # the default margin: 30 s
    job = svc.start_from_body("default", (HEADER + contact_rows(200)).encode(), "slow.csv")
    queued(stack)
    left = {"ms": 0}
    real_apply = svc._apply_chunk
    stopped_with: list[int] = []

    def slow_chunk(*args: Any, **kwargs: Any) -> Any:
        left["ms"] -= CHUNK_MS
        # 315 - 7 x 40 = 35 s left after the 7th chunk: above the margin, but an 8th chunk would need 40 s
        assert left["ms"] > 0, "the invocation ran out of time in the middle of a chunk (Lambda kills it)"
        return real_apply(*args, **kwargs)

    svc._apply_chunk = slow_chunk  # type: ignore[method-assign]
    outcomes = []
    while not outcomes or outcomes[-1] == "continued":
        left["ms"] = TIMEOUT_MS  # a fresh invocation for the follow-up message
        outcomes.append(svc.run("default", job.job_id, lambda: left["ms"]).outcome)
        stopped_with.append(left["ms"])
        queued(stack)  # the follow-up message, handled by the next iteration
    assert outcomes[-1] == "completed"
    assert len(outcomes) == 3  # 20 chunks: 7 + 7 + 6
    assert min(stopped_with[:-1]) >= 30_000  # every continuation kept at least the margin
    final = svc.jobs.get("default", job.job_id)
    assert final is not None and final.status is JobStatus.COMPLETED
    assert (final.counts.rows_read, final.counts.imported, final.counts.merged) == (200, 200, 0)
