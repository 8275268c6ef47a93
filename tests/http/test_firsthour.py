"""What a new user meets in the first hour (issue 16): --help/--version on
every application binary, the built-in health endpoints, the request log.
Black-box through real sockets. Env: DK_BUILD_DIR, DK_SOURCE_DIR."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from dk import BUILD, CONFORMANCE, Server, free_port

SOURCE = os.path.abspath(os.environ.get(
    "DK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BOARD = os.path.join(BUILD, "examples", "board", "board")


def run(binary, *args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=e)


def parser_flags():
    """Every --flag dk_app_options_parse() compares an argument with."""
    with open(os.path.join(SOURCE, "src", "app", "app.c")) as f:
        text = f.read()
    return sorted(set(re.findall(r'strcmp\(a, "(--[a-z0-9-]+)"\)', text)))


class TestHelp(unittest.TestCase):
    def test_help_lists_every_flag_default_and_env(self):
        flags = parser_flags()
        self.assertIn("--port", flags)
        self.assertIn("--max-waiting", flags)
        for binary in (CONFORMANCE, BOARD):
            for opt in ("--help", "-h"):
                r = run(binary, opt, "--port", "not-a-number")   # --help wins, nothing starts
                self.assertEqual(r.returncode, 0, (binary, r.stderr))
                self.assertEqual(r.stderr, "")
                out = r.stdout
                self.assertTrue(out.startswith("Usage: " + os.path.basename(binary)), out[:80])
                for flag in flags:
                    self.assertRegex(out, r"(?m)^  %s\b" % re.escape(flag), flag)
        out = run(CONFORMANCE, "--help").stdout
        # Defaults and the variables that set them.
        self.assertRegex(out, r"--port N .*\n\s+default 3000; env PORT\n")
        self.assertRegex(out, r"--db URL .*\n\s+default sqlite::memory:; env DONKEY_DATABASE_URL")
        self.assertRegex(out, r"--max-body BYTES .*\n\s+default 1m; env DONKEY_MAX_BODY")
        self.assertRegex(out, r"--read-timeout DUR .*\n\s+default 10s; env DONKEY_READ_TIMEOUT")
        self.assertRegex(out, r"--log-level LEVEL .*\n\s+default info; env DONKEY_LOG_LEVEL")
        # The board shows its own default database and its own options.
        out = run(BOARD, "--help").stdout
        self.assertIn("default sqlite:board.db", out)
        self.assertIn("--data-dir DIR", out)

    def test_version(self):
        r = run(CONFORMANCE, "--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^conformance \(donkey \d+\.\d+\.\d+\)\n$")

    def test_environment_sets_a_flag_and_the_flag_wins(self):
        env = {"DONKEY_MAX_BODY": "1k"}
        with Server(env=env) as srv:
            r = srv.call("conf.echo", {"name": "x" * 2000})
            self.assertEqual(r.status, 413)
        with Server("--max-body", "64k", env=env) as srv:
            r = srv.call("conf.echo", {"name": "x" * 2000})
            self.assertEqual(r.status, 400)    # read and validated (maxLength 100), not 413
        # The log level too: the flag wins over DONKEY_LOG_LEVEL.
        with Server("--log-level", "warn", env={"DONKEY_LOG_LEVEL": "debug"}) as srv:
            srv.call("conf.echo", {"name": "a"})
            time.sleep(0.3)
            self.assertNotIn("INFO", srv.output())
        with Server(env={"DONKEY_LOG_LEVEL": "warn"}) as srv:
            srv.call("conf.echo", {"name": "a"})
            time.sleep(0.3)
            self.assertNotIn("INFO", srv.output())
        r = run(CONFORMANCE, "--port", "0", env={"DONKEY_MAX_BODY": "lots"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("DONKEY_MAX_BODY", r.stderr)


class TestProbes(unittest.TestCase):
    def test_healthz_and_readyz_by_default(self):
        with Server() as srv:
            r = srv.request("GET", "/healthz")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["content-type"], "application/json")
            self.assertEqual(r.json, {"status": "ok"})
            r = srv.request("GET", "/readyz")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["status"], "ok")
            self.assertEqual(r.json["checks"]["database"], "ok")
            self.assertNotIn("redis", r.json["checks"])
            self.assertEqual(srv.request("HEAD", "/readyz").status, 200)
            r = srv.request("POST", "/healthz")
            self.assertEqual(r.status, 405)
            self.assertEqual(r.headers["allow"], "GET, HEAD")
            self.assertEqual(r.json["error"], "METHOD_NOT_ALLOWED")

    def test_names_are_configurable_and_can_be_turned_off(self):
        with Server("--health-path", "/live", "--ready-path", "off") as srv:
            self.assertEqual(srv.request("GET", "/live").json, {"status": "ok"})
            self.assertEqual(srv.request("GET", "/healthz").status, 404)
            self.assertEqual(srv.request("GET", "/readyz").status, 404)
        r = run(CONFORMANCE, "--health-path", "healthz")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--health-path", r.stderr)

    @unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
    def test_readyz_follows_redis(self):
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="dk-redis-")
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", tmp],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    self.assertLess(time.time(), deadline, "redis-server did not start")
                    time.sleep(0.05)
            with Server("--redis", "redis://127.0.0.1:%d" % port) as srv:
                r = srv.request("GET", "/readyz")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json["checks"]["redis"], "ok")
                redis.kill()
                redis.wait(timeout=10)
                r = srv.request("GET", "/readyz", timeout=15)
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.json["status"], "unavailable")
                self.assertEqual(r.json["checks"]["redis"], "unreachable")
                self.assertEqual(r.json["checks"]["database"], "ok")
                self.assertEqual(srv.request("GET", "/healthz").status, 200)   # still alive
        finally:
            if redis.poll() is None:
                redis.kill()
                redis.wait(timeout=10)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_readyz_503_during_shutdown_while_healthz_stays_200(self):
        with Server() as srv:
            # A running 2 s job keeps the shutdown going.
            r = srv.call("conf.job", {"name": "slow", "data": {}})
            self.assertEqual(r.status, 200, r)
            jid = r.json["id"]
            deadline = time.time() + 5
            while srv.call("conf.jobGet", {"id": jid}).json["status"] != "running":
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            # Keep-alive connections opened before the signal (new ones are refused).
            conns = [srv.conn(), srv.conn()]
            for c in conns:
                c.request("GET", "/readyz")
                first = c.getresponse()
                first.read()
                self.assertEqual(first.status, 200)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(srv.proc.poll())        # still draining the job
            conns[0].request("GET", "/readyz")
            r = conns[0].getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 503, body)
            self.assertEqual(body["status"], "unavailable")
            self.assertEqual(body["checks"]["shutdown"], "in progress")
            conns[1].request("GET", "/healthz")
            r = conns[1].getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, {"status": "ok"}))
            for c in conns:
                c.close()
            self.assertEqual(srv.stop(), 0)


class TestStartupErrors(unittest.TestCase):
    def start_fails(self, *args):
        r = run(CONFORMANCE, "--port", "0", *args)
        self.assertEqual(r.returncode, 1, r)
        lines = r.stderr.strip("\n").split("\n")
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("error: start-up failed: "), lines[0])
        message = lines[0][len("error: start-up failed: "):]
        # Printed once: not also as a log line on stdout.
        self.assertNotIn(message, r.stdout)
        self.assertNotIn("ERROR", r.stdout)
        return message, r

    def test_a_path_without_scheme_suggests_sqlite(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.db")
            message, _ = self.start_fails("--db", path)
            self.assertIn("did you mean sqlite:%s?" % path, message)
            self.assertFalse(os.path.exists(path))

    def test_database_errors_name_the_path(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "missing", "x.db")
            message, _ = self.start_fails("--db", "sqlite:" + path)
            self.assertIn("sqlite:" + path, message)
            self.assertIn("directory %s does not exist" % os.path.dirname(path), message)
        port = free_port()
        message, _ = self.start_fails("--db", "postgres://app:s3cret@127.0.0.1:%d/app" % port)
        self.assertIn("postgres://app:***@127.0.0.1:%d/app" % port, message)
        self.assertNotIn("s3cret", message)
        self.assertNotIn("\n", message)

    def test_json_format_gets_one_log_entry_instead(self):
        r = run(CONFORMANCE, "--port", "0", "--db", "/nowhere.db", "--log-format", "json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "")
        errors = [json.loads(l) for l in r.stdout.splitlines() if '"level":"error"' in l]
        self.assertEqual(len(errors), 1, r.stdout)
        self.assertIn("sqlite:/nowhere.db", errors[0]["error"])

    def test_failed_start_says_nothing_about_running_jobs(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            r = run(CONFORMANCE, "--port", str(s.getsockname()[1]))
        finally:
            s.close()
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("in use", r.stderr)
        self.assertNotIn("still running", r.stdout + r.stderr)

    def test_ipv6_host_is_printed_in_brackets(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        srv = Server("--host", "::1", wait=False)
        try:
            deadline = time.time() + 15
            while "Server running" not in srv.output():
                self.assertIsNone(srv.proc.poll(), srv.output())
                self.assertLess(time.time(), deadline, srv.output())
                time.sleep(0.05)
            self.assertIn("Server running at http://[::1]:%d" % srv.port, srv.output())
        finally:
            srv.__exit__(None, None, None)


def log_lines(srv, needle):
    return [l for l in srv.output().splitlines() if needle in l]


class TestRequestLog(unittest.TestCase):
    def wait_lines(self, srv, needle, n):
        deadline = time.time() + 5
        while len(log_lines(srv, needle)) < n and time.time() < deadline:
            time.sleep(0.05)
        return log_lines(srv, needle)

    def test_one_line_per_request_in_development(self):
        with Server("--log-format", "json") as srv:
            rid = srv.call("conf.echo", {"name": "ann"}).headers["x-request-id"]
            srv.call("conf.echo", {})                           # typed 400
            srv.request("POST", "/conf.nothing")                # 404
            srv.request("GET", "/healthz")                      # probes are not logged
            lines = self.wait_lines(srv, '"durationUs"', 3)
            entries = [json.loads(l) for l in lines]
            self.assertEqual([e["status"] for e in entries], [200, 400, 404], lines)
            e = entries[0]
            self.assertEqual(e["level"], "info")
            self.assertEqual(e["method"], "POST")
            self.assertEqual(e["route"], "conf.echo")
            self.assertEqual(e["path"], "/conf.echo")
            self.assertEqual(e["requestId"], rid)
            self.assertIsInstance(e["durationUs"], int)
            self.assertRegex(e["message"], r"^POST /conf\.echo 200 \d+\.\d{3}ms$")

    def test_typed_and_raw_4xx_are_logged_alike(self):
        with Server("--log-format", "json") as srv:
            self.assertEqual(srv.call("conf.echo", {}).status, 400)          # typed
            self.assertEqual(srv.call("conf.fail", {"status": 409}).status, 409)  # typed throw
            self.assertEqual(srv.request("GET", "/conf.sse?channel=").status, 400)  # raw
            lines = self.wait_lines(srv, "HTTP error thrown", 3)
            levels = {json.loads(l)["route"]: json.loads(l)["level"] for l in lines}
            self.assertEqual(levels, {"conf.echo": "warn", "conf.fail": "warn",
                                      "conf.sse": "warn"}, lines)

    def test_off_in_production_and_sampled_by_flag(self):
        with Server(env={"DONKEY_ENV": "production"}) as srv:
            for _ in range(5):
                srv.call("conf.echo", {"name": "a"})
            srv.call("conf.echo", {"name": "b"})
            time.sleep(0.5)
            self.assertEqual(log_lines(srv, "durationUs"), [])
        with Server("--access-log", "on", env={"DONKEY_ENV": "production"}) as srv:
            srv.call("conf.echo", {"name": "a"})
            self.assertEqual(len(self.wait_lines(srv, "durationUs", 1)), 1)
        with Server("--access-log", "0.25") as srv:
            for _ in range(20):
                srv.call("conf.echo", {"name": "a"})
            time.sleep(0.5)
            self.assertEqual(len(log_lines(srv, "durationUs")), 5)
        with Server("--access-log", "off") as srv:
            srv.call("conf.echo", {"name": "a"})
            time.sleep(0.5)
            self.assertEqual(log_lines(srv, "durationUs"), [])
        r = run(CONFORMANCE, "--access-log", "sometimes")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
