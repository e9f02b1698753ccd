/**
 * Reading a multicast configuration: the udp:// URL (channel 0 and ?iface=, ?ttl=),
 * the other channels, and the subject-to-channel rules with channels named by index
 * or by "group:port". Shared by the client (MulticastBus) and the broker's bridge,
 * which must agree on it. Returns plain data; topics/channels.ts builds the map.
 */
import type { ChannelMapConfig } from '../../topics/channels.js';
import { parseUrl } from '../url.js';
import { MulticastConfigError, parseChannel, type ChannelAddr } from './endpoint.js';

export interface ChannelSpec {
  /** More channels, "group:port"; the URL's group:port is channel 0. */
  channels?: string[];
  /** Prefix rules: the channel by index or by "group:port". */
  rules?: Array<{ prefix: string; channel: number | string }>;
  /** Tokens hashed by the fallback (default 2; 0 = the whole subject). */
  hashTokens?: number;
  /** Channels the hash spreads over (default all). */
  fallback?: Array<number | string>;
}

export interface ResolvedChannels {
  addrs: ChannelAddr[];
  map: ChannelMapConfig;
  /** ?iface= and ?ttl= of the URL, when given. */
  iface?: string;
  ttl?: number;
}

export function resolveChannels(url: string, spec: ChannelSpec = {}): ResolvedChannels {
  let ep;
  try {
    ep = parseUrl(url);
  } catch (err) {
    throw new MulticastConfigError((err as Error).message);
  }
  if (ep.transport !== 'udp') throw new MulticastConfigError(`a multicast address is udp://group:port?iface=ADDR, got "${url}"`);
  for (const k of Object.keys(ep.params)) {
    if (k !== 'iface' && k !== 'ttl') throw new MulticastConfigError(`unknown parameter "${k}" in "${url}"; known: iface, ttl`);
  }
  if (spec.channels !== undefined && !Array.isArray(spec.channels)) throw new MulticastConfigError('"channels" must be an array of "group:port" strings');
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) throw new MulticastConfigError('"rules" must be an array of { prefix, channel }');
  const addrs: ChannelAddr[] = [parseChannel(`${ep.host}:${ep.port}`), ...(spec.channels ?? []).map(parseChannel)];
  const index = (c: unknown, what: string): number => {
    if (typeof c === 'number') return c;
    const i = addrs.findIndex((a) => a.key === c);
    if (i < 0)
      throw new MulticastConfigError(`${what} names channel ${JSON.stringify(c)}, which is not in the channel list (${addrs.map((a) => a.key).join(', ')})`);
    return i;
  };
  const map: ChannelMapConfig = {
    count: addrs.length,
    rules: (spec.rules ?? []).map((r, i) => ({ prefix: r?.prefix, channel: index(r?.channel, `rule ${i}`) })),
    ...(spec.hashTokens === undefined ? {} : { hashTokens: spec.hashTokens }),
    ...(spec.fallback === undefined ? {} : { fallback: spec.fallback.map((c) => index(c, 'fallback')) }),
  };
  const ttl = ep.params.ttl === undefined ? undefined : Number(ep.params.ttl);
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 0 && ttl <= 255))
    throw new MulticastConfigError(`ttl must be an integer from 0 to 255, got "${ep.params.ttl}"`);
  return { addrs, map, ...(ep.params.iface === undefined ? {} : { iface: ep.params.iface }), ...(ttl === undefined ? {} : { ttl }) };
}
