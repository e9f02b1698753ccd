/**
 * A process that is not on the bus and only burns CPU: the slow-consumer benchmark's
 * reference for what a neighbour busy on one core costs the healthy subscriber on this
 * machine, beside a thawed consumer catching up (which is busy the same way).
 *   node dist/bench/spin.js <ms>     prints READY; on SIGUSR2 spins for <ms> ms
 */
const ms = Number(process.argv[2]);
process.on('SIGUSR2', () => {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x++;
  console.log(`DONE ${x}`);
});
console.log('READY');
// Kept alive until stopped.
setInterval(() => undefined, 1 << 30);
