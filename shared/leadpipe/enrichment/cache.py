"""The enrichment cache: each provider's normalised answer per (provider, kind, email|domain), misses included.

Table: ``pk = {provider}#{kind}#{key}``, TTL on ``expires_at`` (epoch seconds). DynamoDB deletes expired items up
to 48 hours late, so readers check ``expires_at`` themselves and treat an expired item as absent. Found answers live
``CACHE_DAYS`` (default 30), misses ``CACHE_MISS_DAYS`` (default 7): a company that was unknown last week may be known
now. Reads are BatchGetItem (100 keys a call), writes BatchWriteItem (25 items a call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from leadpipe.dynamo import batch_get, batch_write, from_item, to_item
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.providers.base import Answer
from leadpipe.models import iso, utcnow

DAY = 86_400


def cache_key(provider: str, kind: Kind, key: str) -> str:
    return f"{provider}#{kind.value}#{key}"


class EnrichmentCache:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        ttl_days: int = 30,
        miss_ttl_days: int = 7,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_seconds = ttl_days * DAY
        self.miss_ttl_seconds = miss_ttl_days * DAY
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.hits = 0
        self.misses = 0

    def get_many(self, provider: str, kind: Kind, keys: Sequence[str]) -> dict[str, Answer]:
        """Unexpired cached answers for these keys (found or not found)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        items = batch_get(
            self.client,
            self.table,
            [{"pk": {"S": cache_key(provider, kind, k)}} for k in unique],
            consistent=False,
            calls=self.calls,
        )
        now = self.clock().timestamp()
        found: dict[str, Answer] = {}
        for raw in items:
            data = from_item(raw)
            if float(data.get("expires_at", 0)) <= now:
                continue  # expired but not deleted yet
            answer = Answer.from_dict(data["answer"])
            found[answer.key] = answer
        self.hits += len(found)
        self.misses += len(unique) - len(found)
        return found

    def put_many(self, provider: str, answers: Iterable[Answer]) -> None:
        now = self.clock()
        items = []
        for answer in answers:
            ttl = self.ttl_seconds if answer.found else self.miss_ttl_seconds
            items.append(
                to_item(
                    {
                        "pk": cache_key(provider, answer.kind, answer.key),
                        "provider": provider,
                        "answer": answer.to_dict(),
                        "fetched_at": iso(now),
                        "expires_at": int(now.timestamp()) + ttl,
                    }
                )
            )
        self._write([{"PutRequest": {"Item": item}} for item in items])

    def delete_keys(self, providers: Iterable[str], kind: Kind, keys: Iterable[str]) -> None:
        """Remove every provider's cached answer for these emails/domains (erasure)."""
        requests = [{"DeleteRequest": {"Key": {"pk": {"S": cache_key(p, kind, k)}}}} for p in providers for k in keys]
        self._write(requests)

    def erase(self, providers: Iterable[str], kind: Kind, keys: Iterable[str]) -> int:
        """Delete every provider's cached answer for these keys, expired or not; returns how many there were (one
        BatchGetItem per 100 keys to find them, then BatchWriteItem deletes)."""
        pks = list(dict.fromkeys(cache_key(p, kind, k) for p in dict.fromkeys(providers) for k in keys))
        if not pks:
            return 0
        found = batch_get(self.client, self.table, [{"pk": {"S": pk}} for pk in pks], projection=("pk",))
        self._write([{"DeleteRequest": {"Key": {"pk": item["pk"]}}} for item in found])
        return len(found)

    def _write(self, requests: list[dict[str, Any]]) -> None:
        batch_write(self.client, self.table, requests, calls=self.calls)
