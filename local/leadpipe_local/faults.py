"""Faults of the local dispatcher: what Lambda and SQS do to a function on a bad day.

- ``crash``: the function's process dies in the middle of an SQS batch, after a given number of its outbound calls
  (by default, writes to DynamoDB or HubSpot) have completed, the way a Lambda container dies on a timeout or out of
  memory after part of its writes. The whole batch comes back, as it would from Lambda.
- ``duplicate``: a batch is delivered twice (SQS is at-least-once: two pollers can receive the same message); a
  message is deleted when either delivery succeeded.
- ``reorder``: a batch's records arrive in reverse order, and the batch itself is held back until the next batch of
  the same queue has been delivered (standard queues give no ordering), or for ``hold`` seconds at most.

Each fault applies to one function's SQS deliveries (or those of one of its event sources, ``event``), for the next
``times`` batches or for a ``fraction`` of them. A crash is spent only when the process died: a batch that finished
before its crash point (its calls never matched ``match``) gives the fault back for the next batch, and a fault taken
by one batch is not given to another until that batch has ended.
Set them with ``runtime.faults.add(...)`` in the process that runs the runtime, or over HTTP on the runtime's port:
``POST /_local/faults`` (the ``DispatchFault`` fields), ``GET /_local/faults``, ``DELETE /_local/faults``.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = ("crash", "duplicate", "reorder")
# Writes that change state somewhere: DynamoDB, SQS, EventBridge, S3 puts, and HubSpot's write endpoints.
DEFAULT_WRITES = (
    r"BatchWriteItem|TransactWriteItems|PutItem|UpdateItem|DeleteItem|SendMessage|PutEvents"
    r"|^PUT |^(POST|PATCH|DELETE) \S*/crm/v[34]/(objects|associations)/"
)


@dataclass
class DispatchFault:
    kind: str  # crash | duplicate | reorder
    function: str  # the template's logical id, e.g. SyncFunction
    times: int | None = 1  # the next N batches (None with a fraction: that share of batches)
    fraction: float | None = None
    after: int = 1  # crash: matching outbound calls that complete before the process dies
    match: str = DEFAULT_WRITES  # crash: regex over "METHOD URL [X-Amz-Target]" of each outbound call
    hold: float = 5.0  # reorder: longest time a held batch waits for the next one
    event: str | None = None  # only this event source of the function (the template's event name), else any

    def __post_init__(self) -> None:
        self._armed = 0  # batches it was taken for that have not ended yet (not a field: not in the view)

    def validate(self, functions: set[str] | None = None) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if functions is not None and self.function not in functions:
            raise ValueError(f"function must be one of the template's SQS consumers: {', '.join(sorted(functions))}")
        if self.times is not None and (not isinstance(self.times, int) or self.times < 1):
            raise ValueError("times must be a positive integer")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError("fraction must be a number in (0, 1]")
        if (self.times is None) == (self.fraction is None):
            raise ValueError("give times or fraction, not both")
        if not isinstance(self.after, int) or self.after < 0:
            raise ValueError("after must be a count (integer >= 0)")
        try:
            re.compile(self.match)
        except re.error as exc:
            raise ValueError(f"match is not a regular expression: {exc}") from exc
        if not 0 <= self.hold <= 60:
            raise ValueError("hold must be between 0 and 60 seconds")

    @classmethod
    def from_json(cls, spec: Any, functions: set[str] | None = None) -> DispatchFault:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        unknown = set(spec) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        if "kind" not in spec or "function" not in spec:
            raise ValueError("kind and function are required")
        if "fraction" in spec and "times" not in spec:
            spec = {**spec, "times": None}
        numbers = {"times": int, "after": int, "fraction": (int, float), "hold": (int, float)}
        for name, types in numbers.items():
            value = spec.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
                raise ValueError(f"{name} must be a number")
        for name in ("kind", "function", "match", "event"):
            if name in spec and not isinstance(spec[name], str):
                raise ValueError(f"{name} must be a string")
        fault = cls(**spec)
        fault.validate(functions)
        return fault

    @property
    def spent(self) -> bool:
        return self.times is not None and self.times <= 0 and not self._armed

    def view(self) -> dict[str, Any]:
        view = asdict(self)
        if self.kind != "crash":
            view.pop("after"), view.pop("match")
        if self.kind != "reorder":
            view.pop("hold")
        return {k: v for k, v in view.items() if v is not None}


class DispatchFaults:
    """The active dispatcher faults of one runtime, and a count of those applied."""

    def __init__(self, seed: int | None = None) -> None:
        self._faults: list[DispatchFault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.applied: Counter[str] = Counter()  # "crash:SyncFunction" -> batches the fault was applied to

    def add(self, fault: DispatchFault) -> DispatchFault:
        fault.validate()
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[DispatchFault]:
        with self._lock:
            self._faults = [f for f in self._faults if not f.spent]
            return list(self._faults)

    def take(self, kind: str, function: str, event: str | None = None) -> DispatchFault | None:
        """The fault of this kind to apply to this function's next batch (from ``event``), if any, taking one of its
        times; ``settle`` it when the batch has ended (until then it is not spent, and its taken time is not given to
        another batch)."""
        with self._lock:
            for fault in self._faults:
                if fault.kind != kind or fault.function != function:
                    continue
                if fault.event is not None and fault.event != event:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:  # spent, or its last time taken by a batch still running
                        continue
                    fault.times -= 1
                elif fault.fraction is not None and self._rng.random() >= fault.fraction:
                    continue
                fault._armed += 1
                self.applied[f"{kind}:{function}"] += 1
                return fault
        return None

    def settle(self, fault: DispatchFault, *, happened: bool = True) -> None:
        """The batch ``take`` gave ``fault`` to has ended: the fault happened (a crash: the process died), or it did
        not (the batch finished before its crash point), and then it is given back: its time (for ``times``) and
        its count in ``applied``."""
        with self._lock:
            fault._armed = max(0, fault._armed - 1)
            if not happened:
                if fault.times is not None:
                    fault.times += 1
                key = f"{fault.kind}:{fault.function}"
                self.applied[key] -= 1
                if self.applied[key] <= 0:
                    del self.applied[key]
