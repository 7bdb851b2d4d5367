# Sourced by bench/admission/run.sh and callgrind.sh: builds the gateway and the simulator into
# $root/$1 (CMake build type $2), starts both on 127.0.0.1 (simulator PORT_BASE+1, gateway
# PORT_BASE+2; the gateway under the command in GW_WRAPPER, e.g. valgrind, when set), waits for
# both, and seeds USERS users (seed.py). Sets SIM, GW, tmp, gw_pid; everything started is
# stopped and tmp removed on exit (the gateway's log copied to KEEP_LOG first when that is set).
# Expects root, here, PORT_BASE, USERS, LOG_LEVEL.
start_stack() {
  local build="$root/$1" type=$2 tries=${3:-100}
  SIM=http://127.0.0.1:$((PORT_BASE + 1))
  GW=http://127.0.0.1:$((PORT_BASE + 2))
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$type" -DTOOLGATE_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target toolgate-gateway composio-sim >/dev/null
  tmp=$(mktemp -d /tmp/toolgate-bench.XXXXXX)
  pids=()
  trap stop_stack EXIT
  "$build/composio-sim" --listen "127.0.0.1:$((PORT_BASE + 1))" --api-key ak_bench \
    --auth-config everything=ac_everything --log-level warn >"$tmp/sim.log" 2>&1 &
  pids+=($!)
  env TOOLGATE_DB="$tmp/toolgate.db" TOOLGATE_LISTEN="127.0.0.1:$((PORT_BASE + 2))" \
    COMPOSIO_BASE_URL="$SIM" COMPOSIO_API_KEY=ak_bench COMPOSIO_AUTH_CONFIG_EVERYTHING=ac_everything \
    COMPOSIO_MCP_SERVER_ID=mcp_bench TOOLGATE_TRUST_USER_HEADER=1 TOOLGATE_RUN_RATE_PER_MIN=0 \
    TOOLGATE_LOG_LEVEL="$LOG_LEVEL" ${GW_WRAPPER:-} "$build/toolgate-gateway" >"$tmp/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=($gw_pid)
  for _ in $(seq "$tries"); do
    curl -fsS "$GW/healthz" >/dev/null 2>&1 && curl -fsS "$SIM/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! curl -fsS "$GW/healthz" >/dev/null 2>&1 || ! curl -fsS "$SIM/healthz" >/dev/null 2>&1; then
    echo "bench: the gateway or the simulator did not come up; their logs:" >&2
    tail -n 20 "$tmp/gateway.log" "$tmp/sim.log" >&2
    exit 1
  fi
  python3 "$here/seed.py" "$tmp/toolgate.db" "$SIM" "$USERS" "$root/examples/demo-workflow.json" \
    >"$tmp/pairs"
}

stop_stack() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Bounded: whatever has not exited 30 s after SIGTERM is killed.
  for p in "${pids[@]}"; do
    timeout 30 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ -z "${KEEP_LOG:-}" ] || cp "$tmp/gateway.log" "$KEEP_LOG"
  rm -rf "$tmp"
}

# Installs a Debian package when its command is missing (fresh machines).
need() {
  command -v "$1" >/dev/null && return 0
  echo "bench: installing $2" >&2
  local sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq "$2" >/dev/null
}

queued() { curl -fsS "$GW/metrics" | awk '/decision="queued"/ {print $2}'; }
