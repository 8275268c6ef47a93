"""Handlers that wait (issue 13): dk_blocking, database waits, outbound HTTP,
the waiting-handler limit, disconnects and SIGTERM while handlers wait. All
through real sockets against the conformance app."""
import http.server
import json
import os
import signal
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from dk import Server, free_port

PG_URL = os.environ.get("DK_TEST_PG_URL")


def timed_call(srv, route, body, timeout=30):
    t0 = time.monotonic()
    r = srv.call(route, body, timeout=timeout)
    return r, time.monotonic() - t0


class Upstream:
    """A local HTTP server whose answers are delayed by `delay` seconds."""

    def __init__(self, delay=0.0, body=b"hello upstream"):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                time.sleep(outer.delay)
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Length", str(len(outer.body)))
                    self.end_headers()
                    self.wfile.write(outer.body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # listen() backlog: many clients at once

        self.delay, self.body, self.status = delay, body, 200
        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Blocking(unittest.TestCase):
    def test_cheap_route_prompt_while_50_handlers_wait(self):
        with Server("--workers", "50") as srv:
            with ThreadPoolExecutor(50) as ex:
                futs = [ex.submit(timed_call, srv, "conf.wait", {"ms": 500}) for _ in range(50)]
                time.sleep(0.15)  # they are all waiting now
                worst = 0.0
                for _ in range(20):
                    r, dt = timed_call(srv, "conf.echo", {"name": "x"})
                    self.assertEqual(r.status, 200)
                    worst = max(worst, dt)
                results = [f.result() for f in futs]
            for r, dt in results:
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json, {"waited": 500})
                self.assertGreaterEqual(dt, 0.45)
            # One HTTP thread; if handlers blocked it, echo would wait ~500 ms+.
            self.assertLess(worst, 0.25, "a cheap route waited %.3f s" % worst)
            # 50 workers: the 50 waits ran side by side, not one after another.
            self.assertLess(max(dt for _, dt in results), 3.0)

    def test_worker_pool_bounds_parallelism(self):
        with Server("--workers", "2") as srv:
            t0 = time.monotonic()
            with ThreadPoolExecutor(6) as ex:
                rs = list(ex.map(lambda _: srv.call("conf.wait", {"ms": 300}), range(6)))
            elapsed = time.monotonic() - t0
            self.assertTrue(all(r.status == 200 for r in rs))
            # 6 waits of 300 ms on 2 workers: three rounds.
            self.assertGreaterEqual(elapsed, 0.85)
            self.assertLess(elapsed, 3.0)

    def test_input_validated(self):
        with Server() as srv:
            self.assertEqual(srv.call("conf.wait", {"ms": 10001}).status, 400)
            self.assertEqual(srv.call("conf.wait", {"ms": -1}).status, 400)
            r = srv.call("conf.dbwait", {"ms": 5})
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json["error"], "BAD_REQUEST")
            self.assertEqual(r.json["message"], "needs PostgreSQL")

    def test_waiting_limit_answers_503(self):
        with Server("--max-waiting", "4", "--workers", "16") as srv:
            with ThreadPoolExecutor(10) as ex:
                futs = [ex.submit(srv.call, "conf.wait", {"ms": 800}) for _ in range(10)]
                rs = [f.result() for f in futs]
            ok = [r for r in rs if r.status == 200]
            busy = [r for r in rs if r.status == 503]
            self.assertEqual(len(ok) + len(busy), 10, rs)
            self.assertGreaterEqual(len(busy), 1)
            self.assertLessEqual(len(ok), 4)
            for r in busy:
                self.assertEqual(r.json["error"], "SERVICE_UNAVAILABLE")
                self.assertEqual(r.headers.get("retry-after"), "1")
            # Below the limit again: served.
            self.assertEqual(srv.call("conf.wait", {"ms": 1}).status, 200)

    def test_client_disconnect_mid_wait(self):
        with Server() as srv:
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", srv.port))
                body = b'{"ms":300}'
                s.sendall(b"POST /conf.wait HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                time.sleep(0.05)
                s.close()
            time.sleep(0.6)  # the handlers finish with nobody to answer
            self.assertEqual(srv.call("conf.echo", {"name": "y"}).status, 200)
            # Clean exit (under ASan: no leak of the abandoned requests).
            self.assertEqual(srv.stop(), 0, srv.output())

    def test_sigterm_drains_waiting_handlers(self):
        with Server("--shutdown-grace", "5s") as srv:
            with ThreadPoolExecutor(4) as ex:
                futs = [ex.submit(timed_call, srv, "conf.wait", {"ms": 1000}) for _ in range(4)]
                time.sleep(0.3)
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                rs = [f.result() for f in futs]
                rc = srv.proc.wait(timeout=10)
                took = time.monotonic() - t0
            for r, _ in rs:
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json, {"waited": 1000})
            self.assertEqual(rc, 0, srv.output())
            self.assertLess(took, 5.0)

    def test_sigterm_deadline_bounds_a_long_wait(self):
        with Server("--shutdown-grace", "500ms") as srv:
            with ThreadPoolExecutor(1) as ex:
                fut = ex.submit(lambda: srv.call("conf.wait", {"ms": 4000}, timeout=10))
                time.sleep(0.3)
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                srv.proc.wait(timeout=15)
                took = time.monotonic() - t0
                try:
                    fut.result()
                except Exception:
                    pass
            # The grace period (500 ms) plus the worker finishing its sleep.
            self.assertLess(took, 6.0)


class BigBodies(unittest.TestCase):
    def test_big_json_parse_does_not_hold_the_http_thread(self):
        """A 900 KB body of 450,000 numbers takes jansson ~65 ms to parse: it is
        parsed on the worker pool, so a cheap request beside a stream of them is
        answered at once instead of after the parse (median ~75 ms before)."""
        body = ('{"name":"x","tags":[' + ",".join(["1"] * 450000) + "]}").encode()
        stop = threading.Event()
        with Server("--access-log", "off") as srv:
            def sender():
                while not stop.is_set():
                    r = srv.request("POST", "/conf.echo", body,
                                    {"Content-Type": "application/json"}, timeout=30)
                    assert r.status == 400, r
            ts = [threading.Thread(target=sender) for _ in range(2)]
            for t in ts:
                t.start()
            try:
                time.sleep(0.5)
                lat = []
                for _ in range(30):
                    r, dt = timed_call(srv, "conf.echo", {"name": "y"})
                    self.assertEqual(r.status, 200)
                    lat.append(dt)
                    time.sleep(0.02)
            finally:
                stop.set()
                for t in ts:
                    t.join()
            lat.sort()
            self.assertLess(lat[len(lat) // 2], 0.025, "median %.1f ms" % (lat[len(lat) // 2] * 1e3))


class Fetch(unittest.TestCase):
    def test_fetch_ok_slow_refused_timeout(self):
        up = Upstream(delay=0.0, body=b"x" * 1234)
        slow = Upstream(delay=0.5)
        hang = Upstream(delay=8.0)
        try:
            with Server() as srv:
                r = srv.call("conf.fetch", {"url": "http://127.0.0.1:%d/a" % up.port})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json, {"status": 200, "bytes": 1234})
                up.status = 418
                r = srv.call("conf.fetch", {"url": "http://localhost:%d/" % up.port})
                self.assertEqual(r.json, {"status": 418, "bytes": 1234})

                # A slow upstream does not hold the HTTP thread.
                with ThreadPoolExecutor(1) as ex:
                    fut = ex.submit(timed_call, srv, "conf.fetch",
                                    {"url": "http://127.0.0.1:%d/" % slow.port})
                    time.sleep(0.1)
                    r2, dt = timed_call(srv, "conf.echo", {"name": "z"})
                    self.assertEqual(r2.status, 200)
                    self.assertLess(dt, 0.3)
                    r, dt = fut.result()
                self.assertEqual(r.status, 200)
                self.assertGreaterEqual(dt, 0.45)

                refused = free_port()
                r = srv.call("conf.fetch", {"url": "http://127.0.0.1:%d/" % refused})
                self.assertEqual(r.status, 502, r)
                self.assertEqual(r.json["error"], "BAD_GATEWAY")

                t0 = time.monotonic()
                r = srv.call("conf.fetch", {"url": "http://127.0.0.1:%d/" % hang.port}, timeout=15)
                took = time.monotonic() - t0
                self.assertEqual(r.status, 504, r)
                self.assertEqual(r.json["error"], "GATEWAY_TIMEOUT")
                self.assertGreaterEqual(took, 4.5)
                self.assertLess(took, 8.0)

                for url in ("http://example.com/", "https://127.0.0.1/", "ftp://127.0.0.1/",
                            "http://127.0.0.1.evil.test/"):
                    r = srv.call("conf.fetch", {"url": url})
                    self.assertEqual(r.status, 400, (url, r))
                self.assertEqual(srv.call("conf.fetch", {"url": 5}).status, 400)
        finally:
            up.close()
            slow.close()
            hang.close()

    def test_many_waiting_fetches(self):
        up = Upstream(delay=1.0, body=b"ok")
        try:
            with Server() as srv:
                n = 200
                t0 = time.monotonic()
                with ThreadPoolExecutor(n) as ex:
                    rs = list(ex.map(lambda _: srv.call(
                        "conf.fetch", {"url": "http://127.0.0.1:%d/" % up.port}, timeout=20),
                        range(n)))
                took = time.monotonic() - t0
                self.assertTrue(all(r.status == 200 for r in rs), [r for r in rs if r.status != 200][:3])
                # All at once (one fetch thread, one HTTP thread), not n x 1 s.
                self.assertLess(took, 6.0)
        finally:
            up.close()


@unittest.skipUnless(PG_URL, "needs DK_TEST_PG_URL (tests/db/with-postgres.sh)")
class Database(unittest.TestCase):
    def test_parallel_dbwait_bounded_by_pool(self):
        with Server("--db", PG_URL, "--db-pool", "8") as srv:
            n, ms = 100, 200
            t0 = time.monotonic()
            with ThreadPoolExecutor(n) as ex:
                rs = list(ex.map(lambda _: srv.call("conf.dbwait", {"ms": ms}, timeout=30), range(n)))
            took = time.monotonic() - t0
            for r in rs:
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json, {"waited": ms})
            expected = n / 8 * ms / 1000.0  # 2.5 s
            self.assertGreaterEqual(took, expected * 0.9)
            self.assertLess(took, expected * 2.0)

    def test_cheap_route_prompt_while_db_waits(self):
        with Server("--db", PG_URL, "--db-pool", "4") as srv:
            with ThreadPoolExecutor(8) as ex:
                futs = [ex.submit(srv.call, "conf.dbwait", {"ms": 600}) for _ in range(8)]
                time.sleep(0.15)
                r, dt = timed_call(srv, "conf.echo", {"name": "x"})
                self.assertEqual(r.status, 200)
                self.assertLess(dt, 0.25)
                self.assertTrue(all(f.result().status == 200 for f in futs))


if __name__ == "__main__":
    unittest.main()
