/* donkey client runtime: HTTP calls, error mapping and a server-sent events
 * client over fetch streaming. The generated index.ts builds on it.
 *
 * This file is the single source of truth: runtime.js is emitted from it
 * (npm run build:js in client/) and both are embedded in the donkey binary.
 * Works in browsers and in Node 20+ (global fetch, ReadableStream,
 * TextDecoder, AbortController); no dependencies. */

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/** The 14 standard error codes a donkey server answers with. */
export const ERROR_CODES = [
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "CONFLICT",
    "GONE",
    "UNPROCESSABLE_ENTITY",
    "TOO_MANY_REQUESTS",
    "INTERNAL_SERVER_ERROR",
    "NOT_IMPLEMENTED",
    "BAD_GATEWAY",
    "SERVICE_UNAVAILABLE",
    "GATEWAY_TIMEOUT",
] as const;

/** One of the standard codes. Servers may also answer with custom codes. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The code used when an error body carries none. */
export const UNKNOWN_ERROR = "UNKNOWN_ERROR";

/** One validation problem as reported in `details.issues`. */
export interface ValidationIssue {
    path: (string | number)[];
    message: string;
    code?: string;
    [key: string]: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A non-2xx answer (or an unreadable 2xx answer) from the server. */
export class ApiError extends Error {
    /** HTTP status. */
    readonly status: number;
    /** Body `error`, or UNKNOWN_ERROR. */
    readonly code: string;
    /** Body `details` (undefined when absent). */
    readonly details: unknown;
    /** The whole parsed body ({} when it was not a JSON object). */
    readonly body: Record<string, unknown>;

    constructor(status: number, body?: unknown, message?: string) {
        const b: Record<string, unknown> = isRecord(body) ? body : {};
        const msg =
            message ?? (typeof b.message === "string" && b.message !== "" ? b.message : undefined);
        super(msg ?? `API Error: ${status}`);
        this.name = "ApiError";
        this.status = status;
        this.code = typeof b.error === "string" && b.error !== "" ? b.error : UNKNOWN_ERROR;
        this.details = b.details;
        this.body = b;
    }

    /** Whether this error has code `code`. */
    is(code: ErrorCode | (string & {})): boolean {
        return this.code === code;
    }
}

function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
    return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A 400 answer whose body carries `details.issues`. */
export class ValidationError extends ApiError {
    /** Every issue the server reported. */
    readonly issues: ValidationIssue[];

    constructor(issues: ValidationIssue[], body?: unknown, status = 400) {
        const b: Record<string, unknown> = isRecord(body)
            ? body
            : { error: "BAD_REQUEST", message: "Validation Failed", details: { issues } };
        super(status, b, typeof b.message === "string" ? b.message : "Validation Failed");
        this.name = "ValidationError";
        this.issues = issues;
    }

    /** Messages of the issues whose path equals `path` exactly. A string is a
     *  one-element path; elements compare strictly (0 is not "0"). */
    fieldErrors(path: string | number | readonly (string | number)[]): string[] {
        const p = Array.isArray(path) ? path : [path as string | number];
        return this.issues
            .filter((i) => Array.isArray(i.path) && samePath(i.path, p))
            .map((i) => i.message);
    }

    /** Whether some issue has exactly this path. */
    hasFieldError(path: string | number | readonly (string | number)[]): boolean {
        return this.fieldErrors(path).length > 0;
    }

    /** Alias of fieldErrors() (name used by other donkey clients). */
    getFieldErrors(path: string | number | readonly (string | number)[]): string[] {
        return this.fieldErrors(path);
    }
}

/** Builds the error for a non-2xx response from its status and body text. */
export function errorFromResponse(status: number, text: string): ApiError {
    let body: unknown = {};
    try {
        body = text === "" ? {} : JSON.parse(text);
    } catch {
        body = {};
    }
    if (status === 400 && isRecord(body) && isRecord(body.details) &&
        Array.isArray(body.details.issues)) {
        return new ValidationError(body.details.issues as ValidationIssue[], body, status);
    }
    return new ApiError(status, body);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

export type HeaderMap = Record<string, string>;

/** Default headers: an object, or a function called before every request
 *  (e.g. to read a fresh token), possibly async. */
export type HeadersOption = HeaderMap | (() => HeaderMap | Promise<HeaderMap>);

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientConfig {
    /** Server address, e.g. "https://api.example.com" or "/api"; one trailing "/" is removed. */
    baseUrl: string;
    /** Headers sent with every call (typed, raw and SSE). */
    headers?: HeadersOption;
    /** Cookie policy; default "include". */
    credentials?: RequestCredentials;
    /** Transport; default the global fetch. */
    fetch?: FetchLike;
}

export interface CallOptions {
    /** Extra headers for this call (win over the defaults). */
    headers?: HeaderMap;
    /** Cancels the call. */
    signal?: AbortSignal;
}

export type QueryValue = string | number | boolean;
export type QueryParams = Record<string, QueryValue | readonly QueryValue[] | undefined>;

export interface RawOptions<M extends string = string> extends CallOptions {
    /** HTTP method; default the route's (POST when it allows POST). */
    method?: M;
    /** Query parameters; an array value repeats the parameter. */
    query?: QueryParams | URLSearchParams;
    /** Request body, passed to fetch as is. */
    body?: BodyInit | null;
}

/** Extra settings the generated client passes to the base class. */
export interface ClientDefaults {
    /** Route name of the default SSE endpoint. */
    sseRoute?: string;
}

function appendQuery(url: string, query: QueryParams | URLSearchParams | undefined): string {
    if (query === undefined) return url;
    const params = new URLSearchParams();
    if (query instanceof URLSearchParams) {
        query.forEach((v, k) => params.append(k, v));
    } else {
        for (const [k, v] of Object.entries(query)) {
            if (v === undefined) continue;
            const list: readonly QueryValue[] = Array.isArray(v) ? v : [v as QueryValue];
            for (const item of list) params.append(k, String(item));
        }
    }
    const qs = params.toString();
    if (qs === "") return url;
    return url + (url.includes("?") ? "&" : "?") + qs;
}

/* ------------------------------------------------------------------ */
/* Client                                                              */

/** Runtime client: the generated ApiClient extends it with one method per route. */
export class Client<E extends object = Record<string, unknown>> {
    /** Base URL without trailing "/". */
    readonly baseUrl: string;
    /** Cookie policy applied to every call. */
    readonly credentials: RequestCredentials;
    /** Server-sent events. */
    readonly sse: SseConnector<E>;
    #headers: HeadersOption | undefined;
    #fetch: FetchLike;

    constructor(config: ClientConfig, defaults: ClientDefaults = {}) {
        if (config === null || typeof config !== "object" || typeof config.baseUrl !== "string") {
            throw new TypeError("donkey client: config.baseUrl (string) is required");
        }
        this.baseUrl = config.baseUrl.endsWith("/") ? config.baseUrl.slice(0, -1) : config.baseUrl;
        this.credentials = config.credentials ?? "include";
        this.#headers = config.headers;
        const f = config.fetch ?? (globalThis.fetch as FetchLike | undefined);
        if (typeof f !== "function") {
            throw new TypeError("donkey client: no fetch available; pass config.fetch");
        }
        this.#fetch = config.fetch ?? ((input, init) => globalThis.fetch(input, init));
        this.sse = new SseConnector<E>(this, defaults.sseRoute ?? "sse");
    }

    /** URL of route `name`. */
    url(name: string): string {
        return `${this.baseUrl}/${name}`;
    }

    /** Headers for one call: `first` (lowest priority), defaults, then `extra`. */
    async headers(first?: HeaderMap, extra?: HeaderMap): Promise<Headers> {
        const h = new Headers();
        const apply = (m: HeaderMap | undefined) => {
            if (m === undefined) return;
            for (const [k, v] of Object.entries(m)) {
                if (v !== undefined) h.set(k, v);
            }
        };
        apply(first);
        const d = this.#headers;
        apply(typeof d === "function" ? await d() : d);
        apply(extra);
        return h;
    }

    /** The underlying transport call (credentials applied). */
    send(url: string, init: RequestInit): Promise<Response> {
        return this.#fetch(url, { credentials: this.credentials, ...init });
    }

    /** Typed call: POST JSON `input` to the route, answer the parsed JSON body.
     *  Throws ValidationError / ApiError for non-2xx answers. */
    async request<O = unknown>(name: string, input?: unknown, options: CallOptions = {}): Promise<O> {
        const headers = await this.headers({ "Content-Type": "application/json" }, options.headers);
        const res = await this.send(this.url(name), {
            method: "POST",
            headers,
            body: JSON.stringify(input === undefined ? {} : input),
            signal: options.signal,
        });
        const text = await res.text();
        if (!res.ok) throw errorFromResponse(res.status, text);
        if (res.status === 204 || text === "") return undefined as O;
        try {
            return JSON.parse(text) as O;
        } catch {
            throw new ApiError(res.status, { error: "INVALID_RESPONSE" },
                               `Invalid JSON in the answer of ${name}`);
        }
    }

    /** Raw call: the Response as the server sent it (no error mapping, no JSON). */
    async rawRequest<M extends string = string>(name: string, options: RawOptions<M> = {},
                                                defaultMethod = "POST"): Promise<Response> {
        const headers = await this.headers(undefined, options.headers);
        return this.send(appendQuery(this.url(name), options.query), {
            method: options.method ?? defaultMethod,
            headers,
            body: options.body,
            signal: options.signal,
        });
    }
}

/* ------------------------------------------------------------------ */
/* Server-sent events                                                  */

/** One dispatched event. */
export interface SseMessage {
    /** Event name ("message" when the frame had none). */
    event: string;
    /** The data text as received (lines joined with "\n"). */
    raw: string;
    /** The data JSON-parsed when it parses, else the text. */
    data: unknown;
    /** The last event id seen on the stream ("" when none). */
    lastEventId: string;
}

export interface SseConnectOptions {
    /** Route name of the event stream (default: the generated default, else "sse"). */
    route?: string;
    /** Channels; each becomes one `channel=<name>` query parameter. */
    channels?: readonly string[];
    /** More query parameters. */
    query?: QueryParams;
    /** HTTP method; default GET. */
    method?: "GET" | "POST";
    /** Extra headers for the stream request. */
    headers?: HeaderMap;
    /** Resume after this event id (sent as Last-Event-ID on the first connect). */
    lastEventId?: string;
    /** Reconnect when the stream ends or fails (default true). */
    autoReconnect?: boolean;
    /** Delay before reconnecting, ms, until the server sends `retry:` (default 3000). */
    reconnectDelay?: number;
    /** Cap for the doubling delay after failed attempts, ms (default 30000). */
    maxReconnectDelay?: number;
    /** Aborting it disconnects for good. */
    signal?: AbortSignal;
    /** Stream opened (every (re)connection). */
    onConnect?: (info: { clientId: string | null; response: Response }) => void;
    /** Stream closed (every time an open stream ends). */
    onDisconnect?: () => void;
    /** Connection or handler failure. */
    onError?: (error: unknown) => void;
}

/** The data type of event K in the event map E (unknown for undeclared events). */
export type SseEventData<E, K extends string> = K extends keyof E ? E[K] : unknown;

export type SseHandler<D> = (data: D, message: SseMessage) => void;

/** Opens event streams for a client. */
export class SseConnector<E extends object = Record<string, unknown>> {
    readonly #client: Client<E>;
    /** Route used when connect() is given none. */
    readonly defaultRoute: string;

    constructor(client: Client<E>, defaultRoute: string) {
        this.#client = client;
        this.defaultRoute = defaultRoute;
    }

    /** Opens a stream (asynchronously) and answers its handle at once; attach
     *  handlers with on() right away, no event is lost. */
    connect(options: SseConnectOptions = {}): SseConnection<E> {
        return new SseConnection<E>(this.#client, { route: this.defaultRoute, ...options });
    }
}

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** One logical event stream, reconnecting until disconnect(). */
export class SseConnection<E extends object = Record<string, unknown>> {
    /** Whether a stream is open now. */
    connected = false;
    /** Last event id received (sent as Last-Event-ID when reconnecting). */
    lastEventId: string;
    /** X-SSE-Client-Id of the current stream (null when unknown or closed). */
    clientId: string | null = null;
    readonly #client: Client<E>;
    readonly #opts: SseConnectOptions;
    readonly #handlers = new Map<string, Set<SseHandler<never>>>();
    #closed = false;
    #abort: AbortController | null = null;
    #timer: ReturnType<typeof setTimeout> | null = null;
    #retry: number;
    #failures = 0;
    #readyWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

    constructor(client: Client<E>, opts: SseConnectOptions) {
        this.#client = client;
        this.#opts = opts;
        this.lastEventId = opts.lastEventId ?? "";
        this.#retry = opts.reconnectDelay ?? 3000;
        if (opts.signal !== undefined) {
            if (opts.signal.aborted) {
                this.#closed = true;
                return;
            }
            opts.signal.addEventListener("abort", () => this.disconnect(), { once: true });
        }
        queueMicrotask(() => void this.#run());
    }

    /** Subscribes to `event`; answers the unsubscribe function. */
    on<K extends string>(event: K, handler: SseHandler<SseEventData<E, K>>): () => void {
        let set = this.#handlers.get(event);
        if (set === undefined) {
            set = new Set();
            this.#handlers.set(event, set);
        }
        const h = handler as SseHandler<never>;
        set.add(h);
        return () => {
            const s = this.#handlers.get(event);
            if (s === undefined) return;
            s.delete(h);
            if (s.size === 0) this.#handlers.delete(event);
        };
    }

    /** Like on(), for the first delivery only. */
    once<K extends string>(event: K, handler: SseHandler<SseEventData<E, K>>): () => void {
        const off = this.on(event, (data, message) => {
            off();
            handler(data, message);
        });
        return off;
    }

    /** Removes `handler` from `event`, or every handler of `event`. */
    off<K extends string>(event: K, handler?: SseHandler<SseEventData<E, K>>): void {
        if (handler === undefined) {
            this.#handlers.delete(event);
            return;
        }
        const s = this.#handlers.get(event);
        s?.delete(handler as SseHandler<never>);
        if (s !== undefined && s.size === 0) this.#handlers.delete(event);
    }

    /** Resolves when a stream is open (at once if one is); rejects if the
     *  connection is closed for good first. */
    ready(): Promise<void> {
        if (this.connected) return Promise.resolve();
        if (this.#closed) return Promise.reject(new Error("SSE connection closed"));
        return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
    }

    /** Closes the stream for good (no reconnection). */
    disconnect(): void {
        if (this.#closed) return;
        this.#closed = true;
        this.connected = false;
        this.clientId = null;
        if (this.#timer !== null) clearTimeout(this.#timer);
        this.#timer = null;
        this.#abort?.abort();
        this.#abort = null;
        this.#settleWaiters(new Error("SSE connection closed"));
    }

    /** Whether disconnect() was called (or the connection gave up). */
    get closed(): boolean {
        return this.#closed;
    }

    #settleWaiters(error?: unknown): void {
        const w = this.#readyWaiters;
        this.#readyWaiters = [];
        for (const x of w) {
            if (error === undefined) x.resolve();
            else x.reject(error);
        }
    }

    #error(e: unknown): void {
        try {
            this.#opts.onError?.(e);
        } catch {
            /* a failing error callback must not break the stream */
        }
    }

    async #run(): Promise<void> {
        if (this.#closed) return;
        const o = this.#opts;
        const abort = new AbortController();
        this.#abort = abort;
        let opened = false;
        let retryable = true;
        try {
            const query: QueryParams = { ...(o.query ?? {}) };
            if (o.channels !== undefined && o.channels.length > 0) query.channel = o.channels;
            const extra: HeaderMap = { ...(o.headers ?? {}) };
            if (this.lastEventId !== "") extra["Last-Event-ID"] = this.lastEventId;
            const headers = await this.#client.headers({ Accept: "text/event-stream" }, extra);
            const res = await this.#client.send(
                appendQuery(this.#client.url(o.route ?? "sse"), query),
                { method: o.method ?? "GET", headers, signal: abort.signal, cache: "no-store" });
            if (res.status === 204) {
                retryable = false; /* the server asks us to stop */
                await res.body?.cancel();
                return;
            }
            if (!res.ok) {
                retryable = RETRYABLE_STATUS.has(res.status);
                throw errorFromResponse(res.status, await res.text().catch(() => ""));
            }
            const type = res.headers.get("content-type") ?? "";
            if (!type.toLowerCase().startsWith("text/event-stream") || res.body === null) {
                retryable = false;
                await res.body?.cancel();
                throw new ApiError(res.status, { error: "INVALID_RESPONSE" },
                                   `Not an event stream (Content-Type: ${type})`);
            }
            opened = true;
            this.connected = true;
            this.#failures = 0;
            this.clientId = res.headers.get("x-sse-client-id");
            try {
                o.onConnect?.({ clientId: this.clientId, response: res });
            } catch (e) {
                this.#error(e);
            }
            this.#settleWaiters();
            await this.#read(res.body);
        } catch (e) {
            if (!this.#closed && !abort.signal.aborted) this.#error(e);
        } finally {
            if (this.#abort === abort) this.#abort = null;
            if (opened) {
                this.connected = false;
                this.clientId = null;
                try {
                    o.onDisconnect?.();
                } catch (e) {
                    this.#error(e);
                }
            }
            this.#schedule(opened, retryable);
        }
    }

    #schedule(opened: boolean, retryable: boolean): void {
        if (this.#closed) return;
        if (!retryable || this.#opts.autoReconnect === false) {
            this.#closed = true;
            this.#settleWaiters(new Error("SSE connection closed"));
            return;
        }
        /* The server's delay after a stream ends; doubling (capped) while
         * attempts fail without opening a stream. */
        if (!opened) this.#failures++;
        const cap = Math.max(this.#opts.maxReconnectDelay ?? 30000, this.#retry);
        const n = Math.min(Math.max(this.#failures - 1, 0), 20);
        const delay = Math.min(this.#retry * 2 ** n, cap);
        this.#timer = setTimeout(() => {
            this.#timer = null;
            void this.#run();
        }, delay);
    }

    async #read(body: ReadableStream<Uint8Array>): Promise<void> {
        const reader = body.getReader();
        const decoder = new TextDecoder("utf-8");
        let buf = "";
        let first = true;
        let data: string[] = [];
        let event = "";
        let idBuf = this.lastEventId;
        const line = (l: string) => {
            if (l === "") {
                /* dispatch */
                this.lastEventId = idBuf;
                if (data.length > 0) {
                    const raw = data.join("\n");
                    this.#dispatch(event === "" ? "message" : event, raw);
                }
                data = [];
                event = "";
                return;
            }
            if (l.startsWith(":")) return;
            const c = l.indexOf(":");
            const field = c < 0 ? l : l.slice(0, c);
            let value = c < 0 ? "" : l.slice(c + 1);
            if (value.startsWith(" ")) value = value.slice(1);
            if (field === "data") data.push(value);
            else if (field === "event") event = value;
            else if (field === "id") {
                if (!value.includes("\0")) idBuf = value;
            } else if (field === "retry") {
                if (/^[0-9]+$/.test(value)) this.#retry = Number(value);
            }
        };
        try {
            for (;;) {
                const { done, value } = await reader.read();
                if (done) break;
                buf += decoder.decode(value, { stream: true });
                if (first && buf.length > 0) {
                    if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
                    first = false;
                }
                /* Split on CRLF, CR or LF; a trailing CR may be half of a CRLF. */
                let start = 0;
                for (let i = 0; i < buf.length; i++) {
                    const ch = buf.charCodeAt(i);
                    if (ch === 10 || ch === 13) {
                        if (ch === 13 && i + 1 === buf.length) break;
                        line(buf.slice(start, i));
                        if (ch === 13 && buf.charCodeAt(i + 1) === 10) i++;
                        start = i + 1;
                    }
                }
                buf = buf.slice(start);
                if (this.#closed) break;
            }
        } finally {
            reader.releaseLock();
        }
    }

    #dispatch(event: string, raw: string): void {
        const set = this.#handlers.get(event);
        if (set === undefined || set.size === 0) return;
        let data: unknown = raw;
        try {
            data = JSON.parse(raw);
        } catch {
            data = raw;
        }
        const message: SseMessage = { event, raw, data, lastEventId: this.lastEventId };
        for (const h of [...set]) {
            try {
                (h as SseHandler<unknown>)(data, message);
            } catch (e) {
                this.#error(e);
            }
        }
    }
}
