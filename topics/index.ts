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
