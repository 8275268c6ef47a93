"""TLS (certificate and key from configuration) and HTTP/2 over ALPN, which
stays off unless asked for (see docs/security.md)."""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import unittest

from dk import Server


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def https_call(port, route, body):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("POST", "/" + route, body=json.dumps(body))
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data)


def curl_version(port, *args):
    out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_version}", "-XPOST",
                          "-H", "Content-Type: application/json",
                          "-d", '{"name":"h2"}', *args, "https://127.0.0.1:%d/conf.echo" % port],
                         capture_output=True, text=True, timeout=20)
    return out.stdout.strip()


@unittest.skipUnless(shutil.which("openssl"), "openssl command not installed")
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="dk-tls-")
        cls.cert, cls.key = make_cert(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, *extra):
        # Server.wait_ready only needs a TCP connect, which TLS accepts too.
        return Server("--tls-cert", self.cert, "--tls-key", self.key, *extra)

    def test_https_typed_route(self):
        with self.start() as srv:
            status, body = https_call(srv.port, "conf.echo", {"name": "tls"})
            self.assertEqual(status, 200)
            self.assertEqual(body, {"message": "hello tls", "n": 0, "tags": []})
            status, body = https_call(srv.port, "conf.echo", {})
            self.assertEqual(status, 400)
            self.assertEqual(body["error"], "BAD_REQUEST")
            self.assertIn("https://", srv.output())

    def test_plain_http_on_tls_port_does_not_crash(self):
        with self.start() as srv:
            try:
                srv.call("conf.echo", {"name": "x"}, timeout=3)
            except Exception:
                pass
            status, _ = https_call(srv.port, "conf.echo", {"name": "after"})
            self.assertEqual(status, 200)

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_http2_only_when_enabled(self):
        with self.start() as srv:
            self.assertEqual(curl_version(srv.port, "--http2"), "1.1")
        with self.start("--http2") as srv:
            self.assertEqual(curl_version(srv.port, "--http2"), "2")
            # Error answers and custom headers are valid HTTP/2 too.
            out = subprocess.run(["curl", "-sk", "--http2", "-i", "-XPOST", "-d", "{}",
                                  "-H", "Content-Type: application/json",
                                  "https://127.0.0.1:%d/conf.echo" % srv.port],
                                 capture_output=True, text=True, timeout=20).stdout
            self.assertTrue(out.startswith("HTTP/2 400"), out[:80])
            self.assertIn("x-request-id:", out)


if __name__ == "__main__":
    unittest.main()
