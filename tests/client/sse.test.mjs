// Server-sent events through the generated client against conformance's
// conf.sse (raw stream, `channel` query parameters, Last-Event-ID replay) and
// conf.broadcast. A small TCP proxy lets a test cut the stream like a network
// failure would.
import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";

const dir = process.env.DK_CLIENT_DIR;
const baseUrl = process.env.DK_BASE_URL;
if (!dir || !baseUrl) throw new Error("run through tests/client/run.sh");
const { createApiClient } = await import(pathToFileURL(`${dir}/index.js`).href);

const api = createApiClient({ baseUrl });
// Every connection opened here, closed at the end even when a test fails
// (an open stream would keep the test process alive).
const opened = [];
for (const c of [api]) {
    const connect = c.sse.connect.bind(c.sse);
    c.sse.connect = (o) => {
        const conn = connect(o);
        opened.push(conn);
        return conn;
    };
}
after(() => opened.forEach((c) => c.disconnect()));
const channel = (name) => `${name}-${process.pid}-${Math.random().toString(36).slice(2)}`;

async function until(cond, what, ms = 10000) {
    const end = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
    }
}

/** TCP proxy to the server; cut() drops every open connection. */
async function proxy() {
    const { hostname, port } = new URL(baseUrl);
    const pairs = new Set();
    const requests = [];
    const server = net.createServer((down) => {
        const up = net.connect(Number(port), hostname);
        const pair = { down, up };
        pairs.add(pair);
        let head = "";
        down.on("data", (d) => {
            if (head.length < 4096) {
                head += d.toString("latin1");
                if (head.includes("\r\n\r\n")) requests.push(head.split("\r\n\r\n")[0]);
            }
        });
        down.pipe(up);
        up.pipe(down);
        const close = () => {
            down.destroy();
            up.destroy();
            pairs.delete(pair);
        };
        down.on("error", close);
        up.on("error", close);
        down.on("close", close);
        up.on("close", close);
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    return {
        url: `http://127.0.0.1:${server.address().port}`,
        requests,
        cut() {
            for (const p of pairs) {
                p.down.destroy();
                p.up.destroy();
            }
            pairs.clear();
        },
        close() {
            this.cut();
            return new Promise((r) => server.close(r));
        },
    };
}

async function broadcast(ch, event, data) {
    return (await api.conf.broadcast({ channel: ch, event, data })).clients;
}

test("connect, receive a broadcast event (JSON-parsed), disconnect", async () => {
    const ch = channel("basic");
    let connects = 0;
    let disconnects = 0;
    const conn = api.sse.connect({
        channels: [ch],
        onConnect: () => connects++,
        onDisconnect: () => disconnects++,
    });
    assert.equal(api.sse.defaultRoute, "conf.sse");
    const got = [];
    conn.on("greeting", (data, msg) => got.push({ data, msg }));
    const texts = [];
    conn.on("text", (data) => texts.push(data));
    await conn.ready();
    assert.equal(conn.connected, true);
    assert.match(conn.clientId ?? "", /^sse_/);
    assert.equal(await broadcast(ch, "greeting", { hello: "world" }), 1);
    await broadcast(ch, "text", "line 1\nline 2");
    await broadcast(ch, "text", "not json {");
    await until(() => got.length === 1 && texts.length === 2, "events");
    assert.deepEqual(got[0].data, { hello: "world" });
    assert.equal(got[0].msg.event, "greeting");
    assert.equal(got[0].msg.raw, '{"hello":"world"}');
    assert.notEqual(got[0].msg.lastEventId, "");
    assert.deepEqual(texts, ["line 1\nline 2", "not json {"]);
    assert.equal(connects, 1);

    conn.disconnect();
    assert.equal(conn.connected, false);
    assert.equal(conn.closed, true);
    await until(() => disconnects === 1, "onDisconnect");
    // The server notices the closed stream and forgets the client.
    let n = 1;
    for (let i = 0; i < 100 && n !== 0; i++) {
        n = await broadcast(ch, "greeting", { late: i });
        if (n !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(n, 0);
    assert.equal(got.length, 1, "nothing delivered after disconnect()");
});

test("on/once/off and handler isolation", async () => {
    const ch = channel("handlers");
    const errors = [];
    const conn = api.sse.connect({ channels: [ch], onError: (e) => errors.push(e) });
    const a = [], b = [], once = [];
    const offA = conn.on("e", (d) => a.push(d.n));
    conn.on("e", () => { throw new Error("handler failure"); });
    conn.on("e", (d) => b.push(d.n));
    conn.once("e", (d) => once.push(d.n));
    await conn.ready();
    await broadcast(ch, "e", { n: 1 });
    await until(() => b.length === 1, "first event");
    offA();
    await broadcast(ch, "e", { n: 2 });
    await until(() => b.length === 2, "second event");
    conn.off("e");
    const sync = [];
    conn.on("sync", (d) => sync.push(d.n));
    await broadcast(ch, "e", { n: 3 });
    await broadcast(ch, "sync", { n: 4 });
    await until(() => sync.length === 1, "sync event");
    assert.deepEqual(a, [1]);
    assert.deepEqual(b, [1, 2]);
    assert.deepEqual(once, [1]);
    assert.deepEqual(sync, [4]);
    assert.equal(errors.filter((e) => e.message === "handler failure").length, 2);
    conn.disconnect();
});

test("resume with lastEventId: missed events replayed in order", async () => {
    const ch = channel("resume");
    const first = api.sse.connect({ channels: [ch] });
    const seen = [];
    first.on("tick", (d) => seen.push(d.n));
    await first.ready();
    await broadcast(ch, "tick", { n: 1 });
    await until(() => seen.length === 1, "tick 1");
    const last = first.lastEventId;
    assert.notEqual(last, "");
    first.disconnect();
    for (let n = 2; n <= 5; n++) await broadcast(ch, "tick", { n });

    const second = api.sse.connect({ channels: [ch], lastEventId: last });
    second.on("tick", (d) => seen.push(d.n));
    await until(() => seen.length === 5, "replayed ticks");
    await broadcast(ch, "tick", { n: 6 });
    await until(() => seen.length === 6, "live tick after replay");
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    second.disconnect();
});

test("automatic reconnect after a cut sends Last-Event-ID and gets the missed events", async () => {
    const p = await proxy();
    try {
        const ch = channel("reconnect");
        const via = createApiClient({ baseUrl: p.url });
        const connectVia = via.sse.connect.bind(via.sse);
        via.sse.connect = (o) => {
            const conn = connectVia(o);
            opened.push(conn);
            return conn;
        };
        let connects = 0, disconnects = 0;
        const errors = [];
        const conn = via.sse.connect({
            channels: [ch],
            onConnect: () => connects++,
            onDisconnect: () => disconnects++,
            onError: (e) => errors.push(e),
        });
        const seen = [];
        conn.on("tick", (d) => seen.push(d.n));
        await conn.ready();
        await broadcast(ch, "tick", { n: 1 });
        await until(() => seen.length === 1, "tick 1");
        const idBefore = conn.lastEventId;

        p.cut();
        await until(() => disconnects === 1, "the cut to be noticed");
        assert.equal(conn.connected, false);
        assert.equal(conn.closed, false, "still trying to reconnect");
        for (let n = 2; n <= 4; n++) await broadcast(ch, "tick", { n });

        // The server advertised `retry: 3000`; the client waits that long.
        await until(() => seen.length === 4, "missed ticks after reconnect", 15000);
        assert.equal(connects, 2);
        assert.deepEqual(seen, [1, 2, 3, 4]);
        const again = p.requests.filter((r) => r.includes(`channel=${ch}`));
        assert.equal(again.length, 2);
        assert.match(again[1], new RegExp(`\\r\\nlast-event-id: ${idBefore}(\\r\\n|$)`, "i"));
        assert.doesNotMatch(again[0], /last-event-id/i);

        await broadcast(ch, "tick", { n: 5 });
        await until(() => seen.length === 5, "live tick");
        assert.deepEqual(seen, [1, 2, 3, 4, 5]);
        conn.disconnect();
    } finally {
        await p.close();
    }
});

test("a failing connection reports errors and stops on a non-retryable status", async () => {
    const errors = [];
    const conn = api.sse.connect({ route: "conf.nope", onError: (e) => errors.push(e) });
    await assert.rejects(conn.ready());
    assert.equal(conn.closed, true);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].status, 404);
});

test("abort signal disconnects", async () => {
    const ac = new AbortController();
    const conn = api.sse.connect({ channels: [channel("abort")], signal: ac.signal });
    await conn.ready();
    ac.abort();
    assert.equal(conn.closed, true);
    assert.equal(conn.connected, false);
});
