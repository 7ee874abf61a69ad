"""Screenshots of built pages, for a reviewer who wants to see what a reader sees.

    python -m tools.screenshots zh_CN/chapters/01_history zh_CN/chapters/03_error
    python -m tools.screenshots --width 420 --full zh_CN/chapters/04_gradients

Serves ``_build/html`` on 127.0.0.1 (offline: every request outside it is refused), opens
each page in Debian's Chromium through Playwright, waits for the math to be typeset and
writes ``_build/screenshots/<page with / as __>-<width>.png``. ``--selector`` shoots one
element instead of the viewport (e.g. ``figure`` for the first figure on the page).
"""

from __future__ import annotations

import argparse
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


def shoot(pages: list[str], width: int, full: bool, selector: str | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    if not SITE.is_dir():
        raise SystemExit(f"{SITE} is missing: run `make book` first")
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Quiet, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(base) else route.abort())
            for name in pages:
                name = name.removesuffix(".html")
                page.goto(f"{base}{name}.html", wait_until="load")
                page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup"
                              ".promise ? MathJax.startup.promise.then(() => true) : true")
                page.wait_for_timeout(500)
                target = OUT / f"{name.replace('/', '__')}-{width}.png"
                if selector:
                    page.locator(selector).first.screenshot(path=str(target))
                else:
                    page.screenshot(path=str(target), full_page=full)
                written.append(target)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", help="pages under _build/html, without .html")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in pixels")
    parser.add_argument("--full", action="store_true", help="the whole page, not the viewport")
    parser.add_argument("--selector", help="shoot the first element matching this CSS selector")
    args = parser.parse_args(argv)
    for path in shoot(args.pages, args.width, args.full, args.selector):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
