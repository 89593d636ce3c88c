// The MCP TypeScript SDK's client (what the agent CLIs build theirs on) against the door:
// connects over streamable HTTP with a bearer token, lists the tools, calls two (one with
// progress), asks for one the door refuses, ends its session, and prints what it saw as
// one JSON line.
// Usage: MCP_DOOR_TOKEN=... node ts_client.mjs SDK_DIR URL
import { pathToFileURL } from "node:url";

const [sdk, url] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(`${sdk}/dist/esm/${path}`).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_DOOR_TOKEN}` } },
});
const client = new Client({ name: "door-ts-test", version: "1.0.0" });
await client.connect(transport);
const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 5 } });
const progress = [];
await client.callTool(
  { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 } },
  undefined,
  { onprogress: (step) => progress.push(step.progress) },
);
let refused = "";
try {
  await client.callTool({ name: "gzip-file-as-resource", arguments: {} });
} catch (error) {
  refused = String(error.message);
}
await transport.terminateSession();
await client.close();
console.log(JSON.stringify({ tools, sum: sum.content, progress, refused }));
