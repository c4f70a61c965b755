import { createClient } from 'graphql-ws';
import type pg from 'pg';
import WebSocket from 'ws';
import { percentile } from './http-load.ts';

// Delivery latency of live status: from a job's completion in the database (finished_at, the database clock
// with microseconds) to the moment each subscriber's graphql-ws client receives the COMPLETED event (this
// process's clock; same machine, same clock). The job is created on an API-only server and completed here
// with one UPDATE once every subscriber has its snapshot, so the figure is the change feed alone (trigger,
// NOTIFY, the hub's read, graphql-ws), not the runner. The subscribers run in this process, like a fleet of
// browsers would elsewhere; at 1,000 subscribers this process's own work is part of the figure.

const PER_CONNECTION = 100; // the server's cap of operations per WebSocket connection

export type DeliveryFigures = { subscribers: number; samples: number; p50: number; p99: number; max: number };

export async function measureDelivery(options: {
  graphqlUrl: string;
  db: pg.Client;
  createJob: () => Promise<string>;
  subscribers: number;
  jobs: number;
}): Promise<DeliveryFigures> {
  const wsUrl = options.graphqlUrl.replace(/^http/, 'ws');
  const connections = Array.from({ length: Math.ceil(options.subscribers / PER_CONNECTION) }, () =>
    createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {} }),
  );
  const samples: number[] = [];
  try {
    for (let round = 0; round < options.jobs; round++) {
      const id = await options.createJob();
      const receivedAt: number[] = [];
      let snapshots = 0;
      const streams: Promise<void>[] = [];
      for (let i = 0; i < options.subscribers; i++) {
        const client = connections[Math.floor(i / PER_CONNECTION)];
        if (!client) throw new Error('no connection');
        let first = true;
        streams.push(
          new Promise<void>((resolve, reject) => {
            client.subscribe<{ jobUpdated: { status: string } }>(
              { query: `subscription { jobUpdated(id: "${id}") { status } }` },
              {
                next: (result) => {
                  if (first) {
                    first = false;
                    snapshots++;
                  }
                  if (result.data?.jobUpdated.status === 'COMPLETED') receivedAt.push(Date.now());
                },
                error: (error) => reject(new Error(`subscription failed: ${JSON.stringify(error).slice(0, 300)}`)),
                complete: () => resolve(),
              },
            );
          }),
        );
      }
      for (let waited = 0; snapshots < options.subscribers; waited += 10) {
        if (waited > 30_000) throw new Error(`only ${snapshots} of ${options.subscribers} subscribers got their snapshot`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const { rows } = await options.db.query<{ finished: number }>(
        `UPDATE jobs SET status = 'completed', result = '{}', progress = 1, finished_at = clock_timestamp()
         WHERE id = $1 RETURNING extract(epoch FROM finished_at)::float8 * 1000 AS finished`,
        [id],
      );
      await Promise.all(streams);
      if (receivedAt.length !== options.subscribers) {
        throw new Error(`${receivedAt.length} of ${options.subscribers} subscribers got the completion`);
      }
      const finished = rows[0]?.finished;
      if (finished === undefined) throw new Error('the job has no finished_at');
      for (const at of receivedAt) samples.push(at - finished);
    }
  } finally {
    await Promise.all(connections.map((client) => client.dispose()));
  }
  samples.sort((a, b) => a - b);
  return {
    subscribers: options.subscribers,
    samples: samples.length,
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    max: samples.at(-1) ?? Number.NaN,
  };
}
