/**
 * broker/nats/: the NATS client protocol as a second wire codec of the broker, so that
 * any official NATS client reaches the same router as hopbus clients (docs/NATS.md).
 *
 *   parser.ts   client -> server: a byte state machine (nats-server's parser.go in spirit), NatsHandler callbacks
 *   encode.ts   server -> client: INFO, MSG/HMSG (MsgTemplate: formatted once per message for fan-out), PING/PONG, +OK, -ERR
 *   headers.ts  the NATS/1.0 header block <-> hopbus headers (a msgpack map of strings)
 *   errors.ts   the -ERR texts nats-server sends, word for word, and which are fatal
 *
 *   session.ts  a NATS connection on the router: NatsHandler -> Router.publish, Subscriber -> MSG/HMSG (not exported here)
 *   listener.ts the TCP listener whose links hand the session raw chunks (not exported here)
 *
 * The four codec files own the bytes of the protocol only: no sockets, no sessions, no
 * routing, and they import no broker module outside broker/nats/ (transports/ and
 * runtime/ are fine). session.ts and listener.ts are the wiring: they import the
 * router's seam (subscription.ts, host.ts, policy.ts, gate.ts) and are imported by
 * broker.ts alone. Nothing here imports client/.
 */
export * from './errors.js';
export * from './parser.js';
export * from './encode.js';
export * from './headers.js';
