/**
 * Makes ws:// and wss:// addresses dialable from Node, with the `ws` package (Node 20
 * has no WebSocket client of its own by default). Imported by the client SDK's entry
 * point. wss:// takes the connect option `tls` (ca, cert, key, rejectUnauthorized,
 * servername), as tls:// does.
 */
import WebSocket from 'ws';
import { registerDialer } from '../dial.js';
import type { ClientTlsOptions } from '../tls-options.js';
import { dialWebSocket, type WebSocketLike } from './client.js';

registerDialer('ws', (ep, o) => {
  const t = (o.transportOptions?.tls ?? undefined) as ClientTlsOptions | undefined;
  const secure = ep.url.startsWith('wss:');
  return dialWebSocket(
    (url) =>
      new WebSocket(url, {
        perMessageDeflate: false,
        maxPayload: 0,
        ...(secure && t
          ? { ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: t.rejectUnauthorized ?? true, ...(t.servername ? { servername: t.servername } : {}) }
          : {}),
      }) as unknown as WebSocketLike,
    ep,
    o.maxFrame,
    o.timeoutMs,
  );
});
