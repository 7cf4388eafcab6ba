// Writes src/protocol.ts, the protocol's TypeScript types, from the JSON Schemas of
// docs/asyncapi.yaml (which are generated from the Rust protocol types): nothing is typed twice
// by hand. `--check` fails instead when the committed file is not what it would write.
//
//   node scripts/gen-types.mjs [--check]      (npm run gen / npm run check-gen)
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';
import { parse } from 'yaml';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const DOCUMENT = here('../../../docs/asyncapi.yaml');
const OUTPUT = here('../src/protocol.ts');

const document = parse(await readFile(DOCUMENT, 'utf8'));
const schemas = document.components.schemas;

// The schemas refer to each other as #/components/schemas/X; json-schema-to-typescript emits
// every schema under `definitions` and names each type by its title.
const definitions = JSON.parse(
  JSON.stringify(schemas).replaceAll('"#/components/schemas/', '"#/definitions/'),
);
for (const [name, schema] of Object.entries(definitions)) {
  schema.title = name;
}
const root = {
  title: 'Protocol',
  description: 'Every message of the RND Realtime WebSocket API, either way.',
  type: 'object',
  properties: {
    client: { $ref: '#/definitions/ClientMessage' },
    server: { $ref: '#/definitions/ServerMessage' },
  },
  required: ['client', 'server'],
  additionalProperties: false,
  definitions,
};

const banner = `/* Generated from docs/asyncapi.yaml by scripts/gen-types.mjs (npm run gen): do not edit.
   The schemas there are generated from the Rust protocol types (rnd_domain::protocol_schema). */`;
const ts = await compile(root, 'Protocol', {
  bannerComment: banner,
  additionalProperties: false,
  unreachableDefinitions: true,
  declareExternallyReferenced: true,
  format: false,
  strictIndexSignatures: true,
});

if (process.argv.includes('--check')) {
  const current = await readFile(OUTPUT, 'utf8').catch(() => '');
  if (current !== ts) {
    console.error(
      'clients/js/src/protocol.ts is out of date with docs/asyncapi.yaml: run `npm run gen` in clients/js and commit it',
    );
    process.exit(1);
  }
  console.log('clients/js/src/protocol.ts is current');
} else {
  await writeFile(OUTPUT, ts);
  console.log(`wrote ${OUTPUT}`);
}
