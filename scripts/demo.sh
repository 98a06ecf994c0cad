#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (SQLite state, the built-in emulated clusters).
# A canary of `api` across three clouds with health gates; the verified release promoted unchanged to
# local-prod, where it waits for an approval; a bad release that rolls back by itself; a rollback that is a
# revert commit; and the GitOps log every deployment committed to. `orchestrator serve` runs beside it, so
# the dashboard (the URL and sign-in are printed) shows each canary's weights move and the rollback live.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything the demo makes lives in its own state folder, started fresh each time.
export ORCHESTRATOR_STATE_DIR="$PWD/.orchestrator/demo"
export ORCHESTRATOR_ACTOR="demo"
orc() { .venv/bin/python -m orchestrator "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() { .venv/bin/python scripts/demo_prometheus.py stop || true; }
trap cleanup EXIT

# The dashboard's server from the last run, if it still runs (its pid is in the state folder).
stop_serving() {
  local pidfile="$ORCHESTRATOR_STATE_DIR/serve.pid"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
}
stop_serving
orc sim down >/dev/null 2>&1 || true
rm -rf "$ORCHESTRATOR_STATE_DIR"

say "render and validate the reference estate (2 services x 4 environments; local-prod is local's twin)"
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

say "the first admin, with a password for the dashboard (the CLI goes on as this admin, with the token it saves)"
DEMO_EMAIL=admin@demo.local
DEMO_PASSWORD=${ORCHESTRATOR_DEMO_PASSWORD:-demo-password}
printf '%s\n' "$DEMO_PASSWORD" | orc users create "$DEMO_EMAIL" --role admin --password-stdin >/dev/null
echo "$DEMO_EMAIL (admin)"

say "orchestrator serve: the REST API and the dashboard, on the same state as the commands below"
port=${ORCHESTRATOR_DEMO_PORT:-$(.venv/bin/python -c 'import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8080))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')}
nohup .venv/bin/python -m orchestrator serve --port "$port" >"$ORCHESTRATOR_STATE_DIR/serve.log" 2>&1 &
echo $! >"$ORCHESTRATOR_STATE_DIR/serve.pid"
for _ in $(seq 1 100); do
  .venv/bin/python -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$port/healthz').status_code != 200)" \
    2>/dev/null && break
  sleep 0.2
done
echo "open http://127.0.0.1:$port/ and sign in as $DEMO_EMAIL with password $DEMO_PASSWORD"
echo "(the overview and each deployment's page follow the rollouts below as they happen)"
if [ -n "${ORCHESTRATOR_DEMO_WAIT:-}" ]; then
  read -r -p "press Enter once the dashboard is open in your browser " _ </dev/tty || true
fi

say "first release of api: nothing runs yet, so it is deployed directly"
orc deploy api --env local

say "second release: a canary 10 -> 25 -> 50 -> 100 per wave, gated on success rate and p99"
orc deploy api --env local --set env.RELEASE=2

say "promote the release verified in local to local-prod, unchanged; local-prod requires an approval"
promoted=$(orc promote api --to local-prod --no-wait)
printf '%s\n' "$promoted"
waiting=$(printf '%s\n' "$promoted" | sed -n 's/^deployment \([0-9a-f]\{8\}\): promote .*/\1/p')

say "an approver (local-prod's approvers: admin, here $DEMO_EMAIL) approves: it rolls out"
orc approve "$waiting"

say "a bad release (30 % errors): the gate fails and every touched cluster goes back to stable"
if orc deploy api --env local --set env.RELEASE=3 --set sim.errorRate=0.3; then
  echo "unexpected: the bad release was not rolled back" >&2
  exit 1
fi

say "local's last deployment rolled back, so it vouches for no release: promotion is refused"
if orc promote api --to local-prod; then
  echo "unexpected: a promotion from an environment whose last deployment failed" >&2
  exit 1
fi

say "roll local back to the release before the one it runs: a revert commit, rolled out fast"
orc rollback api --env local

say "what runs where"
orc status api --env local

say "history"
orc history api

say "releases, and the environments each was verified in"
orc releases api

say "the GitOps log: one commit per deployment, the rollback a revert"
git --git-dir "$ORCHESTRATOR_STATE_DIR/gitops/default.git" log --reverse \
  --format='%h %<(14,trunc)%an %s%n        %(trailers:key=Kind,key=Deployment-Id,key=Undoes-Deployment,separator=%x2C )'

echo
echo "The emulated clusters keep running: kubectl --kubeconfig $ORCHESTRATOR_STATE_DIR/sim/kubeconfig --context sim-aws get deploy -n addtocloud"
echo "Stop them with: ORCHESTRATOR_STATE_DIR=$ORCHESTRATOR_STATE_DIR .venv/bin/python -m orchestrator sim down"
echo "The dashboard keeps running at http://127.0.0.1:$port/ (each deployment's page shows its traffic and gates);"
echo "stop it with: kill \$(cat $ORCHESTRATOR_STATE_DIR/serve.pid)"
