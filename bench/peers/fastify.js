// Fastify 5 peer for bench/compare: POST /conf.echo validated by Fastify's
// built-in JSON Schema (Ajv) with the same rules as donkey's conf.echo.
//   node fastify.js PORT
'use strict';
// Fastify's built-in Ajv, told to reject additional properties (its default
// strips them) and not to coerce types, as donkey does.
const fastify = require('fastify')({
  logger: false,
  ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
});

const schema = {
  body: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      n: { type: 'integer', minimum: 0, default: 0 },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 5, default: [] },
    },
    required: ['name'],
    additionalProperties: false,
  },
  response: {
    200: {
      type: 'object',
      properties: {
        message: { type: 'string' },
        n: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['message', 'n', 'tags'],
    },
  },
};

const fastifyOpts = { schema };

fastify.post('/conf.echo', fastifyOpts, async (req) => {
  const b = req.body;
  return { message: 'hello ' + b.name, n: b.n, tags: b.tags };
});

fastify.listen({ port: Number(process.argv[2] || 3002), host: '127.0.0.1' }).catch((e) => {
  console.error(e);
  process.exit(1);
});
