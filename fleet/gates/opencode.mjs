// Fleetwarden's opencode plugin: every tool call passes the agent's permission policy,
// asking the operator through Fleetwarden where the policy says ask (the tool waits for the
// answer; a deny fails the tool with the operator's reason, which the model sees), and the
// session's work is reported as heartbeats. opencode's own `permission.ask` hook is never
// called by `opencode run` 1.18.33, so the gate is `tool.execute.before`.

import { beat, gate, settings } from "./ask.mjs";

export const FleetwardenGate = async () => {
  const config = settings();
  return {
    "tool.execute.before": async (input, output) => {
      const args = output.args ?? {};
      const reason = await gate(config, { id: input.callID, tool: input.tool, input: args, file: args.filePath });
      if (reason !== null) throw new Error(reason);
    },
    "tool.execute.after": async () => beat(config, "working"),
    event: async ({ event }) => {
      if (event.type === "session.idle") await beat(config, "waiting");
      else if (event.type === "session.status" && event.properties?.status?.type === "busy") await beat(config, "working");
    },
  };
};
