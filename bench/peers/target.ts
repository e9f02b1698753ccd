/**
 * What the peer benchmark needs from a system under test, and nothing more.
 *
 * The workloads (cases.ts) are written once against BusClient; each system (hopbus
 * over one transport, a peer broker, a raw Node floor) is a Target in targets/, a
 * small file that says which server it needs and how its official client is driven.
 * A Server (servers/) is a process the bench starts and stops itself.
 *
 * Subjects in the workloads use hopbus/NATS syntax: tokens separated by '.', '*' for
 * one token, '>' for the rest. Each client maps them to its own (MQTT: '/', '+', '#';
 * Redis: glob patterns through PSUBSCRIBE).
 */

/** Called with each message's payload. The bytes may be reused once it returns. */
export type OnMessage = (payload: Uint8Array) => void;

/** One connection of one system's client, as the workloads use it. */
export interface BusClient {
  /** Sends one message; never awaits. Errors are reported by the client, not thrown per call. */
  publish(subject: string, payload: Uint8Array): void;
  /** Subscribes; resolves once the server has the subscription (messages published after that arrive). */
  subscribe(pattern: string, onMessage: OnMessage): Promise<void>;
  close(): Promise<void>;
  /**
   * Messages this connection's transport reported lost beyond repair so far (a multicast
   * gap the NAK protocol could not close); absent where a transport has no such loss.
   */
  unrepaired?(): number;
}

/** Where a target's clients connect: JSON, so an echo child process can be handed it. */
export type Endpoint = Record<string, string | number>;

export type TargetKind = 'hopbus' | 'peer' | 'floor';

export interface Target {
  /** Shown in tables and plots, and accepted by --only: 'hopbus-tcp', 'nats', ... */
  readonly name: string;
  readonly kind: TargetKind;
  /** The server it runs against (a key of the server registry). */
  readonly server: string;
  /** Client library and version, filled in by the registry: '@nats-io/transport-node 3.4.0'. */
  readonly client: string;
  /** The client settings used, one line each, as written in the results. */
  readonly settings: readonly string[];
  /** Whether subscriptions may use wildcards (the fan-out case needs them). */
  readonly wildcards: boolean;
  /** Whether one connection may both publish and subscribe (Redis: no, a subscribed connection only listens). */
  readonly duplex: boolean;
  /** The case groups it can run, when not all (a floor without subjects cannot fan out). */
  readonly cases?: readonly string[];
  /** Picks this target's address out of its running server's endpoints. */
  endpoint(server: RunningServer): Endpoint;
  /** Opens one client connection. `name` is for the server's logs. */
  connect(endpoint: Endpoint, name: string): Promise<BusClient>;
  /**
   * Starts the ping-pong's far side, when it cannot be another process (a transport
   * between threads of one process): it answers every bench.ping with a bench.pong.
   * Without it the far side is `node dist/bench/peers/echo.js` in a process of its own.
   */
  echo?(endpoint: Endpoint): Promise<{ stop(): Promise<void> }>;
  /** Where the ping-pong's far side runs, for the tables: 'another process' when unset. */
  readonly echoWhere?: string;
}

export interface RunningServer {
  /** Addresses by transport or purpose, e.g. { tcp: 'tcp://127.0.0.1:4222', unix: '/tmp/x.sock' }. */
  readonly endpoints: Endpoint;
  /** What the server says its version is. */
  readonly version: string;
  /** The command line it was started with, for the results. */
  readonly command: string;
  stop(): Promise<void>;
}

/** Thrown by Server.start when the server cannot run here; the bench reports its targets as skipped. */
export class SkipError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SkipError';
  }
}

export interface Server {
  readonly name: string;
  /** Debian packages that provide it (installed with apt-get when missing); none for the Node ones. */
  readonly packages: readonly string[];
  /** Starts it on loopback on free ports, files under `tmpDir`. Throws SkipError when it cannot run. */
  start(tmpDir: string): Promise<RunningServer>;
}
