"""Helpers for black-box tests: start an example app on a free port, talk HTTP
over real sockets (standard library only)."""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("DK_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CONFORMANCE = os.path.join(BUILD, "examples", "conformance", "conformance")


# When set (e.g. by the http.pg CTest entry), servers started without --db
# use this PostgreSQL database instead of sqlite::memory:, emptied first so
# each server starts from a blank database as with the in-memory default.
TEST_DB_URL = os.environ.get("DK_TEST_DB_URL")


def reset_test_db(url):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SANITIZER_MARKERS = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                     "ERROR: LeakSanitizer", "runtime error:")


class Server:
    """A running example application. Use as a context manager."""

    def __init__(self, *args, binary=CONFORMANCE, port=None, env=None, wait=True):
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="dk-server-", suffix=".log", delete=False)
        e = dict(os.environ)
        supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp")
        e.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.abspath(supp))
        e["NO_COLOR"] = "1"
        if env:
            e.update(env)
        args = list(args)
        if TEST_DB_URL and "--db" not in args and not any(a.startswith("--db=") for a in args):
            reset_test_db(TEST_DB_URL)
            args += ["--db", TEST_DB_URL]
        self.args = [binary, "--port", str(self.port)] + args
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.03)
        raise RuntimeError("server did not start:\n" + self.output())

    def output(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def stop(self, sig=None, timeout=15):
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        out = self.output()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
        # A sanitizer build's report fails the test even when every response
        # looked right (a data race, a leak at exit, undefined behaviour).
        for marker in SANITIZER_MARKERS:
            if marker in out and exc[0] is None:
                i = out.index(marker)
                raise AssertionError("server reported %r:\n%s" % (marker, out[max(0, i - 200):i + 4000]))

    # --- requests ---
    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = self.conn(timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)) or (body is not None and not isinstance(body, (bytes, str))):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return Response(r.status, r.getheaders(), data)

    def call(self, route, body=None, headers=None, timeout=10):
        """POST /<route> with a JSON body (dict) or raw text."""
        if body is None:
            body = {}
        return self.request("POST", "/" + route, body, headers, timeout)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.header_list = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


def raw_exchange(port, data, timeout=5, read_until_close=True, expect=None, source=None):
    """Sends raw bytes, returns everything read until close/timeout (or until
    `expect` responses have arrived, counting 'HTTP/1.1 ' prefixes). `source`:
    a local address to connect from (any 127/8 address works on Linux)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    s.sendall(data)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if expect is not None and out.count(b"HTTP/1.1 ") >= expect and _complete(out, expect):
                break
    finally:
        s.close()
    return out


def _complete(buf, n):
    # Each response we send carries Content-Length; check the last one is whole.
    parts = buf.split(b"HTTP/1.1 ")
    last = b"HTTP/1.1 " + parts[-1]
    head, sep, body = last.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True
