// The ceiling for createJob: a graphql-yoga server (the same Yoga and Node as jobql's) whose createJob mutation
// has the same request shape as jobql's but touches no database; it answers a made-up QUEUED job. Run as its own
// process by bench/peers/run.ts; sends the parent `{ type: 'listening', url }`.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';

const schema = createSchema({
  typeDefs: /* GraphQL */ `
    scalar JSON
    input CreateJobInput { kind: String!, input: JSON }
    type Job { id: ID!, status: String! }
    type Query { ok: Boolean! }
    type Mutation { createJob(input: CreateJobInput!): Job! }
  `,
  resolvers: {
    Query: { ok: () => true },
    Mutation: { createJob: () => ({ id: randomUUID(), status: 'QUEUED' }) },
  },
});
const yoga = createYoga({ schema, graphiql: false, logging: false, landingPage: false });
const server = createServer(yoga);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: 'listening', url: `http://127.0.0.1:${port}${yoga.graphqlEndpoint}` });
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
