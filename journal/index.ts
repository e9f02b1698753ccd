/**
 * journal/: the record-and-replay store of hopbus: an append-only log of checksummed
 * records in segment files with an index beside each (docs/JOURNAL.md).
 *
 *   record.ts   the record layout (drawn there), encodeRecord, RecordView
 *   segment.ts  segment and index files (drawn there), SegmentCursor, recovery of a segment
 *   writer.ts   JournalWriter: batched appends, fsync policies, the bound, retention, recovery at open
 *   reader.ts   openJournal(): read by seq or time and subjects, as an async iterator or a callback loop
 *   filter.ts   SubjectFilter: the subject patterns a journal records or a read returns
 *   crc32.ts    the records' checksum
 *   errors.ts   JournalError
 *
 * Sits below broker/ and client/ (the broker records into it; the CLI and in-process
 * readers read from it): imports runtime/, topics/ and transports/ (the protocol's
 * constants, the subject intern cache), never broker/ or client/.
 */
export { MAX_RECORD_BYTES, RECORD_HEADER, RecordView, encodeRecord, recordSize, recordSource, type RecordSource } from './record.js';
export { segmentName, type SegmentFile } from './segment.js';
export {
  JOURNAL_DEFAULTS,
  JournalWriter,
  nodeJournalFs,
  type FsyncPolicy,
  type JournalEvent,
  type JournalFs,
  type JournalWriterOptions,
  type JournalWriterStats,
} from './writer.js';
export { Journal, openJournal, type CorruptEvent, type JournalPosition, type OpenJournalOptions, type ReadOptions } from './reader.js';
export { SubjectFilter } from './filter.js';
export { JournalError } from './errors.js';
export { crc32 } from './crc32.js';
