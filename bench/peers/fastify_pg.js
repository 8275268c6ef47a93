// Fastify 5 + node-postgres peer for bench/realwork: the same routes as
// bench_app's, on the same PostgreSQL.
//   node fastify_pg.js PORT POSTGRES_URL
//   POST /bench.pgsleep {}            SELECT pg_sleep(0.002)
//   POST /bench.items {"offset": 0}   10 rows of the items table
'use strict';
const fastify = require('fastify')({ logger: false });
const { Pool } = require('pg');

// node-postgres' default pool: 10 connections.
const pool = new Pool({ connectionString: process.argv[3], max: 10 });

fastify.post('/bench.pgsleep', async () => {
  await pool.query('SELECT pg_sleep(0.002) AS slept');
  return { ok: true };
});

const itemsSchema = {
  body: {
    type: 'object',
    properties: { offset: { type: 'integer', minimum: 0, maximum: 990, default: 0 } },
    additionalProperties: false,
  },
};

fastify.post('/bench.items', { schema: itemsSchema }, async (req) => {
  const r = await pool.query('SELECT id, name, price FROM items ORDER BY id LIMIT 10 OFFSET $1',
    [req.body.offset]);
  return { items: r.rows };
});

fastify.listen({ port: Number(process.argv[2] || 3003), host: '127.0.0.1' }).catch((e) => {
  console.error(e);
  process.exit(1);
});
