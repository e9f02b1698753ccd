/**
 * The -ERR texts a NATS client can receive, word for word as nats-server v2 sends them:
 * clients branch on these strings (nats.js lower-cases and matches 'permissions
 * violation', 'authorization violation', 'stale connection', ...), so a different
 * wording is a different behaviour, not a cosmetic change. Each constant names where
 * nats-server writes it (server/parser.go, server/client.go, server/errors.go).
 *
 * Fatal ones close the connection after the -ERR; the others leave it open.
 */

/** parser.go `parseErr:` label: an op the parser does not know, or no CRLF right after a payload. Fatal. */
export const ERR_UNKNOWN_OP = 'Unknown Protocol Operation';

/** errors.go ErrMaxControlLine, sent by parser.go overMaxControlLineLimit (the errCtx's Error() is the bare text). Fatal. */
export const ERR_MAX_CONTROL_LINE = 'maximum control line exceeded';

/** client.go maxPayloadViolation, from processPub/processHeaderPub: checked on the control line, before the payload is read. Fatal. */
export const ERR_MAX_PAYLOAD = 'Maximum Payload Violation';

/** client.go authViolation: an op other than CONNECT while the server awaits authentication, or a CONNECT that fails it. Fatal. */
export const ERR_AUTH_VIOLATION = 'Authorization Violation';

/** client.go authTimeout: no CONNECT within the authorization timeout (the wire says Authentication, not Authorization). Fatal. */
export const ERR_AUTH_TIMEOUT = 'Authentication Timeout';

/** errors.go ErrTooManyConnections, sent in place of INFO when max_connections is reached. Fatal. */
export const ERR_MAX_CONNECTIONS = 'maximum connections exceeded';

/** errors.go ErrTooManySubs, from maxSubsExceeded: the SUB is dropped. Not fatal. */
export const ERR_MAX_SUBSCRIPTIONS = 'maximum subscriptions exceeded';

/** client.go processSubEx when the subscription does not go into the sublist. Not fatal. */
export const ERR_INVALID_SUBJECT = 'Invalid Subject';

/** client.go processPub/processHeaderPub with `pedantic` and a subject that is not a valid literal. Not fatal: the message is still routed. */
export const ERR_INVALID_PUBLISH_SUBJECT = 'Invalid Publish Subject';

/** client.go, the ping timer: the client did not answer PINGs. Fatal. */
export const ERR_STALE_CONNECTION = 'Stale Connection';

/** client.go, slow consumer past the write deadline or pending limit (sent when it can still be written). Fatal. */
export const ERR_SLOW_CONSUMER = 'Slow Consumer';

/** errors.go ErrBadClientProtocol, from processConnect: CONNECT `protocol` other than 0 or 1. Fatal. */
export const ERR_BAD_CLIENT_PROTOCOL = 'invalid client protocol';

/** errors.go ErrNoRespondersRequiresHeaders, from processConnect: `no_responders` without `headers`. Fatal. */
export const ERR_NO_RESPONDERS_REQUIRES_HEADERS = 'no responders requires headers support';

/** client.go pubPermissionViolation. Not fatal. */
export function errPublishPermission(subject: string): string {
  return `Permissions Violation for Publish to ${JSON.stringify(subject)}`;
}

/** client.go subPermissionViolation (with ` using queue "q"` for a queue subscription). Not fatal. */
export function errSubscribePermission(subject: string, queue: string): string {
  return queue === ''
    ? `Permissions Violation for Subscription to ${JSON.stringify(subject)}`
    : `Permissions Violation for Subscription to ${JSON.stringify(subject)} using queue ${JSON.stringify(queue)}`;
}
