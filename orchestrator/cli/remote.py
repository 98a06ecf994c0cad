"""The command line as a client of the REST API (`orchestrator --server URL …`, or `ORCHESTRATOR_SERVER`).

Each command that runs through the server asks the API for what its local twin computes and prints it with
the same printers (`rollout.show_outcome`, `status.print_status`, `history.print_history`), so the output
and the exit code are the same. Where the local command drives a rollout, the server's jobs drive it and
this client follows its audit trail (`/deployments/{id}/events`), showing it with the same progress
reporter, until the deployment stops where the local command would have returned (paused, awaiting an
approval, finished). An error the API answers is raised as the error type its `exit_code` names, with its
`detail` as the message: `error: …` and exit 1 or 2, as locally.

The token is the one the local command would use (`--token`, `ORCHESTRATOR_TOKEN`, the login file), sent
as `Authorization: Bearer`; nothing else of it is printed or logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import httpx

from orchestrator.errors import ConfigError, OrchestratorError

POLL_SECONDS = 0.3
# How long a Progressing deployment may go without a driver before the client says so and stops waiting:
# a queued job takes its lease within moments, and a dead driver's lease expires within 30 s.
UNDRIVEN_SECONDS = 90.0
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
Reporter = Callable[[dict[str, Any]], None]

# Where a local `deploy`, `approve`, `resume` or `retry` returns: the engine's run ended there.
STOPPED = frozenset({"Paused", "AwaitingMerge", "Succeeded", "Aborted", "RolledBack", "Failed"})
FINISHED = frozenset({"Succeeded", "Aborted", "RolledBack", "Failed"})
# What only the API's detail carries: the deployment's view without it is what the local command prints.
_DETAIL_ONLY = ("driver", "steps", "events", "measurements")


class Api:
    """The REST API at `base` (…/api/v1 is added), authenticated with the command's token."""

    def __init__(self, server: str, *, authenticated: bool = True) -> None:
        from orchestrator.cli.auth import explicit_token
        from orchestrator.identity.principal import find_token

        found = find_token(explicit_token()) if authenticated else None
        headers = {"Authorization": f"Bearer {found.secret}"} if found is not None else {}
        self.server = server
        self.client = httpx.Client(base_url=f"{server}/api/v1", headers=headers, timeout=TIMEOUT)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OrchestratorError(f"cannot reach the orchestrator server at {self.server}: {exc}") from None
        if response.is_success:
            return response.json()
        raise _error(response, self.server)

    def close(self) -> None:
        self.client.close()


def _error(response: httpx.Response, server: str) -> OrchestratorError:
    """The API's problem details as the error the local command raises for it."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict) or "detail" not in problem:
        return OrchestratorError(f"the server at {server} answered {response.status_code} without details")
    detail = str(problem["detail"])
    exit_code = problem.get("exit_code")
    if exit_code is None:
        exit_code = 2 if response.status_code in (400, 404, 405, 413, 422) else 1
    return ConfigError(detail) if exit_code == 2 else OrchestratorError(detail)


@contextmanager
def connected(server: str) -> Iterator[Api]:
    api = Api(server)
    try:
        yield api
    finally:
        api.close()


def refuse_local_options(*names: str) -> None:
    """Options that only mean something to a local run (the checkout, the database, `--actor`) are refused
    when given on the command line with --server: the server uses its own, and the token's user acts."""
    ctx = click.get_current_context()
    given = [
        name for name in names if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(
            f"{flags}: not used with --server (the server deploys from its own checkout and database, "
            "as the token's user); leave it out"
        )


# --- following a rollout ----------------------------------------------------------------------------------


class _Translator:
    """The stored audit trail as the engine's progress events, for the same reporter the local run uses."""

    def __init__(self, report: Reporter, steps: list[dict[str, Any]]) -> None:
        self.report = report
        self.steps = {step["index"]: step for step in steps}
        self.announced: set[int] = set()

    def _announce(self, index: int | None) -> None:
        if index is None or index in self.announced:
            return
        self.announced.add(index)
        step = self.steps.get(index, {"label": f"step {index}", "clusters": []})
        self.report({"type": "step", "step": index, "label": step["label"], "clusters": step["clusters"]})

    def __call__(self, event: dict[str, Any]) -> None:
        kind, data = event["type"], event.get("data") or {}
        if kind == "step_started":
            self._announce(event["step"])
        elif kind == "step_completed":
            self._announce(event["step"])
            writes = data.get("writes") or {}
            self.report(
                {
                    "type": "step_completed",
                    "step": event["step"],
                    "label": self.steps.get(event["step"], {}).get("label", ""),
                    "writes": writes,
                    "clusters": list(writes),  # empty: nothing was left to do in any cluster
                    "direct": [],
                }
            )
        elif kind == "measurement":
            self._announce(event["step"])
            message = event["message"]
            self.report({**data, "type": "measurement", "cluster": event["cluster"], "message": message})
        elif kind == "phase":
            to = data.get("to")
            if to == "Paused":
                self.report({"type": "paused"})
            elif to in FINISHED:
                self.report({"type": "finished", "phase": to, "reason": event["message"]})


def follow(
    api: Api, deployment_id: str, output: str, stop: frozenset[str], *, after: int = 0
) -> dict[str, Any]:
    """Show the deployment's progress from its audit trail (the events after `after`) until its phase is
    one of `stop`; its view."""
    from orchestrator.cli.progress import progress_reporter

    detail = api.call("GET", f"/deployments/{deployment_id}")
    translate = _Translator(progress_reporter(output == "text"), detail["steps"])
    seen = after
    driven_at = time.monotonic()
    while True:
        for event in api.call("GET", f"/deployments/{deployment_id}/events", params={"after": seen}):
            translate(event)
            seen = event["seq"]
        view: dict[str, Any] = api.call("GET", f"/deployments/{deployment_id}")
        if view["driver"] is not None or view["phase"] != "Progressing":
            driven_at = time.monotonic()
        elif time.monotonic() - driven_at > UNDRIVEN_SECONDS:
            raise OrchestratorError(
                f"deployment {view['id']} is Progressing but nothing has driven it for "
                f"{UNDRIVEN_SECONDS:.0f}s (see the server's log); `orchestrator resume {view['id'][:8]}` "
                "takes it over"
            )
        if view["phase"] in stop:
            for event in api.call("GET", f"/deployments/{deployment_id}/events", params={"after": seen}):
                translate(event)
            return {key: value for key, value in view.items() if key not in _DETAIL_ONLY}
        time.sleep(POLL_SECONDS)


def _until(no_wait: bool) -> frozenset[str]:
    return STOPPED | {"AwaitingApproval"} if no_wait else STOPPED


# --- the commands -----------------------------------------------------------------------------------------


def deploy(server: str, body: dict[str, Any], *, no_wait: bool, output: str) -> None:
    from orchestrator.cli.rollout import show_outcome

    with connected(server) as api:
        created = api.call("POST", "/deployments", json=body)
        if output == "text":
            click.echo(f"deployment {created['id'][:8]}: {created['service']} to {created['environment']}")
        view = follow(api, created["id"], output, _until(no_wait))
    show_outcome(view, view["phase"], output)


def create(server: str, path: str, body: dict[str, Any], *, no_wait: bool, output: str) -> None:
    """promote or rollback: the server records the deployment (and queues it); followed as `deploy` is."""
    from orchestrator.cli.rollout import show_outcome

    with connected(server) as api:
        created = api.call("POST", path, json=body)
        if output == "text":
            for line in created["lines"]:
                click.echo(line)
        view = follow(api, created["deployment"]["id"], output, _until(no_wait))
    show_outcome(view, view["phase"], output)


def get(server: str, path: str, *, params: dict[str, Any] | None = None) -> Any:
    with connected(server) as api:
        return api.call("GET", path, params=params)


def control(server: str, action: str, ref: str, body: dict[str, Any] | None, output: str) -> None:
    """approve, resume or pause: the server records it (and its jobs drive on); shown as locally."""
    from orchestrator.cli.rollout import show_outcome

    with connected(server) as api:
        # Progress from here on, as the local command shows what it drives from now.
        trail = api.call("GET", f"/deployments/{ref}/events")
        after = trail[-1]["seq"] if trail else 0
        outcome = api.call("POST", f"/deployments/{ref}/{action}", json=body)
        view = outcome["deployment"]
        if output == "text":
            click.echo(outcome["message"])
        if action == "pause":
            show_outcome(view, "Paused", output)
        if outcome["driver"] is not None and action == "approve":
            if output == "text":
                click.echo(f"{outcome['driver']} drives this deployment and goes on from here")
            show_outcome(view, "Progressing", output)
        view = follow(api, view["id"], output, STOPPED, after=after)
    show_outcome(view, view["phase"], output)


def abort(server: str, ref: str, output: str) -> None:
    import json

    with connected(server) as api:
        outcome = api.call("POST", f"/deployments/{ref}/abort")
        view = follow(api, outcome["deployment"]["id"], "json", FINISHED)  # abort shows no progress
    if view["phase"] != "Aborted":
        failed = [c["cluster"] for c in view["clusters"] if c["phase"] == "Failed"]
        raise OrchestratorError(
            f"deployment {view['id']} is {view['phase']}: rollback incomplete ({', '.join(failed)}); "
            "`orchestrator abort` again once the cluster is reachable"
        )
    click.echo(json.dumps(view, indent=2) if output == "json" else f"aborted; {view['message']}")


def retry(server: str, ref: str, body: dict[str, Any], *, no_wait: bool, output: str) -> None:
    from orchestrator.cli.rollout import show_outcome

    with connected(server) as api:
        old = api.call("GET", f"/deployments/{ref}")
        new = api.call("POST", f"/deployments/{ref}/retry", json=body)
        if output == "text":
            click.echo(
                f"deployment {new['id'][:8]}: {new['service']} to {new['environment']} "
                f"(retry of {old['id'][:8]})"
            )
        view = follow(api, new["id"], output, _until(no_wait))
    show_outcome(view, view["phase"], output)


def status(server: str, service: str | None, environment: str | None, output: str) -> None:
    from orchestrator.cli.status import print_status

    params = {k: v for k, v in (("service", service), ("environment", environment)) if v}
    with connected(server) as api:
        views = api.call("GET", "/status", params=params)
    print_status(views, output)


def history(server: str, service: str, environment: str | None, limit: int, output: str) -> None:
    from orchestrator.cli.history import print_history

    params: dict[str, Any] = {"limit": limit, **({"environment": environment} if environment else {})}
    with connected(server) as api:
        views = api.call("GET", f"/services/{service}/history", params=params)
    print_history(views, service, environment, output)


def stats(server: str, service: str | None, environment: str | None, since: str, output: str) -> None:
    from orchestrator.cli.stats import print_stats

    params = {k: v for k, v in (("service", service), ("environment", environment), ("since", since)) if v}
    with connected(server) as api:
        view = api.call("GET", "/stats", params=params)
    print_stats(view, service, environment, output)


def drift(server: str, service: str | None, environment: str | None, exit_code: bool, output: str) -> None:
    from orchestrator.cli.drift import show_drift
    from orchestrator.rollout.drift import ServiceDrift

    params = {k: v for k, v in (("service", service), ("environment", environment)) if v}
    with connected(server) as api:
        found = api.call("GET", "/drift", params=params)
    show_drift([ServiceDrift.from_json(r) for r in found], output, exit_code=exit_code)
