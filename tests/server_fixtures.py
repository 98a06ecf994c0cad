"""The server over real HTTP: in the test process (uvicorn on a free port, on a thread), or as a user runs
it (`orchestrator serve` in a process of its own)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from tests.helpers import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """`orchestrator serve` at debug level on a free port with `env` over the test's environment,
    its output in `log`, until the block ends; yields its base URL once `/healthz` answers."""
    port = free_port()
    with log.open("w") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--log-level", "debug", "serve", "--port", str(port)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def serving(app: FastAPI, *, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (http://127.0.0.1:<port>). With `tls` (a
    certificate and its key, PEM), over HTTPS as `serve --tls-cert --tls-key` serves (https://...)."""
    port = free_port()
    cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    server = uvicorn.Server(config)
    app.state.stopping = lambda: server.should_exit  # as `orchestrator serve` tells the live streams
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
