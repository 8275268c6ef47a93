"""Regression: SSE clients connecting and leaving while broadcasts run on two
loop threads used to corrupt the heap within a second (h2o objects created
on the wrong thread). The server must stay up and keep answering."""
import http.client
import json
import random
import socket
import threading
import time
import unittest

from dk import Server


class SseChurn(unittest.TestCase):
    def test_churn_on_two_threads(self):
        with Server("--threads", "2", env={"DK_SSE_HEARTBEAT_MS": "200"}) as srv:
            stop = threading.Event()
            errors = []

            def broadcaster():
                c = srv.conn(5)
                while not stop.is_set():
                    try:
                        c.request("POST", "/conf.broadcast", body=json.dumps(
                            {"channel": "c%d" % random.randint(0, 3), "event": "t", "data": {"x": "y" * 50}}))
                        r = c.getresponse()
                        r.read()
                        if r.status != 200:
                            errors.append(r.status)
                    except (OSError, http.client.HTTPException):
                        c = srv.conn(5)

            def client(i):
                rnd = random.Random(i)
                while not stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                        s.sendall(b"GET /conf.sse?channel=c%d HTTP/1.1\r\nHost: x\r\n\r\n" % rnd.randint(0, 3))
                        s.recv(4096)
                        end = time.time() + rnd.uniform(0.05, 0.4)
                        while time.time() < end:
                            s.settimeout(0.05)
                            try:
                                s.recv(65536)
                            except socket.timeout:
                                pass
                        s.close()
                    except OSError:
                        time.sleep(0.05)

            threads = [threading.Thread(target=broadcaster) for _ in range(2)]
            threads += [threading.Thread(target=client, args=(i,)) for i in range(12)]
            for t in threads:
                t.start()
            deadline = time.time() + 8
            while time.time() < deadline and srv.proc.poll() is None:
                time.sleep(0.2)
            stop.set()
            for t in threads:
                t.join()
            self.assertIsNone(srv.proc.poll(), "server died:\n" + srv.output()[-2000:])
            self.assertEqual(errors, [])
            self.assertEqual(srv.call("conf.echo", {"name": "alive"}).status, 200)


if __name__ == "__main__":
    unittest.main()
