#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's postgresql package) on a free port of
# 127.0.0.1 and keeps it running until this script gets SIGTERM, SIGINT or
# SIGHUP. Once the server answers it prints one line:
#
#   postgres url=postgresql://dtx@127.0.0.1:<port>/dtx port=<port> dir=<dir> pid=<server pid>
#
# (tests parse the url= field; `psql <url>` connects). On exit it stops the
# server (a fast shutdown: every committed transaction is on disk) and removes
# the directory it made.
#
#   scripts/start-postgres.sh                  # a new temporary directory
#   scripts/start-postgres.sh --dir DIR        # data in DIR (kept on exit;
#                                              # reused when it holds a cluster)
#   scripts/start-postgres.sh --port PORT      # this port instead of a free one
#   scripts/start-postgres.sh --stop-on-eof    # also stop when stdin closes
#                                              # (a test harness that dies)
#
# PostgreSQL refuses to run as root: run as root, the script runs the server
# as the `postgres` system user that the Debian package creates (DIR must then
# be reachable by it); run as another user, as that user. fsync stays on:
# durability is what the journal's tests and benchmarks measure. The server
# trusts every connection from 127.0.0.1 (a throwaway for tests and demos).
set -euo pipefail

dir=""
port=""
stop_on_eof=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir needs a directory}"; shift 2 ;;
    --port) port="${2:?--port needs a number}"; shift 2 ;;
    --stop-on-eof) stop_on_eof=1; shift ;;
    *) echo "start-postgres: unknown argument: $1 (known: --dir DIR, --port PORT, --stop-on-eof)" >&2; exit 2 ;;
  esac
done

# The newest installed server (Debian installs each major version apart).
bin=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && bin="$d"
done
if [ -z "$bin" ]; then
  echo "start-postgres: PostgreSQL is not installed (scripts/setup.sh installs postgresql)" >&2
  exit 1
fi

run_as=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "start-postgres: running as root needs the 'postgres' system user (Debian's postgresql package makes it)" >&2
    exit 1
  fi
  run_as=(runuser -u postgres --)
fi

made_dir=0
if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/dtx-postgres.XXXXXX")
  made_dir=1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ${#run_as[@]} -gt 0 ]; then
  chown postgres: "$dir"
  if ! "${run_as[@]}" test -w "$dir"; then
    echo "start-postgres: $dir is not writable by the postgres user (is a parent directory closed to it?)" >&2
    exit 1
  fi
fi
data="$dir/data"
log="$dir/postgres.log"

free_port() {
  local p
  for _ in $(seq 1 100); do
    # Below Linux's ephemeral range (32768-60999), where an outgoing
    # connection's local port can hold a port that nothing listens on.
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "start-postgres: no free port" >&2
  exit 1
}
fixed_port="$port"
[ -n "$port" ] || port=$(free_port)

server_pid=""
stop() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -f "$data/postmaster.pid" ]; then
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  local waiters
  waiters=$(jobs -p)
  [ -n "$waiters" ] && kill $waiters 2>/dev/null || true
  if [ "$made_dir" -eq 1 ]; then rm -rf "$dir"; fi
  exit "$rc"
}
trap stop EXIT
trap 'exit 0' INT TERM HUP

if [ ! -f "$data/PG_VERSION" ]; then
  # The bootstrap superuser is `dtx`; C collation so that text sorts bytewise.
  "${run_as[@]}" "$bin/initdb" -D "$data" -U dtx --auth=trust -E UTF8 \
    --locale=C >"$dir/initdb.log" 2>&1 || {
    echo "start-postgres: initdb failed; its log:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
  }
fi

# No Unix socket (TCP on loopback only, so that several servers never meet in
# /var/run/postgresql); fsync on; enough connections for several
# coordinators' pools.
start_server() {
  "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on -c max_connections=200" \
    start >/dev/null 2>&1
}
# A free port can be taken between the check and the start (another test's
# server, a connection's local port): a few more ports before giving up.
attempt=1
until start_server; do
  if [ -z "$fixed_port" ] && [ "$attempt" -lt 5 ] &&
    grep -q "Address already in use" "$log" 2>/dev/null; then
    attempt=$((attempt + 1))
    port=$(free_port)
    : >"$log"
    continue
  fi
  echo "start-postgres: the server did not start on port $port; its log:" >&2
  cat "$log" >&2 || true
  exit 1
done
server_pid=$(head -n 1 "$data/postmaster.pid")

url="postgresql://dtx@127.0.0.1:$port/dtx"
if ! "$bin/psql" "postgresql://dtx@127.0.0.1:$port/postgres" -Atqc \
  "SELECT 1 FROM pg_database WHERE datname = 'dtx'" | grep -q 1; then
  "$bin/psql" "postgresql://dtx@127.0.0.1:$port/postgres" -qc "CREATE DATABASE dtx" >/dev/null
fi
echo "postgres url=$url port=$port dir=$dir pid=$server_pid"

# Runs until a signal (the trap stops the server), until stdin closes (with
# --stop-on-eof) or until the server dies.
if [ "$stop_on_eof" -eq 1 ]; then
  exec 3<&0
  # (A background job's stdin is /dev/null unless redirected explicitly.)
  cat <&3 >/dev/null &
  eof_pid=$!
  tail --pid="$server_pid" -f /dev/null &
  tail_pid=$!
  wait -n "$eof_pid" "$tail_pid" || true
  if ! kill -0 "$eof_pid" 2>/dev/null; then
    kill "$tail_pid" 2>/dev/null || true
    exit 0
  fi
  kill "$eof_pid" 2>/dev/null || true
else
  tail --pid="$server_pid" -f /dev/null &
  wait $! || true
fi
echo "start-postgres: the server (pid $server_pid) exited; the end of its log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
