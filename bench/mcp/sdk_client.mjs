// The official TypeScript SDK client (StreamableHTTPClientTransport) doing the same tool calls as
// `toolgate-mcp --bench`: one session, 50 warm-up calls, then N calls with C in flight.
// usage: [PROTOCOL_VERSION=2025-06-18] node sdk_client.mjs URL N TOOL CONCURRENCY ARGS_JSON
// Prints one JSON line: calls/s, latency p50/p99 (ms), CPU ms per call (process.cpuUsage over
// the measured calls) and ms per call the main thread waited for a CPU (/proc/self/schedstat).
// Refuses non-loopback URLs.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/peers/package.json"));
const { Client } = await import(require.resolve("@modelcontextprotocol/sdk/client/index.js"));
const { StreamableHTTPClientTransport } = await import(
  require.resolve("@modelcontextprotocol/sdk/client/streamableHttp.js"));

process.removeAllListeners("warning"); // the SDK's MaxListenersExceededWarning per call (B.3)
process.on("warning", () => {});

const [url, nArg = "2000", tool = "echo", cArg = "1", argsJson = '{"message":"bench"}'] =
  process.argv.slice(2);
const u = new URL(url);
if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(u.hostname)) {
  console.error("sdk_client: refusing non-loopback URL " + u.hostname);
  process.exit(1);
}
const n = Number(nArg), conc = Number(cArg), args = JSON.parse(argsJson);

const client = new Client({ name: "sdk-bench", version: "1.0.0" }, { capabilities: {} });
// PROTOCOL_VERSION=v: offer v instead of the SDK's latest (it has no option for that, so the
// initialize request's body is rewritten on its way out; the SDK accepts any supported answer).
const offer = process.env.PROTOCOL_VERSION;
const fetchOffering = async (input, init) => {
  if (offer && init && typeof init.body === "string" && init.body.includes('"initialize"')) {
    const msg = JSON.parse(init.body);
    if (msg.method === "initialize") {
      msg.params.protocolVersion = offer;
      init = { ...init, body: JSON.stringify(msg) };
    }
  }
  return fetch(input, init);
};
const transport = new StreamableHTTPClientTransport(u, offer ? { fetch: fetchOffering } : {});
await client.connect(transport);
const tools = await client.listTools();
if (!tools.tools.some((t) => t.name === tool)) throw new Error("no tool " + tool);
for (let i = 0; i < 50; i++) await client.callTool({ name: tool, arguments: args });

// ms this (main) thread was ready to run but waited for a CPU: /proc/self/schedstat field 2 (ns).
function runqWaitMs() {
  try {
    return Number(readFileSync("/proc/self/schedstat", "utf8").split(" ")[1]) / 1e6;
  } catch {
    return NaN;
  }
}

const lat = new Array(n);
let next = 0, errors = 0;
const cpu0 = process.cpuUsage();
const wait0 = runqWaitMs();
const t0 = process.hrtime.bigint();
async function worker() {
  while (next < n) {
    const i = next++;
    const s = process.hrtime.bigint();
    try {
      const r = await client.callTool({ name: tool, arguments: args });
      if (r.isError) errors++;
    } catch {
      errors++;
    }
    lat[i] = Number(process.hrtime.bigint() - s) / 1e6;
  }
}
await Promise.all(Array.from({ length: conc }, worker));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const wait = runqWaitMs() - wait0;
lat.sort((a, b) => a - b);
console.log(JSON.stringify({
  client: "ts-sdk", protocol_version: transport.protocolVersion ?? "", calls: n, concurrency: conc, errors, seconds: +secs.toFixed(3),
  calls_per_s: +(n / secs).toFixed(1), p50_ms: +lat[Math.floor(n / 2)].toFixed(3),
  p99_ms: +lat[Math.min(n - 1, Math.floor(n * 0.99))].toFixed(3),
  cpu_ms_per_call: +((cpu.user + cpu.system) / 1000 / n).toFixed(4),
  runq_wait_ms_per_call: Number.isNaN(wait) ? -1 : +(wait / n).toFixed(4),
}));
await transport.terminateSession().catch(() => {});
await client.close();
