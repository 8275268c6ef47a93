"""Core services through the conformance app: cache, events (rate limit and
cron in test_services_time.py)."""
import time
import unittest

from dk import Server


class CacheAndEvents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_cache_set_get_any_json(self):
        for value in ({"a": [1, 2, {"b": None}]}, "text", 42, 1.5, True, [1, "x"]):
            r = self.srv.call("conf.cache.set", {"key": "k1", "value": value})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json, {"ok": True})
            self.assertEqual(self.srv.call("conf.cache.get", {"key": "k1"}).json, {"value": value})

    def test_cache_missing_is_null(self):
        self.assertEqual(self.srv.call("conf.cache.get", {"key": "nope"}).json, {"value": None})

    def test_cache_ttl_expires(self):
        self.srv.call("conf.cache.set", {"key": "short", "value": 1, "ttlMs": 150})
        self.assertEqual(self.srv.call("conf.cache.get", {"key": "short"}).json["value"], 1)
        time.sleep(0.3)
        self.assertIsNone(self.srv.call("conf.cache.get", {"key": "short"}).json["value"])

    def test_cache_no_ttl_never_expires(self):
        # Without ttlMs the value never expires (not the 5-minute default).
        self.srv.call("conf.cache.set", {"key": "forever", "value": "v"})
        self.assertEqual(self.srv.call("conf.cache.get", {"key": "forever"}).json["value"], "v")

    def test_cache_keys_glob_sorted_and_literal(self):
        for k in ("user:2", "user:1", "user:10", "session:1", "a.b[1]", "a.bx1]"):
            self.srv.call("conf.cache.set", {"key": k, "value": 1})
        self.assertEqual(self.srv.call("conf.cache.keys", {"pattern": "user:*"}).json,
                         {"keys": ["user:1", "user:10", "user:2"]})
        self.assertEqual(self.srv.call("conf.cache.keys", {"pattern": "user:?"}).json,
                         {"keys": ["user:1", "user:2"]})
        self.assertEqual(self.srv.call("conf.cache.keys", {"pattern": "a.b[?]"}).json,
                         {"keys": ["a.b[1]"]})

    def test_cache_validation(self):
        self.assertEqual(self.srv.call("conf.cache.set", {"key": "x"}).status, 400)
        self.assertEqual(self.srv.call("conf.cache.get", {}).status, 400)

    def test_events_emit_and_history(self):
        r = self.srv.call("conf.events.emit", {"event": "conf.test1", "data": {"n": 1}})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"delivered": 1})  # the app subscribes one handler to conf.*
        r = self.srv.call("conf.events.emit", {"event": "other.thing", "data": 2})
        self.assertEqual(r.json, {"delivered": 0})
        self.srv.call("conf.events.emit", {"event": "conf.test2", "data": [1]})
        h = self.srv.call("conf.events.history", {"pattern": "conf.*"}).json["events"]
        names = [e["event"] for e in h]
        self.assertEqual(names[-2:], ["conf.test1", "conf.test2"])
        self.assertNotIn("other.thing", names)
        last = h[-1]
        self.assertEqual(last["data"], [1])
        self.assertRegex(last["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        h = self.srv.call("conf.events.history", {"pattern": "other.thing"}).json["events"]
        self.assertEqual([e["data"] for e in h], [2])

    def test_events_history_limit_newest_last(self):
        for i in range(5):
            self.srv.call("conf.events.emit", {"event": "conf.lim", "data": i})
        h = self.srv.call("conf.events.history", {"pattern": "conf.lim", "limit": 3}).json["events"]
        self.assertEqual([e["data"] for e in h], [2, 3, 4])


if __name__ == "__main__":
    unittest.main()


ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


class RateLimitAndCron(unittest.TestCase):
    def test_rate_limit_three_per_window(self):
        with Server() as srv:
            for i in range(3):
                r = srv.call("conf.limited", {})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json, {"ok": True})
                self.assertEqual(r.headers["x-ratelimit-limit"], "3")
                self.assertEqual(r.headers["x-ratelimit-remaining"], str(2 - i))
                reset = int(r.headers["x-ratelimit-reset"])
                self.assertTrue(time.time() - 1 <= reset <= time.time() + 11)
            r = srv.call("conf.limited", {})
            self.assertEqual(r.status, 429)
            self.assertEqual(r.json["error"], "TOO_MANY_REQUESTS")
            retry = int(r.headers["retry-after"])
            self.assertTrue(1 <= retry <= 10)
            self.assertEqual(r.headers["x-ratelimit-remaining"], "0")
            # Other routes are not limited.
            self.assertEqual(srv.call("conf.echo", {"name": "x"}).status, 200)

    def test_rate_limit_keyed_by_trusted_client_ip(self):
        with Server("--trust-proxy", "127.0.0.1/32") as srv:
            for _ in range(3):
                self.assertEqual(srv.call("conf.limited", {}, headers={"X-Forwarded-For": "10.1.1.1"}).status, 200)
            self.assertEqual(srv.call("conf.limited", {}, headers={"X-Forwarded-For": "10.1.1.1"}).status, 429)
            self.assertEqual(srv.call("conf.limited", {}, headers={"X-Forwarded-For": "10.1.1.2"}).status, 200)

    def test_cron_tick_runs_every_second(self):
        with Server() as srv:
            time.sleep(2.6)
            runs = srv.call("conf.cron.count", {}).json["runs"]
            self.assertTrue(2 <= runs <= 4, runs)
            tasks = srv.call("conf.cron.list", {}).json["tasks"]
            tick = [t for t in tasks if t["name"] == "conf-tick"]
            self.assertEqual(len(tick), 1)
            t = tick[0]
            self.assertEqual(set(t), {"id", "name", "expression", "enabled", "lastRun", "nextRun"})
            self.assertEqual(t["expression"], "* * * * * *")
            self.assertTrue(t["enabled"])
            self.assertRegex(t["lastRun"], ISO)
            self.assertRegex(t["nextRun"], ISO)
            self.assertGreater(t["nextRun"], t["lastRun"])

    def test_cron_next(self):
        with Server() as srv:
            def nxt(expr, frm, count, tz=None):
                body = {"expression": expr, "from": frm, "count": count}
                if tz:
                    body["timezone"] = tz
                return srv.call("conf.cron.next", body)
            r = nxt("0 0 29 2 *", "2025-01-01T00:00:00Z", 2)
            self.assertEqual(r.json["next"], ["2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"])
            r = nxt("59 23 31 * *", "2026-01-31T23:59:00Z", 3)
            self.assertEqual(r.json["next"], ["2026-03-31T23:59:00.000Z", "2026-05-31T23:59:00.000Z",
                                              "2026-07-31T23:59:00.000Z"])
            r = nxt("*/20 * * * * *", "2026-01-01T00:00:00Z", 3)
            self.assertEqual(r.json["next"], ["2026-01-01T00:00:20.000Z", "2026-01-01T00:00:40.000Z",
                                              "2026-01-01T00:01:00.000Z"])
            # 02:30 New York does not exist on 2026-03-08 (DST starts): skipped.
            r = nxt("30 2 * * *", "2026-03-07T00:00:00Z", 2, "America/New_York")
            self.assertEqual(r.json["next"], ["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"])
            # 01:30 happens twice on 2026-11-01 (DST ends): fires once.
            r = nxt("30 1 * * *", "2026-10-31T12:00:00Z", 2, "America/New_York")
            self.assertEqual(r.json["next"], ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"])
            for bad in ("*/0 * * * *", "0 0 31 2 *", "61 * * * *", "* * *", "nonsense"):
                r = nxt(bad, "2026-01-01T00:00:00Z", 1)
                self.assertEqual(r.status, 400, bad)
                self.assertEqual(r.json["error"], "BAD_REQUEST")
                self.assertTrue(r.json["message"])
            self.assertEqual(nxt("* * * * *", "2026-01-01T00:00:00Z", 51).status, 400)
            self.assertEqual(nxt("* * * * *", "2026-01-01T00:00:00Z", 1, "Mars/Olympus").status, 400)
