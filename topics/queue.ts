/** Longest queue group name, in UTF-16 code units. */
export const MAX_QUEUE_LENGTH = 256;

/**
 * A queue group name is a single subject token: non-empty, no dots, no whitespace or
 * control characters, no wildcards. Returns null when valid, else the reason.
 */
export function queueNameProblem(q: string): string | null {
  if (typeof q !== 'string' || q.length === 0) return 'queue group name is empty';
  if (q.length > MAX_QUEUE_LENGTH) return `queue group name is ${q.length} characters, over the limit of ${MAX_QUEUE_LENGTH}`;
  for (let i = 0; i < q.length; i++) {
    const c = q.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || (c >= 0x80 && /\s/.test(q[i]!))) return `queue group name "${q}" contains whitespace or a control character at index ${i}`;
    if (c === 0x2e) return `queue group name "${q}" contains "." at index ${i}: it must be a single token`;
    if (c === 0x2a || c === 0x3e) return `queue group name "${q}" contains a wildcard at index ${i}`;
  }
  return null;
}
