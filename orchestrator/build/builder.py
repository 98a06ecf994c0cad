"""`docker build` through the SDK, with the output streamed line by line and failures named precisely.

The daemon reports `Step N/M : INSTRUCTION` before each instruction; we remember the current one and its
output, so a failure says which instruction failed, where it is in the Dockerfile, and what it printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from orchestrator.build.errors import BuildFailedError, DockerUnavailableError

OutputSink = Callable[[str], None]

_STEP = re.compile(r"^Step (?P<number>\d+)/(?P<total>\d+) : (?P<instruction>.*)$")
# Bookkeeping lines of the classic builder; they are streamed but are not an instruction's output.
_BOOKKEEPING = re.compile(r"^( ---> |Removing intermediate container |Successfully (built|tagged) )")


@dataclass(frozen=True)
class BuildRequest:
    context: Path  # the folder sent to the daemon
    dockerfile: str  # relative to the context
    tags: list[str]  # full names (`repo:tag`); the first is given to the build, the rest added after
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    display_dockerfile: str | None = None  # how messages name the Dockerfile (its path in the project)


@dataclass
class _Progress:
    step: str | None = None
    step_number: int | None = None
    output: list[str] = field(default_factory=list)
    image_id: str | None = None
    pending: str = ""


def dockerfile_instructions(text: str) -> list[tuple[int, str]]:
    """(line, instruction) for each instruction, continuation lines joined; the Nth is the daemon's step N."""
    instructions: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped, as Docker does
        if not current:
            start = number
        if line.endswith("\\"):
            current.append(line[:-1].strip())
            continue
        current.append(line)
        instructions.append((start, " ".join(part for part in current if part)))
        current = []
    if current:
        instructions.append((start, " ".join(part for part in current if part)))
    return instructions


def build_image(client: docker.DockerClient, request: BuildRequest, on_output: OutputSink) -> str:
    """Build and tag the image; returns its ID. Raises BuildFailedError naming the failing instruction."""
    shown = request.display_dockerfile or request.dockerfile
    dockerfile_path = request.context / request.dockerfile
    if not dockerfile_path.is_file():
        raise BuildFailedError(f"the Dockerfile {shown} does not exist", instruction=None)
    instructions = dockerfile_instructions(dockerfile_path.read_text(encoding="utf-8", errors="replace"))
    progress = _Progress()
    try:
        stream: Iterable[dict[str, Any]] = client.api.build(
            path=str(request.context),
            dockerfile=request.dockerfile,
            tag=request.tags[0],
            buildargs=dict(request.build_args),
            target=request.target,
            labels=dict(request.labels),
            rm=True,
            forcerm=True,  # remove intermediate containers of a failed step too: nothing is left behind
            pull=False,
            decode=True,
        )
        for chunk in stream:
            _consume(chunk, progress, on_output, instructions, shown)
    except docker.errors.APIError as exc:
        raise BuildFailedError(
            f"the Docker daemon refused the build of {shown}: {exc.explanation or exc}"
        ) from exc
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        raise DockerUnavailableError(f"lost the Docker daemon while building {shown}: {exc}") from exc
    _flush(progress, on_output)
    if progress.image_id is None:
        raise BuildFailedError(f"the build of {shown} finished without reporting an image")
    for name in request.tags[1:]:
        repository, _, tag = name.rpartition(":")
        client.api.tag(progress.image_id, repository, tag)
    return progress.image_id


def _consume(
    chunk: dict[str, Any],
    progress: _Progress,
    on_output: OutputSink,
    instructions: list[tuple[int, str]],
    dockerfile: str,
) -> None:
    if "stream" in chunk:
        progress.pending += str(chunk["stream"])
        *lines, progress.pending = progress.pending.split("\n")
        for line in lines:
            _line(line.rstrip("\r"), progress, on_output)
    if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
        progress.image_id = str(chunk["aux"]["ID"])
    if "status" in chunk and chunk.get("status"):
        on_output(str(chunk["status"]))
    if "error" in chunk or "errorDetail" in chunk:
        _flush(progress, on_output)
        detail = chunk.get("errorDetail") or {}
        message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
        raise _failure(progress, message, instructions, dockerfile)


def _line(line: str, progress: _Progress, on_output: OutputSink) -> None:
    on_output(line)
    step = _STEP.match(line)
    if step:
        progress.step = step.group("instruction")
        progress.step_number = int(step.group("number"))
        progress.output = []
    elif (
        progress.step is not None
        and not _BOOKKEEPING.match(line)
        and not line.startswith(" ---> Running in ")
    ):
        progress.output.append(line)


def _flush(progress: _Progress, on_output: OutputSink) -> None:
    if progress.pending:
        _line(progress.pending.rstrip("\r"), progress, on_output)
        progress.pending = ""


def _failure(
    progress: _Progress, message: str, instructions: list[tuple[int, str]], dockerfile: str
) -> BuildFailedError:
    if progress.step is None:
        return BuildFailedError(f"the build of {dockerfile} failed before its first instruction: {message}")
    where = dockerfile
    number = progress.step_number
    if number is not None and 0 < number <= len(instructions):
        line, text = instructions[number - 1]
        if _same_instruction(text, progress.step):
            where = f"{dockerfile}:{line}"
    return BuildFailedError(
        f"the build failed at `{progress.step}` ({where}): {message}",
        instruction=progress.step,
        output=[line for line in progress.output if line.strip()],
    )


def _same_instruction(written: str, reported: str) -> bool:
    def words(text: str) -> list[str]:
        return text.split()

    written_words, reported_words = words(written), words(reported)
    return (
        bool(written_words) and bool(reported_words) and written_words[0].upper() == reported_words[0].upper()
    )
