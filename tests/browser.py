"""Open a page in headless Chromium (Debian's package, through its chromedriver).

Used by ``tests/test_report.py`` (no console error, no broken image) and, as a
script, by the blocks of ``docs/report.md`` that screenshot ``augtool report``::

    python tests/browser.py PAGE.html SHOT.png [--width 1280] [--height 2400] [--start ID]

Chromium runs with the flags a closed network needs (no background
networking, no component updates, no sync) and a new empty profile folder, so
it makes no connection of its own: the page is loaded from a ``file://`` URL
and every picture in it must be a ``data:`` URI.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


@dataclass
class PageCheck:
    """What the browser saw.

    Attributes:
        console: Console messages at level SEVERE (errors), as Chromium logs them.
        images: Number of ``<img>`` elements.
        broken: ``src`` (first 60 characters) of each image with ``naturalWidth`` 0.
        requests: URLs the page asked for other than ``data:`` and itself.
        height: Height of the whole page in CSS pixels.
    """

    console: list[str]
    images: int
    broken: list[str]
    requests: list[str]
    height: int


def missing() -> str | None:
    """Why the browser cannot run here (one line), or None when it can."""
    for name in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(name) is None:
            return f"{name} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def open_page(
    page: Path,
    screenshot: Path | None = None,
    width: int = 1280,
    height: int | None = None,
    start: str | None = None,
) -> PageCheck:
    """Load ``page``, check it, and save a screenshot of ``height`` px of it (all without).

    Args:
        page: An HTML file.
        screenshot: Where to save a PNG of the page, or None.
        width: Window width in CSS pixels.
        height: Screenshot height; None: to the end of the page.
        start: The id of the element the screenshot starts at; None: the top.

    Returns:
        What the browser saw.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="augtool-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},900")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=shutil.which(CHROMEDRIVER) or CHROMEDRIVER)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            url = page.resolve().as_uri()
            driver.get(url)
            driver.execute_script("return document.fonts.ready")
            images = driver.execute_script("return document.images.length")
            broken = driver.execute_script(
                "return Array.from(document.images)"
                ".filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.src.slice(0, 60))"
            )
            requests = driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            full = int(driver.execute_script("return document.documentElement.scrollHeight"))
            console = [
                entry["message"]
                for entry in driver.get_log("browser")
                if entry.get("level") == "SEVERE"
            ]
            if screenshot is not None:
                top = 0
                if start is not None:
                    top = int(
                        driver.execute_script(
                            "const e = document.getElementById(arguments[0]);"
                            "return e ? e.getBoundingClientRect().top + window.scrollY - 8 : -1",
                            start,
                        )
                    )
                    if top < 0:
                        raise ValueError(f"{page}: no element with id {start!r}")
                shot = driver.execute_cdp_cmd(
                    "Page.captureScreenshot",
                    {
                        "format": "png",
                        "captureBeyondViewport": True,
                        "clip": {
                            "x": 0,
                            "y": top,
                            "width": width,
                            "height": min(full - top, height or full),
                            "scale": 1,
                        },
                    },
                )
                screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            driver.quit()
    others = [r for r in requests if not r.startswith("data:") and r != url]
    return PageCheck(console, int(images), list(broken), others, full)


def main(argv: list[str] | None = None) -> int:
    """Screenshot a page; fail on a console error or a broken image."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("screenshot", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=None, help="default: to the end")
    parser.add_argument("--start", default=None, help="id of the section to start at")
    args = parser.parse_args(argv)
    why = missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    seen = open_page(args.page, args.screenshot, args.width, args.height, args.start)
    print(
        f"{args.page.name}: {seen.images} images, {len(seen.broken)} broken, "
        f"{len(seen.console)} console errors, {len(seen.requests)} requests; "
        f"screenshot {args.screenshot}"
    )
    for line in seen.console + seen.broken + seen.requests:
        print(f"  {line}")
    return 1 if seen.console or seen.broken or seen.requests else 0


if __name__ == "__main__":
    sys.exit(main())
