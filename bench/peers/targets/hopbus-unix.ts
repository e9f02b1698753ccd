/** hopbus over a Unix-domain socket in the bench's temporary folder. */
import path from 'node:path';
import { hopbusTarget, registerBrokerListener } from './hopbus.js';

const sock = (tmpDir: string) => path.join(tmpDir, 'hopbus.sock');

registerBrokerListener('unix', {
  args: (tmpDir) => ['--unix', sock(tmpDir)],
  endpoint: (tmpDir) => `unix://${sock(tmpDir)}`,
});

export const hopbusUnix = hopbusTarget('unix');
