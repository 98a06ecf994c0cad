# Sourced by .ci/run: make sure Postgres serves 127.0.0.1:5432 with trust authentication for local TCP
# connections as user postgres, which the tests use (each run makes and drops its own database).
# Works on a machine where Debian's `postgresql` was just installed (no cluster, or a cluster that package
# scripts were not allowed to start) and on one where a cluster exists but is stopped. Fails, never skips.

PG_HOST=127.0.0.1
PG_PORT=5432

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
