// Writes one JSON Schema per type exported by entry.ts into the directory given as the
// first argument (<Type>.json). Run by tests/slack_data.sh with NODE_PATH pointing at the
// pinned packages. Each type is generated on its own: all at once fails on types that
// @slack/web-api declares twice ("SlackFile has multiple definitions").
'use strict';
const fs = require('fs');
const path = require('path');
const tsj = require('ts-json-schema-generator');

const out = process.argv[2];
const here = process.argv[3];
const entry = path.join(here, 'entry.ts');
const exported = fs.readFileSync(entry, 'utf8').split('export type {')[1].split('}')[0];
const types = exported.split(',').map((name) => name.trim()).filter(Boolean);
fs.mkdirSync(out, { recursive: true });
for (const type of types) {
  const schema = tsj
    .createGenerator({
      path: entry,
      tsconfig: path.join(here, 'tsconfig.json'),
      type,
      skipTypeCheck: true,
      expose: 'export',
      topRef: true,
      additionalProperties: false,
    })
    .createSchema(type);
  fs.writeFileSync(path.join(out, `${type}.json`), JSON.stringify(schema, null, 1) + '\n');
  process.stdout.write(`${type} `);
}
process.stdout.write('\n');
