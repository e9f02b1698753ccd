import { describe, expect, it } from 'vitest';
import * as client from '../../client/index.js';
import * as broker from '../../broker/index.js';
import { ERR_NAMES, ErrCode } from '../../transports/protocol/index.js';
import { FrameReader } from '../../transports/reader.js';

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
