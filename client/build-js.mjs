// Emits runtime.js from runtime.ts with the pinned TypeScript compiler (types
// removed, ES2022 module). `node build-js.mjs --check` fails when the committed
// runtime.js differs from what runtime.ts produces.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), "dk-runtime-"));
try {
    execFileSync(join(here, "node_modules", ".bin", "tsc"),
        ["--strict", "--target", "es2022", "--module", "esnext", "--removeComments", "false",
         "--newLine", "lf", "--outDir", out, join(here, "runtime.ts")],
        { stdio: "inherit" });
    const js = readFileSync(join(out, "runtime.js"), "utf8");
    const target = join(here, "runtime.js");
    if (process.argv.includes("--check")) {
        let current = "";
        try { current = readFileSync(target, "utf8"); } catch { /* missing */ }
        if (current !== js) {
            console.error("client/runtime.js is stale: run `npm run build:js` in client/");
            process.exit(1);
        }
    } else {
        writeFileSync(target, js);
    }
} finally {
    rmSync(out, { recursive: true, force: true });
}
