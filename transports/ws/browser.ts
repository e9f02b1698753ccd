/** Makes ws:// and wss:// addresses dialable in a browser, with its own WebSocket (wss:// trusts what the browser trusts). */
import { registerDialer } from '../dial.js';
import { dialWebSocket, type WebSocketLike } from './client.js';

registerDialer('ws', (ep, o) =>
  dialWebSocket((url) => new (globalThis as unknown as { WebSocket: new (u: string) => WebSocketLike }).WebSocket(url), ep, o.maxFrame, o.timeoutMs),
);
