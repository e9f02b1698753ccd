// transports/stream.js in the browser bundle: browsers cannot open TCP or Unix sockets.
export function dialStream(ep) {
  return Promise.reject(new Error(`${ep.url}: a browser can only connect over ws:// (the broker's HTTP port, path /bus)`));
}
