// Injected into the browser bundle (esbuild `inject`): these bindings replace the
// Node globals of the same names wherever the bundled code uses them.
import { Buffer } from 'buffer';

export { Buffer };

// Node timers return handles with unref()/ref(); the client calls unref() on its own.
class Handle {
  constructor(id, clear) {
    this.id = id;
    this.clear = clear;
  }
  unref() {
    return this;
  }
  ref() {
    return this;
  }
  hasRef() {
    return true;
  }
  [Symbol.toPrimitive]() {
    return this.id;
  }
}
const g = globalThis;
const _setTimeout = g.setTimeout.bind(g),
  _clearTimeout = g.clearTimeout.bind(g);
const _setInterval = g.setInterval.bind(g),
  _clearInterval = g.clearInterval.bind(g);
const unwrap = (h) => (h instanceof Handle ? h.id : h);
function setTimeout_(fn, ms, ...args) {
  return new Handle(_setTimeout(fn, ms, ...args));
}
function setInterval_(fn, ms, ...args) {
  return new Handle(_setInterval(fn, ms, ...args));
}
function clearTimeout_(h) {
  _clearTimeout(unwrap(h));
}
function clearInterval_(h) {
  _clearInterval(unwrap(h));
}
function setImmediate_(fn, ...args) {
  return new Handle(_setTimeout(fn, 0, ...args));
}
export {
  setTimeout_ as setTimeout,
  setInterval_ as setInterval,
  clearTimeout_ as clearTimeout,
  clearInterval_ as clearInterval,
  setImmediate_ as setImmediate,
};

// What the client uses of `process`: a monotonic clock and warnings.
export const process = {
  hrtime: { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
  emitWarning: (w) => console.warn(w),
  env: {},
};
