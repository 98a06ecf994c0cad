"""The Kubernetes REST API of one simulated cluster, independent of the HTTP transport.

`KubeApi.handle(Request) -> Response` routes discovery, OpenAPI and resource requests
(get/list/watch/create/update/patch/apply/delete, the status and scale subresources) and turns
`ApiError`s into `Status` bodies.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.sim import authorization, discovery, tables
from orchestrator.sim.apply import server_side_apply, track_update
from orchestrator.sim.clock import Clock
from orchestrator.sim.errors import ApiError, success_status
from orchestrator.sim.fields import Schema
from orchestrator.sim.patch import json_merge_patch, json_patch, strategic_merge_patch
from orchestrator.sim.resources import REGISTRY, ResourceRegistry, ResourceType
from orchestrator.sim.selectors import labels_match, parse_field_selector, parse_label_selector
from orchestrator.sim.store import Obj, ObjectStore, rfc3339
from orchestrator.sim.validation import apply_defaults, validate
from orchestrator.sim.watch import WatchRequest, watch_stream

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    cancelled: Callable[[], bool] = field(default=lambda: False)  # the connection is going away

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None  # a chunked body (watches)


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(status: int, obj: Any) -> Response:
    return Response(status, encode(obj))


def _not_found_path() -> ApiError:
    return ApiError(
        404,
        "the server could not find the requested resource",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]},
    )


@dataclass
class Target:
    """Where a resource request points."""

    rt: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


class KubeApi:
    def __init__(
        self,
        store: ObjectStore,
        clock: Clock,
        server_address: Callable[[], str],
        registry: ResourceRegistry = REGISTRY,
    ) -> None:
        self.store = store
        self.clock = clock
        self.server_address = server_address
        self.registry = registry

    # -- entry ------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except ApiError as exc:
            return json_response(exc.code, exc.status())

    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path == "/version":
            return json_response(200, discovery.version_info())
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api":
            return json_response(200, discovery.api_versions(self.server_address()))
        if path == "/apis":
            return json_response(200, discovery.api_group_list(self.registry))
        if path == "/openapi/v3":
            return json_response(200, discovery.openapi_v3_root(self.registry))
        if path.startswith("/openapi/v3/"):
            doc = discovery.openapi_v3_group_version(self.registry, path[len("/openapi/v3/") :])
            if doc is None:
                raise _not_found_path()
            return json_response(200, doc)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                doc = discovery.api_group(self.registry, parts[1])
                if doc is None:
                    raise _not_found_path()
                return json_response(200, doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if (group, version) == (authorization.GROUP, authorization.VERSION) and len(rest) == 1:
            method = req.method.upper()
            body = self._body(req) if method == "POST" else None
            return json_response(201, authorization.review(rest[0], method, body))
        if not rest:
            doc = discovery.api_resource_list(self.registry, group, version)
            if doc is None:
                raise _not_found_path()
            return json_response(200, doc)
        return self._resource(req, self._target(group, version, rest))

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        rt = self.registry.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3 or (namespace is not None and not rt.namespaced):
            raise _not_found_path()
        sub = rest[2] if len(rest) == 3 else None
        if (
            sub is not None
            and sub not in rt.subresources
            and not (rt.kind == "Namespace" and sub == "finalize")
        ):
            raise _not_found_path()
        return Target(rt, version, namespace, rest[1] if len(rest) >= 2 else None, sub)

    def _resource(self, req: Request, t: Target) -> Response:
        method = req.method.upper()
        if t.name is None:
            if method == "GET":
                return self._watch(req, t) if req.flag("watch") else self._list(req, t)
            if method == "POST":
                return self._create(req, t)
            if method == "DELETE":
                return self._delete_collection(req, t)
        elif method == "GET":
            return self._get(req, t)
        elif method == "PUT":
            return self._update(req, t)
        elif method == "PATCH":
            return self._patch(req, t)
        elif method == "DELETE":
            return self._delete(req, t)
        raise ApiError(405, f"the server does not allow this method on the requested resource: {method}")

    # -- helpers ----------------------------------------------------------------------------------
    def _ns(self, t: Target) -> str:
        return (t.namespace or "") if t.rt.namespaced else ""

    def _qualified(self, t: Target) -> str:
        return f"{t.rt.plural}.{t.rt.group}" if t.rt.group else t.rt.plural

    def _out(self, t: Target, obj: Obj) -> Obj:
        api_version = t.rt.api_version(t.version)
        return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    def _body(self, req: Request) -> Any:
        if not req.body:
            raise ApiError(400, "the request body is empty")
        try:
            return json.loads(req.body)
        except ValueError:
            pass
        try:
            return yaml.safe_load(req.body)
        except yaml.YAMLError as exc:
            raise ApiError(400, f"the request body is neither JSON nor YAML: {exc}") from exc

    def _manager(self, req: Request) -> str:
        manager = req.query.get("fieldManager")
        if manager:
            if len(manager) > 128:
                raise ApiError(422, "fieldManager: Too long: may not be longer than 128 characters")
            return manager
        return (req.headers.get("user-agent") or "unknown").split("/", 1)[0][:128]

    def _dry_run(self, req: Request) -> bool:
        value = req.query.get("dryRun")
        if value not in (None, "", "All"):
            raise ApiError(400, f'unsupported dryRun value "{value}": only "All" is supported')
        return value == "All"

    def _wants_table(self, req: Request) -> bool:
        return "as=Table" in req.headers.get("accept", "")

    def _check_body_identity(self, t: Target, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON or YAML object")
        kind = body.get("kind")
        if kind and kind not in (t.rt.kind, "Scale"):
            raise ApiError(
                400, f"the kind of the provided object ({kind}) does not match the resource ({t.rt.kind})"
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if t.rt.namespaced:
            if meta.get("namespace") and t.namespace and meta["namespace"] != t.namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            if t.namespace:
                meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        if t.name is not None and meta.get("name") and meta["name"] != t.name:
            raise ApiError(
                400, f"the name of the object ({meta['name']}) does not match the name on the URL ({t.name})"
            )
        if t.name is not None:
            meta["name"] = t.name
        return body

    def _finish(self, t: Target, obj: Obj, old: Obj | None) -> None:
        if t.rt.kind == "Service" and not (obj.get("spec") or {}).get("clusterIP"):
            prior = (old or {}).get("spec", {}).get("clusterIP")
            obj.setdefault("spec", {})["clusterIP"] = prior or self.store.allocate_cluster_ip()
        apply_defaults(t.rt, obj)
        validate(t.rt, obj, old)

    # -- reads ------------------------------------------------------------------------------------
    def _get(self, req: Request, t: Target) -> Response:
        obj = self.store.peek(t.rt, self._ns(t), t.name or "")
        if obj is None:
            raise ApiError(
                404,
                f'{t.rt.plural}{"." + t.rt.group if t.rt.group else ""} "{t.name}" not found',
                details={"name": t.name, "group": t.rt.group, "kind": t.rt.plural},
            )
        if t.subresource == "scale":
            return json_response(200, self._scale_of(obj))
        if self._wants_table(req):
            return json_response(
                200,
                tables.table(
                    t.rt.kind,
                    [self._out(t, obj)],
                    obj["metadata"]["resourceVersion"],
                    self.clock.now(),
                    req.query.get("includeObject", "Metadata"),
                ),
            )
        return json_response(200, self._out(t, obj))

    def _list(self, req: Request, t: Target) -> Response:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        items, rv = self.store.scan(t.rt, t.namespace, labels, fields)
        items = [self._out(t, o) for o in items]
        if self._wants_table(req):
            return json_response(
                200,
                tables.table(
                    t.rt.kind, items, rv, self.clock.now(), req.query.get("includeObject", "Metadata")
                ),
            )
        return json_response(
            200,
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.rt.api_version(t.version),
                "metadata": {"resourceVersion": rv},
                "items": items,
            },
        )

    def _watch(self, req: Request, t: Target) -> Response:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        rv_text = req.query.get("resourceVersion", "")
        initial = req.flag("sendInitialEvents")
        try:
            since = None if rv_text in ("", "0") or initial else int(rv_text)
            timeout = float(req.query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError as exc:
            raise ApiError(400, f"invalid resourceVersion or timeoutSeconds: {exc}") from exc

        def matches(obj: Obj) -> bool:
            return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields(obj)

        request = WatchRequest(
            rt=t.rt,
            api_version=t.rt.api_version(t.version),
            namespace=t.namespace,
            matches=matches,
            since=since,
            initial_events=initial,
            timeout=timeout,
            table=req.query.get("includeObject", "Metadata") if self._wants_table(req) else None,
            stop=req.cancelled,
        )
        return Response(200, stream=watch_stream(self.store, self.clock, request))

    # -- writes -----------------------------------------------------------------------------------
    def _create(self, req: Request, t: Target) -> Response:
        if t.rt.namespaced and t.namespace is None:
            raise ApiError(
                405, f"{t.rt.plural} must be created in a namespace: POST to /namespaces/<ns>/{t.rt.plural}"
            )
        dry_run = self._dry_run(req)
        obj = self._check_body_identity(t, self._body(req))
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
                )
            else:
                raise ApiError(
                    422,
                    f"{t.rt.kind} is invalid: metadata.name: Required value: name or generateName is "
                    "required",
                    reason="Invalid",
                )
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            meta.pop(server_field, None)
        if "status" in t.rt.subresources and t.rt.kind not in ("Namespace", "Service"):
            obj.pop("status", None)
        with self.store.lock:
            self._finish(t, obj, None)
            track_update(
                None,
                obj,
                manager=self._manager(req),
                schema=Schema(t.rt.kind, t.rt.custom),
                api_version=t.rt.api_version(t.version),
                now=self._now(),
            )
            stored = self.store.create(t.rt, obj, dry_run=dry_run)
            return json_response(201, self._out(t, stored))

    def _current(self, t: Target) -> Obj:
        obj = self.store.peek(t.rt, self._ns(t), t.name or "")
        if obj is None:
            raise ApiError(
                404,
                f'{t.rt.plural}{"." + t.rt.group if t.rt.group else ""} "{t.name}" not found',
                details={"name": t.name, "group": t.rt.group, "kind": t.rt.plural},
            )
        return obj

    def _commit(self, req: Request, t: Target, old: Obj, new: Obj, *, track: bool) -> Obj:
        """Keep server-owned metadata and the parts the target may not change, default, validate, store."""
        sub = t.subresource or ""
        meta = new.setdefault("metadata", {})
        for server_field in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if server_field in old["metadata"]:
                meta[server_field] = old["metadata"][server_field]
            else:
                meta.pop(server_field, None)
        if sub == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif "status" in t.rt.subresources and t.rt.kind not in ("Namespace",):
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if track:
            # Field ownership starts from the live object's, unless the client rewrote it (kubectl's
            # client-side to server-side apply migration patches managedFields): then from the
            # client's. `[{}]` clears it, as on a real API server.
            meta = new["metadata"]
            sent = meta.pop("managedFields", None)
            base = old
            if sent == [{}]:
                base = {**old, "metadata": {k: v for k, v in old["metadata"].items() if k != "managedFields"}}
            elif sent and sub == "" and sent != old["metadata"].get("managedFields"):
                if not all(isinstance(e, dict) and e.get("manager") for e in sent):
                    raise ApiError(422, "metadata.managedFields: Invalid value: every entry needs a manager")
                base = {**old, "metadata": {**old["metadata"], "managedFields": sent}}
            track_update(
                base,
                new,
                manager=self._manager(req),
                schema=Schema(t.rt.kind, t.rt.custom),
                api_version=t.rt.api_version(t.version),
                now=self._now(),
                subresource=sub,
            )
        self._finish(t, new, old)
        return self.store.replace(t.rt, new, dry_run=self._dry_run(req))

    def _check_rv(self, t: Target, old: Obj, new: Obj) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {self._qualified(t)} "{t.name}": '
                "the object has been modified; please apply your changes to the latest version and try again",
                reason="Conflict",
                details={"name": t.name, "group": t.rt.group, "kind": t.rt.plural},
            )

    def _update(self, req: Request, t: Target) -> Response:
        body = self._check_body_identity(t, self._body(req))
        with self.store.lock:
            old = self._current(t)
            self._check_rv(t, old, body)
            if t.subresource == "scale":
                return self._set_scale(req, t, old, body)
            stored = self._commit(req, t, old, body, track=True)
            return json_response(200, self._out(t, stored))

    def _patch(self, req: Request, t: Target) -> Response:
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        patch = self._body(req)
        schema = Schema(t.rt.kind, t.rt.custom)
        with self.store.lock:
            if content_type == APPLY_PATCH:
                return self._apply(req, t, patch, schema)
            old = self._current(t)
            view = self._scale_of(old) if t.subresource == "scale" else copy.deepcopy(self._out(t, old))
            if content_type == MERGE_PATCH:
                new = json_merge_patch(view, patch)
            elif content_type == STRATEGIC_PATCH:
                new = strategic_merge_patch(
                    view, patch, Schema("Scale", False) if t.subresource == "scale" else schema
                )
            elif content_type == JSON_PATCH:
                new = json_patch(view, patch)
            else:
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format ({content_type or 'no content type'}) "
                    f"- accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, "
                    f"{STRATEGIC_PATCH}",
                )
            if not isinstance(new, dict):
                raise ApiError(422, "the patched object is not a JSON object")
            self._check_rv(t, old, new)
            if t.subresource == "scale":
                return self._set_scale(req, t, old, new)
            stored = self._commit(req, t, old, new, track=True)
            return json_response(200, self._out(t, stored))

    def _apply(self, req: Request, t: Target, cfg: Any, schema: Schema) -> Response:
        manager = req.query.get("fieldManager")
        if not manager:
            raise ApiError(
                400,
                "PATCH requests with apply content type must specify a fieldManager "
                "(the fieldManager query parameter is required for apply requests)",
            )
        cfg = self._check_body_identity(t, cfg)
        if not cfg.get("apiVersion") or not cfg.get("kind"):
            raise ApiError(400, "an applied configuration must name its apiVersion and kind")
        if t.subresource == "scale":
            raise ApiError(
                415,
                "server-side apply to the scale subresource is not supported by the sim; use a merge patch",
            )
        old = self.store.peek(t.rt, self._ns(t), t.name or "")
        if old is not None:
            self._check_rv(t, old, cfg)
        merged = server_side_apply(
            copy.deepcopy(self._out(t, old)) if old is not None else None,
            cfg,
            manager=manager,
            force=req.flag("force"),
            schema=schema,
            api_version=t.rt.api_version(t.version),
            now=self._now(),
            subresource=t.subresource or "",
        )
        if old is None:
            if t.subresource:
                raise ApiError(404, f'{t.rt.plural} "{t.name}" not found')
            merged["metadata"].update(
                {"name": t.name, **({"namespace": t.namespace} if t.rt.namespaced else {})}
            )
            self._finish(t, merged, None)
            stored = self.store.create(t.rt, merged, dry_run=self._dry_run(req))
            return json_response(201, self._out(t, stored))
        stored = self._commit(req, t, old, merged, track=False)
        return json_response(200, self._out(t, stored))

    # -- scale ------------------------------------------------------------------------------------
    def _scale_of(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _set_scale(self, req: Request, t: Target, old: Obj, scale: Obj) -> Response:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
                reason="Invalid",
            )
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = replicas
        stored = self._commit(req, t, old, new, track=True)
        return json_response(200, self._scale_of(stored))

    # -- deletes ----------------------------------------------------------------------------------
    def _delete_options(self, req: Request) -> tuple[bool, Obj]:
        opts: Obj = {}
        if req.body:
            body = self._body(req)
            opts = body if isinstance(body, dict) else {}
        policy = req.query.get("propagationPolicy") or opts.get("propagationPolicy") or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise ApiError(400, f"unknown propagationPolicy {policy!r}")
        if opts.get("dryRun") == ["All"]:
            req.query["dryRun"] = "All"
        return policy == "Orphan", opts.get("preconditions") or {}

    def _delete(self, req: Request, t: Target) -> Response:
        orphan, preconditions = self._delete_options(req)
        with self.store.lock:
            old = self._current(t)
            if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {old['metadata']['uid']}",
                    reason="Conflict",
                )
            if (
                preconditions.get("resourceVersion")
                and preconditions["resourceVersion"] != old["metadata"]["resourceVersion"]
            ):
                raise ApiError(
                    409,
                    "Precondition failed: resourceVersion in precondition does not match",
                    reason="Conflict",
                )
            gone = self.store.delete(
                t.rt, self._ns(t), t.name or "", orphan=orphan, dry_run=self._dry_run(req)
            )
        if t.rt.custom or t.rt.kind in ("Pod", "Namespace"):
            return json_response(200, self._out(t, gone))
        return json_response(
            200,
            success_status(
                {
                    "name": t.name,
                    "group": t.rt.group,
                    "kind": t.rt.plural,
                    "uid": gone["metadata"]["uid"],
                }
            ),
        )

    def _delete_collection(self, req: Request, t: Target) -> Response:
        orphan, _ = self._delete_options(req)
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        with self.store.lock:
            items, _rv = self.store.scan(t.rt, t.namespace, labels, fields)
            gone = []
            for obj in items:
                meta = obj["metadata"]
                if self.store.peek(t.rt, meta.get("namespace", ""), meta["name"]) is not None:
                    gone.append(
                        self.store.delete(
                            t.rt,
                            meta.get("namespace", ""),
                            meta["name"],
                            orphan=orphan,
                            dry_run=self._dry_run(req),
                        )
                    )
            rv = self.store.resource_version
        return json_response(
            200,
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.rt.api_version(t.version),
                "metadata": {"resourceVersion": rv},
                "items": [self._out(t, o) for o in gone],
            },
        )
