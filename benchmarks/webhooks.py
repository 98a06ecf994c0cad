"""Webhook benchmark: verified, deduplicated, durably queued deliveries per second, and their latency.

    python benchmarks/webhooks.py                    # 3000 deliveries 16 at a time, then 600 two at a time
    python benchmarks/webhooks.py --requests 5000 --concurrency 32 --json

Measured in one run on this machine, against a fresh Postgres database ($ORCHESTRATOR_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/postgres, where a database is made and dropped):

- **ours**: `orchestrator serve` (one uvicorn process) receiving signed GitHub push deliveries, each with a
  new delivery id and touching `services/api/`: the signature is checked, the delivery recorded (unique
  id), a rollout request recorded and its job queued in pgqueuer, all in one committed transaction before
  the 202. Every tenth delivery is a redelivery of an earlier one (answered 200, nothing queued). No worker
  runs, so the queue only grows; the script checks at the end that it holds one job per new delivery.
- **reference**: a bare ASGI hello-world on uvicorn with the same options, sent the same bodies.

Throughput is measured with 16 deliveries in flight (both servers saturated), latency also with 2 in flight
(below saturation, where a p99 says what a sender waits rather than how long the queue in front of a
saturated server is). The client is one asyncio process with a minimal keep-alive HTTP/1.1 client on the
same 2 cores. Goal (issue 13): ours at least 30 % of the reference's throughput, p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.30
GOAL_P99_MS = 50.0
SECRET = b"benchmark-secret"
REPOSITORY = "bench/platform"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The reference: the smallest ASGI application that reads the body and answers."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode})")
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{base} did not start")


def estate(root: Path) -> Path:
    """The reference estate, promoting to `local`, committed in a git repository."""
    from tests.webhook_helpers import git_estate

    return git_estate(root)


def bodies(count: int, sha: str) -> list[tuple[str, bytes]]:
    """(delivery id, body) for `count` deliveries; every tenth repeats an earlier delivery."""
    from tests.webhook_helpers import push_payload

    made: list[tuple[str, bytes]] = []
    for index in range(count):
        if index % 10 == 9:
            made.append(made[index - 5])
            continue
        payload = push_payload(sha, paths=["services/api/VERSION"], repository=REPOSITORY)
        payload["delivery_note"] = index  # distinct bodies, as distinct pushes are
        made.append((str(uuid.uuid4()), json.dumps(payload).encode()))
    return made


class Connection:
    """A keep-alive HTTP/1.1 connection doing the least client work per request: the load generator shares
    the server's two cores, and a heavy client (httpx: a few ms of CPU a request) would measure itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        if not status_line:
            raise ConnectionError("the server closed the connection")
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    port: int, deliveries: list[tuple[str, bytes]], concurrency: int, pid: int | None = None
) -> dict[str, Any]:
    """Send `deliveries`, `concurrency` at a time; with `pid`, that server's CPU per request too (a figure the
    machine's load moves less than a rate: a shared machine's other work slows the rate, not the CPU)."""
    from orchestrator.server.signatures import sign

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = list(reversed(deliveries))
    signed = {delivery: sign(SECRET, body) for delivery, body in deliveries}
    connections = [await Connection.open("127.0.0.1", port) for _ in range(concurrency)]

    async def one_at_a_time(connection: Connection) -> None:
        while pending:
            delivery, body = pending.pop()
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signed[delivery],
            }
            started = time.perf_counter()
            status = await connection.post("/webhooks/github", body, headers)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started, cpu = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
    await asyncio.gather(*(one_at_a_time(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu if pid else 0.0
    for connection in connections:
        connection.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "statuses": statuses,
        "server_cpu_ms_per_request": round(cpu * 1000 / len(latencies), 3) if pid else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16, help="in flight for the throughput runs")
    parser.add_argument("--light-requests", type=int, default=600)
    parser.add_argument("--light-concurrency", type=int, default=2, help="in flight for the latency runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from benchmarks.server_setup import count_rows, fresh_database
    from orchestrator.store import queue

    processes: list[subprocess.Popen[bytes]] = []
    with fresh_database("orchestrator_bench") as url, tempfile.TemporaryDirectory() as folder:
        try:
            root = estate(Path(folder) / "estate")
            sha = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            env = {
                **os.environ,
                "ORCHESTRATOR_DATABASE_URL": url,
                "ORCHESTRATOR_STATE_DIR": str(Path(folder) / "state"),
                "ORCHESTRATOR_ROOT": str(root),
                "ORCHESTRATOR_GITHUB_WEBHOOK_SECRET": SECRET.decode(),
                "ORCHESTRATOR_GITHUB_REPOSITORY": REPOSITORY,
            }
            ours_port, hello_port = free_port(), free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator", "serve", "--port", str(ours_port)],
                    cwd=REPO,
                    env=env,
                )
            )
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "uvicorn", "benchmarks.webhooks:hello",
                        "--port", str(hello_port), "--log-level", "warning",
                    ],
                    cwd=REPO,
                    env=env,
                )
            )  # fmt: skip
            wait_until_up(f"http://127.0.0.1:{ours_port}", processes[0])
            wait_until_up(f"http://127.0.0.1:{hello_port}", processes[1])
            deliveries = bodies(args.requests, sha)
            light = bodies(args.light_requests, sha)
            # A short warm-up of each (imports, connection pools, first compiled statements), then the runs.
            asyncio.run(drive(ours_port, bodies(50, sha), 4))
            asyncio.run(drive(hello_port, bodies(50, sha), 4))
            ours = asyncio.run(drive(ours_port, deliveries, args.concurrency, processes[0].pid))
            reference = asyncio.run(drive(hello_port, deliveries, args.concurrency, processes[1].pid))
            # Latency below saturation: a few deliveries in flight, as a busy organisation's hooks arrive.
            ours_light = asyncio.run(drive(ours_port, light, args.light_concurrency))
            reference_light = asyncio.run(drive(hello_port, light, args.light_concurrency))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
        jobs = count_rows(url, f"{queue.QUEUE_SCHEMA}.pgqueuer")
        requests = count_rows(url, "rollout_requests")

    def fresh(count: int) -> int:
        return sum(1 for index in range(count) if index % 10 != 9)

    new = fresh(args.requests) + fresh(args.light_requests) + fresh(50)  # the warm-up's new ones too
    ratio = ours["per_second"] / reference["per_second"]
    cpu_ratio = reference["server_cpu_ms_per_request"] / ours["server_cpu_ms_per_request"]
    result = {
        "saturated": {"ours": ours, "reference": reference},
        "light": {"ours": ours_light, "reference": reference_light},
        "throughput_ratio": round(ratio, 3),
        "cpu_per_request_ratio": round(cpu_ratio, 3),
        "jobs_queued": jobs,
        "requests_recorded": requests,
        "new_deliveries": new,
        "goal": {"ratio": GOAL_RATIO, "p99_ms": GOAL_P99_MS},
        "met": {"ratio": ratio >= GOAL_RATIO, "p99_light": ours_light["p99_ms"] < GOAL_P99_MS},
    }
    if jobs != new or requests != new:
        raise SystemExit(f"expected {new} queued jobs and requests, found {jobs} and {requests}")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'':<44}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/req':>12}  statuses")
    for label, figures in (
        (f"orchestrator serve, {args.concurrency} in flight", ours),
        (f"bare ASGI hello-world, {args.concurrency} in flight", reference),
        (f"orchestrator serve, {args.light_concurrency} in flight", ours_light),
        (f"bare ASGI hello-world, {args.light_concurrency} in flight", reference_light),
    ):
        print(
            f"{label:<44}{figures['per_second']:>12}{figures['p50_ms']:>10}{figures['p99_ms']:>10}"
            f"{figures['server_cpu_ms_per_request'] or '':>12}  {figures['statuses']}"
        )
    met = result["met"]
    print(
        f"throughput ratio {ratio:.1%} (goal >= {GOAL_RATIO:.0%}: {'met' if met['ratio'] else 'not met'}); "
        f"p99 with {args.light_concurrency} in flight {ours_light['p99_ms']} ms "
        f"(goal < {GOAL_P99_MS:.0f} ms: {'met' if met['p99_light'] else 'not met'}); "
        f"{jobs} jobs durably queued for {new} new deliveries"
    )
    print(f"server CPU per request: the hello-world's is {cpu_ratio:.1%} of ours (saturated runs)")


if __name__ == "__main__":
    main()
