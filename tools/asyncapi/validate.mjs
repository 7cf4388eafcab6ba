// Validates an AsyncAPI document with the AsyncAPI parser (@asyncapi/parser, pinned in
// package.json): the document must parse and have no diagnostic of severity error or warning.
// Usage: node tools/asyncapi/validate.mjs docs/asyncapi.yaml
import { readFile } from 'node:fs/promises';
import { Parser, fromFile } from '@asyncapi/parser';

const [path] = process.argv.slice(2);
if (!path) {
  console.error('usage: node validate.mjs FILE');
  process.exit(2);
}

// The parser's DiagnosticSeverity: 0 error, 1 warning, 2 information, 3 hint.
const SEVERITY = ['error', 'warning', 'information', 'hint'];

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
let failed = !document;
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join('.') : '(document)';
  const line = d.range ? `:${d.range.start.line + 1}` : '';
  console.error(`${path}${line}: ${SEVERITY[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${where}`);
  if (d.severity <= 1) failed = true;
}
if (failed) {
  console.error(`${path}: invalid AsyncAPI document`);
  process.exit(1);
}
const text = await readFile(path, 'utf8');
console.log(
  `${path}: valid AsyncAPI ${document.version()} (${document.operations().length} operations, ` +
    `${document.allMessages().length} messages, ${text.length} bytes)`,
);
