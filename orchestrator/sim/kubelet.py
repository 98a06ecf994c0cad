"""What a kubelet would report for a simulated pod: Pending while it starts, then Running and Ready
`ready_delay` seconds after creation, unless its template annotation `sim.addtocloud.io/failure`
asks for `never-ready` (running, never ready) or `crash-loop` (a restart every `crash_interval`
seconds, CrashLoopBackOff, never ready)."""

from __future__ import annotations

import copy
import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from orchestrator.sim.store import Obj, rfc3339

FAILURE_ANNOTATION = "sim.addtocloud.io/failure"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's alphabet for generated names
_pod_ips = itertools.count(1)


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(n))


def new_pod(rs: Obj, owner_ref: dict[str, Any], now: float) -> Obj:
    """A Pending pod from a ReplicaSet's template."""
    template = rs["spec"]["template"]
    meta = template.get("metadata") or {}
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{random_suffix()}",
            "namespace": rs["metadata"]["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [owner_ref],
        },
        "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": "sim-node-1"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(now)}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
                for c in (template.get("spec") or {}).get("containers") or []
            ],
            "qosClass": "BestEffort",
        },
    }
    if meta.get("annotations"):
        pod["metadata"]["annotations"] = dict(meta["annotations"])
    return pod


@dataclass(frozen=True)
class PodState:
    status: Obj | None  # None: still starting, leave the Pending status as it is
    ready: bool
    next_change: float | None  # when this pod's status changes next on its own


def pod_state(pod: Obj, born: float, now: float, ready_delay: float, crash_interval: float) -> PodState:
    if now - born < ready_delay:
        return PodState(None, False, born + ready_delay)
    failure = (pod["metadata"].get("annotations") or {}).get(FAILURE_ANNOTATION, "")
    containers = pod["spec"].get("containers") or []
    started = rfc3339(born + ready_delay)
    next_change = None
    if failure == "crash-loop":
        restarts = int((now - born - ready_delay) / crash_interval) + 1
        next_change = born + ready_delay + restarts * crash_interval
        ready = False
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off restarting failed container {c['name']}",
                    }
                },
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
            for c in containers
        ]
    else:
        ready = failure != "never-ready"
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            }
            for c in containers
        ]
    flag = "True" if ready else "False"
    old_ip = (pod.get("status") or {}).get("podIP")
    ip = next(_pod_ips) if not old_ip else 0
    status = {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(born)},
            {"type": "Initialized", "status": "True", "lastTransitionTime": rfc3339(born)},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": started},
            {"type": "Ready", "status": flag, "lastTransitionTime": started},
        ],
        "containerStatuses": statuses,
        "hostIP": "10.0.0.1",
        "podIP": old_ip or f"10.244.{ip // 250 % 250}.{ip % 250 + 1}",
        "startTime": rfc3339(born),
        "qosClass": "BestEffort",
    }
    return PodState(status, ready, next_change)
