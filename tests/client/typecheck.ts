// Type-level checks of the client generated from the conformance app; tsc
// --strict --noEmit only (never run). @ts-expect-error lines must fail to type.
import {
    ApiError,
    createApiClient,
    ERROR_CODES,
    ValidationError,
    type ConfEchoInput,
    type ConfEchoOutput,
    type ErrorCode,
    type SseMessage,
} from "./gen/index.js";

const api = createApiClient({
    baseUrl: "http://127.0.0.1:1/",
    headers: async () => ({ Authorization: "Bearer t" }),
    credentials: "same-origin",
    fetch: (input, init) => fetch(input, init),
});

export async function typedCalls(): Promise<void> {
    const input: ConfEchoInput = { name: "ann", n: 1, tags: ["a"] };
    const out: ConfEchoOutput = await api.conf.echo(input, { headers: { "X-A": "1" } });
    const message: string = out.message;
    const tags: string[] = out.tags;
    void message, tags;
    // @ts-expect-error name is required
    await api.conf.echo({});
    // @ts-expect-error name is a string
    await api.conf.echo({ name: 1 });
    // @ts-expect-error output fields are typed
    const wrong: number = out.message;
    void wrong;
    const note = await api.conf.notes.add({ text: "x" });
    const id: number = note.id;
    void id;
    const list = await api.conf.notes.list();
    const first: string | undefined = list.notes[0]?.text;
    void first;
    await api.conf.mw.stop.run();
    const n: number = (await api.conf.broadcast({ channel: "c", event: "e", data: null })).clients;
    void n;
}

export async function rawCalls(): Promise<void> {
    const res: Response = await api.conf.raw({ method: "GET", query: { a: 1, b: ["x", "y"] } });
    await api.conf.raw({ body: "text", signal: new AbortController().signal });
    // @ts-expect-error conf.raw allows GET and POST only
    await api.conf.raw({ method: "DELETE" });
    void res;
}

export function errors(e: unknown): void {
    if (e instanceof ValidationError) {
        const f: string[] = e.fieldErrors("name");
        const g: string[] = e.fieldErrors(["tags", 0]);
        const path: (string | number)[] | undefined = e.issues[0]?.path;
        void f, g, path;
    } else if (e instanceof ApiError) {
        const s: number = e.status;
        const c: string = e.code;
        const b: boolean = e.is("NOT_FOUND") || e.is("IM_A_TEAPOT");
        void s, c, b;
    }
    const codes: readonly ErrorCode[] = ERROR_CODES;
    void codes;
}

export function events(): void {
    const conn = api.sse.connect({ channels: ["x"], lastEventId: "3", onError: () => {} });
    const off = conn.on("notes.created", (data: unknown, m: SseMessage) => void [data, m.event]);
    conn.on("tick", (data, m) => void [data, m.lastEventId]);
    conn.once("reset", () => {});
    conn.off("tick");
    off();
    const other = api.sse.connect({ route: "conf.sse", method: "POST", autoReconnect: false });
    // @ts-expect-error connected is a boolean
    const bad: string = other.connected;
    void bad;
    conn.disconnect();
    other.disconnect();
}
