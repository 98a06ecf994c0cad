"""Make the reference services' base image: Debian's busybox-static as a root file system, `docker import`ed.

`python scripts/base_image.py [NAME]` makes `busybox:local` (or NAME) in the local Docker daemon and prints
its name and ID. The services' Dockerfiles take their base image as a build argument (`BASE_IMAGE`, default
`busybox:local`), so they build where nothing can be pulled; the build tests make their base with this too.
Needs a running dockerd and `apt-get install busybox-static`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import time

import docker

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_NAME = "busybox:local"
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


class MissingProgramError(RuntimeError):
    pass


def busybox_path() -> str:
    """The static busybox binary (Debian package busybox-static)."""
    for candidate in BUSYBOX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            with open(found, "rb") as binary:
                head = binary.read(4096)
            # A dynamic executable names its loader (PT_INTERP) near the start; a static one has none.
            if head.startswith(b"\x7fELF") and b"/ld-" not in head:
                return found
    raise MissingProgramError(
        "a statically linked busybox is needed to make the test base image: apt-get install busybox-static"
    )


def rootfs_tar(busybox: str) -> bytes:
    """A minimal root file system: busybox with a link per applet, /etc/passwd, /tmp."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder, mode in (
            ("bin", 0o755),
            ("etc", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("srv", 0o755),
        ):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            archive.addfile(info)
        archive.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, now
            archive.addfile(link)
        for name, text in (("etc/passwd", _PASSWD), ("etc/group", _GROUP)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_base_image(client: docker.DockerClient, name: str = DEFAULT_NAME) -> str:
    """Import the busybox root file system as `name`; returns the image ID (new at each import)."""
    repository, _, tag = name.rpartition(":")
    client.api.import_image_from_data(
        rootfs_tar(busybox_path()),
        repository=repository,
        tag=tag,
        changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"],
    )
    return str(client.images.get(name).id)


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(f"usage: {argv[0]} [NAME]   (default {DEFAULT_NAME})", file=sys.stderr)
        return 2
    name = argv[1] if len(argv) > 1 else DEFAULT_NAME
    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        print(f"error: no Docker daemon to make {name} in ({exc}); start dockerd", file=sys.stderr)
        return 1
    try:
        image_id = make_base_image(client, name)
    except MissingProgramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"{name} {image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
