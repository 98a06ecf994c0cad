#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (SQLite state, built-in emulated clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
orc() { .venv/bin/python -m orchestrator "$@"; }

echo "== render and validate the reference estate for every environment"
for env in local dev staging prod; do
  for service in api frontend; do
    orc render "$service" --env "$env" -o json | .venv/bin/python -c '
import json, sys
s = json.load(sys.stdin)
for c in s["clusters"]:
    print(f"{s[\"service\"]:9} {s[\"environment\"]:8} {c[\"cluster\"]:6} {c[\"cloud\"]:6} "
          f"{len(c[\"objects\"]):2} objects  version {c[\"version\"]}  hash {c[\"hash\"][:12]}")
'
  done
done
