/**
 * hopbus over UDP multicast on loopback: brokerless, publishers and subscribers meet on
 * the group with no broker in the path (the bench's broker process runs but carries none
 * of this traffic). Sequenced, NAK-repaired; losses would show in the "lost" column.
 */
import { hopbusTarget, registerBrokerListener } from './hopbus.js';

registerBrokerListener('udp', { args: () => [], endpoint: () => 'udp://239.255.77.1:47311?iface=127.0.0.1' });

export const hopbusUdp = hopbusTarget('udp', ['group 239.255.77.1:47311 on 127.0.0.1, default channel map, datagrams packed up to 1,400 bytes when busy']);
