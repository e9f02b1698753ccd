/**
 * broker/nats/: the NATS client protocol as a second wire codec of the broker, so that
 * any official NATS client reaches the same router as hopbus clients (issue 13).
 *
 *   parser.ts   client -> server: a byte state machine (nats-server's parser.go in spirit), NatsHandler callbacks
 *   encode.ts   server -> client: INFO, MSG/HMSG (MsgTemplate: formatted once per message for fan-out), PING/PONG, +OK, -ERR
 *   headers.ts  the NATS/1.0 header block <-> hopbus headers (a msgpack map of strings)
 *   errors.ts   the -ERR texts nats-server sends, word for word, and which are fatal
 *
 * It owns the bytes of the protocol only: no sockets, no sessions, no routing. The
 * NATS session that maps NatsHandler onto the router sits beside the hopbus session.
 * Must not import: client/, or any broker module outside broker/nats/ (the broker
 * imports this, not the other way round); transports/ and runtime/ are fine.
 */
export * from './errors.js';
export * from './parser.js';
export * from './encode.js';
export * from './headers.js';
