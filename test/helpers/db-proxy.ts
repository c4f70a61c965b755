import net from 'node:net';

export type DatabaseProxy = {
  /** The database URL rewritten to go through the proxy. */
  url: string;
  /** Stops forwarding without closing anything: to the server process, a hung database. New connections are accepted and held. */
  pause: () => void;
  /** Destroys every connection and refuses new ones: a database that is down. */
  cut: () => Promise<void>;
  /** Forwards again (after pause: what was held flows on; after cut: new connections are accepted). */
  resume: () => Promise<void>;
  close: () => Promise<void>;
};

/**
 * A TCP proxy between a server process and PostgreSQL that a test can pause (a hung database), cut (a database
 * that is down) and resume. It listens on a port of its own, so the server under test reaches the database
 * only through it while the test itself talks to the database directly.
 */
export async function startDatabaseProxy(databaseUrl: string): Promise<DatabaseProxy> {
  const target = new URL(databaseUrl);
  // Bytes read while paused are held here, per direction, and written on resume.
  type Pair = { client: net.Socket; upstream: net.Socket; held: Array<[net.Socket, Buffer]> };
  const pairs = new Set<Pair>();
  let paused = false;
  let port = 0;

  const onConnection = (client: net.Socket) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const pair: Pair = { client, upstream, held: [] };
    pairs.add(pair);
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      if (paused) pair.held.push([to, chunk]);
      else to.write(chunk);
    };
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
  };

  let server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;

  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const destroyAll = () => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    pause: () => {
      paused = true;
    },
    cut: async () => {
      paused = false;
      // server.close() waits for open connections to end: destroy them first.
      const closed = server.listening ? stopListening() : Promise.resolve();
      destroyAll();
      await closed;
    },
    resume: async () => {
      paused = false;
      for (const pair of pairs) for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
      if (!server.listening) {
        server = net.createServer(onConnection);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', resolve);
        });
      }
    },
    close: async () => {
      const closed = server.listening ? stopListening() : Promise.resolve();
      destroyAll();
      await closed;
    },
  };
}
