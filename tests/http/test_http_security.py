"""Security review findings at the HTTP level (issue 14), through real sockets
against the conformance app: request framing (smuggling shapes), Content-Type
of typed routes, trusted proxies, CORS configuration, per-IP connection caps,
descriptor exhaustion, Secure cookies and HSTS."""
import http.client
import json
import os
import resource
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from dk import CONFORMANCE, Response, Server, free_port
from test_board import BOARD, PASSWORD, SqliteDb, board_server, session_cookie, uname
from test_tls import make_cert


def exchange(port, data, timeout=5, source=None):
    """Sends raw bytes (from local address `source`); returns (bytes read, True
    if the server closed the connection before `timeout`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def parse(out):
    """(status, lower-cased headers, body) of the first response in `out`."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    n = int(headers.get("content-length", len(body)))
    return status, headers, body[:n]


ECHO = b"POST /conf.echo HTTP/1.1\r\n"
BODY = b'{"name":"x"}'


class Framing(unittest.TestCase):
    """RFC 9112 framing: ambiguous requests answer a JSON 400 and the
    connection is closed, so nothing after them can be read as a request."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def refused(self, data):
        # A second, valid request is pipelined after the bad one: it must not
        # be answered (the connection closes after the 400).
        follow = ECHO + b"Host: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(BODY), BODY)
        t0 = time.time()
        out, closed = exchange(self.srv.port, data + follow)
        self.assertTrue(closed, "connection left open: %r" % out[:300])
        self.assertLess(time.time() - t0, 3)
        status, headers, body = parse(out)
        self.assertEqual(status, 400, out[:300])
        self.assertNotIn(b"HTTP/1.1 200", out)  # the pipelined request was not served
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        self.assertEqual(json.loads(body)["error"], "BAD_REQUEST")
        return body

    def test_content_length_and_transfer_encoding(self):
        body = self.refused(ECHO + b"Host: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"c\r\n" + BODY + b"\r\n0\r\n\r\n")
        self.assertIn(b"Transfer-Encoding", body)

    def test_transfer_encoding_then_content_length(self):
        self.refused(ECHO + b"Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                     b"c\r\n" + BODY + b"\r\n0\r\n\r\n")

    def test_differing_content_lengths(self):
        self.refused(ECHO + b"Host: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 12\r\nContent-Length: 5\r\n\r\n" + BODY)

    def test_invalid_second_content_length(self):
        self.refused(ECHO + b"Host: x\r\nContent-Length: 12\r\nContent-Length: 12x\r\n\r\n" + BODY)

    def test_invalid_content_length_h2o(self):
        # h2o refuses this one itself; its answer is rewritten as a JSON error.
        self.refused(ECHO + b"Host: x\r\nContent-Length: +12\r\n\r\n" + BODY)

    def test_h2o_body_limit_answer_is_json(self):
        out, closed = exchange(self.srv.port, ECHO + b"Host: x\r\nContent-Length: 2000000\r\n\r\n")
        status, headers, body = parse(out)
        self.assertEqual(status, 413)
        self.assertTrue(closed)
        self.assertEqual(json.loads(body)["error"], "PAYLOAD_TOO_LARGE")

    def test_identical_content_lengths_accepted(self):
        # RFC 9110 8.6 lets a recipient accept identical repeated values.
        out, _ = exchange(self.srv.port, ECHO + b"Host: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 12\r\nContent-Length: 12\r\nConnection: close\r\n\r\n" + BODY)
        self.assertEqual(parse(out)[0], 200, out)

    def test_transfer_encoding_other_than_chunked(self):
        for te in (b"gzip, chunked", b"chunked, gzip", b"identity"):
            with self.subTest(te=te):
                self.refused(ECHO + b"Host: x\r\nTransfer-Encoding: " + te + b"\r\n\r\n"
                             b"c\r\n" + BODY + b"\r\n0\r\n\r\n")

    def test_two_transfer_encoding_headers(self):
        self.refused(ECHO + b"Host: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"c\r\n" + BODY + b"\r\n0\r\n\r\n")
        self.refused(ECHO + b"Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"c\r\n" + BODY + b"\r\n0\r\n\r\n")

    def test_transfer_encoding_on_http10(self):
        self.refused(b"POST /conf.echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nc\r\n" + BODY + b"\r\n0\r\n\r\n")

    def test_host_missing_or_repeated(self):
        self.refused(ECHO + b"Content-Length: 12\r\n\r\n" + BODY)
        self.refused(ECHO + b"Host: a\r\nHost: b\r\nContent-Length: 12\r\n\r\n" + BODY)
        self.refused(b"GET /conf.raw HTTP/1.1\r\n\r\n")

    def test_valid_requests_still_served(self):
        # Chunked alone, case-insensitive "Chunked", HTTP/1.0 without Host,
        # and pipelined requests on one keep-alive connection.
        ok = ECHO + b"Host: x\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n" \
            b"c\r\n" + BODY + b"\r\n0\r\n\r\n"
        ok += ECHO + b"Host: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n" + BODY
        ok += ECHO + b"Host: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n" \
            b"Connection: close\r\n\r\n" + BODY
        out, closed = exchange(self.srv.port, ok)
        self.assertEqual(out.count(b"HTTP/1.1 200 "), 3, out)
        out, _ = exchange(self.srv.port, b"POST /conf.echo HTTP/1.0\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 12\r\n\r\n" + BODY)
        self.assertEqual(parse(out)[0], 200, out)


class ContentType(unittest.TestCase):
    """Typed routes take application/json (any parameters, and +json types)
    or no Content-Type; anything else is 415 UNSUPPORTED_MEDIA_TYPE."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def post(self, route, content_type, body=BODY):
        h = b"POST /" + route + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if content_type is not None:
            h += b"Content-Type: " + content_type + b"\r\n"
        out, _ = exchange(self.srv.port, h + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return parse(out)

    def test_json_types_accepted(self):
        for ct in (None, b"application/json", b"application/json; charset=utf-8",
                   b"Application/JSON;charset=UTF-8", b"application/vnd.api+json",
                   b"application/merge-patch+json; charset=utf-8"):
            with self.subTest(ct=ct):
                status, _, body = self.post(b"conf.echo", ct)
                self.assertEqual(status, 200, body)
                self.assertIn("x", json.loads(body)["message"])

    def test_other_types_refused_415(self):
        for ct in (b"text/plain", b"text/plain;charset=UTF-8", b"application/x-www-form-urlencoded",
                   b"multipart/form-data; boundary=xyz", b"application/jsonp", b"text/json",
                   b"application/json-seq", b"", b"application/+json"):
            with self.subTest(ct=ct):
                status, headers, body = self.post(b"conf.echo", ct)
                self.assertEqual(status, 415, body)
                self.assertTrue(headers["content-type"].startswith("application/json"))
                self.assertEqual(json.loads(body)["error"], "UNSUPPORTED_MEDIA_TYPE")

    def test_every_typed_route(self):
        # A route without an input schema and an empty body: still refused.
        status, _, body = self.post(b"conf.crash", b"text/plain", b"")
        self.assertEqual(status, 415, body)
        status, _, body = self.post(b"conf.notes.add", b"application/x-www-form-urlencoded",
                                    b"title=a&body=b")
        self.assertEqual(status, 415, body)
        # Raw routes choose for themselves.
        status, _, body = self.post(b"conf.raw", b"text/plain", b"hello")
        self.assertNotEqual(status, 415, body)


def ip_seen(port, headers, source="127.0.0.1"):
    """conf.ip through a raw socket from `source`, with extra header lines."""
    out, _ = exchange(port, b"POST /conf.ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                      headers + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                      source=source)
    status, _, body = parse(out)
    assert status == 200, out
    return json.loads(body)["ip"]


class TrustedProxies(unittest.TestCase):
    """--trust-proxy: X-Forwarded-For is walked from the right; single-address
    headers count only when named with --client-ip-header."""

    def test_client_cannot_choose_its_ip(self):
        with Server("--trust-proxy", "127.0.0.1", "--trust-proxy", "10.0.0.0/8") as srv:
            p = srv.port
            # The proxy (127.0.0.1) appended the real client, 198.51.100.9,
            # to whatever the client sent.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 1.2.3.4, 198.51.100.9\r\n"), "198.51.100.9")
            # Trusted hops on the right are skipped.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 1.2.3.4, 198.51.100.9, 10.0.0.7\r\n"),
                             "198.51.100.9")
            # The proxy added a header line of its own instead of appending.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 1.2.3.4\r\n"
                                        b"X-Forwarded-For: 198.51.100.9\r\n"), "198.51.100.9")
            # Headers the client may have set are ignored unless named.
            for h in (b"X-Real-IP", b"CF-Connecting-IP", b"True-Client-IP"):
                self.assertEqual(ip_seen(p, h + b": 1.2.3.4\r\nX-Forwarded-For: 198.51.100.9\r\n"),
                                 "198.51.100.9")
                self.assertEqual(ip_seen(p, h + b": 1.2.3.4\r\n"), "127.0.0.1")
            # Every entry trusted: the leftmost.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"), "10.0.0.1")
            # Garbage stops the walk: the peer.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 1.2.3.4, nonsense\r\n"), "127.0.0.1")
            # A peer that is not a trusted proxy: its own address, headers ignored.
            self.assertEqual(ip_seen(p, b"X-Forwarded-For: 198.51.100.9\r\n", source="127.0.0.2"),
                             "127.0.0.2")

    def test_client_ip_header_by_name(self):
        with Server("--trust-proxy", "127.0.0.1", "--client-ip-header", "X-Real-IP") as srv:
            p = srv.port
            self.assertEqual(ip_seen(p, b"X-Real-IP: 198.51.100.9\r\nX-Forwarded-For: 1.2.3.4\r\n"),
                             "198.51.100.9")
            # Only the named header: another one is still ignored.
            self.assertEqual(ip_seen(p, b"CF-Connecting-IP: 1.2.3.4\r\n"), "127.0.0.1")
            # Repeated (the client sent one, the proxy added one): ignored.
            self.assertEqual(ip_seen(p, b"X-Real-IP: 1.2.3.4\r\nX-Real-IP: 198.51.100.9\r\n"),
                             "127.0.0.1")
            # Not from the trusted proxy: ignored.
            self.assertEqual(ip_seen(p, b"X-Real-IP: 198.51.100.9\r\n", source="127.0.0.2"),
                             "127.0.0.2")


class Cors(unittest.TestCase):
    """--cors-origins / --cors-credentials put the cors middleware on the conf
    router; "*" (or no list) with credentials is refused at start-up."""

    def start_fails(self, *args):
        p = subprocess.run([CONFORMANCE, "--port", "0", *args], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        out = p.stdout + p.stderr
        self.assertIn("credentials", out)
        self.assertIn("origins", out)

    def test_star_with_credentials_refused_at_start(self):
        self.start_fails("--cors-origins", "*", "--cors-credentials")
        self.start_fails("--cors-origins", "http://a.example,*", "--cors-credentials")
        self.start_fails("--cors-origins", "null", "--cors-credentials")
        self.start_fails("--cors-credentials")

    def test_explicit_list_with_credentials(self):
        with Server("--cors-origins", "http://a.example, http://b.example",
                    "--cors-credentials") as srv:
            r = srv.call("conf.echo", {"name": "x"}, headers={"Origin": "http://b.example"})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("access-control-allow-origin"), "http://b.example")
            self.assertEqual(r.headers.get("access-control-allow-credentials"), "true")
            for origin in ("http://evil.example", "null"):
                r = srv.call("conf.echo", {"name": "x"}, headers={"Origin": origin})
                self.assertNotIn("access-control-allow-origin", r.headers)
                r = srv.request("OPTIONS", "/conf.echo", headers={
                    "Origin": origin, "Access-Control-Request-Method": "POST"})
                self.assertEqual(r.status, 403)
                self.assertNotIn("access-control-allow-origin", r.headers)
            r = srv.request("OPTIONS", "/conf.echo", headers={
                "Origin": "http://a.example", "Access-Control-Request-Method": "POST"})
            self.assertEqual(r.status, 204)
            self.assertEqual(r.headers.get("access-control-allow-origin"), "http://a.example")

    def test_star_without_credentials(self):
        with Server("--cors-origins", "*") as srv:
            r = srv.call("conf.echo", {"name": "x"}, headers={"Origin": "http://any.example"})
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
            self.assertNotIn("access-control-allow-credentials", r.headers)


def open_conn(port, path=b"/conf.raw", source="127.0.0.1", timeout=3):
    """A connection with one request sent; returns (socket, first bytes or b"")."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        first = s.recv(4096)
    except socket.timeout:
        first = b""
    except ConnectionResetError:
        first = b"RESET"
    return s, first


def served_again(port, timeout=5):
    """New connections until one is answered 200 (or `timeout`); its first bytes."""
    deadline = time.time() + timeout
    while True:
        s, first = open_conn(port)
        s.close()
        if first.startswith(b"HTTP/1.1 200") or time.time() > deadline:
            return first
        time.sleep(0.1)


class ConnectionsPerIp(unittest.TestCase):
    """--max-connections-per-ip: counted across HTTP threads, event streams
    included; the extra connection gets 503 and is closed."""

    def test_cap_per_client_address(self):
        with Server("--max-connections-per-ip", "3", "--threads", "2",
                    env={"DK_SSE_HEARTBEAT_MS": "200"}) as srv:
            held = []
            try:
                # Two keep-alive connections and one event stream from 127.0.0.1.
                for path in (b"/conf.raw", b"/conf.raw", b"/conf.sse?channel=a"):
                    s, first = open_conn(srv.port, path)
                    self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
                    held.append(s)
                s, first = open_conn(srv.port)
                self.assertTrue(first.startswith(b"HTTP/1.1 503") or first in (b"", b"RESET"), first)
                if first.startswith(b"HTTP/1.1 503"):
                    self.assertIn(b"too many connections", first)
                s.settimeout(3)
                try:
                    rest = s.recv(4096)
                    while rest:
                        rest = s.recv(4096)
                except ConnectionResetError:
                    pass
                s.close()
                # Another address is not affected.
                s, first = open_conn(srv.port, source="127.0.0.2")
                self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
                s.close()
                # Closing the event stream gives the slot back.
                held.pop().close()
                first = served_again(srv.port)
                self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            finally:
                for s in held:
                    s.close()

    def test_off_by_default(self):
        with Server() as srv:
            held = [open_conn(srv.port) for _ in range(20)]
            try:
                self.assertTrue(all(f.startswith(b"HTTP/1.1 200") for _, f in held))
            finally:
                for s, _ in held:
                    s.close()


class LowFdLimit:
    """The conformance app under RLIMIT_NOFILE = `limit`."""

    def __init__(self, limit, *args):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()

        def pre():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen([CONFORMANCE, "--port", str(self.port), *args],
                                     preexec_fn=pre, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("server did not start")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class DescriptorExhaustion(unittest.TestCase):
    """At the process descriptor limit (below --max-connections) a new client
    gets 503 or a prompt close, and the server does not spin on accept."""

    def test_no_spin_no_hang_at_fd_limit(self):
        with LowFdLimit(64, "--max-connections", "1000") as srv:
            held = []
            try:
                for _ in range(80):
                    s, first = open_conn(srv.port, timeout=2)
                    held.append(s)
                    if not first.startswith(b"HTTP/1.1 200"):
                        break
                self.assertFalse(first.startswith(b"HTTP/1.1 200"), "never reached the fd limit")
                # While the descriptors are held: a new client is answered at once...
                t0 = time.time()
                s, first = open_conn(srv.port, timeout=2)
                s.close()
                self.assertLess(time.time() - t0, 2)
                self.assertTrue(first.startswith(b"HTTP/1.1 503") or first in (b"RESET",),
                                first)
                # ... and the server is idle, not spinning on accept4 -> EMFILE.
                cpu0 = srv.cpu_seconds()
                time.sleep(2)
                self.assertLess(srv.cpu_seconds() - cpu0, 0.4)
            finally:
                for s in held:
                    s.close()
            # Descriptors free again: served normally.
            first = served_again(srv.port)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)

    def test_max_connections_defaults_from_fd_limit(self):
        # 128 descriptors: margin min(32 + 4 + 24, 128 / 4) = 32, so 96.
        with LowFdLimit(128) as srv:
            self.assertIn("max_connections 96 (descriptor limit 128)", srv.output())
            held = []
            try:
                for i in range(96):
                    s, first = open_conn(srv.port)
                    held.append(s)
                    self.assertTrue(first.startswith(b"HTTP/1.1 200"), (i, first))
                s, first = open_conn(srv.port)
                held.append(s)
                self.assertTrue(first.startswith(b"HTTP/1.1 503"), first)
            finally:
                for s in held:
                    s.close()


def https_request(port, route, body, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request("POST", "/" + route, body=json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return Response(r.status, r.getheaders(), data)


@unittest.skipUnless(shutil.which("openssl"), "openssl command not installed")
class SecureTransport(unittest.TestCase):
    """dk_ctx_is_secure(): TLS, or a trusted proxy's X-Forwarded-Proto: https.
    --hsts sends Strict-Transport-Security to such clients; the board's session
    cookie gets Secure."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="dk-sec-")
        cls.cert, cls.key = make_cert(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_hsts(self):
        with Server("--tls-cert", self.cert, "--tls-key", self.key, "--hsts", "31536000") as srv:
            for route, body, status in (("conf.echo", {"name": "x"}, 200), ("conf.nope", {}, 404)):
                r = https_request(srv.port, route, body)
                self.assertEqual(r.status, status)
                self.assertEqual(r.headers.get("strict-transport-security"), "max-age=31536000")
        with Server("--tls-cert", self.cert, "--tls-key", self.key) as srv:
            self.assertNotIn("strict-transport-security", https_request(srv.port, "conf.echo",
                                                                        {"name": "x"}).headers)
        with Server("--hsts", "600", "--trust-proxy", "127.0.0.1") as srv:
            # Cleartext: never (a browser ignores it there anyway)...
            r = srv.call("conf.echo", {"name": "x"})
            self.assertNotIn("strict-transport-security", r.headers)
            # ... unless the trusted proxy says the client used https.
            r = srv.call("conf.echo", {"name": "x"}, headers={"X-Forwarded-Proto": "https"})
            self.assertEqual(r.headers.get("strict-transport-security"), "max-age=600")
            # From a peer that is not a trusted proxy, the header means nothing.
            out, _ = exchange(srv.port, b"POST /conf.echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              b"X-Forwarded-Proto: https\r\nContent-Length: 12\r\n\r\n" + BODY,
                              source="127.0.0.2")
            self.assertEqual(parse(out)[0], 200)
            self.assertNotIn(b"strict-transport-security", out.lower())

    @unittest.skipUnless(os.path.exists(BOARD), "board example not built")
    def test_board_cookie_secure(self):
        def signup(srv, tls, headers=None):
            body = {"username": uname(), "password": PASSWORD}
            if tls:
                r = https_request(srv.port, "auth.signup", body, headers)
            else:
                r = srv.call("auth.signup", body, headers=headers)
            self.assertEqual(r.status, 200, r)
            return session_cookie(r)[1]

        with tempfile.TemporaryDirectory(prefix="dk-sec-board-") as tmp:
            db = SqliteDb(tmp)
            with board_server(db, tmp, "--tls-cert", self.cert, "--tls-key", self.key) as srv:
                self.assertIn("; Secure", signup(srv, True))
        with tempfile.TemporaryDirectory(prefix="dk-sec-board-") as tmp:
            db = SqliteDb(tmp)
            with board_server(db, tmp, "--trust-proxy", "127.0.0.1") as srv:
                self.assertNotIn("Secure", signup(srv, False))
                self.assertIn("; Secure", signup(srv, False, {"X-Forwarded-Proto": "https"}))
                self.assertNotIn("Secure", signup(srv, False, {"X-Forwarded-Proto": "http"}))


if __name__ == "__main__":
    unittest.main()
