"""Render a service's templates for each cluster of an environment and validate the result.

Jinja runs sandboxed with StrictUndefined, so a template can neither reach Python internals nor silently
render an empty string for a misspelt value; both become errors naming the template and line.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import jinja2.meta
import yaml
from jinja2.filters import do_tojson
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from orchestrator.config import ClusterConfig, Environment, Pipeline, Project
from orchestrator.config.source import decode_error
from orchestrator.errors import ConfigError
from orchestrator.render.contract import TemplateContractError, check_contract
from orchestrator.render.documents import dump_value, load_documents
from orchestrator.render.generators import name_by_content
from orchestrator.render.images import image_for
from orchestrator.render.manifests import Manifest, RenderedSet, object_id, object_key
from orchestrator.render.validate import validate_manifest
from orchestrator.render.values import TrackedValues, ValueReads, merge_values, refuse_unread_overrides
from orchestrator.render.values_schema import ValuesSchema, load_values_schema, value_layers

# A template refers to another only in an include, extends, import or from-import statement: a source
# without such a tag needs no parse to know it refers to none (parsing every template once more, for the
# version's digest, was a sixth of a render's start). Comments and raw blocks can only make this match
# where nothing is referenced, which costs the parse, never a reference.
_MAY_REFERENCE = re.compile(r"\{%[-+]?\s*(?:include|extends|import|from)\b")


class ManifestInvalidError(ConfigError):
    """Rendered objects that fail their Kubernetes or Istio schema; nothing is applied or written."""

    def __init__(self, problems: Sequence[str], *, service: str, environment: str, cluster: str) -> None:
        plural = "s" if len(problems) != 1 else ""
        head = f"{len(problems)} object problem{plural} in {service} for {environment}/{cluster}"
        super().__init__(head + ":\n  " + "\n  ".join(problems))
        self.problems = list(problems)


def _to_yaml(value: Any) -> str:
    return dump_value(value).rstrip("\n")


@jinja2.pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
    """Jinja's `tojson`, answered at once for a string that needs none of its HTML escapes (`<`, `>`, `&`,
    `'`): the same text (`json.dumps` of a str is `encode_basestring_ascii`), without the three layers
    and four replaces around it. Templates call it on most scalars; this halves its cost."""
    if value.__class__ is str and indent is None and not any(c in value for c in "<>&'"):
        return Markup(encode_basestring_ascii(value))
    return do_tojson(eval_ctx, value, indent)


class _YamlMemo:
    """`to_yaml` that dumps each object once per rendered set: every template of a set dumps the same
    labels. Objects are remembered by identity (and held, so an id is never reused) only for one set,
    during which nothing can change them: the sandbox is immutable and the context is built per set."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, str]] = {}

    def clear(self) -> None:
        self._seen.clear()

    def __call__(self, value: Any) -> str:
        if isinstance(value, TrackedValues):
            value = value.consume()  # YAML's dumper knows plain dicts only
        seen = self._seen.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        text = _to_yaml(value)
        self._seen[id(value)] = (value, text)
        return text


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates shared by every renderer of this process (Jinja's bytecode cache, in memory).

    A worker makes a renderer per rollout (an engine per job), and compiling the templates again was a
    twentieth of a fleet worker's CPU (benchmarks/fleet.py). Jinja keys a template by its name and file and
    checks a checksum of its source before using the code, so a template edited since is compiled again;
    every renderer's environment is configured alike, which sharing compiled code needs. The least recently
    used are dropped past MAX_ENTRIES (each commit's tree is its own files)."""

    MAX_ENTRIES = 512

    def __init__(self) -> None:
        self._code: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
            if code is not None:
                self._code.move_to_end(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code
            self._code.move_to_end(bucket.key)
            while len(self._code) > self.MAX_ENTRIES:
                self._code.popitem(last=False)


_COMPILED = _CompiledTemplates()


class Renderer:
    """Renders one project's templates; compiled templates are cached for the renderer's life (and their
    code for the process's, `_CompiledTemplates`)."""

    def __init__(self, project: Project, *, validate: bool = True) -> None:
        self.project = project
        self.validate = validate
        self.jinja = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(project.templates_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            bytecode_cache=_COMPILED,
        )
        self._yaml_memo = _YamlMemo()
        self.jinja.filters["to_yaml"] = self._yaml_memo
        self.jinja.filters["tojson"] = _tojson
        self._templates: dict[str, tuple[jinja2.Template, dict[str, Any]]] = {}
        self._values_schemas: dict[str, ValuesSchema | None] = {}
        self._sources: dict[tuple[str, ...], str] = {}

    def _sources_digest(self, names: Sequence[str]) -> str:
        """A digest of the templates' source, and of every template they include, extend or import: a
        change to any of them is a new version (a canary), like a change of image or values. Read once per
        renderer; a template that cannot be read is left to rendering to report."""
        key = tuple(names)
        if key not in self._sources:
            seen: dict[str, str] = {}
            pending = list(names)
            while pending:
                name = pending.pop()
                if name in seen:
                    continue
                try:
                    source = self.jinja.loader.get_source(self.jinja, name)[0]  # type: ignore[union-attr]
                    referenced = (
                        jinja2.meta.find_referenced_templates(self.jinja.parse(source))
                        if _MAY_REFERENCE.search(source)
                        else ()
                    )
                except (jinja2.TemplateError, UnicodeDecodeError):
                    seen[name] = ""
                    continue
                seen[name] = source
                pending.extend(r for r in referenced if r is not None)
            digest = hashlib.sha256(json.dumps(sorted(seen.items())).encode()).hexdigest()
            self._sources[key] = digest
        return self._sources[key]

    def _values_schema(self, service: str) -> ValuesSchema | None:
        if service not in self._values_schemas:
            self._values_schemas[service] = load_values_schema(self.project, service)
        return self._values_schemas[service]

    def render_environment(
        self,
        pipeline: Pipeline,
        environment: Environment,
        *,
        overrides: Mapping[str, Any] | None = None,
        image: str | None = None,
        digest: str | None = None,
        built_repository: str | None = None,
        only_cluster: str | None = None,
    ) -> list[RenderedSet]:
        clusters = [environment.cluster(only_cluster)] if only_cluster else environment.clusters
        # Overrides are checked against what the templates read, over every cluster rendered: one that
        # nothing reads would change the version hash (and roll a canary) for nothing.
        reads = ValueReads() if overrides else None
        sets = [
            self.render_cluster(
                pipeline,
                environment,
                c,
                overrides=overrides,
                image=image,
                digest=digest,
                built_repository=built_repository,
                reads=reads,
            )
            for c in clusters
        ]
        if overrides and reads is not None:
            merged = merge_values(pipeline.values, environment.values, *(c.values for c in clusters))
            refuse_unread_overrides(
                overrides,
                reads,
                merged,
                service=pipeline.service,
                where=f"{environment.name}/{only_cluster}" if only_cluster else environment.name,
            )
        return sets

    def render_cluster(
        self,
        pipeline: Pipeline,
        environment: Environment,
        cluster: ClusterConfig,
        *,
        overrides: Mapping[str, Any] | None = None,
        image: str | None = None,
        digest: str | None = None,
        built_repository: str | None = None,
        reads: ValueReads | None = None,
    ) -> RenderedSet:
        """One cluster's set; with `reads`, the value paths its templates look up are recorded there."""
        plain_values = merge_values(pipeline.values, environment.values, cluster.values, overrides or {})
        resolved_image = image_for(
            pipeline, environment, cluster, image=image, digest=digest, built_repository=built_repository
        )
        schema = self._values_schema(pipeline.service)
        if schema is not None:
            schema.check(
                plain_values, value_layers(self.project, pipeline, environment, cluster, overrides or {})
            )
        version = release_version(resolved_image, plain_values, self._sources_digest(pipeline.templates))
        values: dict[str, Any] = reads.wrap(plain_values) if reads is not None else plain_values
        contexts = _cluster_contexts(environment.clusters)
        context = {
            "service": pipeline.service,
            "environment": environment.name,
            "namespace": environment.namespace,
            "image": resolved_image,
            "version": version,
            "values": values,
            "cluster": contexts[cluster.name],
            "clusters": list(contexts.values()),
            "labels": standard_labels(pipeline.service, environment.name, cluster.name, version, values),
        }
        objects: list[Manifest] = []
        origins: dict[int, str] = {}  # id(object) -> the template that rendered it, to name it in errors
        self._yaml_memo.clear()
        try:
            for template_name in pipeline.templates:
                for obj in self._render_template(template_name, context):
                    objects.append(obj)
                    origins[id(obj)] = template_name
        finally:
            self._yaml_memo.clear()
        objects.sort(key=object_key)
        _refuse_duplicates(objects, pipeline.service, environment.name, cluster.name)
        objects = name_by_content(objects)  # mounted ConfigMaps and Secrets are per release (generators.py)
        if self.validate:
            problems = [str(v) for obj in objects for v in validate_manifest(obj)]
            if problems:
                raise ManifestInvalidError(
                    problems, service=pipeline.service, environment=environment.name, cluster=cluster.name
                )
        broken = check_contract(
            objects,
            origins,
            service=pipeline.service,
            version=version,
            emulated=is_emulated(cluster),
            templates=pipeline.templates,
        )
        if broken:
            raise TemplateContractError(
                broken, service=pipeline.service, where=f"{environment.name}/{cluster.name}"
            )
        return RenderedSet(
            service=pipeline.service,
            environment=environment.name,
            cluster=cluster.name,
            cloud=cluster.cloud,
            namespace=environment.namespace,
            image=resolved_image,
            version=version,
            objects=objects,
        )

    def _render_template(self, name: str, context: dict[str, Any]) -> list[Manifest]:
        shown = f"templates/{name}"
        try:
            text = self._run_template(name, context)
        except jinja2.TemplateNotFound:
            known = sorted(self.jinja.list_templates(extensions=["j2"]))
            raise ConfigError(
                f"template not found; known templates: {', '.join(known)}", file=shown
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template syntax error: {exc.message}", file=shown, line=exc.lineno) from None
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"undefined value: {exc.message}", file=shown, line=_template_line(exc, self.project, name)
            ) from None
        except jinja2.exceptions.SecurityError as exc:
            raise ConfigError(f"unsafe template operation: {exc}", file=shown) from None
        except jinja2.TemplateError as exc:  # the rest of Jinja's own (a runtime error raised by a tag)
            raise ConfigError(
                f"template error: {' '.join(str(exc).split())}",
                file=shown,
                line=_template_line(exc, self.project, name),
            ) from None
        except UnicodeDecodeError as exc:  # the loader decodes the whole file: exc.object is its bytes
            raise decode_error(exc, exc.object, shown) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, yaml.YAMLError) as exc:
            # A value of the wrong shape for what the template does with it (a filter given an undefined
            # or a string where it wants a number): the template's line, not a traceback.
            problem = (
                "an undefined value given to a filter"
                if "Undefined" in str(exc)
                else " ".join(str(exc).split())
            )
            raise ConfigError(
                f"template failed: {problem}", file=shown, line=_template_line(exc, self.project, name)
            ) from None
        try:
            documents = load_documents(text)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise ConfigError(
                f"rendered output is not valid YAML ({exc.problem}) at output line {line}", file=shown
            ) from None
        except yaml.YAMLError as exc:  # unmarked: a character YAML does not allow (a control character)
            raise ConfigError(
                f"rendered output is not valid YAML: {exc}".split("\n")[0], file=shown
            ) from None
        objects: list[Manifest] = []
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict):
                raise ConfigError(
                    "rendered a document that is not a Kubernetes object (a mapping)", file=shown
                )
            objects.append(document)
        return objects

    def _run_template(self, name: str, context: dict[str, Any]) -> str:
        """`Template.render(context)`, with the template's globals kept as a plain dict.

        `render` copies the globals, a ChainMap that copies slowly, into a fresh dict on every call; a third
        of Jinja's own time per template. The context made here is the one `render` makes (the same
        variables over the same globals, which Jinja never writes to), and errors go through Jinja's
        handler as in `render`, so tracebacks still point at template lines.
        """
        compiled = self._templates.get(name)
        if compiled is None:
            template = self.jinja.get_template(name)
            compiled = self._templates[name] = (template, dict(template.globals))
        template, template_globals = compiled
        ctx = template.new_context({**template_globals, **context}, shared=True)
        try:
            return str(self.jinja.concat(template.root_render_func(ctx)))
        except Exception:
            self.jinja.handle_exception()
            raise  # handle_exception always raises; this line is for the type checker


def _template_line(exc: BaseException, project: Project, name: str) -> int | None:
    """Jinja rewrites tracebacks so frames point at template lines; take the deepest frame in `name`."""
    path = str(Path(project.templates_dir) / name)
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    return line


def _cluster_contexts(clusters: Sequence[ClusterConfig]) -> dict[str, dict[str, Any]]:
    """What templates see of each cluster, by name. `cloud_weight` is the cluster's share (percent) of its
    cloud's traffic, by weight: a route that pins a cloud splits it over that cloud's clusters. Integer
    shares, the last cluster of a cloud taking what rounding left, so each cloud's sum to 100."""
    by_cloud: dict[str, list[ClusterConfig]] = {}
    for cluster in clusters:
        by_cloud.setdefault(cluster.cloud, []).append(cluster)
    shares: dict[str, int] = {}
    for members in by_cloud.values():
        total = sum(c.weight for c in members)
        given = 0
        for index, c in enumerate(members):
            last = index == len(members) - 1
            share = 100 - given if last else (c.weight * 100 // total if total else 100 // len(members))
            shares[c.name] = share
            given += share
    return {
        c.name: {
            "name": c.name,
            "cloud": c.cloud,
            "region": c.region,
            "weight": c.weight,
            "cloud_weight": shares[c.name],
            "emulated": is_emulated(c),
        }
        for c in clusters
    }


def is_emulated(cluster: ClusterConfig) -> bool:
    """A cluster served by the built-in emulator: the only kind that may get its `sim.addtocloud.io/*`
    annotations (a real cluster ignores them, but they do not belong in production manifests)."""
    return cluster.target.type == "sim"


def standard_labels(
    service: str, environment: str, cluster: str, version: str, values: Mapping[str, Any]
) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/instance": service,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/component": str(values.get("component", service)),
        "app.kubernetes.io/part-of": "addtocloud",
        "app.kubernetes.io/managed-by": "addtocloud-orchestrator",
        "addtocloud.io/environment": environment,
        "addtocloud.io/cluster": cluster,
    }


def release_version(image: str, values: Mapping[str, Any], templates: str = "") -> str:
    """A short, label-safe identity of what the pods run: the image, the values that shape them, and the
    digest of the templates that render them (a template-only change must roll out as a canary too).

    The leading "v" keeps it a string wherever a template writes it unquoted (`version: {{ version }}`):
    one hex digest in a hundred is all digits, which YAML would read as an integer label value.
    """
    payload = json.dumps(
        {"image": image, "values": values, "templates": templates}, sort_keys=True, default=str
    )
    return "v" + hashlib.sha256(payload.encode()).hexdigest()[:10]


def _refuse_duplicates(objects: list[Manifest], service: str, environment: str, cluster: str) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = (str(obj.get("apiVersion")), object_id(obj), str((obj.get("metadata") or {}).get("namespace")))
        if key in seen:
            raise ConfigError(
                f"{object_id(obj)} is rendered twice for {service} in {environment}/{cluster}; "
                "two templates produce the same object"
            )
        seen.add(key)
