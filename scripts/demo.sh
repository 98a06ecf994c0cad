#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (SQLite state, the built-in emulated clusters).
# A canary of `api` across three clouds with health gates; the verified release promoted unchanged to
# local-prod, where it waits for an approval; a bad release that rolls back by itself; a rollback that is a
# revert commit; and the GitOps log every deployment committed to.
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

say "first release of api: nothing runs yet, so it is deployed directly"
orc deploy api --env local

say "second release: a canary 10 -> 25 -> 50 -> 100 per wave, gated on success rate and p99"
orc deploy api --env local --set env.RELEASE=2

say "promote the release verified in local to local-prod, unchanged; local-prod requires an approval"
promoted=$(orc promote api --to local-prod --no-wait)
printf '%s\n' "$promoted"
waiting=$(printf '%s\n' "$promoted" | sed -n 's/^deployment \([0-9a-f]\{8\}\): promote .*/\1/p')

say "an approver (local-prod's approvers: admin, here the local login) approves: it rolls out"
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
