/**
 * broker/auth/config.ts: validation of the broker options `users`, `tokens` and
 * `anonymous` (authenticator.ts says what they mean). Like broker/config.ts, an unknown
 * key or a value of the wrong kind is refused with a sentence that names it. A subscribe
 * entry may name a queue group after a space ("orders.> workers", permissions.ts).
 */
import { isValidPattern } from '../../topics/index.js';
import { queueNameProblem } from '../../topics/queue.js';
import { splitSubjectQueue } from './permissions.js';
import { parseUserNkey } from './nkey.js';
import { isHashed, parseHash } from './password.js';
import { rateLimitProblem } from '../ratelimit.js';

const USER_KEYS = new Set(['user', 'password', 'nkey', 'certificate', 'permissions', 'limits']);
const CERT_KEYS = new Set(['subject', 'san']);
const TOKEN_KEYS = new Set(['token', 'name', 'permissions', 'limits']);
const ANON_KEYS = new Set(['permissions', 'limits']);
const PERM_KEYS = new Set(['publish', 'subscribe', 'allow_responses']);
const RULE_KEYS = new Set(['allow', 'deny']);
const LIMIT_KEYS = new Set(['maxConnections', 'maxSubscriptions', 'maxPayload', 'publishRate', 'maxPending']);
const RESPONSE_KEYS = new Set(['max', 'expiresMs']);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function unknownKey(o: Record<string, unknown>, known: Set<string>, where: string): string | null {
  for (const k of Object.keys(o)) if (!known.has(k)) return `${where} has an unknown key "${k}"; known: ${[...known].join(', ')}`;
  return null;
}

function secretProblem(v: unknown, where: string): string | null {
  if (typeof v !== 'string' || v.length === 0) return `${where} must be a non-empty string`;
  if (isHashed(v)) {
    const p = parseHash(v);
    if (typeof p === 'string') return `${where}: ${p}`;
  }
  return null;
}

function patternsProblem(v: unknown, where: string, queues: boolean): string | null {
  if (!Array.isArray(v)) return `${where} must be an array of subject patterns`;
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    const at = `${where}[${i}]`;
    if (typeof e !== 'string') return `${at} must be a subject pattern (a string), got ${JSON.stringify(e)}`;
    if (!queues) {
      if (/\s/.test(e.trim()) && isValidPattern(e.trim().split(/\s+/)[0]!))
        return `${at} ${JSON.stringify(e)} names a queue group: only subscribe rules take one ("orders.> workers")`;
      if (!isValidPattern(e)) return `${at} must be a valid subject pattern, got ${JSON.stringify(e)}`;
      continue;
    }
    const sq = splitSubjectQueue(e);
    if (typeof sq === 'string') return `${at} ${JSON.stringify(e)} ${sq}`;
    const [subject, queue] = sq;
    if (!isValidPattern(subject)) return `${at} must be a valid subject pattern, or one and a queue group ("orders.> workers"), got ${JSON.stringify(e)}`;
    if (queue !== null && queue !== '*' && queue !== '>') {
      const q = queueNameProblem(queue);
      if (q !== null) return `${at} ${JSON.stringify(e)}: ${q} (a queue group name, or * or > for any group)`;
    }
  }
  return null;
}

function rulesProblem(v: unknown, where: string, queues: boolean): string | null {
  if (Array.isArray(v)) return patternsProblem(v, where, queues);
  if (!isObject(v)) return `${where} must be { allow?: [...], deny?: [...] } or an array of allowed patterns`;
  const bad = unknownKey(v, RULE_KEYS, where);
  if (bad) return bad;
  for (const k of ['allow', 'deny'])
    if (v[k] !== undefined) {
      const p = patternsProblem(v[k], `${where}.${k}`, queues);
      if (p) return p;
    }
  return null;
}

function positiveInt(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 1;
}

function permissionsProblem(v: unknown, where: string): string | null {
  if (!isObject(v)) return `${where} must be an object { publish, subscribe, allow_responses }`;
  const bad = unknownKey(v, PERM_KEYS, where);
  if (bad) return bad;
  for (const k of ['publish', 'subscribe'])
    if (v[k] !== undefined) {
      const p = rulesProblem(v[k], `${where}.${k}`, k === 'subscribe');
      if (p) return p;
    }
  const r = v.allow_responses;
  if (r !== undefined && typeof r !== 'boolean') {
    if (!isObject(r)) return `${where}.allow_responses must be true, false or { max, expiresMs }`;
    const b = unknownKey(r, RESPONSE_KEYS, `${where}.allow_responses`);
    if (b) return b;
    if (r.max !== undefined && !positiveInt(r.max)) return `${where}.allow_responses.max must be a positive integer`;
    if (r.expiresMs !== undefined && !(Number.isSafeInteger(r.expiresMs) && (r.expiresMs as number) >= 0))
      return `${where}.allow_responses.expiresMs must be a non-negative integer (0 = no expiry)`;
  }
  return null;
}

function limitsProblem(v: unknown, where: string): string | null {
  if (!isObject(v)) return `${where} must be an object { maxConnections, maxSubscriptions, maxPayload, publishRate, maxPending }`;
  const bad = unknownKey(v, LIMIT_KEYS, where);
  if (bad) return bad;
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue;
    // The shape of the broker option of the same name (broker/ratelimit.ts).
    if (k === 'publishRate') {
      const r = rateLimitProblem(x, `${where}.publishRate`);
      if (r) return r;
      continue;
    }
    if (!positiveInt(x)) return `${where}.${k} must be a positive integer${k === 'maxPending' ? ' (bytes)' : ''}`;
  }
  return null;
}

function rightsProblem(o: Record<string, unknown>, where: string): string | null {
  if (o.permissions !== undefined) {
    const p = permissionsProblem(o.permissions, `${where}.permissions`);
    if (p) return p;
  }
  if (o.limits !== undefined) return limitsProblem(o.limits, `${where}.limits`);
  return null;
}

/** A user's `certificate`: { subject: "CN=alice,O=Desk", san: "email:alice@desk.example" }, at least one of the two. */
function certificateProblem(v: unknown, where: string): string | null {
  if (!isObject(v)) return `${where} must be { subject, san }`;
  const bad = unknownKey(v, CERT_KEYS, where);
  if (bad) return bad;
  if (v.subject === undefined && v.san === undefined) return `${where} needs "subject" (e.g. "CN=alice") or "san" (e.g. "email:alice@desk.example")`;
  if (v.subject !== undefined) {
    if (typeof v.subject !== 'string' || v.subject.trim() === '') return `${where}.subject must be a non-empty string such as "CN=alice,O=Desk"`;
    for (const part of v.subject.split(','))
      if (!/^\s*[A-Za-z][A-Za-z0-9.]*\s*=\s*\S/.test(part))
        return `${where}.subject must be ATTRIBUTE=value pairs separated by commas, such as "CN=alice,O=Desk"; got ${JSON.stringify(v.subject)}`;
  }
  if (v.san !== undefined && (typeof v.san !== 'string' || !/^(DNS|email|URI|IP|IP Address):\S/.test(v.san)))
    return `${where}.san must be a subjectAltName entry such as "email:alice@desk.example", "DNS:alice.desk", "URI:...", "IP:10.0.0.1"; got ${JSON.stringify(v.san)}`;
  return null;
}

/** What is wrong with broker option `key` (users, tokens or anonymous), or null. */
export function authOptionProblem(key: 'users' | 'tokens' | 'anonymous', value: unknown): string | null {
  if (key === 'anonymous') {
    if (value === null || typeof value === 'boolean') return null;
    if (!isObject(value)) return '"anonymous" must be true, false or { permissions, limits }';
    return unknownKey(value, ANON_KEYS, '"anonymous"') ?? rightsProblem(value, 'anonymous');
  }
  if (!Array.isArray(value)) return `"${key}" must be an array`;
  const seen = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const where = `${key}[${i}]`;
    const e: unknown = value[i];
    if (key === 'tokens') {
      if (typeof e === 'string') {
        const s = secretProblem(e, where);
        if (s) return s;
        continue;
      }
      if (!isObject(e)) return `${where} must be a token string or { token, name, permissions, limits }`;
      const bad = unknownKey(e, TOKEN_KEYS, where) ?? secretProblem(e.token, `${where}.token`) ?? rightsProblem(e, where);
      if (bad) return bad;
      if (e.name !== undefined && (typeof e.name !== 'string' || e.name === '')) return `${where}.name must be a non-empty string`;
      continue;
    }
    if (!isObject(e)) return `${where} must be { user, password, permissions, limits }, { user, certificate, ... } or { nkey, permissions, limits }`;
    const bad = unknownKey(e, USER_KEYS, where);
    if (bad) return bad;
    if (e.certificate !== undefined) {
      const c = certificateProblem(e.certificate, `${where}.certificate`);
      if (c) return c;
      if (e.nkey !== undefined) return `${where} has an nkey: it takes no certificate`;
    }
    if (e.nkey !== undefined) {
      if (e.user !== undefined || e.password !== undefined) return `${where} has an nkey: it takes no user or password`;
      if (typeof e.nkey !== 'string' || parseUserNkey(e.nkey) === null)
        return `${where}.nkey must be a user nkey (56 characters starting with U), got ${JSON.stringify(e.nkey)}`;
    } else {
      if (typeof e.user !== 'string' || e.user === '') return `${where}.user must be a non-empty string`;
      // A certificate user needs no password (it may have one too).
      const s = e.certificate !== undefined && e.password === undefined ? null : secretProblem(e.password, `${where}.password`);
      if (s) return s;
    }
    const id = (e.nkey ?? e.user) as string;
    if (seen.has(id)) return `${where}: ${JSON.stringify(id)} is configured twice`;
    seen.add(id);
    const r = rightsProblem(e, where);
    if (r) return r;
  }
  return null;
}
