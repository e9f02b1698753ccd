/** The decoder's one error: bytes that are not a valid frame. */

/** Raised by the decoder for bytes that are not a valid frame. The connection cannot recover. */
export class ProtocolError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}
