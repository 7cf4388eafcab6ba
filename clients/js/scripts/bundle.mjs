// Bundles the built package (dist/index.js, tsc's output: what npm ships) into one ES module,
// local/rnd-local/demo/realtime-client.js, which rnd-local embeds and serves at
// /sdk/realtime-client.js for its demo page: the page runs the SDK the apps run. The bundle is
// committed so that building rnd-local needs no Node; `--check` fails instead of writing when
// the committed file is not what the current source bundles to.
//
//   node scripts/bundle.mjs [--check]      (npm run bundle / npm run check-bundle; both build)
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const ENTRY = here('../dist/index.js');
const OUTPUT = here('../../../local/rnd-local/demo/realtime-client.js');
const { version } = JSON.parse(await readFile(here('../package.json'), 'utf8'));

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  format: 'esm',
  // What the demo page's browsers run (and tsc's target): nothing is down-levelled.
  target: 'es2022',
  platform: 'neutral',
  minify: false,
  legalComments: 'none',
  charset: 'utf8',
  write: false,
  banner: {
    js: `// @rnd/realtime-client ${version}, bundled from clients/js by scripts/bundle.mjs (npm run bundle): do not edit.`,
  },
});
const bundle = result.outputFiles[0].text;

if (process.argv.includes('--check')) {
  const current = await readFile(OUTPUT, 'utf8').catch(() => '');
  if (current !== bundle) {
    console.error(
      'local/rnd-local/demo/realtime-client.js is not what clients/js bundles to: run `npm run bundle` in clients/js and commit it',
    );
    process.exit(1);
  }
  console.log('local/rnd-local/demo/realtime-client.js is current');
} else {
  await writeFile(OUTPUT, bundle);
  console.log(`wrote local/rnd-local/demo/realtime-client.js (${bundle.length} bytes)`);
}
