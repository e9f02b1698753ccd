/**
 * transports/protocol/: the hopbus wire protocol, and the one module everyone imports
 * it from. It owns the frame layouts and constants (constants.ts), the encoders
 * (encode.ts), validation and the decoder view (decode.ts), the decoder's error
 * (errors.ts) and the versions (version.ts). It knows no transport: links, the reader
 * and both codecs (broker, client) sit on top of it.
 * Must not import: anything outside transports/protocol/ and runtime/.
 */
export * from './constants.js';
export * from './encode.js';
export * from './decode.js';
export * from './errors.js';
export * from './version.js';
