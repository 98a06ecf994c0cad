"""`python -m orchestrator.sim serve`: the sim daemon's entry point (`orchestrator sim up` starts it).

Also `up`, `down` and `status` with plain output, for use before or without the main command line.
"""

from __future__ import annotations

import argparse
import json
import sys

from orchestrator.errors import OrchestratorError
from orchestrator.logs import configure_logging
from orchestrator.sim.client import load_running_sim
from orchestrator.sim.daemon import serve_forever, start_daemon, stop_daemon
from orchestrator.sim.server import DEFAULT_CLUSTERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sim", description=__doc__)
    parser.add_argument("command", choices=["serve", "up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        default=None,
        help="state directory (default $ORCHESTRATOR_STATE_DIR "
        "or ./.orchestrator); the sim lives in its sim/ folder",
    )
    parser.add_argument(
        "--clusters", default=",".join(DEFAULT_CLUSTERS), help="comma-separated cluster names"
    )
    parser.add_argument("--ready-delay", type=float, default=0.5, help="seconds until a new pod is ready")
    args = parser.parse_args(argv)
    clusters = [c.strip() for c in args.clusters.split(",") if c.strip()]
    try:
        if args.command == "serve":
            configure_logging("info")
            serve_forever(args.state_dir, clusters, ready_delay=args.ready_delay)
        elif args.command == "up":
            info, started = start_daemon(args.state_dir, clusters, ready_delay=args.ready_delay)
            print(json.dumps({"started": started, **info.to_json()}, indent=2))
        elif args.command == "down":
            print("stopped" if stop_daemon(args.state_dir) else "not running")
        else:
            running = load_running_sim(args.state_dir)
            print(
                json.dumps(
                    {"running": running is not None, **(running.to_json() if running else {})}, indent=2
                )
            )
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
