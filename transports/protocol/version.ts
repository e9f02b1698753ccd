/**
 * The versions hopbus reports: the package's (read once from package.json, so it is
 * written in one place) and the wire protocol's (docs/PROTOCOL.md, CONNECT byte 6).
 */
import pkg from '../../package.json' with { type: 'json' };

/** The hopbus release, as in package.json: sent in CONNECT and INFO, shown by /varz and /metrics. */
export const VERSION: string = pkg.version;
