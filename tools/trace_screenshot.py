#!/usr/bin/env python3
"""Opens a profiler_trace.json in Chromium's built-in trace viewer and saves a screenshot.

Chromium 156 (Debian) no longer serves chrome://tracing (ERR_FAILED even with
internal debugging pages enabled), so this uses the other viewer Chromium has
built in and that works offline: the DevTools Performance panel, which reads the
Chrome Trace Event Format. Chromium's remote-debugging server serves the DevTools
frontend itself; this script opens it as a page, loads the trace into the
Performance panel through the panel's own "load from file" path, optionally
clicks / scrolls (to expand tracks or zoom), and captures the page.

Dev tool only (needs `chromium` and `pip install websocket-client`):

    tools/trace_screenshot.py out/profiler_trace.json shot.png \
        --click 1571,76 --click 249,128 --click 15,40   # close the shortcuts box, expand the process, hide the sidebar
"""
import argparse
import base64
import json
import subprocess
import tempfile
import time
import urllib.request

import websocket

PORT = 9233


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=120)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg

    def click(self, x, y):
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        time.sleep(1)

    def wheel(self, x, y, dy):
        self.call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=dy)
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("png")
    ap.add_argument("--click", action="append", default=[], help="x,y in page pixels, in order")
    ap.add_argument("--wheel", action="append", default=[], help="x,y,dy: scroll (zooms the flame chart)")
    args = ap.parse_args()
    trace = open(args.trace).read()
    profile = tempfile.mkdtemp(prefix="trace-viewer-")
    browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                                f"--user-data-dir={profile}", f"--remote-debugging-port={PORT}",
                                "--remote-allow-origins=*", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/list"))
                break
            except OSError:
                time.sleep(0.2)
        blank = [t for t in tabs if t["type"] == "page"][0]
        frontend = (f"http://127.0.0.1:{PORT}/devtools/devtools_app.html?ws="
                    + blank["webSocketDebuggerUrl"].replace("ws://", ""))
        tab = json.load(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{PORT}/json/new?{frontend}", method="PUT")))
        page = Page(tab["webSocketDebuggerUrl"])
        page.call("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)
        time.sleep(6)  # the frontend loads its modules
        js = """(async () => {
          const UI = await import('./ui/legacy/legacy.js');
          await UI.ViewManager.ViewManager.instance().showView('timeline');
          const T = await import('./panels/timeline/timeline.js');
          await T.TimelinePanel.TimelinePanel.instance().loadFromFile(
              new File([%s], 'profiler_trace.json', {type: 'application/json'}));
          return 'loaded';
        })()""" % json.dumps(trace)
        result = page.call("Runtime.evaluate", expression=js, awaitPromise=True, returnByValue=True)
        print(json.dumps(result.get("result", {}))[:300])
        time.sleep(8)
        for c in args.click:
            page.click(*map(float, c.split(",")))
        for w in args.wheel:
            page.wheel(*map(float, w.split(",")))
        time.sleep(2)
        shot = page.call("Page.captureScreenshot", format="png")
        with open(args.png, "wb") as f:
            f.write(base64.b64decode(shot["result"]["data"]))
        print("wrote", args.png)
    finally:
        browser.terminate()


if __name__ == "__main__":
    main()
