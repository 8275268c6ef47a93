// Type-level checks of the JSON Schema -> TypeScript mapping (generated from
// tests/client/schemas.json); tsc --strict --noEmit only.
import {
    createApiClient,
    SSE_CHANNELS,
    type KitchenSinkInput as In,
    type KitchenSinkOutput,
    type SseChannel,
    type SseEvents,
    type UsersGetOutput,
} from "./schemas/index.js";

type Equal<A, B> =
    (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assert<T extends true>(): T | void {}

assert<Equal<In["s"], string>>();
assert<Equal<In["i"], number>>();
assert<Equal<In["b"], boolean | undefined>>();
assert<Equal<In["nul"], null | undefined>>();
assert<Equal<In["sn"], string | null | undefined>>();
assert<Equal<In["en"], "a" | "b" | 3 | undefined>>();
assert<Equal<In["c"], "fixed" | undefined>>();
assert<Equal<In["arr"], number[] | undefined>>();
assert<Equal<In["tup"], [string, number] | undefined>>();
assert<Equal<In["any"], string | number | undefined>>();
assert<Equal<In["map"], { [key: string]: number } | undefined>>();
assert<Equal<In["closed"], Record<string, never> | undefined>>();
assert<Equal<In["free"], unknown>>();
assert<Equal<In["with-dash"], string | undefined>>();
assert<Equal<In["uarr"], (string | number)[] | undefined>>();
assert<Equal<In["nullable"], string | null | undefined>>();
assert<Equal<KitchenSinkOutput, string[]>>();
assert<Equal<SseChannel, "news" | "sports">>();
assert<Equal<SseEvents["user.created"], { id: number }>>();
assert<Equal<SseEvents["plain.event"], unknown>>();

const one: NonNullable<In["one"]>[] = [{ k: "a" }, { k: "b", v: 1 }];
// @ts-expect-error branch "b" needs v
const bad: NonNullable<In["one"]> = { k: "b" };
const deep: NonNullable<In["nested"]> = { deep: [{ x: "1" }] };
const mixed: NonNullable<In["mixed"]> = { id: 1, other: "s" };
void one, bad, deep, mixed, SSE_CHANNELS;

const api = createApiClient({ baseUrl: "/api" });
export async function calls(): Promise<void> {
    await api.health();
    const u: UsersGetOutput = await api.users.get({ id: 1 });
    const h: string[] = (await api.users.get.history({ id: 1 })).events;
    const r: Response = await api.files["download-all"]();
    const s: Response = await api.sse_({ method: "GET" });
    const c = api.sse.connect();
    c.on("user.created", (d) => {
        const id: number = d.id;
        void id;
    });
    void u, h, r, s;
}
