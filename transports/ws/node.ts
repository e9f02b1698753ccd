/**
 * Makes ws:// addresses dialable from Node, with the `ws` package (Node 20 has no
 * WebSocket client of its own by default). Imported by the client SDK's entry point.
 */
import WebSocket from 'ws';
import { registerDialer } from '../dial.js';
import { dialWebSocket, type WebSocketLike } from './client.js';

registerDialer('ws', (ep, o) =>
  dialWebSocket((url) => new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 }) as unknown as WebSocketLike, ep, o.maxFrame, o.timeoutMs),
);
