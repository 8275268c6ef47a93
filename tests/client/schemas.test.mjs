// Generated method layout (tests/client/schemas.json) checked with a fake fetch:
// root routes, a route that is also a namespace, quoted names, reserved names.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const dir = process.env.DK_SCHEMAS_DIR;
if (!dir) throw new Error("run through tests/client/run.sh");
const { createApiClient, SSE_CHANNELS } = await import(pathToFileURL(`${dir}/index.js`).href);

function client() {
    const calls = [];
    const api = createApiClient({
        baseUrl: "http://example.com/",
        fetch: async (url, init) => {
            calls.push({ url, method: init.method, body: init.body });
            return new Response(JSON.stringify({ ok: true }), { status: 200 });
        },
    });
    return { api, calls };
}

test("methods map to route names", async () => {
    const { api, calls } = client();
    await api.health();
    await api.users.get({ id: 1 });
    await api.users.get.history({ id: 2 });
    await api.kitchen.sink({ s: "a@b", i: 1 });
    await api.files["download-all"]();
    await api.sse_({ method: "GET" });
    assert.deepEqual(calls.map((c) => [c.url, c.method]), [
        ["http://example.com/health", "POST"],
        ["http://example.com/users.get", "POST"],
        ["http://example.com/users.get.history", "POST"],
        ["http://example.com/kitchen.sink", "POST"],
        ["http://example.com/files.download-all", "GET"],
        ["http://example.com/sse", "GET"],
    ]);
    assert.equal(calls[0].body, "{}");
    assert.equal(calls[1].body, '{"id":1}');
    assert.deepEqual(SSE_CHANNELS, ["news", "sports"]);
    assert.equal(api.sse.defaultRoute, "sse");
});
