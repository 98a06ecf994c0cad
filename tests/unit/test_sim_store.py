"""The emulator's object store: deleting an object takes its dependents (ownerReferences) with it, found by
the store's owner index rather than a scan, in the order they were created; orphaning keeps them."""

from __future__ import annotations

from typing import Any

from orchestrator.sim.controller import PODS, REPLICASETS
from orchestrator.sim.store import ObjectStore


def _owned(name: str, owner: dict[str, Any] | None, kind: str = "Pod") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
             "uid": owner["metadata"]["uid"]}
        ]  # fmt: skip
    return {"apiVersion": "v1" if kind == "Pod" else "apps/v1", "kind": kind, "metadata": meta, "spec": {}}


def _names(store: ObjectStore, rt: Any) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in store.objects(rt))


def test_deleting_an_owner_deletes_its_dependents_in_creation_order_and_nothing_else() -> None:
    store = ObjectStore()
    rs = store.create(REPLICASETS, _owned("web-1", None, kind="ReplicaSet"))
    other = store.create(REPLICASETS, _owned("api-1", None, kind="ReplicaSet"))
    for name in ("web-1-c", "web-1-a", "web-1-b"):
        store.create(PODS, _owned(name, rs))
    store.create(PODS, _owned("api-1-a", other))
    released = store.create(PODS, _owned("web-1-released", rs))
    meta = {k: v for k, v in released["metadata"].items() if k != "ownerReferences"}
    released = {**released, "metadata": meta}
    store.replace(PODS, released)  # no longer owned: deleting the owner leaves it
    rv = int(store.resource_version)

    store.delete(REPLICASETS, "default", "web-1")

    deleted = [e.obj["metadata"]["name"] for e in store.events_after(rv) if e.type == "DELETED"]
    assert deleted == ["web-1", "web-1-c", "web-1-a", "web-1-b"]
    assert _names(store, PODS) == ["api-1-a", "web-1-released"]
    assert _names(store, REPLICASETS) == ["api-1"]


def test_orphaning_keeps_the_dependents_without_the_reference_and_a_later_delete_takes_none() -> None:
    store = ObjectStore()
    rs = store.create(REPLICASETS, _owned("web-1", None, kind="ReplicaSet"))
    store.create(PODS, _owned("web-1-a", rs))

    store.delete(REPLICASETS, "default", "web-1", orphan=True)

    (pod,) = store.objects(PODS)
    assert "ownerReferences" not in pod["metadata"]
    again = store.create(REPLICASETS, _owned("web-1", None, kind="ReplicaSet"))
    store.delete(REPLICASETS, "default", "web-1")
    assert again["metadata"]["uid"] != rs["metadata"]["uid"]
    assert _names(store, PODS) == ["web-1-a"]
