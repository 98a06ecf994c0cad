"""Schema validator benchmark: the renderer's own checks against jsonschema-rs, on the render estate.

    python benchmarks/validators.py              # 100 services x 3 environments x 3 clusters (10,500 objects)
    python benchmarks/validators.py --services 20 --repeat 5 --json

`benchmarks/render.py` times render + validate as a whole; this isolates the validation step of it, the
part where the choice of validator shows. The estate's objects are rendered once (validation off), then
each side checks every object, `--repeat` times (the best run counts; CPU time):

- `orchestrator`: `render.validate.validate_manifest`, what `Renderer` runs (each kind's yes/no check,
  then the metadata rules: names, label keys and values);
- `jsonschema-rs`: `jsonschema_rs.Draft7Validator` over the very draft-07 schemas the orchestrator's
  check is built from, `is_valid` per object, plus the same metadata rules: the bare library.

The orchestrator's check was a hand-written compiler of schemas into Python closures until it was
measured with this script against jsonschema-rs, which took half its CPU; it now is jsonschema-rs, and
the two lines show what the wrapper costs. Each side's one-time cost (reading and converting the 11
kinds' schemas and compiling them; in `validate_manifest` on first use) is reported apart. Both must
call every object valid, or the run stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _cpu(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    value = action()
    return time.process_time() - started, value


def estate_objects(root: Path, services: int) -> list[dict[str, Any]]:
    from benchmarks.estate import build_estate
    from orchestrator.config import Project
    from orchestrator.render.engine import Renderer

    estate = build_estate(root, services=services)
    project = Project(estate.root)
    renderer = Renderer(project, validate=False)
    return [
        obj
        for service in project.service_names
        for env in project.environment_names
        for rendered in renderer.render_environment(project.pipeline(service), project.environment(env))
        for obj in rendered.objects
    ]


def measure(objects: Sequence[dict[str, Any]], repeat: int) -> dict[str, Any]:
    from orchestrator.render import validate

    kinds = sorted({(o["apiVersion"], o["kind"]) for o in objects})
    results: dict[str, Any] = {"objects": len(objects), "kinds": len(kinds)}

    # The orchestrator's checks: compiled on first use, as in a render.
    validate._checkers.clear()
    compile_s, _ = _cpu(lambda: [validate._checker(*k) for k in kinds])

    def ours() -> int:
        return sum(1 for o in objects if validate.validate_manifest(o) == [])

    runs = [_cpu(ours) for _ in range(repeat)]
    if any(valid != len(objects) for _, valid in runs):
        raise SystemExit("the orchestrator's validator refused an object of the estate")
    results["orchestrator"] = {"compile_s": compile_s, "check_s": min(t for t, _ in runs)}

    try:
        import jsonschema_rs
    except ImportError:
        results["jsonschema-rs"] = None
        return results

    schemas = {k: validate._checker(*k)._schema for k in kinds}  # type: ignore[union-attr]
    compile_rs, compiled = _cpu(lambda: {k: jsonschema_rs.Draft7Validator(s) for k, s in schemas.items()})

    def theirs() -> int:
        valid = 0
        for o in objects:
            key = (o["apiVersion"], o["kind"])
            if compiled[key].is_valid(o) and validate._metadata_is_valid(o, key[1]):
                valid += 1
        return valid

    runs = [_cpu(theirs) for _ in range(repeat)]
    if any(valid != len(objects) for _, valid in runs):
        raise SystemExit("jsonschema-rs refused an object the orchestrator accepts")
    results["jsonschema-rs"] = {"compile_s": compile_rs, "check_s": min(t for t, _ in runs)}
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"{results['objects']} objects of {results['kinds']} kinds; CPU, best of the repeats"]
    for name in ("orchestrator", "jsonschema-rs"):
        figures = results.get(name)
        if figures is None:
            lines.append(f"{name}: not installed (pip install jsonschema-rs)")
            continue
        per_object = figures["check_s"] / results["objects"] * 1e6
        lines.append(
            f"{name}: check {figures['check_s']:.3f} s ({per_object:.1f} µs an object), "
            f"compile {figures['compile_s']:.3f} s"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=100, help="services in the estate (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each validator; the best counts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat needs at least one run")
    from orchestrator.logs import configure_logging

    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="validators-bench-") as tmp:
        objects = estate_objects(Path(tmp) / "estate", args.services)
        results = measure(objects, args.repeat)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
