/**
 * hopbus over UDP multicast on loopback: brokerless, publishers and subscribers meet on
 * the group with no broker in the path (the bench's broker process runs but carries none
 * of this traffic). Sequenced, NAK-repaired, flow-controlled (the default 'min': the
 * slowest subscriber paces the publisher). Messages that never arrived show in the "lost"
 * column, and of them, in brackets, those the transport reported lost beyond repair.
 */
import { connectMulticast, type MulticastBus } from '../../../client/index.js';
import type { BusClient, OnMessage, Target } from '../target.js';
import { hopbusTarget, registerBrokerListener } from './hopbus.js';

registerBrokerListener('udp', { args: () => [], endpoint: () => 'udp://239.255.77.1:47311?iface=127.0.0.1' });

/**
 * 16 MiB may wait for the window (the ring is then 16,384 datagrams, 23 MB): the
 * workloads publish without awaiting, up to 16,384 messages ahead of the slowest subscriber.
 */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

/** A multicast connection, counting what its 'loss' events report lost beyond repair (policy 'gap'). */
class HopbusUdpClient implements BusClient {
  private gaps = 0;
  constructor(private readonly bus: MulticastBus) {
    bus.on('loss', (e) => {
      if (e.policy === 'gap') this.gaps += e.dropped;
    });
    bus.on('error', () => {}); // drops are counted by the workloads
  }

  publish(subject: string, payload: Uint8Array): void {
    this.bus.publish(subject, payload);
  }

  async subscribe(pattern: string, onMessage: OnMessage): Promise<void> {
    this.bus.subscribe(pattern, (msg) => onMessage(msg.data));
    await this.bus.flush();
  }

  unrepaired(): number {
    return this.gaps;
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}

export const hopbusUdp: Target = {
  ...hopbusTarget('udp', [
    "group 239.255.77.1:47311 on 127.0.0.1, default channel map, datagrams packed when busy up to datagramBytes 'auto' (16 KiB on loopback)",
    `flow control 'min' (the default), maxHeldBytes ${MAX_HELD_BYTES / 1024 / 1024} MiB`,
  ]),
  connect: async (ep, name) => new HopbusUdpClient(await connectMulticast(String(ep.url), { name, maxHeldBytes: MAX_HELD_BYTES })),
};
