/** Makes ws:// addresses dialable in a browser, with its own WebSocket. */
import { registerDialer } from '../dial.js';
import { dialWebSocket, type WebSocketLike } from './client.js';

registerDialer('ws', (ep, o) =>
  dialWebSocket((url) => new (globalThis as unknown as { WebSocket: new (u: string) => WebSocketLike }).WebSocket(url), ep, o.maxFrame, o.timeoutMs),
);
