// Typed calls, error mapping and raw routes of the generated client (index.js)
// against a running conformance server (tests/client/run.sh sets the env).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const dir = process.env.DK_CLIENT_DIR;
const baseUrl = process.env.DK_BASE_URL;
if (!dir || !baseUrl) throw new Error("run through tests/client/run.sh");
const { createApiClient, ApiClient, ApiError, ValidationError, ERROR_CODES, UNKNOWN_ERROR } =
    await import(pathToFileURL(`${dir}/index.js`).href);

/** A fetch that records what it sends, then really sends it. */
function recordingFetch() {
    const calls = [];
    const f = async (url, init) => {
        calls.push({ url, init, headers: new Headers(init.headers) });
        return fetch(url, init);
    };
    return { f, calls };
}

function fakeFetch(status, body, headers = {}) {
    return async () => new Response(body, { status, headers });
}

test("typed call: conf.echo answers the parsed output", async () => {
    const api = createApiClient({ baseUrl });
    assert.ok(api instanceof ApiClient);
    assert.deepEqual(await api.conf.echo({ name: "ann" }), { message: "hello ann", n: 0, tags: [] });
    assert.deepEqual(await api.conf.echo({ name: "bob", n: 3, tags: ["a", "b"] }),
                     { message: "hello bob", n: 3, tags: ["a", "b"] });
});

test("typed call: POST JSON to baseUrl/name with merged headers and credentials", async () => {
    const { f, calls } = recordingFetch();
    let n = 0;
    const api = createApiClient({
        baseUrl: baseUrl + "/",
        headers: () => ({ "X-Default": "d", "X-Both": "default", "X-Count": String(++n) }),
        fetch: f,
    });
    assert.equal(api.baseUrl, baseUrl);
    assert.equal(api.credentials, "include");
    const out = await api.conf.ip(undefined, { headers: { "X-Both": "call" } });
    assert.equal(typeof out, "object");
    assert.equal(calls.length, 1);
    const c = calls[0];
    assert.equal(c.url, `${baseUrl}/conf.ip`);
    assert.equal(c.init.method, "POST");
    assert.equal(c.init.credentials, "include");
    assert.equal(c.init.body, "{}");
    assert.equal(c.headers.get("content-type"), "application/json");
    assert.equal(c.headers.get("x-default"), "d");
    assert.equal(c.headers.get("x-both"), "call");
    await api.conf.ip();
    assert.equal(calls[1].headers.get("x-count"), "2", "header function runs per call");

    const other = createApiClient({ baseUrl, credentials: "same-origin", headers: { A: "1" }, fetch: f });
    await other.conf.ip();
    assert.equal(calls[2].init.credentials, "same-origin");
    assert.equal(calls[2].headers.get("a"), "1");
});

test("ApiError: status, code, message, details, is()", async () => {
    const api = createApiClient({ baseUrl });
    const e = await api.conf.fail({ status: 404, message: "nope" }).then(
        () => assert.fail("expected an error"), (x) => x);
    assert.ok(e instanceof ApiError);
    assert.ok(e instanceof Error);
    assert.ok(!(e instanceof ValidationError));
    assert.equal(e.name, "ApiError");
    assert.equal(e.status, 404);
    assert.equal(e.code, "NOT_FOUND");
    assert.equal(e.message, "nope");
    assert.deepEqual(e.details, { status: 404 });
    assert.equal(e.body.error, "NOT_FOUND");
    assert.ok(e.is("NOT_FOUND"));
    assert.ok(!e.is("CONFLICT"));

    const t = await api.conf.fail({ status: 418 }).catch((x) => x);
    assert.equal(t.status, 418);
    assert.equal(t.code, "IM_A_TEAPOT");
    assert.ok(t.is("IM_A_TEAPOT"));

    const c = await api.conf.crash().catch((x) => x);
    assert.equal(c.status, 500);
    assert.equal(c.code, "INTERNAL_SERVER_ERROR");
    assert.ok(!JSON.stringify(c.body).includes("secret"));
});

test("ValidationError: issues and per-field lookup", async () => {
    const api = createApiClient({ baseUrl });
    const e = await api.conf.echo({}).catch((x) => x);
    assert.ok(e instanceof ValidationError);
    assert.ok(e instanceof ApiError);
    assert.equal(e.name, "ValidationError");
    assert.equal(e.status, 400);
    assert.equal(e.code, "BAD_REQUEST");
    assert.equal(e.message, "Validation Failed");
    assert.ok(e.issues.length >= 1);
    assert.deepEqual(e.fieldErrors("name"), ["Required"]);
    assert.deepEqual(e.fieldErrors(["name"]), ["Required"]);
    assert.deepEqual(e.getFieldErrors("name"), ["Required"]);
    assert.ok(e.hasFieldError("name"));
    assert.deepEqual(e.fieldErrors("n"), []);
    assert.ok(!e.hasFieldError("n"));

    const t = await api.conf.echo({ name: "x", tags: ["ok", 5] }).catch((x) => x);
    assert.ok(t instanceof ValidationError);
    assert.equal(t.fieldErrors(["tags", 1]).length, 1);
    assert.deepEqual(t.fieldErrors(["tags", "1"]), [], "path elements compare strictly");
});

test("error mapping without a JSON body, 204 and bad JSON", async () => {
    const html = createApiClient({ baseUrl: "http://x", fetch: fakeFetch(502, "<html>") });
    const e = await html.conf.ip().catch((x) => x);
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 502);
    assert.equal(e.code, UNKNOWN_ERROR);
    assert.equal(e.message, "API Error: 502");
    assert.deepEqual(e.body, {});

    const plain400 = createApiClient({
        baseUrl: "http://x", fetch: fakeFetch(400, '{"error":"BAD_REQUEST","message":"Malformed JSON"}') });
    const p = await plain400.conf.ip().catch((x) => x);
    assert.ok(!(p instanceof ValidationError));
    assert.equal(p.message, "Malformed JSON");

    const none = createApiClient({ baseUrl: "http://x", fetch: fakeFetch(204, null) });
    assert.equal(await none.conf.ip(), undefined);

    const bad = createApiClient({ baseUrl: "http://x", fetch: fakeFetch(200, "{oops") });
    const b = await bad.conf.ip().catch((x) => x);
    assert.ok(b instanceof ApiError);
    assert.equal(b.code, "INVALID_RESPONSE");
});

test("the 14 standard codes are exported", () => {
    assert.equal(ERROR_CODES.length, 14);
    for (const c of ["BAD_REQUEST", "NOT_FOUND", "TOO_MANY_REQUESTS", "GATEWAY_TIMEOUT"])
        assert.ok(ERROR_CODES.includes(c), c);
});

test("abort signal cancels a call", async () => {
    const api = createApiClient({ baseUrl });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(api.conf.echo({ name: "x" }, { signal: ac.signal }),
                         (e) => e.name === "AbortError");
});

test("raw route: GET with query, POST with body, Response returned untouched", async () => {
    const { f, calls } = recordingFetch();
    const api = createApiClient({ baseUrl, fetch: f, headers: { "X-Default": "1" } });
    const r = await api.conf.raw({ method: "GET", query: { a: 1, b: ["x", "y"] } });
    assert.ok(r instanceof Response);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-conf"), "raw");
    assert.equal(await r.text(), "GET a=1&b=x&b=y 0");
    assert.equal(calls[0].headers.get("content-type"), null);
    assert.equal(calls[0].headers.get("x-default"), "1");

    const p = await api.conf.raw({ body: "hello" });
    assert.equal(await p.text(), "POST  5");
    assert.equal(calls[1].init.method, "POST");

    const nf = await api.conf.raw({ method: "GET", query: { z: "1" }, headers: { Accept: "x/y" } });
    assert.equal(nf.status, 200);
    assert.equal(calls[2].headers.get("accept"), "x/y");
});

test("raw route answers errors as a Response (no mapping)", async () => {
    const api = createApiClient({ baseUrl });
    const r = await api.conf.raw({ method: "DELETE" });
    assert.equal(r.status, 405);
});
