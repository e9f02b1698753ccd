/** The decoder's one error: bytes that are not a valid frame. */
import { HopbusError } from '../../runtime/errors.js';
import type { ErrCodeName } from './constants.js';

/**
 * Raised by the decoder for bytes that are not a valid frame. The connection cannot
 * recover. `code` is the ERR name the broker answers with (ErrCode[code] on the wire).
 */
export class ProtocolError extends HopbusError {
  declare readonly code: ErrCodeName;
  /**
   * The four bytes the reader took for a frame's length prefix (little-endian), when a
   * prefix was what it refused: a peer that is not a hopbus peer shows itself there
   * ("HTTP" from a web server, "INFO" from a NATS server).
   */
  prefix?: number;
  constructor(code: ErrCodeName, message: string) {
    super(code, message);
  }
}
