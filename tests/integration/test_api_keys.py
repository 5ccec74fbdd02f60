"""API keys against moto: only hashes stored, one workspace per key, revocation, the resolver's cache."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadpipe.apikeys import NEGATIVE_TTL, POSITIVE_TTL, ApiKeyStore, KeyResolver, digest, key_from_headers
from leadpipe.errors import BadRequest, NotFound, Unauthorized
from tests.conftest import Stack


@pytest.fixture
def store(stack: Stack) -> ApiKeyStore:
    return ApiKeyStore(stack.client("dynamodb"), stack.ref("StateTable"))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class CountingStore(ApiKeyStore):
    lookups = 0

    def lookup(self, key: str) -> Any:
        self.lookups += 1
        return super().lookup(key)


def test_create_stores_only_a_hash(store: ApiKeyStore, stack: Stack) -> None:
    key, record = store.create("acme", "ci")
    assert key.startswith("lp_") and len(key) == 46
    assert record.workspace == "acme" and record.name == "ci" and record.hint == key[:7]
    items = stack.client("dynamodb").scan(TableName=stack.ref("StateTable"))["Items"]
    dumped = json.dumps(items)
    assert key not in dumped and key[7:] not in dumped  # the key itself is nowhere
    assert f"KEY#{digest(key)}" in dumped
    assert store.lookup(key) is not None and store.lookup(key).workspace == "acme"  # type: ignore[union-attr]


def test_keys_are_distinct_and_listed_per_workspace(store: ApiKeyStore) -> None:
    a1, _ = store.create("acme", "one")
    a2, _ = store.create("acme", "two")
    b1, _ = store.create("globex")
    assert len({a1, a2, b1}) == 3
    assert sorted(r.name for r in store.list("acme")) == ["one", "two"]
    assert [r.workspace for r in store.list("globex")] == ["globex"]
    assert store.list("initech") == []


def test_invalid_workspace_and_name_are_refused(store: ApiKeyStore) -> None:
    with pytest.raises(BadRequest, match="invalid workspace"):
        store.create("Acme Corp")
    with pytest.raises(BadRequest, match="longer than"):
        store.create("acme", "x" * 81)


def test_revoke_only_within_the_workspace(store: ApiKeyStore) -> None:
    key, record = store.create("acme")
    with pytest.raises(NotFound):
        store.revoke("globex", record.key_id)  # another workspace cannot revoke it
    assert store.lookup(key).revoked_at is None  # type: ignore[union-attr]
    revoked = store.revoke("acme", record.key_id)
    assert revoked.revoked_at is not None and revoked.digest == digest(key)
    assert store.lookup(key).revoked_at is not None  # type: ignore[union-attr]
    assert store.revoke("acme", record.key_id).revoked_at == revoked.revoked_at  # twice is harmless
    with pytest.raises(NotFound):
        store.revoke("acme", "ffffffffffff")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer lp_x"}, "lp_x"),
        ({"authorization": "bearer   lp_y  "}, "lp_y"),
        ({"X-Api-Key": "lp_z"}, "lp_z"),
        ({"authorization": "Basic abc", "x-api-key": "lp_w"}, "lp_w"),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_key_from_headers(headers: dict[str, str], expected: str | None) -> None:
    assert key_from_headers(headers) == expected


def test_resolver_caches_and_refuses(stack: Stack) -> None:
    store = CountingStore(stack.client("dynamodb"), stack.ref("StateTable"))
    clock = Clock()
    resolver = KeyResolver(store, now=clock)
    key, record = store.create("acme")
    for _ in range(5):
        assert resolver.workspace({"x-api-key": key}) == "acme"
    assert store.lookups == 1  # cached

    with pytest.raises(Unauthorized) as missing:
        resolver.workspace({})
    assert missing.value.code == "missing_api_key"
    bogus = "lp_" + "A" * 43
    for _ in range(3):
        with pytest.raises(Unauthorized) as bad:
            resolver.workspace({"authorization": f"Bearer {bogus}"})
        assert bad.value.code == "invalid_api_key"
    assert store.lookups == 2  # the unknown key was looked up once and remembered briefly
    with pytest.raises(Unauthorized):
        resolver.workspace({"x-api-key": "not-even-shaped-like-a-key"})
    assert store.lookups == 3  # malformed keys are refused without a read (lookup returns None at once)

    store.revoke("acme", record.key_id)
    assert resolver.workspace({"x-api-key": key}) == "acme"  # still cached in this container...
    clock.t += POSITIVE_TTL + 1
    with pytest.raises(Unauthorized):  # ...until the cache time passes
        resolver.workspace({"x-api-key": key})

    key2, record2 = store.create("acme")
    assert resolver.workspace({"x-api-key": key2}) == "acme"
    resolver.forget(store.revoke("acme", record2.key_id).digest)
    with pytest.raises(Unauthorized):  # forgotten: refused at once
        resolver.workspace({"x-api-key": key2})


def test_negative_answers_expire(stack: Stack) -> None:
    store = CountingStore(stack.client("dynamodb"), stack.ref("StateTable"))
    clock = Clock()
    resolver = KeyResolver(store, now=clock)
    key = "lp_" + "B" * 43
    for _ in range(2):
        with pytest.raises(Unauthorized):
            resolver.workspace({"x-api-key": key})
    assert store.lookups == 1
    clock.t += NEGATIVE_TTL + 1
    with pytest.raises(Unauthorized):
        resolver.workspace({"x-api-key": key})
    assert store.lookups == 2  # read again once the short negative cache time has passed
