"""Headless Chromium for the status page's tests, driven over its DevTools
protocol (one websocket, JSON commands): load a URL, evaluate an expression
in the page, take a screenshot.  Nothing but Debian's chromium and
python3-websocket; the browser gets a profile of its own and no network
beyond the loopback address it is sent to."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import websocket

CHROMIUM = "/usr/bin/chromium"


class Browser:
    def __init__(self, width=1000, height=900):
        self.profile = tempfile.mkdtemp(prefix="vs-chromium-")
        args = [CHROMIUM, "--headless=new", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--user-data-dir=" + self.profile, "--remote-debugging-port=0",
                "--window-size=%d,%d" % (width, height), "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")	# chromium's own sandbox refuses root
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if \
                    self.proc.poll() is not None else "(still running)"
                self.close()
                raise RuntimeError("chromium did not start: " + err[-2000:])
            time.sleep(0.1)
        time.sleep(0.1)
        with open(port_file) as f:
            port = int(f.readline())
        # The page target's own socket: ask the browser for its list.
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=30) as r:
            targets = json.load(r)
        page = [t for t in targets if t.get("type") == "page"][0]
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def goto(self, url, timeout=30):
        # From a blank page: a URL differing from the current one only in
        # its fragment would not load the page again.
        self.call("Page.navigate", url="about:blank")
        self.wait("location.href === 'about:blank' && document.readyState === 'complete'",
                  timeout=timeout, what="about:blank")
        self.events = []
        frame = self.call("Page.navigate", url=url)
        if frame.get("errorText"):
            raise RuntimeError("%s: %s" % (url, frame["errorText"]))
        self.wait("location.href !== 'about:blank' && document.readyState === 'complete'",
                  timeout=timeout, what="the page to load: " + url)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout=10, what=None):
        """Evaluate expr until it is truthy; its value, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError("%s: not within %s s" % (what or expr, timeout))
            time.sleep(0.05)

    def console_messages(self):
        return [e["params"] for e in self.events
                if e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")]

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
