// Browser stand-in for node:worker_threads, for the shm wait-strategy names the
// client options accept: a page is a main thread. The shm transport itself is not
// registered in the browser bundle.
export const isMainThread = true;
export const threadId = 0;
