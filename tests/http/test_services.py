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
