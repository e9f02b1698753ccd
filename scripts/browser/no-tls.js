// transports/tls.js in the browser bundle: browsers cannot open TLS sockets of their own (wss:// works).
export function dialTls(ep) {
  return Promise.reject(new Error(`${ep.url}: a browser can only connect over ws:// or wss:// (the broker's HTTP port, path /bus)`));
}
