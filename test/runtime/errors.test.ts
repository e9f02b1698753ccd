import { describe, expect, it } from 'vitest';
import * as client from '../../client/index.js';
import * as broker from '../../broker/index.js';
import { ERR_NAMES, ErrCode } from '../../transports/protocol/index.js';
import { FrameReader } from '../../transports/reader.js';
import { toEndpoint } from '../../transports/dial.js';
import { ringCapacity } from '../../transports/shm/layout.js';
import { HybridWait, waitStrategy } from '../../transports/shm/wait.js';
import { Ring } from '../../runtime/ring.js';
import { ReportError, decodeReport } from '../../broker/report.js';
import { hopRecorders } from '../../metrics/latency.js';

const {
  HopbusError,
  ServerError,
  MaxPayloadError,
  NoRespondersError,
  TimeoutError,
  SlowConsumerError,
  ConnectionError,
  PendingLimitError,
  OptionsError,
  SubjectError,
  UrlError,
  ProtocolError,
  ChannelConfigError,
  MulticastConfigError,
} = client;

describe('one error model', () => {
  it('every error class hopbus exports is a HopbusError with a string code and its own name', () => {
    const errors: [Error, string][] = [
      [new MaxPayloadError(2000, 1024), 'MAX_PAYLOAD'],
      [new NoRespondersError('svc'), 'NO_RESPONDERS'],
      [new TimeoutError('request', 10), 'TIMEOUT'],
      [new SlowConsumerError('behind'), 'SLOW_CONSUMER'],
      [new ConnectionError('closed'), 'CONNECTION'],
      [new PendingLimitError('full'), 'PENDING_LIMIT'],
      [new OptionsError('bad'), 'BAD_OPTIONS'],
      [new SubjectError('bad', 'a..b'), 'BAD_SUBJECT'],
      [new UrlError('bad'), 'BAD_URL'],
      [new ProtocolError('UNKNOWN_OP', 'bad'), 'UNKNOWN_OP'],
      [new ChannelConfigError('bad'), 'BAD_CHANNELS'],
      [new MulticastConfigError('bad'), 'BAD_MULTICAST'],
      [new broker.ConfigError('bad'), 'BAD_CONFIG'],
      [new broker.ListenError('in use'), 'LISTEN'],
      [new ReportError('not a v1 report'), 'BAD_REPORT'],
      [new ServerError(ErrCode.MAX_SUBSCRIPTIONS, 'too many', false, 0), 'MAX_SUBSCRIPTIONS'],
    ];
    for (const [err, code] of errors) {
      expect(err).toBeInstanceOf(HopbusError);
      expect(err).toBeInstanceOf(Error);
      expect((err as InstanceType<typeof HopbusError>).code).toBe(code);
      expect(err.name).toBe(err.constructor.name);
    }
  });

  it('hopbus/broker exports the same classes as hopbus, not copies', () => {
    expect(broker.HopbusError).toBe(HopbusError);
    expect(broker.ProtocolError).toBe(ProtocolError);
    expect(broker.UrlError).toBe(UrlError);
    expect(broker.MulticastConfigError).toBe(MulticastConfigError);
    expect(broker.ConnectionError).toBe(ConnectionError);
    expect(broker.OptionsError).toBe(OptionsError);
  });

  it('what the layers below the client refuse reaches the user as the classes hopbus exports', () => {
    const thrown = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      throw new Error('nothing was thrown');
    };
    const cases: [unknown, abstract new (...args: never[]) => Error, string, RegExp][] = [
      [thrown(() => ringCapacity(0)), OptionsError, 'BAD_OPTIONS', /ring size must be a positive integer/],
      [thrown(() => ringCapacity(2 ** 31)), OptionsError, 'BAD_OPTIONS', /over the limit/],
      [thrown(() => waitStrategy('fast')), OptionsError, 'BAD_OPTIONS', /wait strategy must be 'spin', 'hybrid', 'park'/],
      [thrown(() => new HybridWait({ spinUs: -1 })), OptionsError, 'BAD_OPTIONS', /spinUs/],
      [thrown(() => new Ring(0)), OptionsError, 'BAD_OPTIONS', /at least 1 entry/],
      [thrown(() => toEndpoint(42 as never)), UrlError, 'BAD_URL', /URL string or an endpoint object/],
      [thrown(() => decodeReport(new Uint8Array([0xc0]), hopRecorders())), ReportError, 'BAD_REPORT', /not a v1 report/],
    ];
    for (const [err, cls, code, message] of cases) {
      expect(err).toBeInstanceOf(cls);
      expect((err as InstanceType<typeof HopbusError>).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('a payload over the limit is MAX_PAYLOAD whether the client or the broker refuses it', () => {
    const local = new MaxPayloadError(2000, 1024);
    const remote = new ServerError(ErrCode.MAX_PAYLOAD, 'payload of 2000 bytes exceeds 1024', true, 0);
    expect(remote.code).toBe(local.code);
    expect(remote.serverCode).toBe('MAX_PAYLOAD');
    expect(remote.fatal).toBe(true);
  });

  it('an ERR from the broker keeps SLOW_CONSUMER as its code', () => {
    const err = new ServerError(ErrCode.SLOW_CONSUMER, 'behind', true, 0);
    expect(err.code).toBe('SLOW_CONSUMER');
    expect(err.serverCode).toBe('SLOW_CONSUMER');
  });

  it('an ERR code this release does not know becomes E<number>, in code and serverCode', () => {
    const err = new ServerError(999, 'from a newer broker', false, 7);
    expect(err.code).toBe('E999');
    expect(err.serverCode).toBe('E999');
    expect(err.sid).toBe(7);
  });

  it('every wire code name maps to its number and back', () => {
    for (const [name, n] of Object.entries(ErrCode)) {
      expect(ERR_NAMES[n]).toBe(name);
      expect(new ServerError(n, '', false, 0).code).toBe(name);
    }
  });

  it("the reader's ProtocolError carries the name of the ERR the broker answers with", () => {
    const frame = Buffer.from([6, 0, 0, 0, 0x99, 0]);
    let caught: unknown;
    try {
      new FrameReader(1024).push(frame, { onFrame: () => {} });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    const code = (caught as InstanceType<typeof ProtocolError>).code;
    expect(code).toBe('UNKNOWN_OP');
    expect(ErrCode[code]).toBe(2);
  });
});
