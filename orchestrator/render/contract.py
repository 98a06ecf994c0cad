"""The template contract: what the rollout engine needs from a service's rendered objects.

The rollout engine (`rollout/workload.py`) and the Istio router (`traffic/istio.py`) find and rewrite a few
objects by name and a few fields by path. A template set that renders something else would fail only
later, half-way through a rollout; so `render` (and with it `deploy` and `diff`) checks the contract before
anything is applied, and names the template at fault and what is missing. The README's "Template contract"
section is the user's copy of these rules.

- `Deployment/<service>` (apps/v1): the stable workload; its pod template carries the `version` label
  (the DestinationRule subsets select on it, and the live stable version is read from it) and the instance
  label `app.kubernetes.io/instance: <service>` in both the pod labels and `spec.selector.matchLabels`
  (the canary twin rewrites it to `<service>-canary`, which is what keeps the two selectors apart). The
  selector must not select on `version`: a Deployment's selector is immutable, and the version changes
  with every release.
- `DestinationRule/<service>`: subsets `stable` and `canary`, each selecting `version: <version>` at rest.
- `VirtualService/<service>`: an HTTP route named `primary` with a destination on subset `stable` and one
  on subset `canary`: the route whose weights a canary moves.
- `sim.addtocloud.io/*` annotations (the emulator's fault knobs) only on clusters whose target type is
  `sim`, and there with values the emulator can read.
- In every VirtualService route, each destination appears once: two weights on one host (as two clusters of
  one cloud once got on the cross-cloud route) would pass Istio's schema and send traffic nowhere new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.render.manifests import Manifest, object_id

INSTANCE_LABEL = "app.kubernetes.io/instance"
VERSION_LABEL = "version"
PRIMARY_ROUTE = "primary"
SUBSETS = ("stable", "canary")
# The emulator reads these from a Deployment's pod template (sim/mesh.py, sim/kubelet.py); nothing else
# does, so a real cluster must never get them.
SIM_PREFIX = "sim.addtocloud.io/"
SIM_FAILURES = ("", "never-ready", "crash-loop")
_SIM_NUMBERS = {
    "sim.addtocloud.io/error-rate": (0.0, 1.0),
    "sim.addtocloud.io/latency-ms": (0.0, 3_600_000.0),
    "sim.addtocloud.io/error-code": (400.0, 599.0),
    "sim.addtocloud.io/rps": (0.0, 1e6),
}


@dataclass(frozen=True)
class ContractProblem:
    template: str | None  # the template that rendered the object at fault; None when the object is missing
    message: str

    def __str__(self) -> str:
        return f"templates/{self.template}: {self.message}" if self.template else self.message


class TemplateContractError(ConfigError):
    """A template set that the rollout engine could not drive; nothing is applied or written."""

    def __init__(self, problems: Sequence[ContractProblem], *, service: str, where: str) -> None:
        # Shaped like the schema problems' message (a head line, then one indented line per problem,
        # each naming its template), so both read the same.
        plural = "s" if len(problems) != 1 else ""
        head = (
            f"{len(problems)} template contract problem{plural} in {service} for {where} "
            '(the README\'s "Template contract" says what the rollout engine needs)'
        )
        super().__init__(head + ":\n  " + "\n  ".join(str(p) for p in problems))
        self.problems = list(problems)
        first = problems[0].template if problems else None
        self.file = f"templates/{first}" if first else None  # the first template at fault, for callers


def check_contract(
    objects: Sequence[Manifest],
    origins: Mapping[int, str],
    *,
    service: str,
    version: str,
    emulated: bool,
    templates: Sequence[str],
) -> list[ContractProblem]:
    """Every way `objects` (one cluster's rendered set) break the contract; [] when they keep it.

    `origins` maps `id(obj)` to the template that rendered it; `templates` are the pipeline's, named when
    an object is missing altogether (no one template is then at fault).
    """
    problems: list[ContractProblem] = []
    listing = ", ".join(templates) or "none"

    def find(kind: str, group: str) -> Manifest | None:
        for obj in objects:
            api_version = str(obj.get("apiVersion", ""))
            if obj.get("kind") == kind and _name(obj) == service and api_version.startswith(group):
                return obj
        problems.append(
            ContractProblem(None, f"no template renders {kind}/{service} ({group}*); templates: {listing}")
        )
        return None

    def problem(obj: Manifest, message: str) -> None:
        problems.append(ContractProblem(origins.get(id(obj)), f"{object_id(obj)}: {message}"))

    deployment = find("Deployment", "apps/v1")
    if deployment is not None:
        _check_deployment(deployment, service, version, _bind(problem, deployment))
    rule = find("DestinationRule", "networking.istio.io/")
    if rule is not None:
        _check_destination_rule(rule, version, _bind(problem, rule))
    routes = find("VirtualService", "networking.istio.io/")
    if routes is not None:
        _check_primary_route(routes, _bind(problem, routes))
    for obj in objects:
        if obj.get("kind") == "VirtualService":
            _check_distinct_destinations(obj, _bind(problem, obj))
        _check_sim_annotations(obj, emulated, _bind(problem, obj))
    return problems


def _bind(problem: Callable[[Manifest, str], None], obj: Manifest) -> Callable[[str], None]:
    return lambda message: problem(obj, message)


def _check_deployment(
    deployment: Manifest, service: str, version: str, problem: Callable[[str], None]
) -> None:
    spec = _mapping(deployment.get("spec"))
    pod_labels = _mapping(_mapping(_mapping(spec.get("template")).get("metadata")).get("labels"))
    selector = _mapping(_mapping(spec.get("selector")).get("matchLabels"))
    if pod_labels.get(VERSION_LABEL) != version:
        problem(
            f"spec.template.metadata.labels.{VERSION_LABEL} must be the release version "
            f"({VERSION_LABEL}: {{{{ version }}}}), found {pod_labels.get(VERSION_LABEL)!r}"
        )
    for where, labels in (
        ("spec.selector.matchLabels", selector),
        ("spec.template.metadata.labels", pod_labels),
    ):
        if labels.get(INSTANCE_LABEL) != service:
            problem(
                f"{where} must carry {INSTANCE_LABEL}: {service} (the canary rewrites it to keep its pods "
                f"apart), found {labels.get(INSTANCE_LABEL)!r}"
            )
    if VERSION_LABEL in selector:
        problem(
            f"spec.selector.matchLabels must not select on {VERSION_LABEL}: a Deployment's selector is "
            "immutable and the version changes with every release"
        )


def _check_destination_rule(rule: Manifest, version: str, problem: Callable[[str], None]) -> None:
    subsets = {
        s.get("name"): s for s in _sequence(_mapping(rule.get("spec")).get("subsets")) if isinstance(s, dict)
    }
    for name in SUBSETS:
        subset = subsets.get(name)
        if subset is None:
            problem(
                f"spec.subsets has no {name!r} subset (the canary moves traffic between stable and canary)"
            )
        elif _mapping(subset.get("labels")).get(VERSION_LABEL) != version:
            problem(
                f"subset {name!r} must select {VERSION_LABEL}: {{{{ version }}}} at rest, "
                f"found {_mapping(subset.get('labels')).get(VERSION_LABEL)!r}"
            )


def _check_primary_route(routes: Manifest, problem: Callable[[str], None]) -> None:
    http = [r for r in _sequence(_mapping(routes.get("spec")).get("http")) if isinstance(r, dict)]
    primary = next((r for r in http if r.get("name") == PRIMARY_ROUTE), None)
    if primary is None:
        problem(f"spec.http has no route named {PRIMARY_ROUTE!r} (the route a canary's weights move)")
        return
    subsets = {
        _mapping(d.get("destination")).get("subset")
        for d in _sequence(primary.get("route"))
        if isinstance(d, dict)
    }
    for name in SUBSETS:
        if name not in subsets:
            problem(f"route {PRIMARY_ROUTE!r} has no destination on subset {name!r}")


def _check_distinct_destinations(routes: Manifest, problem: Callable[[str], None]) -> None:
    spec = _mapping(routes.get("spec"))
    for protocol in ("http", "tcp", "tls"):
        for index, route in enumerate(_sequence(spec.get(protocol))):
            if not isinstance(route, dict):
                continue
            seen: set[tuple[str, str, str]] = set()
            for entry in _sequence(route.get("route")):
                destination = _mapping(_mapping(entry).get("destination"))
                key = (
                    str(destination.get("host")),
                    str(destination.get("subset", "")),
                    str(_mapping(destination.get("port")).get("number", "")),
                )
                if key in seen:
                    label = route.get("name") or f"{protocol}[{index}]"
                    subset = f" subset {key[1]}" if key[1] else ""
                    problem(
                        f"route {label!r} sends traffic to {key[0]}{subset} twice; each destination "
                        "must appear once (two clusters given one host?)"
                    )
                    break
                seen.add(key)


def _check_sim_annotations(obj: Manifest, emulated: bool, problem: Callable[[str], None]) -> None:
    for where, found in _annotation_sets(obj):
        for key, value in found.items():
            if not str(key).startswith(SIM_PREFIX):
                continue
            if not emulated:
                problem(
                    f"{where} has {key}: the emulator's annotations belong only on clusters whose target "
                    "type is sim (guard them with {% if cluster.emulated %})"
                )
                continue
            reason = _sim_value_problem(str(key), value)
            if reason:
                problem(f"{where}.{key}: {reason}")


def _sim_value_problem(key: str, value: Any) -> str | None:
    if key == "sim.addtocloud.io/failure":
        return None if value in SIM_FAILURES else f"{value!r} is not one of never-ready, crash-loop or empty"
    bounds = _SIM_NUMBERS.get(key)
    if bounds is None:
        known = ", ".join(sorted([*_SIM_NUMBERS, "sim.addtocloud.io/failure"]))
        return f"the emulator reads no such annotation (it reads {known})"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number"
    low, high = bounds
    return None if low <= number <= high else f"{value!r} is outside {low:g}..{high:g}"


def _annotation_sets(obj: Manifest) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield "metadata.annotations", _mapping(_mapping(obj.get("metadata")).get("annotations"))
    template = _mapping(_mapping(obj.get("spec")).get("template"))
    yield (
        "spec.template.metadata.annotations",
        _mapping(_mapping(template.get("metadata")).get("annotations")),
    )


def _name(obj: Manifest) -> Any:
    return _mapping(obj.get("metadata")).get("name")


def _mapping(value: Any) -> Mapping[str, Any]:
    # Rendered objects are parsed YAML: their mappings are dicts (and asking the Mapping ABC cost a
    # tenth of the contract check).
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []
