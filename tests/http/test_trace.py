"""W3C trace context (issue 17, docs/observability.md "Trace context"):
taken from the request or started, in every log line of the request, passed
on by dk_fetch and kept with jobs the request enqueues."""
import http.server
import json
import re
import threading
import time
import unittest

from dk import Server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def json_lines(srv):
    out = []
    for line in srv.output().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def wait_lines(srv, pred, timeout=5):
    deadline = time.time() + timeout
    while True:
        lines = [l for l in json_lines(srv) if pred(l)]
        if lines or time.time() > deadline:
            return lines
        time.sleep(0.05)


class TraceContext(unittest.TestCase):
    def test_incoming_traceparent_is_continued_and_logged(self):
        with Server("--log-format", "json") as srv:
            r = srv.call("conf.ip", {}, headers={"traceparent": "00-%s-%s-01" % (TRACE, PARENT)})
            self.assertEqual(r.status, 200)
            body = r.json
            self.assertEqual(body["traceId"], TRACE)
            self.assertIn("ip", body)
            self.assertIn("requestId", body)
            rid = body["requestId"]
            lines = wait_lines(srv, lambda l: l.get("requestId") == rid)
            self.assertTrue(lines, srv.output()[-2000:])
            for l in lines:
                self.assertEqual(l.get("trace_id"), TRACE, l)
                self.assertRegex(l.get("span_id", ""), HEX16)
                self.assertNotEqual(l["span_id"], PARENT)  # the server's own span

    def test_missing_or_invalid_traceparent_starts_a_trace(self):
        bad = [None, "", "00-%s-%s-01" % (TRACE.upper(), PARENT), "00-%s-%s-01" % ("0" * 32, PARENT),
               "00-%s-%s-01" % (TRACE, "0" * 16), "00-%s-%s-1" % (TRACE, PARENT),
               "01-%s-%s-01" % (TRACE, PARENT), "00-%s-%s-01-x" % (TRACE, PARENT),
               "00_%s_%s_01" % (TRACE, PARENT), "zz-%s-%s-01" % (TRACE, PARENT)]
        with Server("--log-format", "json") as srv:
            seen = set()
            for tp in bad:
                h = {} if tp is None else {"traceparent": tp}
                body = srv.call("conf.ip", {}, headers=h).json
                self.assertRegex(body["traceId"], HEX32, tp)
                self.assertNotEqual(body["traceId"], TRACE, tp)
                self.assertNotEqual(body["traceId"], "0" * 32)
                seen.add(body["traceId"])
            self.assertEqual(len(seen), len(bad))  # each request its own new trace

    def test_every_log_line_of_a_request_carries_the_trace(self):
        # conf.hardening.log writes a line through dk_ctx_log; conf.fail
        # logs an error line; both also get the request log line.
        tp = "00-%s-%s-01" % (TRACE, PARENT)
        with Server("--log-format", "json") as srv:
            r = srv.call("conf.hardening.log", {"user": "ann"}, headers={"traceparent": tp})
            self.assertEqual(r.status, 200)
            r = srv.call("conf.crash", {}, headers={"traceparent": tp})
            self.assertEqual(r.status, 500)
            time.sleep(0.3)
            lines = wait_lines(srv, lambda l: "requestId" in l)
            self.assertGreaterEqual(len(lines), 4, srv.output()[-3000:])
            for l in lines:
                self.assertEqual(l.get("trace_id"), TRACE, l)
                self.assertIn("span_id", l)

    def test_fetch_passes_the_trace_on(self):
        got = {}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                got.setdefault(self.path, []).append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        t = threading.Thread(target=up.serve_forever, daemon=True)
        t.start()
        try:
            with Server("--log-format", "json") as srv:
                url = "http://127.0.0.1:%d/a" % up.server_address[1]
                r = srv.call("conf.fetch", {"url": url},
                             headers={"traceparent": "00-%s-%s-01" % (TRACE, PARENT),
                                      "tracestate": "vendor=1"})
                self.assertEqual(r.status, 200, r.body)
                h = {k.lower(): v for k, v in got["/a"][0].items()}
                m = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$", h.get("traceparent", ""))
                self.assertIsNotNone(m, h)
                self.assertEqual(m.group(1), TRACE)
                self.assertNotEqual(m.group(2), PARENT)
                self.assertEqual(h.get("tracestate"), "vendor=1")
                # Without an incoming header: a new trace, still passed on.
                r = srv.call("conf.fetch", {"url": url.replace("/a", "/b")})
                h = {k.lower(): v for k, v in got["/b"][0].items()}
                self.assertRegex(h.get("traceparent", ""), r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
                self.assertNotIn(TRACE, h["traceparent"])
        finally:
            up.shutdown()
            up.server_close()

    def test_job_log_lines_carry_the_enqueuing_trace(self):
        with Server("--log-format", "json", env={"DK_JOBS_BACKOFF_MS": "10"}) as srv:
            r = srv.call("conf.job", {"name": "ok", "data": {"x": 1}},
                         headers={"traceparent": "00-%s-%s-01" % (TRACE, PARENT)})
            self.assertEqual(r.status, 200, r.body)
            jid = r.json["id"]
            lines = wait_lines(srv, lambda l: l.get("message") == "conf job ok"
                               and l.get("jobId") == jid)
            self.assertTrue(lines, srv.output()[-3000:])
            self.assertEqual(lines[0].get("trace_id"), TRACE)
            self.assertRegex(lines[0].get("span_id", ""), HEX16)
            # A job enqueued without a traceparent gets the request's new trace.
            r = srv.call("conf.job", {"name": "ok", "data": 2})
            jid2 = r.json["id"]
            lines = wait_lines(srv, lambda l: l.get("message") == "conf job ok"
                               and l.get("jobId") == jid2)
            self.assertTrue(lines)
            self.assertRegex(lines[0].get("trace_id", ""), HEX32)
            self.assertNotEqual(lines[0]["trace_id"], TRACE)


if __name__ == "__main__":
    unittest.main()
