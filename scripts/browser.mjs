// Builds the browser client: dist/client/browser.js (from tsc) -> dist/browser/hopbus.js,
// one IIFE exposing the global `hopbus`. Node-only modules are kept out: the TCP/Unix
// link (net, fs) is replaced by a stub, and the build fails if net, fs, tls, pino or the
// `ws` package is reached. Node globals the codec and client use are provided by small
// shims (scripts/browser/): Buffer from the `buffer` package, EventEmitter from
// `events`, randomBytes from crypto.getRandomValues, process.hrtime from
// performance.now(), and timers whose handles have unref().
// Run after tsc: `npm run build` does both.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shims = path.join(root, 'scripts', 'browser');

const browserOnly = {
  name: 'hopbus-browser',
  setup(build) {
    // transports/dial.ts registers the TCP/Unix dialer from stream.js: not in a browser.
    build.onResolve({ filter: /^\.\/stream\.js$/ }, (args) =>
      args.importer.endsWith(path.join('transports', 'dial.js')) ? { path: path.join(shims, 'no-stream.js') } : undefined,
    );
    // ... and the TLS dialer from tls.js.
    build.onResolve({ filter: /^\.\/tls\.js$/ }, (args) =>
      args.importer.endsWith(path.join('transports', 'dial.js')) ? { path: path.join(shims, 'no-tls.js') } : undefined,
    );
    build.onResolve({ filter: /^node:crypto$|^crypto$/ }, () => ({ path: path.join(shims, 'crypto.js') }));
    // The shm wait strategies (named in connect options) ask whether they run on the main thread.
    build.onResolve({ filter: /^node:worker_threads$/ }, () => ({ path: path.join(shims, 'worker-threads.js') }));
    // transports/protocol/version.ts reads the version from package.json: only that field
    // goes into the bundle, not the whole file (dependency names and all).
    build.onLoad({ filter: /package\.json$/ }, async (args) => {
      const { version } = JSON.parse(await readFile(args.path, 'utf8'));
      return { contents: JSON.stringify({ version }), loader: 'json' };
    });
    build.onResolve({ filter: /^node:events$/ }, () => build.resolve('events', { kind: 'import-statement', resolveDir: root }));
    build.onResolve({ filter: /^(node:)?(net|fs|tls|dgram|child_process)$|^pino$|^ws$|^uWebSockets\.js$/ }, (args) => ({
      errors: [{ text: `"${args.path}" (imported by ${path.relative(root, args.importer)}) must not reach the browser bundle` }],
    }));
  },
};

const result = await esbuild.build({
  entryPoints: [path.join(root, 'dist', 'client', 'browser.js')],
  outfile: path.join(root, 'dist', 'browser', 'hopbus.js'),
  bundle: true,
  platform: 'browser',
  format: 'iife',
  globalName: 'hopbus',
  target: ['es2022'],
  inject: [path.join(shims, 'globals.js')],
  plugins: [browserOnly],
  sourcemap: true,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
const out = Object.values(result.metafile.outputs).find((o) => o.entryPoint);
console.log(`browser bundle: dist/browser/hopbus.js (${Math.round((out?.bytes ?? 0) / 1024)} KiB)`);
