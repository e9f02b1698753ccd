/**
 * A subscriber process the slow-consumer benchmark freezes with SIGSTOP.
 *   node dist/bench/frozen.js <url> <pattern> <policy|default>
 */
import { connect } from '../client/index.js';

const [url, pattern, policy] = process.argv.slice(2);
const bus = await connect(url!, { name: 'frozen', reconnect: false });
bus.on('error', () => {});
bus.subscribe(pattern!, () => {}, policy && policy !== 'default' ? { policy: policy as 'drop-oldest' } : {});
await bus.flush();
console.log('READY');
