"""Foundation: routes, validation, errors, methods, limits, keep-alive,
pipelining, concurrency, shutdown, through real sockets against conformance."""
import json
import re
import signal
import socket
import threading
import time
import unittest

from dk import Server, raw_exchange

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Foundation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    # --- conf.echo ---
    def test_echo_ok_with_defaults(self):
        r = self.srv.call("conf.echo", {"name": "ann"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"message": "hello ann", "n": 0, "tags": []})
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertTrue(UUID_RE.match(r.headers["x-request-id"]))

    def test_echo_full(self):
        r = self.srv.call("conf.echo", {"name": "bob", "n": 3, "tags": ["a", "b"]})
        self.assertEqual(r.json, {"message": "hello bob", "n": 3, "tags": ["a", "b"]})

    def test_echo_unicode_length_in_characters(self):
        name = "é" * 100  # 100 characters, 200 bytes
        self.assertEqual(self.srv.call("conf.echo", {"name": name}).status, 200)
        r = self.srv.call("conf.echo", {"name": "é" * 101})
        self.assertEqual(r.status, 400)

    def test_echo_missing_name(self):
        r = self.srv.call("conf.echo", {})
        self.assertEqual(r.status, 400)
        b = r.json
        self.assertEqual(b["error"], "BAD_REQUEST")
        self.assertEqual(b["message"], "Validation Failed")
        issues = b["details"]["issues"]
        self.assertEqual(len(issues), 1)
        self.assertEqual(issues[0]["path"], ["name"])
        self.assertIn("code", issues[0])
        self.assertIn("message", issues[0])

    def test_echo_every_issue_listed(self):
        r = self.srv.call("conf.echo", {"name": "", "n": -1, "tags": ["a", 5, "c", "d", "e", "f"], "x": 1})
        self.assertEqual(r.status, 400)
        issues = r.json["details"]["issues"]
        paths = [tuple(i["path"]) for i in issues]
        self.assertIn(("name",), paths)
        self.assertIn(("n",), paths)
        self.assertIn(("tags", 1), paths)
        self.assertIn(("tags",), paths)  # maxItems
        codes = {i["code"] for i in issues}
        self.assertIn("unrecognized_keys", codes)
        self.assertIn("too_small", codes)
        self.assertIn("invalid_type", codes)

    def test_echo_wrong_types_no_coercion(self):
        r = self.srv.call("conf.echo", {"name": "x", "n": "5"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["details"]["issues"][0]["path"], ["n"])
        r = self.srv.call("conf.echo", {"name": "x", "n": 1.5})
        self.assertEqual(r.status, 400)

    def test_empty_body_means_empty_object(self):
        r = self.srv.request("POST", "/conf.echo", body=b"")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["details"]["issues"][0]["path"], ["name"])
        r = self.srv.request("POST", "/conf.crash", body=b"")
        self.assertEqual(r.status, 500)

    def test_invalid_json(self):
        r = self.srv.request("POST", "/conf.echo", body=b"{not json")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json, {"error": "BAD_REQUEST", "message": "Invalid JSON"})

    def test_top_level_not_object(self):
        r = self.srv.request("POST", "/conf.echo", body=b"[1,2]")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["details"]["issues"][0]["path"], [])

    def test_query_string_ignored_for_routing(self):
        r = self.srv.call("conf.echo?x=1", {"name": "q"})
        self.assertEqual(r.status, 200)

    # --- errors ---
    def test_fail_every_standard_status(self):
        table = {400: ("BAD_REQUEST", "Bad Request"), 401: ("UNAUTHORIZED", "Unauthorized"),
                 403: ("FORBIDDEN", "Forbidden"), 404: ("NOT_FOUND", "Not Found"),
                 405: ("METHOD_NOT_ALLOWED", "Method Not Allowed"), 409: ("CONFLICT", "Conflict"),
                 410: ("GONE", "Gone"), 422: ("UNPROCESSABLE_ENTITY", "Unprocessable Entity"),
                 429: ("TOO_MANY_REQUESTS", "Too Many Requests"),
                 500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
                 501: ("NOT_IMPLEMENTED", "Not Implemented"), 502: ("BAD_GATEWAY", "Bad Gateway"),
                 503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
                 504: ("GATEWAY_TIMEOUT", "Gateway Timeout")}
        for status, (code, msg) in table.items():
            r = self.srv.call("conf.fail", {"status": status})
            self.assertEqual(r.status, status)
            self.assertEqual(r.json, {"error": code, "message": msg, "details": {"status": status}})
            r = self.srv.call("conf.fail", {"status": status, "message": "custom"})
            self.assertEqual(r.json["message"], "custom")

    def test_fail_teapot(self):
        r = self.srv.call("conf.fail", {"status": 418})
        self.assertEqual(r.status, 418)
        self.assertEqual(r.json["error"], "IM_A_TEAPOT")
        self.assertEqual(r.json["details"], {"status": 418})

    def test_crash_is_generic_500(self):
        r = self.srv.call("conf.crash", {})
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json, {"error": "INTERNAL_SERVER_ERROR", "message": "Internal Server Error"})
        self.assertNotIn(b"secret-internal-detail", r.body)
        rid = r.headers["x-request-id"]
        time.sleep(0.3)
        out = self.srv.output()
        self.assertIn("secret-internal-detail", out)
        self.assertIn(rid, out)

    def test_bad_output_is_500(self):
        r = self.srv.call("conf.badOutput", {})
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json["error"], "INTERNAL_SERVER_ERROR")

    # --- raw ---
    def test_raw_get_and_post(self):
        r = self.srv.request("GET", "/conf.raw?a=1&b=2")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"GET a=1&b=2 0")
        self.assertEqual(r.headers["x-conf"], "raw")
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        r = self.srv.request("POST", "/conf.raw", body=b"12345")
        self.assertEqual(r.body, b"POST  5")

    def test_raw_wrong_method(self):
        r = self.srv.request("PUT", "/conf.raw", body=b"x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json["error"], "METHOD_NOT_ALLOWED")
        self.assertIn("GET", r.headers["allow"])
        self.assertIn("POST", r.headers["allow"])

    # --- dispatch status codes ---
    def test_unknown_route_404(self):
        r = self.srv.call("conf.nope", {})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["error"], "NOT_FOUND")
        r = self.srv.call("conf.echo/", {"name": "x"})
        self.assertEqual(r.status, 404)
        r = self.srv.request("GET", "/")
        self.assertEqual(r.status, 404)

    def test_wrong_method_typed_405(self):
        for m in ("GET", "PUT", "DELETE", "PATCH"):
            r = self.srv.request(m, "/conf.echo")
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.headers["allow"], "POST")
            self.assertEqual(r.json["error"], "METHOD_NOT_ALLOWED")

    def test_options_preflight_not_405(self):
        r = self.srv.request("OPTIONS", "/conf.echo")
        self.assertEqual(r.status, 204)
        self.assertIn("POST", r.headers["allow"])

    # --- context ---
    def test_ip_and_request_id(self):
        r = self.srv.call("conf.ip", {}, headers={"X-Forwarded-For": "9.9.9.9"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["ip"], "127.0.0.1")  # not a trusted proxy
        self.assertTrue(UUID_RE.match(r.json["requestId"]))
        self.assertEqual(r.json["requestId"], r.headers["x-request-id"])
        r2 = self.srv.call("conf.ip", {})
        self.assertNotEqual(r.json["requestId"], r2.json["requestId"])

    def test_peer_address_digits(self):
        # Every address in 127/8 is loopback on Linux: connect from a few
        # source addresses with one-, two- and three-digit parts.
        for src in ("127.45.200.9", "127.0.10.255", "127.100.1.20"):
            out = raw_exchange(self.srv.port,
                               b"POST /conf.ip HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                               b"Connection: close\r\n\r\n{}", source=src)
            body = json.loads(out.split(b"\r\n\r\n", 1)[1])
            self.assertEqual(body["ip"], src)

    # --- limits and malformed input ---
    def test_body_limit_413(self):
        # The server answers as soon as it sees the length, before the body.
        head = b"POST /conf.echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1024 * 1024 + 10)
        out = raw_exchange(self.srv.port, head + b'{"name":"aaaa', timeout=3)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])
        # Just under the limit is accepted (and then fails validation normally).
        body = b'{"name":"' + b"a" * (1024 * 1024 - 20) + b'"}'
        r = self.srv.request("POST", "/conf.echo", body=body)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["details"]["issues"][0]["code"], "too_big")
        self.assertEqual(self.srv.call("conf.echo", {"name": "after"}).status, 200)

    def test_deep_json_rejected(self):
        body = "[" * 200 + "]" * 200
        r = self.srv.request("POST", "/conf.echo", body=body.encode())
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["error"], "BAD_REQUEST")

    def test_malformed_request_line(self):
        out = raw_exchange(self.srv.port, b"GARBAGE\r\n\r\n", timeout=3)
        self.assertTrue(out.startswith(b"HTTP/1.1 400") or out == b"", out[:100])
        self.assertEqual(self.srv.call("conf.echo", {"name": "still"}).status, 200)

    def test_too_many_headers(self):
        hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        out = raw_exchange(self.srv.port, b"POST /conf.echo HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n", timeout=3)
        self.assertTrue(out.startswith(b"HTTP/1.1 4"), out[:100])
        self.assertEqual(self.srv.call("conf.echo", {"name": "still"}).status, 200)

    def test_keep_alive_reuses_connection(self):
        c = self.srv.conn()
        for i in range(5):
            c.request("POST", "/conf.echo", body=json.dumps({"name": str(i)}))
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["message"], "hello %d" % i)
        c.close()

    def test_pipelining(self):
        reqs = b""
        for i in range(3):
            body = json.dumps({"name": "p%d" % i}).encode()
            reqs += b"POST /conf.echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        out = raw_exchange(self.srv.port, reqs, timeout=5, expect=3)
        self.assertEqual(out.count(b"HTTP/1.1 200"), 3)
        i0, i1, i2 = out.find(b"hello p0"), out.find(b"hello p1"), out.find(b"hello p2")
        self.assertTrue(0 < i0 < i1 < i2)

    def test_200_concurrent_clients(self):
        results = []
        lock = threading.Lock()

        def client(i):
            try:
                r = self.srv.call("conf.echo", {"name": "c%d" % i, "n": i}, timeout=20)
                ok = r.status == 200 and r.json["n"] == i
            except Exception:
                ok = False
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 200)
        self.assertTrue(all(results))


class TrustedProxy(unittest.TestCase):
    def test_forwarded_header_from_trusted_proxy(self):
        with Server("--trust-proxy", "127.0.0.0/8") as srv:
            # Walked from the right: the last address that is not a trusted
            # proxy (see test_http_security.TrustedProxies).
            r = srv.call("conf.ip", {}, headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
            self.assertEqual(r.json["ip"], "10.0.0.1")
            r = srv.call("conf.ip", {}, headers={"CF-Connecting-IP": "198.51.100.2",
                                                   "X-Forwarded-For": "203.0.113.7"})
            self.assertEqual(r.json["ip"], "203.0.113.7")
            r = srv.call("conf.ip", {})
            self.assertEqual(r.json["ip"], "127.0.0.1")

    def test_untrusted_cidr(self):
        with Server("--trust-proxy", "10.0.0.0/8") as srv:
            r = srv.call("conf.ip", {}, headers={"X-Real-IP": "203.0.113.9"})
            self.assertEqual(r.json["ip"], "127.0.0.1")


class Lifecycle(unittest.TestCase):
    def test_sigterm_exits_zero(self):
        srv = Server()
        try:
            self.assertEqual(srv.call("conf.echo", {"name": "x"}).status, 200)
            rc = srv.stop(signal.SIGTERM)
            self.assertEqual(rc, 0)
            self.assertIn("shutdown complete", srv.output())
        finally:
            srv.kill()

    def test_sigint_during_requests(self):
        srv = Server("--threads", "2")
        try:
            stop = threading.Event()
            errors = []

            def load():
                while not stop.is_set():
                    try:
                        r = srv.call("conf.echo", {"name": "x"}, timeout=5)
                        if r.status not in (200, 503):
                            errors.append(r.status)
                    except OSError:
                        pass  # connection refused once the listener is closed

            ts = [threading.Thread(target=load) for _ in range(4)]
            for t in ts:
                t.start()
            time.sleep(0.5)
            rc = srv.stop(signal.SIGINT)
            stop.set()
            for t in ts:
                t.join()
            self.assertEqual(rc, 0)
            self.assertEqual(errors, [])
        finally:
            srv.kill()

    def test_port_in_use_fails_cleanly(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            srv = Server(port=port, wait=False)
            rc = srv.proc.wait(timeout=10)
            self.assertNotEqual(rc, 0)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
