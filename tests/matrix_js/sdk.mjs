// matrix-js-sdk, loaded from the node_modules directory FLEETWARDEN_MATRIX_JS_MODULES names
// (tests/matrix_js.sh installs it), after every console method is sent to stderr: stdout
// carries nothing but protocol lines. FLEETWARDEN_MATRIX_JS_LOG: the js-sdk's log level.

import { createRequire } from "node:module";
import { join as pathJoin } from "node:path";
import { format } from "node:util";
import { pathToFileURL } from "node:url";

for (const level of ["log", "info", "debug", "trace", "warn", "error"]) {
  console[level] = (...args) => process.stderr.write(`${level}: ${format(...args)}\n`);
}

const modules = process.env.FLEETWARDEN_MATRIX_JS_MODULES;
if (!modules) {
  process.stderr.write("FLEETWARDEN_MATRIX_JS_MODULES must name the node_modules directory\n");
  process.exit(2);
}
const resolve = createRequire(pathJoin(modules, "resolver.cjs")).resolve;
const load = (name) => import(pathToFileURL(resolve(name)).href);

export const sdk = await load("matrix-js-sdk");
export const cryptoApi = await load("matrix-js-sdk/lib/crypto-api/index.js");
const { logger } = await load("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.FLEETWARDEN_MATRIX_JS_LOG || "warn", false);
