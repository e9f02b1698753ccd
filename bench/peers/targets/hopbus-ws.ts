/** hopbus over WebSocket on the broker's HTTP port (uWebSockets.js server; the `ws` package as the Node client). */
import { hopbusTarget, registerBrokerListener } from './hopbus.js';

// The port is picked by the broker (--http-port 0); hopbusBroker reads the ws:// URL
// from its ready line.
registerBrokerListener('ws', { args: () => ['--http-port', '0'], endpoint: () => '' });

export const hopbusWs = hopbusTarget('ws', ['binary WebSocket messages carrying the same frames as TCP']);
