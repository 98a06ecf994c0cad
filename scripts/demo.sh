#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (SQLite state, the built-in emulated clusters).
# A canary of `api` across three clouds with health gates, then a bad release that rolls back by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything the demo makes lives in its own state folder, started fresh each time.
export ORCHESTRATOR_STATE_DIR="$PWD/.orchestrator/demo"
export ORCHESTRATOR_ACTOR="demo"
orc() { .venv/bin/python -m orchestrator "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() { .venv/bin/python scripts/demo_prometheus.py stop || true; }
trap cleanup EXIT

orc sim down >/dev/null 2>&1 || true
rm -rf "$ORCHESTRATOR_STATE_DIR"

say "render and validate the reference estate (2 services x 4 environments)"
for env in local dev staging prod; do
  for service in api frontend; do
    orc render "$service" --env "$env" -o json | .venv/bin/python -c '
import json, sys
summary = json.load(sys.stdin)
clusters = "  ".join("%s: %d objects" % (c["cluster"], len(c["objects"])) for c in summary["clusters"])
print("%-9s %-8s %s" % (summary["service"], summary["environment"], clusters))'
  done
done

say "start the emulated clusters (aws, azure, gcp)"
orc sim up

url=$(.venv/bin/python scripts/demo_prometheus.py start || true)
if [ -n "$url" ]; then
  export ORCHESTRATOR_PROMETHEUS_URL="$url"
  echo "Prometheus at $url scrapes the mesh: the health gates query it"
else
  echo "Prometheus is not installed: the health gates read the mesh /metrics directly"
fi

say "first release of api: nothing runs yet, so it is deployed directly"
orc deploy api --env local

say "second release: a canary 10 -> 25 -> 50 -> 100 per wave, gated on success rate and p99"
orc deploy api --env local --set env.RELEASE=2

say "a bad release (30 % errors): the gate fails and every touched cluster goes back to stable"
if orc deploy api --env local --set env.RELEASE=3 --set sim.errorRate=0.3; then
  echo "unexpected: the bad release was not rolled back" >&2
  exit 1
fi

say "what runs where"
orc status api --env local

say "history"
orc history api

echo
echo "The emulated clusters keep running: kubectl --kubeconfig $ORCHESTRATOR_STATE_DIR/sim/kubeconfig --context sim-aws get deploy -n addtocloud"
echo "Stop them with: ORCHESTRATOR_STATE_DIR=$ORCHESTRATOR_STATE_DIR .venv/bin/python -m orchestrator sim down"
