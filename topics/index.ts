/**
 * topics/: the subject grammar, the subscription tree and the multicast channel map.
 * Pure: no I/O, no Node APIs; imports only runtime/errors.ts (README.md in this folder says more).
 */
export {
  MAX_SUBJECT_BYTES,
  MAX_SUBJECT_TOKENS,
  SubjectError,
  isValidPattern,
  isValidSubject,
  subjectByteLength,
  validatePattern,
  validateSubject,
} from './subject.js';
export { SubjectTree, type SubjectTreeOptions, type SubjectTreeStats } from './tree.js';
