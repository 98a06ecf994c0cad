"""Build a service's image once per commit and push it, by digest, to every registry that needs it.

The order of work is what makes "build once" hold:
1. ask every target registry for the image tagged with the full commit SHA (a manifest HEAD);
2. found everywhere: nothing to build (missing tags are added through the registry API);
   found somewhere: copy it, blob by blob, to the registries that lack it, so every copy has the same digest;
   found nowhere: build it (or reuse the image Docker already has for the commit), then push it everywhere;
3. check that every registry serves every tag with the one digest, and only then record the release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

import docker
import docker.errors

from orchestrator.build import releases
from orchestrator.build.builder import BuildRequest, build_image
from orchestrator.build.daemon import connect_docker
from orchestrator.build.distribution import RegistryClient, copy_image
from orchestrator.build.errors import DigestMismatchError, RegistryError
from orchestrator.build.metadata import image_tags, oci_labels
from orchestrator.build.pusher import push_tag
from orchestrator.build.registries import PushTarget, RegistryCredentials, registry_for
from orchestrator.build.source import SourceRevision, build_time, checkout_context, resolve_revision
from orchestrator.build.targets import push_targets
from orchestrator.config import Pipeline, Project
from orchestrator.config.pipeline import BuildConfig
from orchestrator.errors import ConfigError
from orchestrator.logs import get_logger
from orchestrator.store import db

log = get_logger(__name__)

OutputSink = Callable[[str], None]
# Records a pushed build somewhere else than the local database: (service, commit, digest, image names) ->
# the release ids.
RecordBuild = Callable[[str, str, str, list[str]], list[str]]


@dataclass(frozen=True)
class BuildResult:
    """What `build_and_push` did. `refs` maps each registry's image name to `name@digest`."""

    service: str
    commit: str
    tags: tuple[str, ...]
    digest: str | None  # None for a local build that was not pushed
    refs: dict[str, str] = field(default_factory=dict)
    skipped: bool = False  # True: nothing was built, the image for the commit already existed
    image_id: str | None = None  # the local image, when Docker was used
    local_names: tuple[str, ...] = ()
    layers_pushed: int = 0
    layers_reused: int = 0
    blobs_copied: int = 0
    release_ids: tuple[str, ...] = ()


@dataclass
class _Target:
    target: PushTarget
    credentials: RegistryCredentials
    client: RegistryClient
    existing: str | None = None


def build_and_push(
    project: Project,
    service: str,
    *,
    commit: str | None,
    push: bool,
    envs: Sequence[str] | None = None,
    registry_override: str | None = None,
    on_output: OutputSink | None = None,
    database_url: str | None = None,
    actor: str | None = None,
    record: RecordBuild | None = None,
) -> BuildResult:
    """Build SERVICE at `commit` (default HEAD) unless its image exists; with `push`, push it by digest to
    the registries of the pipeline's promotion environments (or `envs`, or `registry_override`) and record
    the release, created by `actor` (default: the CI actor, else the local user), in `database_url` — or
    hand it to `record` (service, commit, digest, image names → release ids), which `build --push
    --server` uses to record it on the server. Raises ConfigError (exit 2) for bad configuration,
    OrchestratorError (exit 1) otherwise."""
    sink = on_output or _log_line
    pipeline = project.pipeline(service)
    build = _build_config(pipeline)
    if not push:
        return _build_locally(project, pipeline, build, commit, registry_override, sink)

    targets = push_targets(project, pipeline, envs=envs, registry_override=registry_override)
    url = database_url or db.default_database_url()
    if record is None:
        releases.check_database(url)
    revision = resolve_revision(project.root, commit)
    tags = image_tags(revision)
    with ExitStack() as stack:
        connected = []
        for target in targets:
            registry = registry_for(target)
            credentials = registry.credentials()
            client = stack.enter_context(
                RegistryClient(
                    target.registry,
                    credentials=credentials,
                    insecure=target.insecure,
                    label=target.describe(),
                )
            )
            registry.ensure_repository()
            existing = client.manifest_digest(target.repository_path, revision.sha)
            connected.append(_Target(target, credentials, client, existing))
            if existing:
                sink(
                    f"{target.image_name}:{revision.short_sha} is already in {target.describe()}: {existing}"
                )

        present = [t for t in connected if t.existing]
        if present:
            result = _complete_from_registries(pipeline, revision, tags, connected, sink)
        else:
            result = _build_and_push_everywhere(project, pipeline, build, revision, tags, connected, sink)
        _verify(connected, tags, result.digest or "")

    assert result.digest is not None
    image_names = [t.target.image_name for t in connected]
    if record is not None:
        release_ids = record(service, revision.sha, result.digest, image_names)
    else:
        release_ids = releases.record_releases(
            url,
            service=service,
            commit=revision.sha,
            digest=result.digest,
            image_names=image_names,
            actor=actor,
        )
    return replace(result, release_ids=tuple(release_ids))


def _build_config(pipeline: Pipeline) -> BuildConfig:
    if pipeline.build is None:
        raise ConfigError(
            f"service {pipeline.service!r} has no build section, so there is nothing to build",
            file=f"pipelines/{pipeline.service}.yaml",
            key="build",
        )
    return pipeline.build


# --- the image is in some registries already ------------------------------------------------------------


def _complete_from_registries(
    pipeline: Pipeline,
    revision: SourceRevision,
    tags: list[str],
    connected: list[_Target],
    sink: OutputSink,
) -> BuildResult:
    digests = {t.existing for t in connected if t.existing}
    if len(digests) > 1:
        found = ", ".join(f"{t.target.describe()}: {t.existing}" for t in connected if t.existing)
        raise DigestMismatchError(
            f"commit {revision.short_sha} of {pipeline.service} was built more than once; the registries "
            f"hold different images for it ({found}). Delete the wrong ones or build another commit"
        )
    digest = digests.pop()
    source = next(t for t in connected if t.existing)
    copied = 0
    for item in connected:
        if item.existing is None:
            sink(f"copying {source.target.image_name}@{digest} to {item.target.describe()} (no rebuild)")
            stats = copy_image(
                source.client,
                source.target.repository_path,
                item.client,
                item.target.repository_path,
                digest,
                tags,
            )
            copied += stats.blobs_copied
            item.existing = digest
        else:
            _add_missing_tags(item, digest, tags, sink)
    return BuildResult(
        service=pipeline.service,
        commit=revision.sha,
        tags=tuple(tags),
        digest=digest,
        refs={t.target.image_name: f"{t.target.image_name}@{digest}" for t in connected},
        skipped=True,
        blobs_copied=copied,
    )


def _add_missing_tags(item: _Target, digest: str, tags: list[str], sink: OutputSink) -> None:
    path = item.target.repository_path
    missing = [tag for tag in tags if item.client.manifest_digest(path, tag) != digest]
    if not missing:
        return
    manifest = item.client.get_manifest(path, digest)
    if manifest is None:
        raise RegistryError(item.target.describe(), f"{path}@{digest} disappeared while being tagged")
    for tag in missing:
        item.client.put_manifest(path, tag, manifest)
        sink(f"tagged {item.target.image_name}:{tag} in {item.target.describe()}")


# --- the image is nowhere yet: build (or reuse the local one) and push -----------------------------------


def _build_and_push_everywhere(
    project: Project,
    pipeline: Pipeline,
    build: BuildConfig,
    revision: SourceRevision,
    tags: list[str],
    connected: list[_Target],
    sink: OutputSink,
) -> BuildResult:
    client = connect_docker()
    try:
        names = [f"{build.repository}:{tag}" for tag in tags]
        names += [f"{t.target.image_name}:{tag}" for t in connected for tag in tags]
        image_id = _local_image(client, build.repository, revision.sha)
        if image_id is None:
            image_id = _build(client, project, pipeline, build, revision, names, sink)
        else:
            sink(
                f"{build.repository}:{revision.short_sha} was built before ({image_id[:19]}); not rebuilding"
            )
            _tag_all(client, image_id, names)
        pushed: set[str] = set()
        reused: set[str] = set()
        digests: dict[str, str] = {}
        for item in connected:
            sink(f"pushing {item.target.image_name} to {item.target.describe()}")
            for tag in tags:
                outcome = push_tag(client, item.target, tag, item.credentials, sink)
                digests[f"{item.target.image_name}:{tag}"] = outcome.digest
                pushed |= {f"{item.target.registry}/{layer}" for layer in outcome.layers_pushed}
                reused |= {f"{item.target.registry}/{layer}" for layer in outcome.layers_present}
        distinct = set(digests.values())
        if len(distinct) != 1:
            listing = ", ".join(f"{name}: {digest}" for name, digest in digests.items())
            raise DigestMismatchError(f"one build was pushed with different digests: {listing}")
        digest = distinct.pop()
        return BuildResult(
            service=pipeline.service,
            commit=revision.sha,
            tags=tuple(tags),
            digest=digest,
            refs={t.target.image_name: f"{t.target.image_name}@{digest}" for t in connected},
            image_id=image_id,
            local_names=tuple(names),
            layers_pushed=len(pushed),
            layers_reused=len(reused - pushed),
        )
    finally:
        client.close()


def _build_locally(
    project: Project,
    pipeline: Pipeline,
    build: BuildConfig,
    commit: str | None,
    registry_override: str | None,
    sink: OutputSink,
) -> BuildResult:
    """`build` without `--push`: a local image tagged for the commit, reused when Docker already has it."""
    revision = resolve_revision(project.root, commit)
    tags = image_tags(revision)
    names = [f"{build.repository}:{tag}" for tag in tags]
    if registry_override:
        target = push_targets(project, pipeline, registry_override=registry_override)[0]
        names += [f"{target.image_name}:{tag}" for tag in tags]
    client = connect_docker()
    try:
        image_id = _local_image(client, build.repository, revision.sha)
        skipped = image_id is not None
        if image_id is None:
            image_id = _build(client, project, pipeline, build, revision, names, sink)
        else:
            sink(
                f"{build.repository}:{revision.short_sha} was built before ({image_id[:19]}); not rebuilding"
            )
            _tag_all(client, image_id, names)
    finally:
        client.close()
    return BuildResult(
        service=pipeline.service,
        commit=revision.sha,
        tags=tuple(tags),
        digest=None,
        skipped=skipped,
        image_id=image_id,
        local_names=tuple(names),
    )


def _local_image(client: docker.DockerClient, repository: str, sha: str) -> str | None:
    try:
        image = client.images.get(f"{repository}:{sha}")
    except docker.errors.ImageNotFound:
        return None
    return str(image.id)


def _tag_all(client: docker.DockerClient, image_id: str, names: list[str]) -> None:
    for name in names:
        repository, _, tag = name.rpartition(":")
        client.api.tag(image_id, repository, tag)


def _build(
    client: docker.DockerClient,
    project: Project,
    pipeline: Pipeline,
    build: BuildConfig,
    revision: SourceRevision,
    names: list[str],
    sink: OutputSink,
) -> str:
    labels = oci_labels(revision, service=pipeline.service, created=build_time())
    shown_dockerfile = f"{build.context.rstrip('/')}/{build.dockerfile}"
    sink(f"building {pipeline.service} at {revision.short_sha} from {shown_dockerfile}")
    with checkout_context(revision, project.root, build.context) as context:
        request = BuildRequest(
            context=context,
            dockerfile=build.dockerfile,
            tags=names,
            build_args=build.args,
            target=build.target,
            labels=labels,
            display_dockerfile=shown_dockerfile,
        )
        return build_image(client, request, sink)


# --- checks ---------------------------------------------------------------------------------------------


def _verify(connected: list[_Target], tags: list[str], digest: str) -> None:
    """Every registry serves every tag with the one digest (what clusters pull), or nothing is recorded."""
    for item in connected:
        for tag in tags:
            served = item.client.manifest_digest(item.target.repository_path, tag)
            if served != digest:
                raise DigestMismatchError(
                    f"{item.target.describe()} serves {item.target.image_name}:{tag} as "
                    f"{served or 'nothing'}, expected {digest}"
                )


def _log_line(line: str) -> None:
    log.debug("build output", line=line)
