"""Open every report page in headless Chromium: screenshots, console errors, broken images, dead links, injected markup.

``make check-report`` runs ``python -m painmeta check-report --dataset D``. It
drives Debian's ``chromium`` through the Chrome DevTools Protocol (the
``websocket-client`` package of the pinned stack; no browser download), loads
each HTML page of ``outputs/<dataset>/report/`` from disk with the network
disabled, and fails when a page

- logs a console error or an uncaught exception,
- has an image that did not load, or links to a local file that does not exist,
- holds markup that the report itself never writes, i.e. something from data
  that was not escaped: an inline event handler (``onerror=``...), a
  ``javascript:`` URL, a ``<script>`` other than the page template's own, an
  ``<object>``/``<embed>``/``<base>``/``<form>``/``<meta http-equiv>``, or an
  ``<iframe>`` that is not a self-contained ``srcdoc`` viewer (nilearn's
  ``view_img``); the same scan runs inside those viewers, scripts excepted.

The whole page is captured, in parts of at most :data:`TILE_PX` pixels
(``<page>.png``, or ``<page>-p01.png``, ``<page>-p02.png``...), into
``outputs/<dataset>/report_check/`` -- beside the report folder, not in it,
because ``report/`` is what a user zips for co-authors.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
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

#: Height of one screenshot part in CSS pixels (Chromium cannot capture much more than 16,000 px at once).
TILE_PX = 4000

#: Templates whose inline scripts are the only ones a page may hold.
TEMPLATE_FILES = (Path(__file__).parent / "templates" / "painmeta_html" / "index.html.j2",)

_CHECK_JS = """(() => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => (i.alt || i.src).slice(0, 80));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))
      .filter(h => h && !h.startsWith('#') && !/^[a-z][a-z0-9+.-]*:/i.test(h));
  const injected = [];
  const scripts = [];
  const show = el => el.outerHTML.slice(0, 160);
  function scan(doc, where, inViewer) {
    for (const el of doc.querySelectorAll('*')) {
      for (const a of Array.from(el.attributes)) {
        const n = a.name.toLowerCase();
        if (n.startsWith('on')) injected.push(where + 'event handler ' + n + ': ' + show(el));
        if (['href', 'src', 'action', 'formaction', 'xlink:href', 'data'].includes(n)
            && /^\\s*(javascript|vbscript):/i.test(a.value)) injected.push(where + 'script URL: ' + show(el));
      }
    }
    for (const el of doc.querySelectorAll('object, embed, base, form, meta[http-equiv]'))
      injected.push(where + 'element <' + el.tagName.toLowerCase() + '>: ' + show(el));
    if (!inViewer) {
      for (const el of doc.querySelectorAll('script')) scripts.push(el.textContent);
    }
    for (const fr of doc.querySelectorAll('iframe')) {
      if (fr.hasAttribute('src') || !fr.hasAttribute('srcdoc')) {
        injected.push(where + 'iframe that is not a srcdoc viewer: ' + show(fr));
      } else if (fr.contentDocument) {
        scan(fr.contentDocument, where + 'viewer: ', true);
      }
    }
  }
  scan(document, '', false);
  return JSON.stringify({images: imgs.length, broken: broken, links: links, injected: injected,
                         scripts: scripts, height: document.documentElement.scrollHeight,
                         title: document.title});
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
    injected: list[str] = field(default_factory=list)
    height: int = 0
    screenshots: list[str] = field(default_factory=list)
    probe: object = None

    @property
    def screenshot(self) -> str:
        """The first screenshot part."""
        return self.screenshots[0] if self.screenshots else ""

    @property
    def ok(self) -> bool:
        return not (self.broken_images or self.dead_links or self.console_errors or self.injected)


def _normalise_script(text: str) -> str:
    return " ".join(text.split())


def allowed_scripts() -> set[str]:
    """Whitespace-normalised text of the inline scripts the page templates write."""
    found = set()
    for template in TEMPLATE_FILES:
        for body in re.findall(r"<script>(.*?)</script>", template.read_text(encoding="utf-8"), flags=re.S):
            found.add(_normalise_script(body))
    return found


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


def _capture_full_page(cdp: _CDP, folder: Path, stem: str, width: int, height: int) -> list[str]:
    """Screenshot the whole page in parts of at most :data:`TILE_PX` pixels; return the files written."""
    for old in folder.glob(f"{stem}.png"):
        old.unlink()
    for old in folder.glob(f"{stem}-p[0-9][0-9].png"):
        old.unlink()
    tops = list(range(0, max(height, 1), TILE_PX))
    files = []
    for k, top in enumerate(tops, start=1):
        h = min(TILE_PX, height - top) if height > 0 else 900
        # The viewport covers the part being captured, so that nothing is rendered outside it.
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=max(h, 1), deviceScaleFactor=1,
                 mobile=False)
        cdp.call("Runtime.evaluate", expression=f"window.scrollTo(0, {top})")
        time.sleep(0.05)
        shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": top, "width": width, "height": max(h, 1), "scale": 1})
        out = folder / (f"{stem}.png" if len(tops) == 1 else f"{stem}-p{k:02d}.png")
        out.write_bytes(base64.b64decode(shot["data"]))
        files.append(str(out))
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
    return files


def check_pages(pages: list[Path], screenshot_dir: Path, width: int = 1280,
                probe: str | None = None) -> list[PageReport]:
    """Load each page in headless Chromium and report what went wrong.

    Parameters
    ----------
    pages : list of pathlib.Path
        HTML files.
    screenshot_dir : pathlib.Path
        Where the full-page PNG screenshots are written (in parts of at most
        :data:`TILE_PX` pixels).
    width : int
        Viewport width in CSS pixels.
    probe : str, optional
        A JavaScript expression evaluated on each page after load; its JSON
        value is kept in :attr:`PageReport.probe` (tests use it to look for
        script that ran).

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
            allowed = allowed_scripts()
            rep.injected = list(info["injected"]) + [
                "script not written by the page template: " + text.strip()[:120]
                for text in info["scripts"] if _normalise_script(text) not in allowed]
            rep.height = int(info["height"])
            if probe:
                rep.probe = cdp.call("Runtime.evaluate", expression=probe, returnByValue=True)["result"].get("value")
            rep.screenshots = _capture_full_page(cdp, screenshot_dir, page.stem, width, rep.height)
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


def check_report(dataset: str, probe: str | None = None) -> list[PageReport]:
    """Check ``outputs/<dataset>/report/index.html`` and every page beside it (see :func:`check_pages`)."""
    paths = dataset_paths(dataset)
    report = paths.outputs / "report"
    pages = sorted(report.glob("*.html"))
    if not (report / "index.html").is_file():
        raise InputError(f"{report / 'index.html'}: not found; build the report first (make all DATASET={dataset})")
    return check_pages(pages, paths.outputs / "report_check", probe=probe)


def _cmd(args: argparse.Namespace) -> int:
    reports = check_report(args.dataset)
    bad = 0
    for r in reports:
        status = "ok" if r.ok else "FAIL"
        parts = f"{len(r.screenshots)} part(s)" if len(r.screenshots) > 1 else "1 part"
        print(f"{status:4} {r.page}: {r.images} images, {r.height} px captured in {parts}: {r.screenshot}")
        for what, items in (("broken image", r.broken_images), ("dead link", r.dead_links),
                            ("console error", r.console_errors), ("unescaped markup", r.injected)):
            for item in items:
                print(f"     {what}: {item}")
        bad += not r.ok
    print(f"{len(reports) - bad} of {len(reports)} pages passed")
    return 1 if bad else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``check-report`` command."""
    p = sub.add_parser("check-report", help="open every report page in headless Chromium and check it")
    p.add_argument("--dataset", default="cipn")
    p.set_defaults(func=_cmd)
