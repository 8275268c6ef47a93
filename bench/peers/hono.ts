// Hono on Bun peer for bench/compare: POST /conf.echo with a hand-written
// check of the same rules as donkey's conf.echo.
//   bun hono.ts PORT
import { Hono } from 'hono';

type Echo = { name: string; n: number; tags: string[] };

function check(b: unknown): Echo | null {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return null;
  const o = b as Record<string, unknown>;
  for (const k in o) if (k !== 'name' && k !== 'n' && k !== 'tags') return null;
  const name = o.name;
  if (typeof name !== 'string') return null;
  const chars = [...name].length;
  if (chars < 1 || chars > 100) return null;
  let n = 0;
  if (o.n !== undefined) {
    if (typeof o.n !== 'number' || !Number.isInteger(o.n) || o.n < 0) return null;
    n = o.n;
  }
  let tags: string[] = [];
  if (o.tags !== undefined) {
    if (!Array.isArray(o.tags) || o.tags.length > 5) return null;
    for (const t of o.tags) if (typeof t !== 'string') return null;
    tags = o.tags as string[];
  }
  return { name, n, tags };
}

const app = new Hono();
app.post('/conf.echo', async (c) => {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return c.json({ error: 'BAD_REQUEST', message: 'Invalid JSON' }, 400);
  }
  const v = check(body);
  if (v === null) return c.json({ error: 'BAD_REQUEST', message: 'Validation Failed' }, 400);
  return c.json({ message: 'hello ' + v.name, n: v.n, tags: v.tags });
});

Bun.serve({ port: Number(process.argv[2] || 3003), hostname: '127.0.0.1', fetch: app.fetch });
