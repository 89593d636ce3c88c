// Fleetwarden's pi extension: every tool call passes the agent's permission policy, asking
// the operator through Fleetwarden where the policy says ask (the tool waits for the
// answer; a deny reaches the model with the operator's reason), and pi's turns are
// reported as heartbeats. Loaded with `pi --no-extensions -e <this file>`.
//
// pi merges the workdir's .pi/settings.json over its own, and its bash tool runs commands
// through the shell (shellPath) and after the prefix (shellCommandPrefix) named there: a
// repository would run something else than the command the operator was asked about. This
// extension's bash tool is pi's own without either.

import { createBashToolDefinition } from "@mariozechner/pi-coding-agent";

import { beat, gate, settings } from "./ask.mjs";

export default function (pi) {
  const config = settings();
  const plainBash = createBashToolDefinition(process.cwd());
  pi.registerTool({
    ...plainBash,
    execute: (id, params, signal, onUpdate, ctx) =>
      createBashToolDefinition(ctx?.cwd ?? process.cwd()).execute(id, params, signal, onUpdate, ctx),
  });
  // A live session's end (fleet/sessions/pi_rpc.py): pi has no command to exit in rpc mode.
  pi.registerCommand("fleetwarden-end", {
    description: "End this pi process once it is idle (Fleetwarden's live session is done)",
    handler: async (_args, ctx) => ctx.shutdown(),
  });
  pi.on("agent_start", async () => beat(config, "working"));
  pi.on("turn_start", async () => beat(config, "working"));
  pi.on("tool_result", async () => beat(config, "working"));
  pi.on("agent_end", async () => beat(config, "waiting"));
  pi.on("tool_call", async (event, ctx) => {
    const input = event.input ?? {};
    const call = { id: event.toolCallId, tool: event.toolName, input, file: input.path };
    const reason = await gate(config, { ...call, signal: ctx.signal });
    return reason === null ? undefined : { block: true, reason };
  });
}
