# Sourced by the HTTP compatibility runners (run_compat_http.sh,
# run_compat_python.sh): the shared cleanup, fail/skip rules and the
# coordinator under test.
#
#   compat_init                 temp dir in $work, cleanup on exit
#   start_coordinator SERVER    starts dtx-server (the default) or, with
#                               DTX_COMPAT_AGAINST_DTM=1, dtm itself as the
#                               reference; sets $dtm_api
#                               (http://127.0.0.1:<port>/api/dtmsvr)
#   stop_coordinator            SIGTERM; dtx-server must exit 0
#
# Reference mode runs dtm v1.18.0 (github.com/dtm-labs/dtm, its default
# boltdb store in $work) from $DTX_COMPAT_DTM, or builds it once with the Go
# toolchain through the module proxy into
# ${XDG_CACHE_HOME:-$HOME/.cache}/dtx-compat/dtm-v1.18.0/. dtm listens on
# every interface (it has no host setting); its ports are chosen free on
# 127.0.0.1 and only loopback is used. Reference mode is for people checking
# that a test is right: ctest and CI test dtx-server.

compat_pids=()
compat_init() {
  work="$(mktemp -d)"
  trap compat_cleanup EXIT
}
compat_cleanup() {
  for p in "${compat_pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do
    [ -f "$f" ] && { echo "--- $f (last 60 lines)"; tail -n 60 "$f"; }
  done
  exit 1
}
skip() {
  [ -n "${CI:-}" ] && fail "$* (CI=true: a missing prerequisite is a failure)"
  echo "skipped: $*"
  exit 77
}
wait_for() {  # file pattern what
  for _ in $(seq 1 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$3 (no '$2' in $1)"
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dtm_version=v1.18.0
build_dtm() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/dtx-compat/dtm-$dtm_version"
  if [ ! -x "$dir/dtm" ]; then
    command -v go >/dev/null || fail "reference mode needs Go to build dtm (or DTX_COMPAT_DTM=<dtm binary>)"
    echo "== building dtm $dtm_version (once, into $dir)" >&2
    mkdir -p "$dir/mod"
    printf 'module dtxcompat/dtmref\n\ngo 1.21\n\nrequire github.com/dtm-labs/dtm %s\n' \
      "$dtm_version" >"$dir/mod/go.mod"
    (cd "$dir/mod" && GOFLAGS="-mod=mod" go build -o "$dir/dtm" github.com/dtm-labs/dtm) >&2 ||
      fail "building dtm $dtm_version"
  fi
  echo "$dir/dtm"
}

coordinator_pid=""
start_coordinator() {  # dtx-server
  local http_port
  if [ -n "${DTX_COMPAT_AGAINST_DTM:-}" ] && [ "$DTX_COMPAT_AGAINST_DTM" != 0 ]; then
    local dtm_bin="${DTX_COMPAT_DTM:-}"
    [ -n "$dtm_bin" ] || dtm_bin="$(build_dtm)"
    http_port="$(free_port)"
    # dtm's config is read from the environment (its keys, upper-cased);
    # RetryInterval may not be below 10 s in dtm: the tests set a 1 s
    # retry interval per transaction where they wait for a retry.
    (cd "$work" && exec env HTTP_PORT="$http_port" GRPC_PORT="$(free_port)" \
      TRANS_CRON_INTERVAL=1 LOG_LEVEL=info "$dtm_bin") >"$work/coordinator.log" 2>&1 &
    coordinator_pid=$!
    compat_pids+=("$coordinator_pid")
    for _ in $(seq 1 200); do
      curl -sf "http://127.0.0.1:$http_port/api/dtmsvr/version" >/dev/null 2>&1 && break
      sleep 0.05
    done
    curl -sf "http://127.0.0.1:$http_port/api/dtmsvr/version" >/dev/null ||
      fail "dtm did not answer on 127.0.0.1:$http_port"
    dtm_api="http://127.0.0.1:$http_port/api/dtmsvr"
    coordinator_name="dtm $dtm_version (reference)"
  else
    cat >"$work/dtx.yml" <<YAML
GrpcHost: 127.0.0.1
GrpcPort: 0
HttpPort: 0
RetryInterval: 1
TimeoutToFail: 3
RequestTimeout: 3
TransCronInterval: 1
Store:
  Path: '$work/dtx-server.db'
YAML
    "$1" -c "$work/dtx.yml" >"$work/server.out" 2>"$work/coordinator.log" &
    coordinator_pid=$!
    compat_pids+=("$coordinator_pid")
    wait_for "$work/server.out" "^dtx-server: http listening on " "dtx-server did not start"
    dtm_api="http://$(sed -n 's/^dtx-server: http listening on //p' "$work/server.out")/api/dtmsvr"
    coordinator_name="dtx-server"
  fi
  echo "coordinator: $coordinator_name, HTTP API at $dtm_api"
}

stop_coordinator() {
  kill "$coordinator_pid"
  if [ "$coordinator_name" = dtx-server ]; then
    wait "$coordinator_pid" || fail "dtx-server did not exit 0 on SIGTERM"
  else
    wait "$coordinator_pid" || true
  fi
}
