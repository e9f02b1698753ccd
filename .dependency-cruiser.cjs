/**
 * The layering of hopbus, checked by test/layers.test.ts (`npx depcruise --config
 * .dependency-cruiser.cjs runtime topics transports journal metrics broker client bin bench`).
 *
 *   runtime/     imports nothing of ours
 *   topics/      imports runtime/ only
 *   transports/  imports runtime/ and topics/; never broker/ or client/
 *   journal/     imports runtime/, topics/, transports/; never broker/ or client/ (the broker
 *                records into it, the CLI and in-process readers read it); nothing below imports it
 *   metrics/     never broker/ or client/
 *   broker/, client/  never each other
 *   no cycle anywhere
 *
 * Type-only imports count (tsPreCompilationDeps: true): a type import still ties two
 * modules together, and the one that is type-only today is a value import tomorrow.
 */
const OURS = '^(runtime|topics|transports|journal|metrics|broker|client|bin|bench)/';

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'No import cycles anywhere, type-only imports included.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'runtime-imports-nothing',
      severity: 'error',
      comment: 'runtime/ is the bottom layer: it imports nothing of ours outside itself.',
      from: { path: '^runtime/' },
      to: { path: OURS, pathNot: '^runtime/' },
    },
    {
      name: 'topics-imports-runtime-only',
      severity: 'error',
      comment: 'topics/ (subjects and the routing tree) imports nothing but runtime/.',
      from: { path: '^topics/' },
      to: { path: OURS, pathNot: '^(topics|runtime)/' },
    },
    {
      name: 'below-broker-and-client',
      severity: 'error',
      comment: 'topics/, transports/, runtime/, journal/ and metrics/ sit below the broker and the client, which use them.',
      from: { path: '^(topics|transports|runtime|journal|metrics)/' },
      to: { path: '^(broker|client)/' },
    },
    {
      name: 'journal-above-transports',
      severity: 'error',
      comment: 'journal/ uses runtime/, topics/ and transports/; none of them imports it.',
      from: { path: '^(topics|transports|runtime|metrics)/' },
      to: { path: '^journal/' },
    },
    {
      name: 'broker-not-client',
      severity: 'error',
      comment: 'The broker and the client never import each other.',
      from: { path: '^broker/' },
      to: { path: '^client/' },
    },
    {
      name: 'client-not-broker',
      severity: 'error',
      comment: 'The broker and the client never import each other.',
      from: { path: '^client/' },
      to: { path: '^broker/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
