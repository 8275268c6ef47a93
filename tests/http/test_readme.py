"""The README's code runs as written: the small C application compiles with
-Wall -Werror against the installed library (pkg-config, rpath) and answers
the README's curl commands; the "Starting a project" commands work when
pasted into a shell (after the library is installed into a temporary
prefix). Env: DK_BUILD_DIR (a full build), DK_SOURCE_DIR."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from test_cli import Installed, base_env, cache_value, free_port

SOURCE = os.path.abspath(os.environ.get(
    "DK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.path.abspath(os.environ.get("DK_BUILD_DIR", os.path.join(SOURCE, "build")))


def readme_blocks():
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S), text


def block_after(heading, lang):
    """The first ```lang block after the line `heading`."""
    _, text = readme_blocks()
    start = text.index(heading)
    m = re.compile(r"^```%s\n(.*?)^```" % lang, re.M | re.S).search(text, start)
    return m.group(1)


def installed_env(tmp):
    inst = Installed.get()
    env = base_env(Installed.env())
    env["PATH"] = os.path.join(inst.prefix, "bin") + os.pathsep + env["PATH"]
    env["HOME"] = tmp
    san = Installed.cmake_args()
    # A sanitizer build's library needs the runtime on the compile line.
    flags = [a.split("=", 1)[1] for a in san if a.startswith("-DCMAKE_C_FLAGS=")]
    if flags:
        env["CFLAGS"] = flags[0]
    return env


def run_shell(script, cwd, env, timeout=600):
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


class TestReadme(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dk-readme-")
        self.env = installed_env(self.tmp)
        self.port = str(free_port())

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_small_application(self):
        code = block_after("## A complete small application", "c")
        self.assertIn("#include <string.h>", code)
        with open(os.path.join(self.tmp, "app.c"), "w") as f:
            f.write(code)
        shell = block_after("## A complete small application", "sh")
        self.assertIn("-Wall -Werror", shell)
        self.assertIn("-Wl,-rpath,$(pkg-config --variable=libdir donkey)", shell)
        script = shell.replace("8080", self.port)
        if "CFLAGS" in self.env:   # a sanitizer build: its compiler and runtime
            cc = cache_value("CMAKE_C_COMPILER") or "cc"
            script = script.replace("cc -Wall", cc + " $CFLAGS -Wall", 1)
        # Keep the outputs apart: each curl line prints one JSON body.
        script = script.replace("\ncurl", "\necho; curl")
        r = run_shell(script, self.tmp, self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout)
        dec = json.JSONDecoder()
        bodies = [dec.raw_decode(x)[0] for x in r.stdout.splitlines() if x.startswith("{")]
        self.assertEqual(bodies[0], {"greeting": "hello ann", "loud": "ANN"}, r.stdout)
        self.assertEqual(bodies[1]["error"], "BAD_REQUEST")
        self.assertEqual(bodies[1]["message"], "Validation Failed")
        self.assertEqual(bodies[1]["details"]["issues"][0]["path"], ["name"])
        # The binary finds libdonkey through its rpath, not the environment.
        out = subprocess.run(["readelf", "-d", os.path.join(self.tmp, "app")],
                             stdout=subprocess.PIPE, text=True).stdout
        self.assertRegex(out, r"R(UN)?PATH.*" + re.escape(Installed.get().prefix))

    def test_starting_a_project(self):
        shell = block_after("## Starting a project", "sh")
        lines = shell.strip().split("\n")
        self.assertTrue(lines[0].startswith("cmake --install build"), lines[0])
        # The install line is the one step replaced: Installed put the library,
        # headers, donkey.pc and the donkey command into a temporary prefix.
        script = "\n".join(lines[1:]).replace("8080", self.port)
        r = run_shell(script, self.tmp, self.env)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn('{"ok":true}', r.stdout.replace(" ", ""))
        root = os.path.join(self.tmp, "myapp")
        with open(os.path.join(root, "src", "plugins.def")) as f:
            self.assertIn("APP_PLUGIN(billing, NULL)", f.read())
        self.assertTrue(os.path.exists(os.path.join(root, "web", "api", "index.ts")))
        self.assertTrue(os.path.exists(
            os.path.join(root, "migrations", "billing", "002_add_invoices.sql")))
        routes = subprocess.run([os.path.join(root, "build", "myapp"), "--routes-json"],
                                stdout=subprocess.PIPE, text=True, env=self.env, timeout=60)
        names = [x["name"] for x in json.loads(routes.stdout)["routes"]]
        self.assertIn("billing.hello", names)


if __name__ == "__main__":
    unittest.main()
