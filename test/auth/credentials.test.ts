/**
 * The parts of authentication that need no broker: the $scrypt$ format and its checks,
 * user nkeys made by the nkeys library that nats.js uses, the validation of the
 * `users`/`tokens`/`anonymous` options, the per-address back-off on a FakeClock, and
 * `hopbus passwd` as a child process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { nkeys } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { Authenticator, Secret, hashPassword, newNonce, parseHash, parseUserNkey, verifyNonce } from '../../broker/auth/index.js';
import { AuthBackoff, BASE_MS, FREE_FAILURES, MAX_MS } from '../../broker/auth/backoff.js';
import { ConfigError, resolveOptions } from '../../broker/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { dist } from '../kit/index.js';

const CHEAP = { N: 1024, r: 8, p: 1 };

describe('passwords', () => {
  it('hashes as $scrypt$N=..,r=..,p=..$salt$key with a fresh salt, and verifies only the same password', () => {
    const h = hashPassword('s3cret', CHEAP);
    expect(h).toMatch(/^\$scrypt\$N=1024,r=8,p=1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(hashPassword('s3cret', CHEAP)).not.toBe(h);
    const s = new Secret(h);
    expect(s.hashed).toBe(true);
    expect(s.verify('s3cret')).toBe(true);
    expect(s.verify('s3cret')).toBe(true); // the remembered digest
    expect(s.verify('S3cret')).toBe(false);
    expect(s.verify('')).toBe(false);
  });

  it('takes plain-text secrets too, and says which ones', () => {
    const s = new Secret('plain');
    expect(s.hashed).toBe(false);
    expect(s.verify('plain')).toBe(true);
    expect(s.verify('plain ')).toBe(false);
    const a = new Authenticator({
      users: [
        { user: 'a', password: 'plain' },
        { user: 'b', password: hashPassword('x', CHEAP) },
      ],
      tokens: ['t0'],
    });
    expect(a.plainSecrets).toEqual(['user "a"', 'token #0']);
  });

  it('refuses malformed hashes with a reason', () => {
    expect(parseHash('$scrypt$N=1000,r=8,p=1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5')).toMatch(/power of two/);
    expect(parseHash('$scrypt$nope')).toMatch(/hopbus passwd/);
  });
});

describe('nkeys', () => {
  it('verifies a signature of the nonce made by the nkeys library, and nothing else', () => {
    const kp = nkeys.createUser();
    const pub = kp.getPublicKey();
    const key = parseUserNkey(pub);
    expect(key).not.toBeNull();
    const nonce = newNonce();
    const sig = Buffer.from(kp.sign(new TextEncoder().encode(nonce))).toString('base64url');
    expect(verifyNonce(key!, nonce, sig)).toBe(true);
    expect(verifyNonce(key!, newNonce(), sig)).toBe(false);
    const other = nkeys.createUser();
    expect(verifyNonce(parseUserNkey(other.getPublicKey())!, nonce, sig)).toBe(false);
  });

  it('refuses what is not a user nkey: a seed, an account key, a bad checksum', () => {
    const kp = nkeys.createUser();
    expect(parseUserNkey(new TextDecoder().decode(kp.getSeed()))).toBeNull();
    expect(parseUserNkey(nkeys.createAccount().getPublicKey())).toBeNull();
    const pub = kp.getPublicKey();
    const flipped = pub.slice(0, 10) + (pub[10] === 'A' ? 'B' : 'A') + pub.slice(11);
    expect(parseUserNkey(flipped)).toBeNull();
  });
});

describe('config', () => {
  const bad = (o: object, re: RegExp) => expect(() => resolveOptions(o)).toThrow(re);

  it('accepts users, tokens, nkeys and anonymous, and logs no secret', () => {
    const o = resolveOptions({
      users: [
        {
          user: 'alice',
          password: hashPassword('a', CHEAP),
          permissions: { publish: ['a.>'], subscribe: { allow: ['b.>'], deny: ['b.secret'] } },
          limits: { maxConnections: 2 },
        },
        { nkey: nkeys.createUser().getPublicKey() },
      ],
      tokens: ['tok', { token: 'tok2', name: 'svc', permissions: { allow_responses: { max: 2, expiresMs: 0 } } }],
      anonymous: { permissions: { subscribe: ['public.>'] } },
    });
    expect(JSON.stringify(o)).not.toMatch(/tok2|\$scrypt/);
    expect(o.auth.toJSON()).toEqual({ users: ['alice'], nkeys: 1, tokens: 2, anonymous: 'restricted' });
    expect(o.auth.required).toBe(true);
    expect(resolveOptions({}).auth.required).toBe(false);
  });

  it('takes the example of docs/SECURITY.md as it stands', () => {
    const doc = fs.readFileSync(new URL('../../docs/SECURITY.md', import.meta.url), 'utf8');
    const json = /```json\n([\s\S]*?)```/.exec(doc)![1]!;
    const o = resolveOptions(JSON.parse(json) as object);
    expect(o.auth.toJSON()).toEqual({ users: ['pricer', 'pricing-svc', 'ops'], nkeys: 1, tokens: 2, anonymous: 'restricted' });
  });

  it('refuses unknown keys and wrong kinds, naming them', () => {
    bad({ users: {} }, /"users" must be an array/);
    bad({ users: [{ user: 'a', password: 'x', pasword: 'y' }] }, /users\[0\] has an unknown key "pasword"/);
    bad({ users: [{ user: 'a' }] }, /users\[0\]\.password must be a non-empty string/);
    bad(
      {
        users: [
          { user: 'a', password: 'x' },
          { user: 'a', password: 'y' },
        ],
      },
      /configured twice/,
    );
    bad({ users: [{ nkey: 'UABC' }] }, /users\[0\]\.nkey must be a user nkey/);
    bad({ users: [{ user: 'a', password: 'x', permissions: { publish: ['a..b'] } }] }, /permissions\.publish\[0\] must be a valid subject pattern/);
    bad({ users: [{ user: 'a', password: 'x', permissions: { publish: { allow: [], block: [] } } }] }, /unknown key "block"/);
    bad({ users: [{ user: 'a', password: 'x', limits: { maxConnections: 0 } }] }, /limits\.maxConnections must be a positive integer/);
    bad({ tokens: [''] }, /tokens\[0\] must be a non-empty string/);
    bad({ anonymous: 'yes' }, /"anonymous" must be true, false/);
    expect(() => resolveOptions({ users: [{ user: 'a', password: '$scrypt$x' }] })).toThrow(ConfigError);
  });
});

describe('the per-address back-off', () => {
  it('lets the first failures through, then doubles the wait up to its cap, and forgets on success', () => {
    const clock = new FakeClock();
    const b = new AuthBackoff();
    for (let i = 0; i < FREE_FAILURES - 1; i++) {
      b.failed('10.0.0.1', clock.now());
      expect(b.wait('10.0.0.1', clock.now())).toBe(0);
    }
    b.failed('10.0.0.1', clock.now());
    expect(b.wait('10.0.0.1', clock.now())).toBe(BASE_MS);
    expect(b.wait('10.0.0.2', clock.now())).toBe(0);
    clock.advance(BASE_MS);
    expect(b.wait('10.0.0.1', clock.now())).toBe(0);
    b.failed('10.0.0.1', clock.now());
    expect(b.wait('10.0.0.1', clock.now())).toBe(2 * BASE_MS);
    for (let i = 0; i < 20; i++) b.failed('10.0.0.1', clock.now());
    expect(b.wait('10.0.0.1', clock.now())).toBe(MAX_MS);
    b.succeeded('10.0.0.1');
    expect(b.wait('10.0.0.1', clock.now())).toBe(0);
  });

  it('refuses an attempt during the back-off without checking it, even with the right password', () => {
    const clock = new FakeClock();
    const a = new Authenticator({ users: [{ user: 'u', password: 'right' }] });
    for (let i = 0; i < FREE_FAILURES; i++)
      expect(a.authenticate({ user: 'u', pass: 'wrong' }, '10.1.1.1:5000', 'tcp', null, clock.now())).toHaveProperty('failure');
    const r = a.authenticate({ user: 'u', pass: 'right' }, '10.1.1.1:5001', 'tcp', null, clock.now());
    expect(r).toEqual({ failure: `too many failed attempts from this address; try again in ${BASE_MS} ms`, claimed: 'u' });
    expect(a.authenticate({ user: 'u', pass: 'right' }, '10.1.1.2:5000', 'tcp', null, clock.now())).not.toHaveProperty('failure');
    clock.advance(BASE_MS);
    expect(a.authenticate({ user: 'u', pass: 'right' }, '10.1.1.1:5002', 'tcp', null, clock.now())).not.toHaveProperty('failure');
  });
});

describe('hopbus passwd', () => {
  const passwd = (input: string, args: string[] = []) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [dist('bin/hopbus.js'), 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', (code) => resolve({ code, out, err }));
      p.stdin.end(input);
    });

  it('prints a hash of the line on standard input that the broker verifies', async () => {
    const r = await passwd('correct horse\n', ['--cost', '10']);
    expect(r.code).toBe(0);
    const hash = r.out.trim();
    expect(hash).toMatch(/^\$scrypt\$N=1024,r=8,p=1\$/);
    expect(new Secret(hash).verify('correct horse')).toBe(true);
    expect(new Secret(hash).verify('correct horse\n')).toBe(false);
  });

  it('refuses an empty input with a usage error (exit 2)', async () => {
    const r = await passwd('');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no password on standard input/);
  });
});
