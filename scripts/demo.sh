#!/usr/bin/env bash
# The main job, end to end, on 127.0.0.1 (README, first command):
#   installs what is missing and builds (scripts/setup.sh), starts the Composio simulator, the MCP
#   reference server, the gateway and one worker; connects a demo user's provider through the real
#   redirect flow; creates and runs Start -> echo -> get-sum -> End; prints the run and its tool
#   executions; expires the account at "Composio" and prints the gateway's 409; shows the rows
#   with the sqlite3 shell; stops everything it started.
# Ports (override by env): GATEWAY_PORT=8080 SIM_PORT=9900 MCP_PORT=3001.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build} "$root/scripts/setup.sh"
bin="$root/${BUILD_DIR:-build}"

GATEWAY_PORT=${GATEWAY_PORT:-8080}; SIM_PORT=${SIM_PORT:-9900}; MCP_PORT=${MCP_PORT:-3001}
for p in "$GATEWAY_PORT" "$SIM_PORT" "$MCP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p on 127.0.0.1 is in use; set GATEWAY_PORT/SIM_PORT/MCP_PORT" >&2; exit 1
  fi
done
run="$root/run/demo-$(date +%Y%m%d-%H%M%S)"; mkdir -p "$run"
GW="http://127.0.0.1:$GATEWAY_PORT"; SIM="http://127.0.0.1:$SIM_PORT"; USER_ID=demo-user
export TOOLGATE_DB="$run/toolgate.db" TOOLGATE_LISTEN="127.0.0.1:$GATEWAY_PORT"
export COMPOSIO_BASE_URL="$SIM" COMPOSIO_API_KEY="ak_demo_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export COMPOSIO_MCP_SERVER_ID=mcp_demo COMPOSIO_AUTH_CONFIG_EVERYTHING=ac_everything
export COMPOSIO_DISPLAY_NAME_EVERYTHING="MCP reference server"
export TOOLGATE_REDIRECT_URL="$GW/api/composio-redirect" TOOLGATE_UI_URL="$GW/"
export TOOLGATE_TRUST_USER_HEADER=1 TOOLGATE_POLL_MS=100

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: stopped everything; logs and database in $run"
}
trap cleanup EXIT
start() { local name=$1; shift; "$@" >"$run/$name.log" 2>&1 & pids+=($!); }
wait_http() {
  for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: $1 did not come up; see $run/*.log" >&2; exit 1
}
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "Starting the Composio simulator, the MCP reference server, the gateway and a worker"
start composio-sim "$bin/composio-sim" --listen "127.0.0.1:$SIM_PORT" --api-key "$COMPOSIO_API_KEY" \
  --mcp-url "http://127.0.0.1:$MCP_PORT/mcp" --auth-config everything=ac_everything
PORT=$MCP_PORT start server-everything "$root/tests/peers/run-everything.sh"
wait_http "$SIM/healthz"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MCP_PORT") 2>/dev/null && break; sleep 0.1; done
start gateway "$bin/toolgate-gateway"
wait_http "$GW/healthz"
start worker "$bin/toolgate-worker"
echo "simulator $SIM, MCP server http://127.0.0.1:$MCP_PORT/mcp, gateway $GW"

api() { curl -sS -H "X-User-Id: $USER_ID" -H 'Content-Type: application/json' "$@"; }

step "Connecting $USER_ID's 'everything' provider (OAuth start -> Composio link page -> our callback)"
start_json=$(api -X POST "$GW/api/mcp/auth/everything/start" -d '{}')
echo "$start_json" | jq .
redirect_url=$(echo "$start_json" | jq -r .redirect_url)
final=$(curl -sS -L -o /dev/null -w '%{url_effective}' "$redirect_url")
echo "browser followed the redirects to: $final"
api "$GW/api/mcp/auth/providers" | jq .

step "Creating the workflow Start -> MCP echo -> MCP get-sum -> End"
wf=$(api -X POST "$GW/api/workflows" -d "{\"name\":\"demo\",\"definition\":$(cat "$root/examples/demo-workflow.json")}" | jq -r .id)
echo "workflow $wf"

step "Running it"
inputs='{"inputs":{"message":"hello from toolgate","a":2,"b":40}}'
admit=$(api -X POST "$GW/api/workflows/$wf/run" -H "Idempotency-Key: demo-1" -d "$inputs")
echo "$admit" | jq .
run_id=$(echo "$admit" | jq -r .run_id)
status=queued
for _ in $(seq 300); do
  status=$(api "$GW/api/runs/$run_id" | jq -r .status)
  case $status in queued|running) sleep 0.1 ;; *) break ;; esac
done
step "The finished run"
api "$GW/api/runs/$run_id" | jq .
step "Its tool executions"
api "$GW/api/runs/$run_id/tool-executions" | jq .

step "Composio now reports the account EXPIRED; a new run is refused"
ca=$(sqlite3 "$TOOLGATE_DB" "SELECT composio_account_id FROM connected_accounts WHERE user_id='$USER_ID'")
curl -sS -X PATCH "$SIM/_sim/accounts/$ca" -H 'Content-Type: application/json' \
  -d '{"status":"EXPIRED","status_reason":"OAuth refresh token expired"}' >/dev/null
code=$(api -o "$run/409.json" -w '%{http_code}' -X POST "$GW/api/workflows/$wf/run" -d "$inputs")
echo "HTTP $code"; jq . "$run/409.json"

step "The rows, with the sqlite3 shell ($TOOLGATE_DB)"
sqlite3 -header -column "$TOOLGATE_DB" "SELECT id, workflow, status, attempt, tool_calls, total_ms FROM v_runs;"
echo
sqlite3 -header -column "$TOOLGATE_DB" "SELECT run_id, node_id, tool_name, status, duration_ms, response_head FROM v_tool_executions;"
echo
sqlite3 -header -column "$TOOLGATE_DB" "SELECT user_id, provider, status, status_reason, version FROM v_connections;"

if [ "$status" = succeeded ] && [ "$code" = 409 ]; then
  step "Done: the run succeeded with output from the reference MCP server, then the 409."
else
  step "Demo FAILED: run status '$status', second admission HTTP $code (logs: $run)"; exit 1
fi
