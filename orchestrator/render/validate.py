"""Schema validation of rendered manifests, before anything is committed or applied.

Kubernetes kinds are checked against the strict schemas that `kubernetes-validate` ships (unknown fields
are errors, as `kubectl apply --validate=strict` makes them); Istio kinds against the CRD schemas kept in
`schemas/istio/` (see its README), where unknown fields in `spec` are errors too, since the API server
would prune them silently and the route the author meant would never exist.

Speed matters (the render benchmark validates ~11,000 objects), so each (apiVersion, kind) gets, on
first use, a draft-07 copy of its schema whose `$ref`s point into a local `definitions` table, compiled
by jsonschema-rs (Rust) into a validator that only answers "valid or not": measured against the
hand-written closure compiler this module had, it checks the estate in half the CPU and builds the 11
kinds in 10 ms instead of 170 ms (`benchmarks/validators.py`, docs/benchmarks.md). Only when an object
fails do we run jsonschema (Python) over the same schema, to list every error with its field path.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError
from orchestrator.logs import get_logger

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

log = get_logger(__name__)

# The Kubernetes minor version whose schemas we validate against: one that EKS, AKS and GKE all run.
KUBERNETES_VERSION = "1.33"

_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_ISTIO_DIR = _SCHEMA_DIR / "istio"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_DRAFT7 = "http://json-schema.org/draft-07/schema#"

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Formats the API server really enforces on what we render; every other `format` is dropped, so the
# fast check and jsonschema agree on what they check.
_FORMAT_PATTERNS = {
    "byte": r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z",
    "date-time": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)\Z",
}
_FORMAT_DESCRIPTIONS = {"byte": "base64-encoded bytes", "date-time": "an RFC 3339 date-time"}

_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


@dataclass(frozen=True)
class SchemaViolation:
    """One way a manifest breaks its schema, named by object and field."""

    api_version: str
    kind: str
    name: str
    field: str  # e.g. "spec.replicas" or "spec.http[0].route"; "" for the object as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.kind or '<no kind>'}/{self.name or '<no name>'}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def validate_manifest(obj: Mapping[str, Any]) -> list[SchemaViolation]:
    """Check one rendered object against its Kubernetes or Istio schema; [] when it is valid."""
    if isinstance(obj, dict):
        data: dict[str, Any] = obj
    elif isinstance(obj, Mapping):
        data = _plain(obj)
    else:
        return [SchemaViolation("", "", "", "", f"a manifest must be a mapping, not {_type_name(obj)}")]
    api_version, kind = data.get("apiVersion"), data.get("kind")
    # The common case, valid, costs one compiled check and the metadata rules; reporting is lazy.
    if isinstance(api_version, str) and isinstance(kind, str) and api_version and kind:
        checker = _checkers.get((api_version, kind)) or _checker(api_version, kind)
        if checker is not None and checker.is_valid(data) and _metadata_is_valid(data, kind):
            return []
    return _violations(data)


def _violations(obj: dict[str, Any]) -> list[SchemaViolation]:
    """Everything wrong with an object the fast check rejected, each named by field."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    report = _Reporter(
        api_version if isinstance(api_version, str) else "",
        kind if isinstance(kind, str) else "",
        name if isinstance(name, str) else "",
    )
    violations = _metadata_violations(obj, report)
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            violations.append(report(key, "required field is missing or not a string"))
    if not report.api_version or not report.kind:
        return violations
    checker = _checker(report.api_version, report.kind)
    if checker is None:
        violations.append(report("", _no_schema_message(report.api_version, report.kind)))
    elif not checker.is_valid(obj):
        violations.extend(checker.explain(obj, report))
    return violations


def known_kinds() -> list[tuple[str, str]]:
    """Every (apiVersion, kind) pair that has a schema, sorted."""
    return sorted(_schema_sources())


# --- where schemas come from ----------------------------------------------------------------------


def _kubernetes_schema_dir() -> Path:
    # Located, not imported: importing kubernetes_validate pulls in jsonschema, yaml and more.
    spec = find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise OrchestratorError("the kubernetes-validate package is not installed; it holds the schemas")
    root = Path(spec.origin).resolve().parent / "kubernetes-json-schema"
    folder = root / f"v{KUBERNETES_VERSION}.0-local-strict"
    if not folder.is_dir():
        shipped = sorted(p.name for p in root.glob("v*-local-strict"))
        raise OrchestratorError(
            f"kubernetes-validate {_package_version()} has no strict schemas for Kubernetes "
            f"{KUBERNETES_VERSION} (it ships: {', '.join(shipped) or 'none'}); "
            "install a kubernetes-validate release that does"
        )
    return folder


def _package_version() -> str:
    try:
        return package_version("kubernetes-validate")
    except PackageNotFoundError:
        return "(unknown version)"


@cache
def _kubernetes_definitions() -> dict[str, Any]:
    """The `$defs` table of kubernetes-validate's strict schemas, parsed once per process."""
    path = _kubernetes_schema_dir() / "_definitions.json"
    with path.open(encoding="utf-8") as handle:
        definitions: dict[str, Any] = json.load(handle)["$defs"]
    return definitions


@cache
def _schema_sources() -> dict[tuple[str, str], Callable[[], dict[str, Any]]]:
    """(apiVersion, kind) -> a function building its draft-07 schema; nothing is built yet."""
    sources: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {}
    for definition_name, definition in _kubernetes_definitions().items():
        gvks = definition.get("x-kubernetes-group-version-kind") or []
        # Several kinds share one definition only for meta types (DeleteOptions, WatchEvent), and
        # apimachinery's own kinds (Status, APIGroup) are API responses, never manifests.
        if len(gvks) != 1 or definition_name.startswith("io.k8s.apimachinery."):
            continue
        gvk = gvks[0]
        api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        sources[(api_version, gvk["kind"])] = partial(_kubernetes_kind_schema, definition_name)
    for path in sorted(_ISTIO_DIR.glob("*/*/*.json")):
        api_version = f"{path.parent.parent.name}/{path.parent.name}"
        sources[(api_version, path.stem)] = partial(_crd_kind_schema, path)
    return sources


def _kubernetes_kind_schema(definition_name: str) -> dict[str, Any]:
    definitions = _kubernetes_definitions()
    root = _to_draft7(definitions[definition_name], close_objects=False)
    return _with_definitions(root, definitions)


def _crd_kind_schema(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        raw: dict[str, Any] = json.load(handle)
    # The CRD schema refers to ObjectMeta by a name of its generator's; use the real, strict one.
    raw["properties"]["metadata"] = {"$ref": f"#/$defs/{_OBJECT_META}"}
    # CRD schemas are structural: the API server prunes fields it does not know. We report them.
    root = _to_draft7(raw, close_objects=True)
    return _with_definitions(root, _kubernetes_definitions())


def _with_definitions(root: dict[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """Attach the transitive closure of the definitions `root` refers to, in draft-07 form."""
    table: dict[str, Any] = {}
    pending = list(_refs(root))
    while pending:
        name = pending.pop()
        if name in table:
            continue
        table[name] = _to_draft7(definitions[name], close_objects=False)
        pending.extend(_refs(table[name]))
    return {"$schema": _DRAFT7, **root, "definitions": table}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


# --- turning OpenAPI-flavoured schemas into plain draft-07 -----------------------------------------

_DROPPED_KEYS = {"description", "$schema", "$id", "nullable", "format", "readOnly", "example"}
_NAME_MAPS = {"properties", "patternProperties", "definitions", "$defs"}
_DATA_KEYS = {"enum", "required", "const", "default"}


def _to_draft7(node: Any, *, close_objects: bool) -> Any:
    """A draft-07 copy of an OpenAPI v3 / draft 2020-12 schema node.

    `nullable` becomes a "null" type, `$ref`s point into `#/definitions/`, int32/int64 become ranges,
    and a oneOf of bare types (IntOrString, Quantity) becomes one type list, which is both faster and
    gives a plain "is not of type" message. With `close_objects`, objects that list their properties
    reject others, unless marked `x-kubernetes-preserve-unknown-fields`.
    """
    if isinstance(node, list):
        return [_to_draft7(item, close_objects=close_objects) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key.startswith("x-"):
            continue
        if key == "$ref":
            out[key] = "#/definitions/" + value.rsplit("/", 1)[-1]
        elif key in _NAME_MAPS:
            target = "definitions" if key == "$defs" else key
            out[target] = {name: _to_draft7(sub, close_objects=close_objects) for name, sub in value.items()}
        elif key in _DATA_KEYS:
            out[key] = value
        else:
            out[key] = _to_draft7(value, close_objects=close_objects)

    branches = out.get("oneOf")
    if isinstance(branches, list) and branches and all(_is_bare_type(b) for b in branches):
        del out["oneOf"]
        merged: list[str] = []
        for branch in branches:
            for name in _type_list(branch["type"]):
                if name not in merged:
                    merged.append(name)
        out["type"] = merged

    if node.get("nullable") is True:
        if "type" in out and "null" not in _type_list(out["type"]):
            out["type"] = [*_type_list(out["type"]), "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]

    form = node.get("format")
    if form in _INT_RANGES and "integer" in _type_list(out.get("type")):
        low, high = _INT_RANGES[form]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    elif form in _FORMAT_PATTERNS:
        out["format"] = form

    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if close_objects and out.get("properties") and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _is_bare_type(branch: Any) -> bool:
    return isinstance(branch, dict) and set(branch) == {"type"}


def _type_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


# --- checking one kind -----------------------------------------------------------------------------


class _Reporter:
    """Makes violations for one object; carries its identity so call sites stay short."""

    def __init__(self, api_version: str, kind: str, name: str) -> None:
        self.api_version = api_version
        self.kind = kind
        self.name = name

    def __call__(self, field: str, message: str) -> SchemaViolation:
        return SchemaViolation(self.api_version, self.kind, self.name, field, message)


class _KindChecker:
    """The fast yes/no check of one kind (jsonschema-rs), plus the slow jsonschema pass that explains a
    failure. Both run the same draft-07 schema, so they agree on what is valid."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._full: Any = None  # a jsonschema Draft7Validator, made the first time an object fails
        import jsonschema_rs  # 20-40 ms: paid by the first validation, not by every command's start

        self._fast = jsonschema_rs.Draft7Validator(
            schema, validate_formats=True, ignore_unknown_formats=True, formats=_fast_formats()
        )

    def is_valid(self, obj: dict[str, Any]) -> bool:
        try:
            return bool(self._fast.is_valid(obj))
        except ValueError:
            # jsonschema-rs takes JSON's types only: a key that is not a string (YAML reads `1:` as an
            # integer) is retried as the JSON text sent to the API server would have it; anything else
            # that is not JSON (a date) is invalid, and jsonschema names it.
            try:
                return bool(self._fast.is_valid(_json_keys(obj)))
            except ValueError:
                return False

    def explain(self, obj: dict[str, Any], report: _Reporter) -> list[SchemaViolation]:
        found: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for error in self._full_validator().iter_errors(obj):
            for path, message in _describe(error):
                found.setdefault((_field(path), message), _sort_key(path))
        ordered = sorted(found, key=lambda field_and_message: found[field_and_message])
        violations = [report(field, message) for field, message in ordered]
        if not violations:  # the two validators disagree; say so rather than pass the object
            violations.append(report("", "fails its schema (the detailed check found no error to name)"))
        return violations

    def _full_validator(self) -> Any:
        if self._full is None:
            import jsonschema  # only needed once something fails: keeps start-up quick

            self._full = jsonschema.Draft7Validator(self._schema, format_checker=_format_checker())
        return self._full


def _json_keys(value: Any) -> Any:
    """`value` with every mapping key as json.dumps writes it (1 -> "1", True -> "true")."""
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else _json_key(key): _json_keys(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_json_keys(item) for item in value]
    return value


def _json_key(key: Any) -> str:
    try:
        return json.dumps(key)
    except TypeError:  # a date: not JSON at all; its text, so the check can go on
        return str(key)


@cache
def _fast_formats() -> dict[str, Callable[[str], bool]]:
    """The formats the API server enforces (see _FORMAT_PATTERNS), as jsonschema-rs format checks."""
    return {name: _pattern_check(re.compile(pattern)) for name, pattern in _FORMAT_PATTERNS.items()}


_checkers: dict[tuple[str, str], _KindChecker | None] = {}
_checkers_lock = threading.Lock()


def _checker(api_version: str, kind: str) -> _KindChecker | None:
    key = (api_version, kind)
    try:
        return _checkers[key]
    except KeyError:
        pass
    with _checkers_lock:
        if key not in _checkers:
            source = _schema_sources().get(key)
            _checkers[key] = _KindChecker(source()) if source else None
            log.debug("schema_compiled", api_version=api_version, kind=kind, found=source is not None)
        return _checkers[key]


@cache
def _format_checker() -> jsonschema.FormatChecker:
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, pattern in _FORMAT_PATTERNS.items():
        compiled = re.compile(pattern)
        checker.checks(name)(_pattern_check(compiled))
    return checker


def _pattern_check(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    return lambda value: not isinstance(value, str) or pattern.match(value) is not None


def _no_schema_message(api_version: str, kind: str) -> str:
    same_kind = sorted(v for v, k in _schema_sources() if k == kind)
    hint = f"; {kind} is known in {', '.join(same_kind)}" if same_kind else ""
    return f"no schema for {kind} in {api_version}{hint}"


# --- explaining errors to a person -----------------------------------------------------------------


def _describe(error: ValidationError) -> Iterator[tuple[list[Any], str]]:
    """(path, message) pairs for one jsonschema error, worded for the person who wrote the template."""
    path = list(error.absolute_path)
    instance, schema = error.instance, error.schema
    rule = error.validator
    if rule == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        known = list(schema.get("properties", {}))
        for key in sorted((k for k in instance if k not in known), key=str):
            yield [*path, key], _unknown_field_message(key, known)
    elif rule == "required" and isinstance(instance, dict):
        for key in error.validator_value:
            if key not in instance:
                yield [*path, key], "required field is missing"
    elif rule == "type":
        expected = [t for t in _type_list(error.validator_value) if t != "null"] or ["null"]
        wanted = " or ".join(repr(t) for t in expected)
        yield path, f"{_short_repr(instance)} is not of type {wanted}"
    elif rule == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value if v is not None)
        yield path, f"{_short_repr(instance)} is not one of {allowed}"
    elif rule == "format":
        wanted = _FORMAT_DESCRIPTIONS.get(str(error.validator_value), str(error.validator_value))
        yield path, f"{_short_repr(instance)} is not {wanted}"
    elif rule in ("oneOf", "anyOf"):
        yield path, _alternatives_message(error)
    else:
        yield path, _shorten(error.message)


def _unknown_field_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown field {key!r}{hint}"


def _alternatives_message(error: ValidationError) -> str:
    """Istio's "set at most one of" rules are oneOf/anyOf over `required`; say that plainly."""
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    fields: list[str] = []
    allows_none = False
    for branch in branches:
        if isinstance(branch, dict) and set(branch) == {"required"}:
            fields.extend(branch["required"])
        elif isinstance(branch, dict) and set(branch) == {"not"}:
            allows_none = True
        else:
            fields = []
            break
    if fields:
        quantity = "at most one" if allows_none else "exactly one"
        return f"set {quantity} of: {', '.join(fields)}"
    if error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            return _shorten(best.message)
    return _shorten(error.message)


def _metadata_is_valid(obj: dict[str, Any], kind: str) -> bool:
    """The fast yes/no form of `_metadata_violations`: labels repeat across objects, so valid label
    keys and values are remembered and the common case is a few set lookups."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return False
    name = metadata.get("name")
    if not isinstance(name, str) or not name or _name_problem(name, kind) is not None:
        return False
    namespace = metadata.get("namespace")
    if isinstance(namespace, str) and not _is_dns1123_label(namespace):
        return False
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            if key not in _good_label_keys:
                if not (isinstance(key, str) and _is_label_key(key)):
                    return False
                _remember(_good_label_keys, key)
            if value not in _good_label_values:
                if isinstance(value, str) and value and not _is_label_value(value):
                    return False
                if isinstance(value, str):
                    _remember(_good_label_values, value)
    return True


_good_label_keys: set[str] = set()
_good_label_values: set[str] = set()


def _remember(seen: set[str], value: str) -> None:
    if len(seen) > 50_000:  # a bound, not an LRU: the estate's label vocabulary is far smaller
        seen.clear()
    seen.add(value)


def _metadata_violations(obj: dict[str, Any], report: _Reporter) -> list[SchemaViolation]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        if metadata is None:
            return [report("metadata.name", "required field is missing")]
        return []  # the schema reports the wrong type
    violations: list[SchemaViolation] = []
    name = metadata.get("name")
    if name is None or name == "":
        violations.append(report("metadata.name", "required field is missing"))
    elif isinstance(name, str):
        problem = _name_problem(name, report.kind)
        if problem:
            violations.append(report("metadata.name", problem))
    namespace = metadata.get("namespace")
    if isinstance(namespace, str) and not _is_dns1123_label(namespace):
        violations.append(report("metadata.namespace", _not_a("DNS-1123 label", namespace)))
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            if isinstance(key, str) and not _is_label_key(key):
                violations.append(report(_field(["metadata", "labels", key]), _LABEL_KEY_RULE))
            if isinstance(value, str) and value and not _is_label_value(value):
                message = f"{_short_repr(value)} is not a valid label value ({_NAME_RULES['label value']})"
                violations.append(report(_field(["metadata", "labels", key]), message))
    return violations


_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def _name_problem(name: str, kind: str) -> str | None:
    # The API server's own rules: Services need an RFC 1035 label (it becomes a DNS name),
    # Namespaces a DNS-1123 label, RBAC objects only a URL path segment ("system:auth" is fine),
    # everything else, custom resources included, a DNS-1123 subdomain.
    if kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return (
                f"{_short_repr(name)} is not a valid name (it must not be '.' or '..' nor contain '/' or '%')"
            )
        return None
    if kind == "Service":
        if len(name) <= 63 and _DNS1035_LABEL.fullmatch(name):
            return None
        return _not_a("DNS-1035 label", name)
    if kind == "Namespace":
        return None if _is_dns1123_label(name) else _not_a("DNS-1123 label", name)
    if len(name) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(name):
        return None
    return _not_a("DNS-1123 subdomain", name)


_NAME_RULES = {
    "DNS-1035 label": "at most 63 lowercase letters, digits and '-', starting with a letter "
    "and ending with a letter or digit",
    "DNS-1123 label": "at most 63 lowercase letters, digits and '-', starting and ending with a "
    "letter or digit",
    "DNS-1123 subdomain": "at most 253 lowercase letters, digits, '-' and '.', starting and ending "
    "with a letter or digit",
    "label value": "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
}
_LABEL_KEY_RULE = (
    "not a valid label key (an optional DNS-1123 subdomain prefix and '/', then at most 63 letters, "
    "digits, '-', '_' and '.', starting and ending with a letter or digit)"
)


def _not_a(rule: str, value: str) -> str:
    return f"{_short_repr(value)} is not a valid {rule} ({_NAME_RULES[rule]})"


def _is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def _is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and not (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return _is_label_value(name)


def _is_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None


# --- small helpers ---------------------------------------------------------------------------------


def _field(path: Iterable[object]) -> str:
    """["spec", "http", 0, "route"] -> "spec.http[0].route"; odd keys are quoted: labels["a/b"]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _SIMPLE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


def _sort_key(path: Sequence[object]) -> list[tuple[int, str]]:
    return [(0, f"{p:012d}") if isinstance(p, int) else (1, str(p)) for p in path]


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shorten(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _type_name(value: object) -> str:
    return type(value).__name__


def _plain(value: Any) -> Any:
    """Plain dicts and lists, as JSON would give: the compiled validators check exact container types."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
