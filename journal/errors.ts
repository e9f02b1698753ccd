/**
 * journal/errors.ts: the journal's error. Code JOURNAL for a journal directory that
 * cannot be used (unreadable, not a journal, a file that failed to open or write),
 * BAD_OPTIONS for options that make no sense. I/O failures while recording are not
 * thrown at the caller: the writer reports them as events (journal/writer.ts).
 */
import { HopbusError } from '../runtime/errors.js';

export class JournalError extends HopbusError {
  constructor(code: 'JOURNAL' | 'BAD_OPTIONS', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
