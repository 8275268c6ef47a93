"""Black-box tests of the `donkey` command (cli/): scaffolds that build
against the installed library, route listing, OpenAPI, errors, and the dev
loop. Standard library only; every wait is bounded; loopback only.

Env: DK_BUILD_DIR (the donkey build directory, fully built)."""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BUILD = os.path.abspath(os.environ.get(
    "DK_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build")))
DONKEY = os.path.join(BUILD, "cli", "donkey")
CONFORMANCE = os.path.join(BUILD, "examples", "conformance", "conformance")
LSAN_SUPP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "lsan.supp"))

COMMANDS = ["init", "plugin new", "migration new", "routes", "generate openapi",
            "generate client", "dev", "help"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def base_env(extra=None):
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e.setdefault("LSAN_OPTIONS", "suppressions=" + LSAN_SUPP)
    if extra:
        e.update(extra)
    return e


def donkey(*args, cwd=None, env=None, timeout=60):
    return subprocess.run([DONKEY] + list(args), cwd=cwd, env=base_env(env), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def post(port, route, body=b"{}", timeout=2):
    req = urllib.request.Request("http://127.0.0.1:%d/%s" % (port, route), data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def cache_value(key):
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                m = re.match(r"^%s:[A-Z]+=(.*)$" % re.escape(key), line.strip())
                if m:
                    return m.group(1)
    except OSError:
        pass
    return ""


class Installed:
    """The library installed once into a temporary prefix, shared by the tests."""
    prefix = None
    tmp = None

    @classmethod
    def get(cls):
        if cls.prefix is None:
            cls.tmp = tempfile.mkdtemp(prefix="dk-cli-")
            atexit.register(shutil.rmtree, cls.tmp, True)
            cls.prefix = os.path.join(cls.tmp, "prefix")
            r = subprocess.run(["cmake", "--install", BUILD, "--prefix", cls.prefix],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=300)
            if r.returncode != 0:
                raise AssertionError("cmake --install failed:\n" + r.stdout[-3000:])
            # donkey.pc records the configure-time prefix; point it at this one.
            for libdir in ("lib", "lib64", os.path.join("lib", "x86_64-linux-gnu")):
                pc = os.path.join(cls.prefix, libdir, "pkgconfig", "donkey.pc")
                if os.path.exists(pc):
                    with open(pc) as f:
                        text = f.read()
                    with open(pc, "w") as f:
                        f.write(re.sub(r"(?m)^prefix=.*$", "prefix=" + cls.prefix, text, count=1))
                    cls.pkgconfig = os.path.dirname(pc)
        return cls

    @classmethod
    def env(cls):
        cls.get()
        return {"PKG_CONFIG_PATH": cls.pkgconfig}

    @classmethod
    def cmake_args(cls):
        """Extra configure arguments so a sanitizer build's library links."""
        san = cache_value("DK_SANITIZE")
        args = []
        cc = cache_value("CMAKE_C_COMPILER")
        if cc:
            args.append("-DCMAKE_C_COMPILER=" + cc)
        if san:
            args += ["-DCMAKE_C_FLAGS=-fsanitize=%s -fno-omit-frame-pointer" % san,
                     "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=%s" % san]
        return args


def configure_and_build(project, timeout=300):
    env = base_env(Installed.env())
    r = subprocess.run(["cmake", "-S", project, "-B", os.path.join(project, "build")]
                       + Installed.cmake_args(), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("configure failed:\n" + r.stdout[-4000:])
    build(project, timeout)


def build(project, timeout=300):
    r = subprocess.run(["cmake", "--build", os.path.join(project, "build"), "-j2"],
                       env=base_env(Installed.env()), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("build failed:\n" + r.stdout[-4000:])


class App:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="dk-cli-app-", delete=False)
        self.proc = subprocess.Popen([binary, "--port", str(self.port)] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=base_env())
        wait_for(self.ready, 20, "the application to listen")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("application exited: " + open(self.log.name).read())
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def one_line_error(testcase, r, code=2):
    testcase.assertEqual(r.returncode, code, r.stderr)
    lines = r.stderr.strip("\n").split("\n")
    testcase.assertEqual(len(lines), 1, r.stderr)
    testcase.assertIn("error", lines[0])


class TestCommandLine(unittest.TestCase):
    def test_help(self):
        for args in (["help"], ["--help"], ["-h"]):
            r = donkey(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Usage:", r.stdout)
            for c in COMMANDS:
                self.assertIn(c, r.stdout)

    def test_help_on_every_command(self):
        for c in COMMANDS:
            for flag in ("--help", "-h"):
                r = donkey(*(c.split() + [flag]))
                self.assertEqual(r.returncode, 0, (c, r.stderr))
                self.assertIn("Usage: donkey " + c, r.stdout, c)
            r = donkey("help", *c.split())
            self.assertEqual(r.returncode, 0, (c, r.stderr))
            self.assertIn("Usage: donkey " + c, r.stdout)
        r = donkey("plugin", "new", "--help")
        for opt in ("--schema", "--config", "--deps", "--handlers", "--middleware", "--force"):
            self.assertIn(opt, r.stdout)
        for group in ("plugin", "generate", "migration"):
            r = donkey(group, "--help")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Subcommands:", r.stdout)

    def test_bad_arguments(self):
        cases = [
            ["nonsense"],
            ["init"],
            ["init", "Bad-Name"],
            ["init", "a", "b"],
            ["init", "x", "--bogus"],
            ["plugin"],
            ["plugin", "frobnicate"],
            ["plugin", "new"],
            ["plugin", "new", "9lives"],
            ["plugin", "new", "x", "--deps"],
            ["plugin", "new", "x", "--deps", "a,,b"],
            ["plugin", "new", "x", "--schema=yes"],
            ["migration", "new", "onlyplugin"],
            ["migration", "new", "p", "Bad Name"],
            ["routes", "--server"],
            ["routes", "extra"],
            ["generate", "openapi", "--nope"],
            ["generate", "client", "--server", CONFORMANCE],
            ["dev", "--what"],
            ["help", "nonsense"],
        ]
        with tempfile.TemporaryDirectory() as d:
            for args in cases:
                r = donkey(*args, cwd=d)
                one_line_error(self, r, 2)
                self.assertEqual(os.listdir(d), [], args)
        r = donkey()
        self.assertEqual(r.returncode, 2)

    def test_runtime_errors_are_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            one_line_error(self, donkey("routes", "--server", os.path.join(d, "missing"), cwd=d), 1)
            one_line_error(self, donkey("routes", cwd=d), 1)           # not in a project
            one_line_error(self, donkey("plugin", "new", "x", cwd=d), 1)
            one_line_error(self, donkey("migration", "new", "x", "y", cwd=d), 1)
            one_line_error(self, donkey("dev", cwd=d), 1)
            one_line_error(self, donkey("routes", "--server", "/bin/false", cwd=d), 1)
            one_line_error(self, donkey("routes", "--server", "/bin/echo", cwd=d), 1)

    def test_no_colour_when_not_a_terminal(self):
        r = donkey("nonsense", env={"NO_COLOR": ""})
        self.assertNotIn("\033[", r.stderr)
        r = donkey("help")
        self.assertNotIn("\033[", r.stdout)


class TestRoutesAndOpenAPI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        r = donkey("routes", "--server", CONFORMANCE, "--json")
        assert r.returncode == 0, r.stderr
        cls.manifest = json.loads(r.stdout)

    def test_routes_json_matches_the_server(self):
        out = subprocess.run([CONFORMANCE, "--routes-json"], stdout=subprocess.PIPE,
                             timeout=30, env=base_env()).stdout
        self.assertEqual(self.manifest, json.loads(out))

    def test_routes_table(self):
        r = donkey("routes", "--server", CONFORMANCE)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "KIND", "METHODS", "MIDDLEWARE"])
        # Columns are aligned: KIND starts at the same offset on every row.
        kind_col = lines[0].index("KIND")
        rows = {}
        for line in lines[1:]:
            if not line.strip():
                break
            self.assertEqual(line[kind_col - 2:kind_col], "  ", line)
            rows[line.split()[0]] = line
        names = [x["name"] for x in self.manifest["routes"]]
        self.assertEqual(sorted(rows), sorted(names))
        whoami = rows["conf.whoami"].split()
        self.assertEqual(whoami[1:4], ["typed", "POST", "auth"])
        self.assertIn("%d routes" % len(names), r.stdout)
        raw = [x for x in self.manifest["routes"] if x["handler"] == "raw"][0]
        self.assertIn(",".join(raw["methods"]), rows[raw["name"]])

    def test_openapi(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "openapi.json")
            r = donkey("generate", "openapi", "--server", CONFORMANCE, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                doc = json.load(f)
            self.assertEqual(doc["openapi"], "3.1.0")
            self.assertIn("title", doc["info"])
            self.assertIn("version", doc["info"])
            for route in self.manifest["routes"]:
                item = doc["paths"]["/" + route["name"]]
                self.assertEqual(sorted(item), sorted(m.lower() for m in route["methods"]))
                for op in item.values():
                    self.assertIn("200", op["responses"])
                    self.assertIn("500", op["responses"])
            echo = doc["paths"]["/conf.echo"]["post"]
            conf = [x for x in self.manifest["routes"] if x["name"] == "conf.echo"][0]
            self.assertEqual(echo["requestBody"]["content"]["application/json"]["schema"],
                             conf["input"])
            self.assertEqual(echo["responses"]["200"]["content"]["application/json"]["schema"],
                             conf["output"])
            self.assertEqual(echo["responses"]["400"]["content"]["application/json"]["schema"],
                             {"$ref": "#/components/schemas/Error"})
            err = doc["components"]["schemas"]["Error"]
            self.assertEqual(sorted(err["properties"]), ["details", "error", "message"])

            # Never overwritten without --force.
            with open(out, "w") as f:
                f.write("keep")
            r = donkey("generate", "openapi", "--server", CONFORMANCE, "--out", out)
            one_line_error(self, r, 1)
            self.assertIn("--force", r.stderr)
            with open(out) as f:
                self.assertEqual(f.read(), "keep")
            r = donkey("generate", "openapi", "--server", CONFORMANCE, "--out", out, "--force")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                self.assertEqual(json.load(f)["openapi"], "3.1.0")

        r = donkey("generate", "openapi", "--server", CONFORMANCE)   # stdout
        self.assertEqual(json.loads(r.stdout)["openapi"], "3.1.0")

    def test_openapi_summaries_servers_license_security_sse(self):
        r = donkey("generate", "openapi", "--server", CONFORMANCE, "--url",
                   "https://api.shop.test", "--license", "MIT", "--license-url",
                   "https://opensource.org/licenses/MIT", "--auth", "auth=bearer")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["servers"], [{"url": "https://api.shop.test"}])
        self.assertEqual(doc["info"]["license"],
                         {"name": "MIT", "url": "https://opensource.org/licenses/MIT"})
        for path, item in doc["paths"].items():
            for op in item.values():
                self.assertTrue(op.get("summary"), (path, op))
                self.assertIn("security", op)
        echo = doc["paths"]["/conf.echo"]["post"]
        self.assertEqual(echo["summary"], "Echo a greeting")        # dk_route_document()
        self.assertIn("description", echo)
        self.assertEqual(echo["security"], [])
        whoami = doc["paths"]["/conf.whoami"]["post"]
        self.assertEqual(whoami["security"], [{"auth": []}])
        self.assertIn("401", whoami["responses"])
        self.assertEqual(doc["components"]["securitySchemes"]["auth"],
                         {"type": "http", "scheme": "bearer"})
        sse = doc["paths"]["/conf.sse"]["get"]
        self.assertEqual(list(sse["responses"]["200"]["content"]), ["text/event-stream"])
        params = {p["name"]: p for p in sse["parameters"]}
        self.assertEqual(params["channel"]["in"], "query")
        self.assertEqual(params["channel"]["schema"]["type"], "array")
        self.assertTrue(params["channel"]["explode"])
        self.assertEqual(params["Last-Event-ID"]["in"], "header")
        # Defaults: a local server URL, no license.
        doc = json.loads(donkey("generate", "openapi", "--server", CONFORMANCE).stdout)
        self.assertEqual(doc["servers"], [{"url": "http://localhost:3000"}])
        self.assertNotIn("license", doc["info"])
        one_line_error(self, donkey("generate", "openapi", "--server", CONFORMANCE, "--auth",
                                    "auth=magic"), 2)

    def test_output_errors_exit_non_zero(self):
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            for args in (["routes", "--server", CONFORMANCE, "--json"],
                         ["routes", "--server", CONFORMANCE],
                         ["generate", "openapi", "--server", CONFORMANCE], ["help"]):
                r = subprocess.run([DONKEY] + args, stdout=full, stderr=subprocess.PIPE,
                                   text=True, timeout=60, env=base_env())
                self.assertEqual(r.returncode, 1, args)
                self.assertIn("cannot write the output", r.stderr, args)
                self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
        finally:
            os.close(full)

    def test_openapi_out_into_a_missing_directory(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "typo", "openapi.json")
            r = donkey("generate", "openapi", "--server", CONFORMANCE, "--out", out)
            one_line_error(self, r, 1)
            self.assertIn("does not exist", r.stderr)
            self.assertEqual(os.listdir(d), [])
            r = donkey("generate", "openapi", "--server", CONFORMANCE, "--out", "openapi.json",
                       cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(os.path.join(d, "openapi.json")))

    def test_generate_client(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "client")
            r = donkey("generate", "client", "--server", CONFORMANCE, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(os.path.join(out, "index.ts")), os.listdir(out))
            r = donkey("generate", "client", "--server", CONFORMANCE, "--out", out)
            one_line_error(self, r, 1)


class TestProject(unittest.TestCase):
    """`donkey init` → install → build → run → ctest; plugins and migrations."""

    @classmethod
    def setUpClass(cls):
        Installed.get()
        cls.dir = tempfile.mkdtemp(prefix="dk-cli-proj-")
        r = donkey("init", "shop", cwd=cls.dir)
        assert r.returncode == 0, r.stderr
        cls.root = os.path.join(cls.dir, "shop")
        configure_and_build(cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def ctest(self):
        r = subprocess.run(["ctest", "--test-dir", os.path.join(self.root, "build"),
                            "--output-on-failure", "--timeout", "60"], env=base_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout

    def test_a_layout(self):
        for f in ("CMakeLists.txt", "README.md", ".gitignore", "src/main.c", "src/plugins.def",
                  "src/plugins/greetings.c", "migrations/greetings/001_init.sql",
                  "tests/test_app.c", "cmake/embed_migrations.cmake"):
            self.assertTrue(os.path.exists(os.path.join(self.root, f)), f)
        with open(os.path.join(self.root, "CMakeLists.txt")) as f:
            self.assertIn("pkg_check_modules(DONKEY REQUIRED IMPORTED_TARGET donkey)", f.read())

    def test_b_runs_and_answers(self):
        app = App(os.path.join(self.root, "build", "shop"))
        try:
            self.assertEqual(post(app.port, "health.ping"), (200, {"ok": True}))
            status, body = post(app.port, "greetings.hello", b'{"name":"ann"}')
            self.assertEqual(status, 200)
            self.assertEqual(body["count"], 1)
            status, body = post(app.port, "greetings.hello", b"{}")
            self.assertEqual(status, 400)
            self.assertEqual(body["error"], "BAD_REQUEST")
        finally:
            app.stop()

    def test_c_ctest_harness(self):
        out = self.ctest()
        self.assertIn("test_app", out)

    def test_d_routes_default_binary(self):
        r = donkey("routes", cwd=os.path.join(self.root, "src"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("health.ping", r.stdout)
        self.assertIn("greetings.hello", r.stdout)
        r = donkey("generate", "openapi", cwd=self.root)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["info"]["title"], "shop")
        self.assertIn("/health.ping", doc["paths"])

    def test_e_refuses_to_overwrite(self):
        main = os.path.join(self.root, "src", "main.c")
        with open(main) as f:
            before = f.read()
        r = donkey("init", "shop", cwd=self.dir)
        one_line_error(self, r, 1)
        self.assertIn("already exists", r.stderr)
        r = donkey("plugin", "new", "greetings", cwd=self.root)
        one_line_error(self, r, 1)
        with open(main) as f:
            self.assertEqual(f.read(), before)
        r = donkey("plugin", "new", "health", cwd=self.root)
        one_line_error(self, r, 2)

    def test_f_plugin_and_migrations(self):
        r = donkey("plugin", "new", "billing", "--schema", "--config", "--deps", "greetings",
                   "--handlers", "--middleware", cwd=self.root)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"^\s*(APP_PLUGIN\(billing, .*\))$", r.stdout, re.M)
        self.assertTrue(m, r.stdout)
        line = m.group(1)
        r = donkey("plugin", "new", "audit", cwd=self.root)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("APP_PLUGIN(audit, NULL)", r.stdout)
        for f in ("src/plugins/billing.c", "src/plugins/billing.h",
                  "migrations/billing/001_init.sql", "tests/test_billing.c",
                  "src/plugins/audit.c", "tests/test_audit.c"):
            self.assertTrue(os.path.exists(os.path.join(self.root, f)), f)

        # Numbering: next free number per plugin.
        r = donkey("migration", "new", "audit", "create_log", cwd=self.root)
        self.assertEqual(r.returncode, 0, r.stderr)
        r2 = donkey("migration", "new", "audit", "add_level", cwd=self.root)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        r3 = donkey("migration", "new", "billing", "add_note", cwd=self.root)
        self.assertEqual(r3.returncode, 0, r3.stderr)
        mig = os.path.join(self.root, "migrations")
        self.assertTrue(os.path.exists(os.path.join(mig, "audit", "001_create_log.sql")))
        self.assertTrue(os.path.exists(os.path.join(mig, "audit", "002_add_level.sql")))
        self.assertTrue(os.path.exists(os.path.join(mig, "billing", "002_add_note.sql")))
        r = donkey("migration", "new", "nosuch", "x", cwd=self.root)
        one_line_error(self, r, 1)

        with open(os.path.join(mig, "audit", "001_create_log.sql"), "a") as f:
            f.write("CREATE TABLE audit_log (message TEXT NOT NULL);\n")
        with open(os.path.join(mig, "audit", "002_add_level.sql"), "a") as f:
            f.write("ALTER TABLE audit_log ADD COLUMN level TEXT;\n")
        with open(os.path.join(mig, "billing", "002_add_note.sql"), "a") as f:
            f.write("ALTER TABLE billing_items ADD COLUMN note TEXT;\n")
        with open(os.path.join(self.root, "src", "plugins.def"), "a") as f:
            f.write(line + "\nAPP_PLUGIN(audit, NULL)\n")

        build(self.root)
        out = self.ctest()
        self.assertIn("test_billing", out)
        self.assertIn("test_audit", out)

        db = os.path.join(self.dir, "shop.db")
        app = App(os.path.join(self.root, "build", "shop"), "--db", "sqlite:" + db)
        try:
            req = urllib.request.Request("http://127.0.0.1:%d/billing.hello" % app.port,
                                         data=b'{"name":"bob"}', method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                self.assertEqual(resp.headers.get("X-billing"), "1")       # middleware
                body = json.loads(resp.read())
            self.assertEqual(body, {"message": "Hello, bob!", "count": 1})  # config default
            self.assertEqual(post(app.port, "billing.info"), (200, {"plugin": "billing"}))
            self.assertEqual(post(app.port, "audit.hello", b'{"name":"x"}'),
                             (200, {"message": "Hello, x!"}))
        finally:
            app.stop()
        con = sqlite3.connect(db)
        try:
            applied = set(con.execute("SELECT plugin, name FROM donkey_migrations").fetchall())
            cols = [row[1] for row in con.execute("PRAGMA table_info(audit_log)")]
            billing_cols = [row[1] for row in con.execute("PRAGMA table_info(billing_items)")]
        finally:
            con.close()
        for pm in (("audit", "001_create_log"), ("audit", "002_add_level"),
                   ("billing", "001_init"), ("billing", "002_add_note"),
                   ("greetings", "001_init")):
            self.assertIn(pm, applied)
        self.assertEqual(cols, ["message", "level"])
        self.assertIn("note", billing_cols)

        # The binary carries its migrations: it runs from anywhere.
        elsewhere = os.path.join(self.dir, "bin-copy")
        os.makedirs(elsewhere)
        shutil.copy(os.path.join(self.root, "build", "shop"), elsewhere)
        app = App(os.path.join(elsewhere, "shop"), "--db", "sqlite:" + db + "2")
        try:
            self.assertEqual(post(app.port, "audit.hello", b'{"name":"y"}')[0], 200)
        finally:
            app.stop()


    def test_g_migration_empty_then_edited(self):
        # Issue 16: what `donkey dev` does after `donkey migration new`: the still
        # empty migration is built in and the app restarts. Start-up refuses it;
        # once written it is applied; editing it afterwards is a start-up error.
        if not os.path.exists(os.path.join(self.root, "src", "plugins", "audit.c")):
            self.skipTest("needs test_f_plugin_and_migrations")
        r = donkey("migration", "new", "audit", "add_source", cwd=self.root)
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.root, "migrations", "audit", "003_add_source.sql")
        db = "sqlite:" + os.path.join(self.dir, "checksum.db")
        binary = os.path.join(self.root, "build", "shop")

        def start_fails(needles):
            build(self.root)
            r = subprocess.run([binary, "--port", str(free_port()), "--db", db],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30, env=base_env())
            self.assertNotEqual(r.returncode, 0, r.stdout)
            for n in needles:
                self.assertIn(n, r.stdout)

        start_fails(["plugin 'audit': migration 003_add_source has no SQL statement"])
        with open(path, "a") as f:
            f.write("ALTER TABLE audit_log ADD COLUMN source TEXT;\n")
        build(self.root)
        App(binary, "--db", db).stop()
        with open(path, "a") as f:
            f.write("ALTER TABLE audit_log ADD COLUMN origin TEXT;\n")
        start_fails(["plugin 'audit': migration 003_add_source was edited after it was applied",
                     "write a new migration"])

class TestScaffoldChecks(unittest.TestCase):
    """`plugin new` checks --deps against src/plugins.def, refuses the library's
    names and upper-case deps, and registers with --register; `init .`."""

    def test_init_dot_in_an_empty_directory(self):
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "inventory")
            os.makedirs(root)
            r = donkey("init", ".", cwd=root)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("cd .", r.stdout)
            with open(os.path.join(root, "CMakeLists.txt")) as f:
                self.assertIn("project(inventory ", f.read())
            self.assertTrue(os.path.exists(os.path.join(root, "src", "plugins.def")))
            # A directory whose name is not a project name: one clear line.
            bad = os.path.join(d, "My-App")
            os.makedirs(bad)
            r = donkey("init", ".", cwd=bad)
            one_line_error(self, r, 2)
            self.assertIn("My-App", r.stderr)
            self.assertEqual(os.listdir(bad), [])

    def test_plugin_new_checks_names_and_registers(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(donkey("init", "shop", cwd=d).returncode, 0)
            root = os.path.join(d, "shop")
            before = sorted(os.listdir(os.path.join(root, "src", "plugins")))
            r = donkey("plugin", "new", "billing", "--deps", "auth", cwd=root)
            one_line_error(self, r, 1)
            self.assertIn("'auth'", r.stderr)
            self.assertIn("greetings", r.stderr)          # what exists instead
            r = donkey("plugin", "new", "billing", "--deps", "greetings,auth", cwd=root)
            one_line_error(self, r, 1)
            r = donkey("plugin", "new", "billing", "--deps", "Greetings", cwd=root)
            one_line_error(self, r, 2)
            self.assertIn("lowercase", r.stderr)
            for name in ("dk", "donkey", "dk_cache", "donkey_x"):
                r = donkey("plugin", "new", name, cwd=root)
                one_line_error(self, r, 2)
                self.assertIn("collides", r.stderr)
            self.assertEqual(sorted(os.listdir(os.path.join(root, "src", "plugins"))), before)

            defs = os.path.join(root, "src", "plugins.def")
            r = donkey("plugin", "new", "billing", "--deps", "greetings", "--register", cwd=root)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(defs) as f:
                text = f.read()
            self.assertEqual(text.count("APP_PLUGIN(billing, NULL)"), 1, text)
            # Now billing is a plugin other plugins may depend on.
            r = donkey("plugin", "new", "invoices", "--deps", "billing,greetings", "--config",
                       "--register", cwd=root)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(defs) as f:
                text = f.read()
            self.assertIn('APP_PLUGIN(invoices, "{\\"greeting\\":\\"Hello\\"}")\n', text)
            # --force rewrites the files but does not register twice.
            r = donkey("plugin", "new", "billing", "--register", "--force", cwd=root)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(defs) as f:
                self.assertEqual(f.read().count("APP_PLUGIN(billing,"), 1)
            configure_and_build(root)
            out = subprocess.run([os.path.join(root, "build", "shop"), "--routes-json"],
                                 stdout=subprocess.PIPE, text=True, timeout=60,
                                 env=base_env()).stdout
            names = [x["name"] for x in json.loads(out)["routes"]]
            self.assertIn("billing.hello", names)
            self.assertIn("invoices.hello", names)
            # A scaffolded application answers --help like every donkey binary.
            r = subprocess.run([os.path.join(root, "build", "shop"), "--help"],
                               stdout=subprocess.PIPE, text=True, timeout=60, env=base_env())
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: shop [OPTIONS]", r.stdout)
            self.assertIn("--health-path PATH", r.stdout)
            r = subprocess.run([os.path.join(root, "build", "shop"), "--version"],
                               stdout=subprocess.PIPE, text=True, timeout=60, env=base_env())
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^shop 0\.1\.0 \(donkey \d+\.\d+\.\d+\)\n$")


class DevSession:
    """`donkey init NAME` in a temporary directory, configured here (so a
    sanitizer build passes its flags), then `donkey dev -- --port P APP_ARGS`
    running until stop(). Use as a context manager."""

    def __init__(self, name, *app_args):
        Installed.get()
        self.dir = tempfile.mkdtemp(prefix="dk-cli-dev-")
        r = donkey("init", name, cwd=self.dir)
        assert r.returncode == 0, r.stderr
        self.root = os.path.join(self.dir, name)
        r = subprocess.run(["cmake", "-S", self.root, "-B", os.path.join(self.root, "build")]
                           + Installed.cmake_args(), env=base_env(Installed.env()),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "dev.log"), "w+")
        self.proc = subprocess.Popen([DONKEY, "dev", "--", "--port", str(self.port)]
                                     + list(app_args), cwd=self.root, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=base_env(Installed.env()),
                                     start_new_session=True)

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def answer(self):
        try:
            return post(self.port, "health.ping", timeout=1)
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class TestDev(unittest.TestCase):
    def test_dev_rebuilds_and_keeps_last_good_build(self):
        dev = DevSession("devapp")
        try:
            wait_for(lambda: dev.answer() == (200, {"ok": True}), 180,
                     "the first build to answer")

            health = os.path.join(dev.root, "src", "routes", "health.c")
            with open(health) as f:
                src = f.read()
            self.assertIn('"ok", 1', src)
            with open(health, "w") as f:
                f.write(src.replace('"ok", 1', '"ok", 0'))
            wait_for(lambda: dev.answer() == (200, {"ok": False}), 120, "the rebuilt answer")
            pids = re.findall(r"\(pid (\d+)\)", dev.output())
            self.assertGreaterEqual(len(pids), 2, dev.output())
            good_pid = pids[-1]

            failures = dev.output().count("build failed")
            with open(health, "a") as f:
                f.write("\nthis is not C;\n")
            wait_for(lambda: dev.output().count("build failed") > failures, 120,
                     "the broken build to be reported\n" + dev.output())
            for _ in range(10):
                self.assertEqual(dev.answer(), (200, {"ok": False}))
                time.sleep(0.1)
            self.assertEqual(re.findall(r"\(pid (\d+)\)", dev.output())[-1], good_pid)
            self.assertIsNone(dev.proc.poll())
        finally:
            dev.stop()
        self.assertEqual(dev.proc.returncode, 0, dev.output())
        # Ctrl-C stopped the application too.
        wait_for(lambda: dev.answer() is None, 10, "the application to stop")
        shutil.rmtree(dev.dir, ignore_errors=True)

    def test_dev_migration_created_empty_then_edited(self):
        # Issue 16, item 1, as a new user meets it: `donkey migration new` under
        # `donkey dev` rebuilds and restarts with the still-empty migration.
        # Start-up refuses it (it is not recorded); once written it is applied;
        # editing it afterwards stops the start-up with a message that says to
        # write a new migration. The database is a file, so restarts remember.
        db = "sqlite:" + os.path.join(tempfile.mkdtemp(prefix="dk-cli-devdb-"), "dev.db")
        dev = DevSession("migapp", "--db", db)
        try:
            wait_for(lambda: dev.answer() == (200, {"ok": True}), 180,
                     "the first build to answer")
            r = donkey("migration", "new", "greetings", "add_note", cwd=dev.root)
            self.assertEqual(r.returncode, 0, r.stderr)
            path = os.path.join(dev.root, "migrations", "greetings", "002_add_note.sql")
            wait_for(lambda: "migration 002_add_note has no SQL statement" in dev.output(),
                     120, "the empty migration to be refused\n" + dev.output())
            self.assertIn("plugin 'greetings'", dev.output())
            wait_for(lambda: "the application exited" in dev.output(), 20, "the exit")
            self.assertIsNone(dev.answer())

            with open(path, "a") as f:
                f.write("CREATE TABLE greetings_notes (text TEXT);\n")
            wait_for(lambda: dev.answer() == (200, {"ok": True}), 120,
                     "the written migration to be applied\n" + dev.output())

            exits = dev.output().count("the application exited")
            with open(path, "a") as f:
                f.write("ALTER TABLE greetings_notes ADD COLUMN at TEXT;\n")
            wait_for(lambda: dev.output().count("the application exited") > exits, 120,
                     "the edited migration to stop the start-up\n" + dev.output())
            out = dev.output()
            self.assertIn("plugin 'greetings': migration 002_add_note was edited after it was "
                          "applied", out)
            self.assertIn("write a new migration", out)
            self.assertIsNone(dev.answer())
        finally:
            dev.stop()
        shutil.rmtree(dev.dir, ignore_errors=True)
        shutil.rmtree(os.path.dirname(db[len("sqlite:"):]), ignore_errors=True)

if __name__ == "__main__":
    unittest.main()
