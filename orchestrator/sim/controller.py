"""The deployment, replica set and pod controllers of a simulated cluster.

Each pass (every `tick` seconds of the injected clock) does what kube-controller-manager and the
kubelet would: a Deployment gets one ReplicaSet per pod-template hash, rolled by its strategy
(maxSurge/maxUnavailable, or Recreate); a ReplicaSet gets its Pods; a Pod becomes Ready
`ready_delay` seconds after it is created, unless its template asks for a failure mode with the
annotation `sim.addtocloud.io/failure`: `never-ready` (running, never ready) or `crash-loop`
(restartCount grows, CrashLoopBackOff). Deployment status and conditions follow, including
ProgressDeadlineExceeded when nothing progressed for `progressDeadlineSeconds`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.logs import get_logger
from orchestrator.sim.clock import Clock
from orchestrator.sim.events import EventRecorder
from orchestrator.sim.kubelet import NAME_ALPHABET, new_pod, pod_state
from orchestrator.sim.resources import REGISTRY, ResourceType
from orchestrator.sim.selectors import labels_match, selector_from_label_selector
from orchestrator.sim.store import Obj, ObjectStore, WatchEvent, rfc3339

log = get_logger(__name__)

FULL_PASS_EVERY = 5.0  # seconds between full passes (a safety net under the dirty tracking)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def _rt(group: str, kind: str) -> ResourceType:
    rt = REGISTRY.by_kind(group, kind)
    assert rt is not None
    return rt


DEPLOYMENTS = _rt("apps", "Deployment")
REPLICASETS = _rt("apps", "ReplicaSet")
PODS = _rt("", "Pod")


def pod_template_hash(template: Obj) -> str:
    """A short, stable hash of a pod template, spelled like the API server's (consonants and digits)."""
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:5], "big")
    out = []
    for _ in range(10):
        digest, rem = divmod(digest, len(NAME_ALPHABET))
        out.append(NAME_ALPHABET[rem])
    return "".join(out)


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        exact = total * float(text[:-1]) / 100.0
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def _owner_ref(owner: Obj, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _cond(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _set_cond(
    status: Obj, type_: str, value: str, reason: str, message: str, now: str, progressed: bool
) -> None:
    conditions = status.setdefault("conditions", [])
    old = _cond(status, type_)
    if old and (old["status"], old["reason"], old["message"]) == (value, reason, message) and not progressed:
        return
    new = {
        "type": type_,
        "status": value,
        "lastUpdateTime": now,
        "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == value else now,
        "reason": reason,
        "message": message,
    }
    if old:
        conditions[conditions.index(old)] = new
    else:
        conditions.append(new)


class DeploymentController:
    def __init__(
        self, store: ObjectStore, clock: Clock, *, ready_delay: float = 0.5, crash_interval: float = 1.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.ready_delay = ready_delay
        self.crash_interval = crash_interval
        self._born: dict[str, float] = {}  # pod uid -> creation time (finer than creationTimestamp)
        self._ready_at: dict[str, float] = {}  # pod uid -> when it became ready
        self._progress_at: dict[str, float] = {}  # deployment uid -> last progress
        self._rs_by_owner: dict[str, dict[str, Obj]] = {}  # owner uid -> {uid: replica set}
        self._pods_by_owner: dict[str, dict[str, Obj]] = {}  # owner uid -> {uid: pod}
        self._dirty: set[str] = set()  # uids to look at in the next pass
        self._due: dict[str, float] = {}  # uid -> when its next time-based change is due
        self._rs_owner: dict[str, str] = {}  # replica set uid -> deployment uid
        self._next_full = -math.inf
        self._listening = False
        self.events = EventRecorder(store, clock, "deployment-controller")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- loop -------------------------------------------------------------------------------------
    def start(
        self, on_tick: Callable[[], None] | None = None, tick: float = 0.05, tick_every: float = 0.2
    ) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            last_tick = -math.inf
            while not self._stop.is_set():
                try:
                    self.reconcile()
                    # The tick callback (mesh accounting) needs no more than a few calls a second.
                    if on_tick is not None and self.clock.now() - last_tick >= tick_every:
                        last_tick = self.clock.now()
                        on_tick()
                except Exception:  # one bad object must not stop the cluster's controllers
                    log.exception("sim.controller_failed")
                self.clock.sleep(tick)

        self._thread = threading.Thread(target=loop, name="sim-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reconcile(self, *, full: bool = False) -> None:
        """One pass of the controllers; safe to call directly (tests with a manual clock do).

        A pass handles only what is dirty: objects written since the last pass (the store tells us,
        with owners marked through ownerReferences) and objects whose timer is due (a pod to become
        ready, a crash-loop restart, minReadySeconds, a progress deadline). Every FULL_PASS_EVERY
        seconds a full pass catches anything missed. An idle cluster costs next to nothing, and one
        rollout does not pay for every other deployment of the cluster.
        """
        with self.store.lock:
            if not self._listening:
                self.store.add_listener(self._on_write)
                self._index_all()
                self._listening = True
            now = self.clock.now()
            for uid in [u for u, due in self._due.items() if due <= now]:
                del self._due[uid]
                self._mark(uid)
            if now >= self._next_full:
                full = True
            if not full and not self._dirty:
                return
            if full:
                self._next_full = now + FULL_PASS_EVERY
            dirty, self._dirty = self._dirty, set()

            def wanted(obj: Obj) -> bool:
                uid = obj["metadata"]["uid"]
                return full or uid in dirty or uid in self._dirty

            self.store.finalize_namespaces()
            for deployment in self.store.objects(DEPLOYMENTS):
                if wanted(deployment):
                    self._sync_deployment(deployment)
            for rs in self.store.objects(REPLICASETS):
                if wanted(rs):
                    self._sync_replicaset(rs)
            pods = self.store.objects(PODS)
            for pod in pods:
                if wanted(pod):
                    self._sync_pod(pod)
            if full:
                self._forget_gone_pods({p["metadata"]["uid"] for p in pods})
                self.events.expire()
            for rs in self.store.objects(REPLICASETS):
                if wanted(rs):
                    self._sync_replicaset_status(rs)
            for deployment in self.store.objects(DEPLOYMENTS):
                if wanted(deployment):
                    self._sync_deployment_status(deployment)

    def _on_write(self, event: WatchEvent) -> None:
        """Store listener (under the store lock): mark the written object and its owners dirty."""
        meta = event.obj.get("metadata", {})
        uid = meta.get("uid", "")
        if event.old is not None:
            self._reindex(event.storage_key, event.old, removed=True)
        if event.type != "DELETED":
            self._reindex(event.storage_key, event.obj, removed=False)
        if event.storage_key == REPLICASETS.storage_key:
            for ref in meta.get("ownerReferences") or []:
                self._rs_owner[uid] = ref.get("uid", "")
        self._mark(uid)
        for ref in meta.get("ownerReferences") or []:
            self._mark(ref.get("uid", ""))
        if event.type == "DELETED":
            for table in (self._born, self._ready_at, self._due, self._rs_owner):
                table.pop(uid, None)

    def _mark(self, uid: str) -> None:
        """Dirty an object and, for a replica set, the deployment that owns it."""
        if not uid:
            return
        self._dirty.add(uid)
        owner = self._rs_owner.get(uid)
        if owner:
            self._dirty.add(owner)

    def _wake_at(self, uid: str, moment: float) -> None:
        self._due[uid] = min(self._due.get(uid, math.inf), moment)

    def _index_all(self) -> None:
        """Replica sets and pods by owner uid, built once; `_on_write` keeps them current."""
        self._rs_by_owner = {}
        self._pods_by_owner = {}
        for rt in (REPLICASETS, PODS):
            for obj in self.store.objects(rt):
                self._reindex(rt.storage_key, obj, removed=False)

    def _reindex(self, storage_key: str, obj: Obj, *, removed: bool) -> None:
        if storage_key == REPLICASETS.storage_key:
            index = self._rs_by_owner
        elif storage_key == PODS.storage_key:
            index = self._pods_by_owner
        else:
            return
        uid = obj["metadata"]["uid"]
        for ref in obj["metadata"].get("ownerReferences") or []:
            owned = index.setdefault(ref.get("uid", ""), {})
            if removed:
                owned.pop(uid, None)
            else:
                owned[uid] = obj

    def _forget_gone_pods(self, live: set[str]) -> None:
        for table in (self._born, self._ready_at):
            for uid in [u for u in table if u not in live]:
                del table[uid]

    # -- deployments ------------------------------------------------------------------------------
    def _replicasets_of(self, deployment: Obj) -> list[Obj]:
        return list(self._rs_by_owner.get(deployment["metadata"]["uid"], {}).values())

    def _sync_deployment(self, d: Obj) -> None:
        spec = d["spec"]
        template = spec["template"]
        h = pod_template_hash(template)
        rss = self._replicasets_of(d)
        new_rs = next((rs for rs in rss if rs["metadata"].get("labels", {}).get(HASH_LABEL) == h), None)
        olds = [rs for rs in rss if rs is not new_rs]
        if spec.get("paused"):
            return
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in olds]
        top = max(revisions, default=0)
        if new_rs is None:
            new_rs = self._create_replicaset(d, h, top + 1)
            self._progress_at[d["metadata"]["uid"]] = self.clock.now()
        elif int(new_rs["metadata"].get("annotations", {}).get(REVISION, "0")) <= top:
            new_rs = self._set_rs(new_rs, annotations={REVISION: str(top + 1)})
        revision = new_rs["metadata"]["annotations"][REVISION]
        if d["metadata"].get("annotations", {}).get(REVISION) != revision:
            updated = copy.deepcopy(d)
            updated["metadata"].setdefault("annotations", {})[REVISION] = revision
            self.store.replace(DEPLOYMENTS, updated)

        desired = spec.get("replicas", 1)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            if any(rs["spec"].get("replicas", 0) for rs in olds):
                for rs in olds:
                    self._set_rs(rs, replicas=0, owner=d)
                return
            if any(self._pods_of(rs) for rs in olds):
                return
            self._set_rs(new_rs, replicas=desired, owner=d)
            return

        rolling = strategy.get("rollingUpdate") or {}
        max_surge = _int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
        max_unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1

        new_replicas = new_rs["spec"].get("replicas", 0)
        total = new_replicas + sum(rs["spec"].get("replicas", 0) for rs in olds)
        if new_replicas < desired:
            grow = min(desired + max_surge - total, desired - new_replicas)
            if grow > 0:
                new_replicas += grow
                new_rs = self._set_rs(new_rs, replicas=new_replicas, owner=d)
        elif new_replicas > desired:
            new_replicas = desired
            new_rs = self._set_rs(new_rs, replicas=desired, owner=d)

        # Scale old replica sets down without dropping below the minimum available: first their
        # unavailable pods, then available ones beyond the minimum (the ReplicaSet controller's order).
        min_available = desired - max_unavailable
        all_replicas = new_replicas + sum(rs["spec"].get("replicas", 0) for rs in olds)
        max_scaled_down = all_replicas - min_available - (new_replicas - self._available_count(new_rs))
        if max_scaled_down > 0:
            for rs in sorted(olds, key=lambda r: r["metadata"]["creationTimestamp"]):
                replicas = rs["spec"].get("replicas", 0)
                cut = min(max_scaled_down, replicas - self._available_count(rs))
                if cut > 0:
                    self._set_rs(rs, replicas=replicas - cut, owner=d)
                    max_scaled_down -= cut
            removable = sum(self._available_count(rs) for rs in [new_rs, *olds]) - min_available
            for rs in sorted(olds, key=lambda r: r["metadata"]["creationTimestamp"]):
                current = (
                    self.store.peek(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
                )
                replicas = current["spec"].get("replicas", 0)
                cut = min(replicas, removable)
                if cut > 0:
                    self._set_rs(current, replicas=replicas - cut, owner=d)
                    removable -= cut
        self._prune_history(d, olds)

    def _prune_history(self, d: Obj, olds: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in olds if not rs["spec"].get("replicas") and not self._pods_of(rs)]
        idle.sort(key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _create_replicaset(self, d: Obj, h: str, revision: int) -> Obj:
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
                },
                "ownerReferences": [_owner_ref(d, "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "selector": selector,
                "template": template,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
            },
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        return self.store.create(REPLICASETS, rs)

    def _set_rs(
        self,
        rs: Obj,
        *,
        replicas: int | None = None,
        annotations: dict[str, str] | None = None,
        owner: Obj | None = None,
    ) -> Obj:
        current = self.store.peek(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
        if current is None:
            return rs
        new = copy.deepcopy(current)
        before = current["spec"].get("replicas", 0)
        if replicas is not None:
            new["spec"]["replicas"] = replicas
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        if owner is not None and replicas is not None and replicas != before:
            direction = "up" if replicas > before else "down"
            self.events.record(
                owner,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {current['metadata']['name']} to {replicas}",
            )
        return self.store.replace(REPLICASETS, new)

    # -- replica sets -----------------------------------------------------------------------------
    def _pods_of(self, rs: Obj) -> list[Obj]:
        return list(self._pods_by_owner.get(rs["metadata"]["uid"], {}).values())

    def _is_ready(self, pod: Obj) -> bool:
        return any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in pod.get("status", {}).get("conditions") or []
        )

    def _available_count(self, rs: Obj) -> int:
        min_ready = rs["spec"].get("minReadySeconds", 0)
        now = self.clock.now()
        count = 0
        for pod in self._pods_of(rs):
            if not self._is_ready(pod):
                continue
            ready_at = self._ready_at.get(pod["metadata"]["uid"], now - min_ready)
            if now - ready_at >= min_ready:
                count += 1
            else:
                self._wake_at(rs["metadata"]["uid"], ready_at + min_ready)
        return count

    def _sync_replicaset(self, rs: Obj) -> None:
        pods = self._pods_of(rs)
        want = rs["spec"].get("replicas", 0)
        if len(pods) < want:
            for _ in range(want - len(pods)):
                self._create_pod(rs)
        elif len(pods) > want:
            # Unready pods go first, then the newest (what the ReplicaSet controller prefers).
            pods.sort(key=lambda p: (self._is_ready(p), -self._born.get(p["metadata"]["uid"], 0.0)))
            for pod in pods[: len(pods) - want]:
                self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
                self.events.record(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"
                )
                self._born.pop(pod["metadata"]["uid"], None)
                self._ready_at.pop(pod["metadata"]["uid"], None)

    def _create_pod(self, rs: Obj) -> None:
        created = self.store.create(PODS, new_pod(rs, _owner_ref(rs, "ReplicaSet"), self.clock.now()))
        self._born[created["metadata"]["uid"]] = self.clock.now()
        self.events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    def _sync_replicaset_status(self, rs: Obj) -> None:
        pods = self._pods_of(rs)
        selector = selector_from_label_selector(rs["spec"].get("selector"))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if labels_match(selector, p["metadata"].get("labels"))
            ),
            "readyReplicas": sum(1 for p in pods if self._is_ready(p)),
            "availableReplicas": self._available_count(rs),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if rs.get("status") != status:
            new = copy.deepcopy(rs)
            new["status"] = status
            self.store.replace(REPLICASETS, new)

    # -- pods -------------------------------------------------------------------------------------
    def _sync_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        now = self.clock.now()
        state = pod_state(pod, self._born.setdefault(uid, now), now, self.ready_delay, self.crash_interval)
        if state.next_change is not None:
            self._wake_at(uid, state.next_change)
        if state.status is None or state.status == pod.get("status"):
            return
        new = copy.deepcopy(pod)
        new["status"] = state.status
        self.store.replace(PODS, new)
        if state.ready and uid not in self._ready_at:
            self._ready_at[uid] = now
        self._pod_events(pod, new)

    def _pod_events(self, old: Obj, new: Obj) -> None:
        """What the kubelet would report: start, readiness failures, restarts (aggregated by count)."""
        name = new["metadata"]["name"]
        old_statuses = {c["name"]: c for c in (old.get("status") or {}).get("containerStatuses") or []}
        for status in new["status"].get("containerStatuses") or []:
            before = old_statuses.get(status["name"], {})
            if status.get("restartCount", 0) > before.get("restartCount", 0):
                self.events.record(
                    new,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {status['name']} in pod {name}",
                )
            elif "running" in status.get("state", {}) and "running" not in before.get("state", {}):
                self.events.record(new, "Normal", "Started", f"Started container {status['name']}")
                if not status.get("ready"):
                    self.events.record(new, "Warning", "Unhealthy", "Readiness probe failed")

    # -- deployment status ------------------------------------------------------------------------
    def _sync_deployment_status(self, d: Obj) -> None:
        spec = d["spec"]
        desired = spec.get("replicas", 1)
        h = pod_template_hash(spec["template"])
        rss = self._replicasets_of(d)
        new_rs = next((rs for rs in rss if rs["metadata"].get("labels", {}).get(HASH_LABEL) == h), None)
        all_pods = [p for rs in rss for p in self._pods_of(rs)]
        updated = len(self._pods_of(new_rs)) if new_rs else 0
        ready = sum(1 for p in all_pods if self._is_ready(p))
        available = sum(self._available_count(rs) for rs in rss)
        spec_total = sum(rs["spec"].get("replicas", 0) for rs in rss)
        old_status = d.get("status") or {}
        status: Obj = copy.deepcopy(old_status)
        status.update(
            {
                "observedGeneration": d["metadata"].get("generation", 1),
                "replicas": len(all_pods),
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(spec_total - available, 0),
            }
        )
        for key in (
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "updatedReplicas",
            "replicas",
        ):
            if not status[key]:
                del status[key]
        uid = d["metadata"]["uid"]
        now_f = self.clock.now()
        now = rfc3339(now_f)
        counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        progressed = any(status.get(k, 0) != old_status.get(k, 0) for k in counts)
        if progressed:
            self._progress_at[uid] = now_f
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            max_unavailable = desired
        if available >= desired - max_unavailable:
            _set_cond(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                False,
            )
        else:
            _set_cond(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                False,
            )
        rs_name = new_rs["metadata"]["name"] if new_rs else d["metadata"]["name"]
        complete = updated == desired and len(all_pods) == desired and available == desired
        progressing = _cond(status, "Progressing")
        if spec.get("paused"):
            _set_cond(
                status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now, False
            )
        elif complete:
            _set_cond(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
                False,
            )
        elif (
            progressed
            or progressing is None
            or progressing.get("reason") in ("NewReplicaSetAvailable", "DeploymentPaused")
        ):
            self._progress_at.setdefault(uid, now_f)
            if progressing is None or progressing.get("reason") in (
                "NewReplicaSetAvailable",
                "DeploymentPaused",
            ):
                self._progress_at[uid] = now_f
            _set_cond(
                status,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now,
                progressed,
            )
        else:
            deadline = spec.get("progressDeadlineSeconds", 600)
            last = self._progress_at.setdefault(uid, now_f)
            if progressing.get("reason") != "ProgressDeadlineExceeded":
                self._wake_at(uid, last + deadline + 0.001)
            if progressing.get("reason") != "ProgressDeadlineExceeded" and now_f - last > deadline:
                _set_cond(
                    status,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    now,
                    False,
                )
        order = {"Available": 0, "Progressing": 1}
        status["conditions"] = sorted(status.get("conditions") or [], key=lambda c: order.get(c["type"], 2))
        if status != old_status:
            new = copy.deepcopy(d)
            new["status"] = status
            self.store.replace(DEPLOYMENTS, new)
