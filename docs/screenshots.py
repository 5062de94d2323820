"""Regenerate the screenshots in docs/: the chat at 1280 px and 390 px wide (and in the dark
theme), the source viewer and the document library.

    python docs/screenshots.py

Indexes corpus/ with the bundled model into a temporary folder, serves the chat on a free
127.0.0.1 port and drives Debian's chromium (/usr/bin/chromium) with playwright.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
QUESTIONS = ["When was the PMOI founded?", "Who leads the NCRI?"]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from playwright.sync_api import sync_playwright

    from qa.build import build_index
    from qa.frontends import server
    from qa.config import Settings
    from test_browser import ask  # the same way the browser tests ask

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "index")
        build_index(settings)
        from qa.frontends.live import LiveIndex

        live = LiveIndex(settings).start()
        running = server.start(server.create_app(settings, live=live, allow_upload=True))
        url = running.url
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
                for name, width, height, scheme in (("desktop", 1280, 900, "light"), ("phone", 390, 844, "light"),
                                                    ("dark", 1280, 900, "dark")):
                    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1,
                                            color_scheme=scheme)
                    page.goto(url)
                    page.locator("#qa-question textarea").wait_for()
                    for i, question in enumerate(QUESTIONS):
                        reply = ask(page, question, i)
                    page.wait_for_timeout(600)
                    page.screenshot(path=str(ROOT / "docs" / f"chat-{name}.png"))
                    if name == "dark":
                        continue
                    href = reply.locator(".qa-card .qa-head a").nth(1 if name == "desktop" else 0).get_attribute("href")
                    viewer = browser.new_page(viewport={"width": width, "height": height})
                    viewer.goto(url + href)
                    viewer.wait_for_timeout(300)
                    viewer.screenshot(path=str(ROOT / "docs" / f"viewer-{name}.png"))
                library = browser.new_page(viewport={"width": 1280, "height": 700})
                library.goto(url + "library")
                library.screenshot(path=str(ROOT / "docs" / "library-desktop.png"))
                browser.close()
        finally:
            live.stop()
            running.close()
    print("wrote docs/chat-{desktop,phone,dark}.png, docs/viewer-{desktop,phone}.png, docs/library-desktop.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
