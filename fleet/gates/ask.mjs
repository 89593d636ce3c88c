// Fleetwarden's gate inside an agent's sandbox: the permission policy of the agent, the
// ask door (asking the operator and waiting for the answer) and heartbeats.
//
// Imported by the pi extension (pi.mjs) and the opencode plugin (opencode.mjs); run as
// `node ask.mjs` by a hook command, it reads one ask as JSON on stdin
// ({"id", "tool", "subject", "detail"?, "pattern"?}) and prints the answer as JSON.
//
// Everything comes from the environment Fleetwarden gave the CLI (the agent cannot change
// its CLI's own environment): FLEETWARDEN_HEARTBEAT_URL and FLEETWARDEN_HEARTBEAT_TOKEN (the
// ask door is the same server's /approval/<agent>), and FLEETWARDEN_PERMISSIONS, a JSON
// object {"mode": "ask"|"edits"|"full"|"read-only", "allow": [...], "deny": [...],
// "workdir": "/abs", "mcp"?: [server, ...]}. A granted MCP server's tools (opencode's
// "<server>_<tool>") pass here: Fleetwarden's MCP door asks about each call. Rules are Tool or Tool(pattern), "*" matching any run of characters,
// as fleet/permissions/rules.py reads them. A shell command is never allowed here by a rule: the
// gate cannot parse a line as the shell does, so it asks Fleetwarden, whose parser allows it
// at once when every command of the line matches the rule (else the operator is asked). A
// deny rule refuses here when the line or any command it seems to hold matches.

import fs from "node:fs";
import path from "node:path";

const TOKEN_HEADER = "X-Fleetwarden-Token";
const MCP_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const READ_TOOLS = new Set(["read", "grep", "find", "ls", "glob", "list", "todoread", "todowrite", "task", "skill"]);
const EDIT_TOOLS = new Set(["edit", "write", "multiedit", "apply_patch"]);
// The CLIs' own tools (opencode 1.18.33's, and pi's): never an MCP server's, whatever the
// server's name (a server "apply" does not make "apply_patch" its tool).
const BUILT_IN = new Set([
  ...READ_TOOLS, ...EDIT_TOOLS, "bash", "patch", "webfetch", "websearch", "codesearch", "lsp",
  "batch", "invalid", "question", "plan_enter", "plan_exit",
]);
const ALIASES = {
  bash: "Bash", shell: "Bash", edit: "Edit", multiedit: "Edit", apply_patch: "Edit",
  write: "Write", read: "Read", webfetch: "WebFetch",
};
const WRAPPERS = new Set([
  "env", "sudo", "doas", "su", "exec", "eval", "command", "builtin", "nohup", "time", "timeout", "nice",
  "ionice", "stdbuf", "setsid", "chroot", "xargs", "parallel", "watch", "strace", "ltrace", "taskset",
  "flock", "unbuffer", "script", "busybox", "sh", "bash", "zsh", "dash", "ksh", "fish", "source", ".",
]);
const PATCH_FILE = /^\*\*\* (?:Add File|Update File|Delete File|Move to): (.+)$/gm;
const RETRY_MAX_MS = 5000;
const BEAT_EVERY_MS = 2000;

export function settings(env = process.env) {
  let policy = {};
  try {
    policy = JSON.parse(env.FLEETWARDEN_PERMISSIONS || "{}");
  } catch {
    policy = {};
  }
  const beatUrl = env.FLEETWARDEN_HEARTBEAT_URL || "";
  return {
    mode: ["ask", "edits", "full", "read-only"].includes(policy.mode) ? policy.mode : "ask",
    allow: Array.isArray(policy.allow) ? policy.allow.map(String) : [],
    deny: Array.isArray(policy.deny) ? policy.deny.map(String) : [],
    workdir: typeof policy.workdir === "string" ? policy.workdir : process.cwd(),
    mcp: Array.isArray(policy.mcp) ? policy.mcp.map(String).filter((s) => MCP_NAME.test(s)) : [],
    beatUrl,
    askUrl: beatUrl.includes("/heartbeat/") ? beatUrl.replace("/heartbeat/", "/approval/") : "",
    token: env.FLEETWARDEN_HEARTBEAT_TOKEN || "",
  };
}

export function portable(tool) {
  return ALIASES[tool] || tool;
}

// Whether text matches pattern, "*" any run of characters: the literal parts found in order,
// leftmost first (no backtracking, so a long line cannot stall the gate).
function globs(pattern, text) {
  const parts = pattern.split(/\*+/);
  if (parts.length === 1) return text === pattern;
  const head = parts[0];
  const tail = parts[parts.length - 1];
  if (!text.startsWith(head) || !text.endsWith(tail) || text.length < head.length + tail.length) return false;
  let at = head.length;
  const end = text.length - tail.length;
  for (const part of parts.slice(1, -1)) {
    const found = text.slice(0, end).indexOf(part, at);
    if (found < 0) return false;
    at = found + part.length;
  }
  return true;
}

export function matches(rule, tool, subject) {
  const found = /^\s*([A-Za-z][A-Za-z0-9_.:-]{0,63})(?:\(([^()\x00-\x1f]*)\))?\s*$/.exec(rule);
  if (!found || portable(found[1]) !== portable(tool)) return false;
  return found[2] === undefined || globs(found[2].trim(), subject.trim());
}

// The commands a shell line may run, read roughly and on the refusing side: split at every
// separator, substitution and quote, assignments dropped, each tail after a wrapper too.
export function mentioned(line) {
  const found = [line.trim()];
  for (const piece of line.split(/[;&|\n(){}`'"]|\$\(/)) {
    const words = piece.trim().split(/\s+/).filter((word) => word !== "");
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words.shift();
    if (words.length === 0) continue;
    const wrapped = WRAPPERS.has(path.basename(words[0]));
    for (let at = 0; at < (wrapped ? words.length : 1); at++) found.push(words.slice(at).join(" "));
  }
  return found;
}

function refuses(rule, tool, subject) {
  if (portable(tool) !== "Bash") return matches(rule, tool, subject);
  return mentioned(subject).some((part) => matches(rule, tool, part));
}

function realish(file) {
  // The real path of the deepest part that exists, with the rest appended: a symlink inside
  // the workdir that points out of it is out of it.
  let head = file;
  const rest = [];
  while (!fs.existsSync(head) && path.dirname(head) !== head) {
    rest.unshift(path.basename(head));
    head = path.dirname(head);
  }
  try {
    return path.join(fs.realpathSync(head), ...rest);
  } catch {
    return file;
  }
}

// The subject of a file tool: the path relative to the workdir when inside it, else absolute.
export function fileSubject(file, workdir) {
  const root = realish(path.resolve(workdir));
  const full = realish(path.resolve(workdir, file));
  const inside = full === root || full.startsWith(root + path.sep);
  return { subject: inside ? path.relative(root, full) || "." : full, inside };
}

// What the policy says of one call: {verdict: "allow" | "deny" | "ask", reason?}.
export function decide(config, tool, subject, insideWorkdir) {
  const denied = config.deny.find((rule) => refuses(rule, tool, subject));
  if (denied) return { verdict: "deny", reason: `Fleetwarden's rules deny this (${denied})` };
  const mcp = config.mcp || [];
  if (mcpTool(mcp, tool)) return { verdict: "allow" };
  if (READ_TOOLS.has(tool) || config.mode === "full") return { verdict: "allow" };
  if (config.allow.some((rule) => matches(rule, tool, subject))) {
    // A shell line's rule is Fleetwarden's to settle, every command of it (see the top).
    return { verdict: portable(tool) === "Bash" ? "ask" : "allow" };
  }
  if (config.mode === "read-only") {
    return { verdict: "deny", reason: "this agent is read-only: it may read and search, not change anything" };
  }
  if (config.mode === "edits" && EDIT_TOOLS.has(tool) && insideWorkdir) return { verdict: "allow" };
  return { verdict: "ask" };
}

// Whether tool is a granted server's ("<server>_<tool>", as opencode names them), not one of
// the CLI's own tools (nor its tools over MCP resources, which the door does not see).
function mcpTool(servers, tool) {
  if (BUILT_IN.has(tool) || tool.includes("_mcp_resource")) return false;
  return servers.some((server) => tool.startsWith(`${server}_`) && tool.length > server.length + 1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let lastBeat = { state: "", at: 0 };

// Tell Fleetwarden the agent is alive ("working" or "waiting"); never fails, never blocks long.
export async function beat(config, state) {
  const now = Date.now();
  if (!config.beatUrl || (lastBeat.state === state && now - lastBeat.at < BEAT_EVERY_MS)) return;
  lastBeat = { state, at: now };
  try {
    await fetch(config.beatUrl, {
      method: "POST",
      headers: { [TOKEN_HEADER]: config.token, "Content-Type": "application/json" },
      body: JSON.stringify({ state }),
      signal: AbortSignal.timeout(5000),
    });
  } catch {
    // Fleetwarden may be restarting: the next beat will do.
  }
}

// Ask the operator and wait, through restarts of Fleetwarden, for the answer:
// {decision: "allow" | "deny", message}.
export async function ask(config, request, signal = undefined) {
  if (!config.askUrl) {
    return { decision: "deny", message: "Fleetwarden gave this agent no way to ask its operator" };
  }
  const headers = { [TOKEN_HEADER]: config.token, "Content-Type": "application/json" };
  const body = JSON.stringify(request);
  let id = null;
  let pause = 500;
  for (;;) {
    await beat(config, "waiting");
    let response = null;
    try {
      response = id
        ? await fetch(`${config.askUrl}/${id}`, { headers, signal })
        : await fetch(config.askUrl, { method: "POST", headers, body, signal });
    } catch {
      response = null; // not listening: Fleetwarden restarts; ask again
    }
    if (signal?.aborted) {
      // The turn was interrupted: nobody waits for this answer any more.
      await fetch(config.askUrl, { method: "DELETE", headers, body, signal: AbortSignal.timeout(5000) }).catch(() => {});
      return { decision: "deny", message: "The turn was interrupted before the operator answered" };
    }
    if (response && response.status === 200) {
      const answer = await response.json();
      return { decision: answer.decision === "allow" ? "allow" : "deny", message: String(answer.message || "") };
    }
    if (response && response.status === 202) {
      id = (await response.json()).id;
      pause = 500;
      continue;
    }
    if (response && response.status === 404 && id) {
      id = null; // post the same ask again: it is the same request
    } else if (response && response.status === 404) {
      return { decision: "deny", message: "this Fleetwarden has no ask door: nobody can answer" };
    } else if (response && [400, 403, 409, 413].includes(response.status)) {
      const text = (await response.text()).slice(0, 300);
      return { decision: "deny", message: `Fleetwarden refused to ask (${response.status} ${text})` };
    }
    await sleep(pause);
    pause = Math.min(pause * 2, RETRY_MAX_MS);
  }
}

// One tool call through the policy and, when it says ask, the operator.
// Returns null to let the call run, or the reason it must not.
export async function gate(config, { id, tool, input, file, signal }) {
  await beat(config, "working");
  let subject;
  let inside = false;
  if (file !== undefined && EDIT_TOOLS.has(tool)) {
    ({ subject, inside } = fileSubject(String(file), config.workdir));
  } else if (tool === "apply_patch" && typeof input.patchText === "string") {
    // opencode's patch tool (with OpenAI models): every file it touches must be inside.
    const files = [...input.patchText.matchAll(PATCH_FILE)].map((m) => fileSubject(m[1].trim(), config.workdir));
    subject = files.map((f) => f.subject).join(", ");
    inside = files.length > 0 && files.every((f) => f.inside);
  } else if (portable(tool) === "Bash") {
    subject = String(input.command ?? "");
  } else {
    subject = JSON.stringify(input ?? {}).slice(0, 2000);
  }
  const policy = decide(config, tool, subject, inside);
  if (policy.verdict === "allow") return null;
  if (policy.verdict === "deny") return policy.reason;
  const pattern = portable(tool) === "Bash" || EDIT_TOOLS.has(tool) ? `${portable(tool)}(${subject})` : portable(tool);
  const detail = JSON.stringify(input ?? {}).slice(0, 4000);
  const native = String(id).replace(/[^A-Za-z0-9_.:-]/g, "_").replace(/^[^A-Za-z0-9]/, "x").slice(0, 128);
  const answer = await ask(config, { id: native, tool, subject, detail, pattern }, signal);
  await beat(config, "working");
  return answer.decision === "allow" ? null : answer.message || "The operator denied this";
}

async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  const answer = await ask(settings(), JSON.parse(text));
  process.stdout.write(JSON.stringify(answer) + "\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stdout.write(JSON.stringify({ decision: "deny", message: `Fleetwarden's ask failed: ${error}` }) + "\n");
  });
}
