/** The CONNECT steps as pure functions: what is refused, with which code, and what a valid CONNECT yields. */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../broker/config.js';
import { directRefusal, isRefusal, readConnect, serverInfo, type Hello } from '../../broker/handshake.js';
import { encodeHandshake } from '../../transports/protocol/index.js';

const packr = new Packr({ useRecords: false });
const CONNECT = 0x01;
const ERR = { PROTOCOL: 1, VERSION: 8, NOT_CONNECTED: 9, BAD_OPTION: 15 };

function connect(opts: unknown, version = 1): Buffer {
  const f = encodeHandshake(CONNECT, packr.pack(opts));
  f.writeUInt16LE(version, 6);
  return f;
}
const read = (f: Buffer, publishRate = DEFAULTS.publishRate) => readConnect(f, 0, f.length, { publishRate });

describe('readConnect', () => {
  it("a valid CONNECT gives the client's name, language and choices, names clipped to their bounds", () => {
    const h = read(connect({ name: 'n'.repeat(300), lang: 'ts', verbose: true, direct: true, version: '1', timestamps: true }));
    expect(isRefusal(h)).toBe(false);
    expect(h).toEqual({ name: 'n'.repeat(256), lang: 'ts', verbose: true, direct: true, publishRate: undefined, resume: null });
  });

  it('refuses another first frame, another protocol version, bad msgpack, a non-map, unknown keys and wrong types', () => {
    const ping = Buffer.from([8, 0, 0, 0, 0x30, 0, 0, 0]);
    const bad = connect({});
    const cases: Array<[Buffer, number, RegExp]> = [
      [ping, ERR.NOT_CONNECTED, /expected CONNECT .* got PING/],
      [connect({}, 2), ERR.VERSION, /version 2 is not supported/],
      [Buffer.concat([bad.subarray(0, 8), Buffer.from([0x82, 0xa1])]), ERR.PROTOCOL, /not valid msgpack/],
      [connect([1, 2]), ERR.PROTOCOL, /must be a msgpack map/],
      [connect({ colour: 'red' }), ERR.PROTOCOL, /unknown CONNECT option "colour"/],
      [connect({ verbose: 'yes' }), ERR.PROTOCOL, /"verbose" must be a boolean/],
      [connect({ publishRate: { msgsPerSec: -1 } }), ERR.BAD_OPTION, /publishRate/],
      [connect({ resume: { serverId: 'x' } }), ERR.BAD_OPTION, /"resume" must be \{ serverId: string, clientId: integer \}/],
      [connect({ resume: { serverId: 'x', clientId: 1.5 } }), ERR.BAD_OPTION, /"resume"/],
      [connect({ resume: { serverId: 'x', clientId: 1, more: 1 } }), ERR.BAD_OPTION, /"resume"/],
    ];
    for (const [frame, code, text] of cases) {
      const r = read(frame);
      expect(isRefusal(r) && [r.code, text.test(r.text)]).toEqual([code, true]);
    }
  });

  it('a reconnecting client names its previous connection (resume), read as given', () => {
    const h = read(connect({ resume: { serverId: 'abc', clientId: 7 } })) as Hello;
    expect(h.resume).toEqual({ serverId: 'abc', clientId: 7 });
  });

  it("a publish rate the client asks for can only lower the broker's, field by field", () => {
    const h = read(connect({ publishRate: { msgsPerSec: 500, bytesPerSec: 10_000_000 } }), { msgsPerSec: 1000, bytesPerSec: 1000, action: 'refuse' }) as Hello;
    // A burst left out is one second of its own rate: the stricter one's, not the other's larger burst.
    expect(h.publishRate).toEqual({ msgsPerSec: 500, bytesPerSec: 1000, burstMsgs: 500, burstBytes: 1000, action: 'refuse' });
  });
});

describe('directRefusal and INFO', () => {
  const hello: Hello = { name: '', lang: '', verbose: false, direct: true, publishRate: undefined, resume: null };
  it('verbose and an own rate limit rule direct delivery out before the plane is asked', () => {
    const never = () => {
      throw new Error('the plane is not asked');
    };
    expect(directRefusal({ ...hello, verbose: true }, never)).toMatch(/verbose/);
    expect(directRefusal({ ...hello, publishRate: { msgsPerSec: 1 } }, never)).toMatch(/rate limit/);
    expect(directRefusal(hello, () => null)).toBe(null);
    expect(directRefusal(hello, () => 'not shm')).toBe('not shm');
  });

  it('INFO says direct only when granted, and no report interval without the latency service', () => {
    const info = serverInfo({ ...DEFAULTS, latency: false }, 'sid', 7);
    expect(info).toMatchObject({ serverId: 'sid', clientId: 7, proto: 1, reportIntervalMs: 0 });
    expect('direct' in info).toBe(false);
    expect(serverInfo(DEFAULTS, 'sid', 7, true).direct).toBe(true);
  });
});
