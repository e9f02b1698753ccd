/**
 * journal/errors.ts: the journal's error, code JOURNAL: a journal directory that cannot
 * be used (missing, unreadable, not a directory, being written by another process).
 * Options that make no sense are runtime/errors.ts OptionsError (BAD_OPTIONS), like every
 * option a user passes. I/O failures while recording are not thrown at the caller: the
 * writer reports them as events (journal/writer.ts).
 */
import { HopbusError } from '../runtime/errors.js';

export class JournalError extends HopbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('JOURNAL', message, options);
  }
}
