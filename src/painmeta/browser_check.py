"""Open every report page in headless Chromium: screenshot, console errors, broken images, dead links.

``make check-report`` runs ``python -m painmeta check-report --dataset D``. It
drives Debian's ``chromium`` through the Chrome DevTools Protocol (the
``websocket-client`` package of the pinned stack; no browser download), loads
each HTML page of ``outputs/<dataset>/report/`` from disk with the network
disabled, and fails when a page logs a console error or an uncaught
exception, has an image that did not load, or links to a local file that does
not exist. Screenshots go to ``outputs/<dataset>/report/screenshots/``.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from painmeta.errors import InputError
from painmeta.paths import dataset_paths

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars",
)

_CHECK_JS = """(() => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => (i.alt || i.src).slice(0, 80));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))
      .filter(h => h && !h.startsWith('#') && !h.startsWith('http') && !h.startsWith('mailto:'));
  return JSON.stringify({images: imgs.length, broken: broken, links: links,
                         height: document.documentElement.scrollHeight, title: document.title});
})()"""


@dataclass
class PageReport:
    """What the browser saw on one page."""

    page: str
    title: str = ""
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    dead_links: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    screenshot: str = ""

    @property
    def ok(self) -> bool:
        return not (self.broken_images or self.dead_links or self.console_errors)


def find_chromium() -> str:
    """Path of the Chromium binary, or raise with the install command."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise InputError("Chromium not found: install Debian's browser with `apt-get install -y chromium`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CDP:
    """Minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60.0) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if any(e.get("method") == method for e in self.events):
                return
            self.ws.settimeout(max(0.1, end - time.time()))
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        self.ws.close()


def check_pages(pages: list[Path], screenshot_dir: Path, width: int = 1280) -> list[PageReport]:
    """Load each page in headless Chromium and report what went wrong.

    Parameters
    ----------
    pages : list of pathlib.Path
        HTML files.
    screenshot_dir : pathlib.Path
        Where full-page PNG screenshots are written.
    width : int
        Viewport width in CSS pixels.

    Returns
    -------
    list of PageReport
    """
    chromium = find_chromium()
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="painmeta-chromium-")
    proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                             f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reports = []
    try:
        targets = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if not targets:
            raise InputError("Chromium started but exposed no page to the DevTools protocol")
        cdp = _CDP(targets[0]["webSocketDebuggerUrl"])
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")
        cdp.call("Log.enable")
        # Pages must work offline: refuse every network request.
        cdp.call("Network.enable")
        cdp.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                 uploadThroughput=-1)
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        for page in pages:
            rep = PageReport(page=page.name)
            cdp.events.clear()
            cdp.call("Page.navigate", url=page.resolve().as_uri())
            cdp.wait_event("Page.loadEventFired")
            time.sleep(0.3)  # let inline scripts settle
            value = cdp.call("Runtime.evaluate", expression=_CHECK_JS, returnByValue=True)["result"]["value"]
            info = json.loads(value)
            rep.title, rep.images, rep.broken_images = info["title"], info["images"], info["broken"]
            rep.dead_links = [h for h in info["links"] if not (page.parent / h.split("#")[0]).exists()]
            for ev in cdp.events:
                m, p = ev.get("method"), ev.get("params", {})
                if m == "Runtime.exceptionThrown":
                    rep.console_errors.append(p.get("exceptionDetails", {}).get("text", "exception"))
                elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                    rep.console_errors.append(" ".join(str(a.get("value", "")) for a in p.get("args", [])))
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    rep.console_errors.append(p["entry"].get("text", "error"))
            height = min(int(info["height"]), 16000)
            cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                     mobile=False)
            shot = cdp.call("Page.captureScreenshot", format="png")
            out = screenshot_dir / f"{page.stem}.png"
            out.write_bytes(base64.b64decode(shot["data"]))
            rep.screenshot = str(out)
            cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
            reports.append(rep)
        cdp.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    return reports


def check_report(dataset: str) -> list[PageReport]:
    """Check ``outputs/<dataset>/report/index.html`` and every page it sits beside."""
    paths = dataset_paths(dataset)
    report = paths.outputs / "report"
    pages = sorted(report.glob("*.html"))
    if not (report / "index.html").is_file():
        raise InputError(f"{report / 'index.html'}: not found; build the report first (make all DATASET={dataset})")
    return check_pages(pages, report / "screenshots")


def _cmd(args: argparse.Namespace) -> int:
    reports = check_report(args.dataset)
    bad = 0
    for r in reports:
        status = "ok" if r.ok else "FAIL"
        print(f"{status:4} {r.page}: {r.images} images, screenshot {r.screenshot}")
        for what, items in (("broken image", r.broken_images), ("dead link", r.dead_links),
                            ("console error", r.console_errors)):
            for item in items:
                print(f"     {what}: {item}")
        bad += not r.ok
    print(f"{len(reports) - bad} of {len(reports)} pages passed")
    return 1 if bad else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``check-report`` command."""
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser("check-report", help="open every report page in headless Chromium and check it",
                       description="Open outputs/<dataset>/report/*.html offline in headless Chromium; fail on "
                                   "console errors, broken images or dead local links.")
    add_dataset_argument(p)
    p.set_defaults(func=_cmd)
