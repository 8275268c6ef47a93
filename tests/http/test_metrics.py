"""Prometheus metrics (issue 17, docs/observability.md): GET /metrics in the
text exposition format 0.0.4 with --metrics, counters that move with the
traffic, `promtool check metrics`, and a real Prometheus server scraping the
conformance app and answering queries about it."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from dk import Server, free_port

CT = "text/plain; version=0.0.4; charset=utf-8"


def scrape(srv, path="/metrics"):
    r = srv.request("GET", path)
    return r


def samples(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(text, metric, **labels):
    return samples(text).get((metric, frozenset(labels.items())))


class Exposition(unittest.TestCase):
    def test_off_by_default(self):
        with Server() as srv:
            self.assertEqual(scrape(srv).status, 404)

    def test_format_and_request_counters(self):
        with Server("--metrics") as srv:
            for i in range(7):
                self.assertEqual(srv.call("conf.echo", {"name": "m%d" % i}).status, 200)
            for _ in range(3):
                self.assertEqual(srv.call("conf.echo", {"nope": 1}).status, 400)
            self.assertEqual(srv.call("conf.crash", {}).status, 500)
            r = scrape(srv)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["content-type"], CT)
            t = r.body.decode()
            self.assertEqual(value(t, "donkey_http_requests_total", route="conf.echo", code="2xx"), 7)
            self.assertEqual(value(t, "donkey_http_requests_total", route="conf.echo", code="4xx"), 3)
            self.assertEqual(value(t, "donkey_http_requests_total", route="conf.crash", code="5xx"), 1)
            self.assertEqual(value(t, "donkey_http_request_duration_seconds_count",
                                   route="conf.echo"), 10)
            self.assertEqual(value(t, "donkey_http_request_duration_seconds_bucket",
                                   route="conf.echo", le="+Inf"), 10)
            self.assertEqual(value(t, "donkey_http_request_duration_seconds_bucket",
                                   route="conf.echo", le="0.0001") is not None, True)
            self.assertGreater(value(t, "donkey_http_received_bytes_total"), 100)
            self.assertGreater(value(t, "donkey_http_sent_bytes_total"), 100)
            self.assertGreaterEqual(value(t, "donkey_http_open_connections"), 1)
            self.assertGreater(value(t, "process_resident_memory_bytes"), 1e6)
            self.assertGreater(value(t, "process_open_fds"), 3)
            self.assertGreater(value(t, "process_threads"), 2)
            self.assertLess(abs(value(t, "process_start_time_seconds") - time.time()), 120)
            self.assertIsNotNone(value(t, "donkey_cache_hits_total"))
            self.assertIsNotNone(value(t, "donkey_db_pool_size"))
            # The scrape itself was counted (as a request without a route) by the next one.
            t2 = scrape(srv).body.decode()
            self.assertGreaterEqual(value(t2, "donkey_http_requests_total", route="(none)",
                                          code="2xx"), 1)

    def test_path_flag_and_methods(self):
        with Server("--metrics", "--metrics-path", "/internal/prom") as srv:
            self.assertEqual(scrape(srv, "/internal/prom").status, 200)
            self.assertEqual(scrape(srv, "/metrics").status, 404)
            r = srv.request("POST", "/internal/prom", {})
            self.assertEqual(r.status, 405)

    def test_in_flight_gauge(self):
        with Server("--metrics") as srv:
            th = threading.Thread(target=lambda: srv.call("conf.wait", {"ms": 1500}))
            th.start()
            try:
                deadline = time.time() + 5
                seen = 0
                while time.time() < deadline and seen < 1:
                    seen = value(scrape(srv).body.decode(), "donkey_http_requests_in_flight",
                                 route="conf.wait")
                    time.sleep(0.05)
                self.assertEqual(seen, 1)
            finally:
                th.join()
            t = scrape(srv).body.decode()
            self.assertEqual(value(t, "donkey_http_requests_in_flight", route="conf.wait"), 0)
            # 1.5 s lands in the (1, 2.5] bucket.
            self.assertEqual(value(t, "donkey_http_request_duration_seconds_bucket",
                                   route="conf.wait", le="1"), 0)
            self.assertEqual(value(t, "donkey_http_request_duration_seconds_bucket",
                                   route="conf.wait", le="2.5"), 1)

    def test_job_counters(self):
        with Server("--metrics", env={"DK_JOBS_BACKOFF_MS": "10"}) as srv:
            for _ in range(2):
                self.assertEqual(srv.call("conf.job", {"name": "ok", "data": 1}).status, 200)
            self.assertEqual(srv.call("conf.job", {"name": "fail", "data": 1,
                                                   "maxAttempts": 2}).status, 200)
            deadline = time.time() + 10
            while time.time() < deadline:
                t = scrape(srv).body.decode()
                if value(t, "donkey_jobs_failed_total", name="fail") == 1 and \
                        value(t, "donkey_jobs_completed_total", name="ok") == 2:
                    break
                time.sleep(0.1)
            self.assertEqual(value(t, "donkey_jobs_enqueued_total", name="ok"), 2)
            self.assertEqual(value(t, "donkey_jobs_completed_total", name="ok"), 2)
            self.assertEqual(value(t, "donkey_jobs_started_total", name="fail"), 2)
            self.assertEqual(value(t, "donkey_jobs_retried_total", name="fail"), 1)
            self.assertEqual(value(t, "donkey_jobs_failed_total", name="fail"), 1)
            self.assertEqual(value(t, "donkey_jobs_queue", state="completed"), 2)
            self.assertEqual(value(t, "donkey_jobs_queue", state="failed"), 1)
            self.assertEqual(value(t, "donkey_job_run_duration_seconds_count"), 4)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian package prometheus) missing")
    def test_promtool_check_metrics(self):
        with Server("--metrics") as srv:
            srv.call("conf.echo", {"name": "x"})
            srv.call("conf.job", {"name": "ok", "data": 1})
            time.sleep(0.3)
            body = scrape(srv).body
            p = subprocess.run(["promtool", "check", "metrics"], input=body,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode())
            self.assertEqual(p.stdout.decode().strip(), "", p.stdout.decode())


@unittest.skipUnless(shutil.which("prometheus"), "prometheus (Debian package) missing")
class RealPrometheus(unittest.TestCase):
    def query(self, port, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        self.assertEqual(doc["status"], "success", doc)
        return doc["data"]["result"]

    def test_prometheus_scrapes_the_app(self):
        with Server("--metrics") as srv:
            tmp = tempfile.mkdtemp(prefix="dk-prom-")
            ppath = free_port()
            cfg = os.path.join(tmp, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: donkey\n    metrics_path: /metrics\n"
                        "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % srv.port)
            log = open(os.path.join(tmp, "prometheus.log"), "w")
            prom = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                                     "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                     "--web.listen-address=127.0.0.1:%d" % ppath],
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                for i in range(25):
                    self.assertEqual(srv.call("conf.echo", {"name": "p%d" % i}).status, 200)
                want = 'donkey_http_requests_total{route="conf.echo",code="2xx",job="donkey"}'
                deadline = time.time() + 60
                got = None
                while time.time() < deadline:
                    try:
                        res = self.query(ppath, want)
                        if res and float(res[0]["value"][1]) == 25:
                            got = res
                            break
                    except OSError:
                        pass
                    time.sleep(0.5)
                if got is None:
                    with open(os.path.join(tmp, "prometheus.log")) as f:
                        self.fail("no sample:\n" + f.read()[-3000:])
                up = self.query(ppath, 'up{job="donkey"}')
                self.assertEqual(float(up[0]["value"][1]), 1)
                q = self.query(ppath, 'histogram_quantile(0.99, sum by (le) '
                                      '(donkey_http_request_duration_seconds_bucket'
                                      '{route="conf.echo"}))')
                self.assertEqual(len(q), 1, q)
                p99 = float(q[0]["value"][1])
                self.assertGreater(p99, 0)
                self.assertLessEqual(p99, 10)
            finally:
                prom.terminate()
                try:
                    prom.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
                log.close()
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
