/** hopbus over TCP (TCP_NODELAY), the broker's default listener. */
import { hopbusTarget } from './hopbus.js';

export const hopbusTcp = hopbusTarget('tcp', ['TCP_NODELAY on (set by the link)']);
