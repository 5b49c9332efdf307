"""What the listener's page weighs and how tall it is (not a test): the sample episode indexed with
the tests' HashingEncoder stand-in (so no model loads and the figures are the web layer's own).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_web_page.py

Prints, for the search page (the sample's question), an episode page and the home page: HTML bytes
and the median time to render them in process (Starlette's TestClient, --repeat runs), the
static files' bytes, and, when Chromium and selenium are here, the results page's height and where
the first answer sentence ends at 1200 and 390 px. Run it on two trees (PYTHONPATH) to compare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from bench_util import REPO, WORK, load

sys.path.insert(0, str(REPO / "tests"))
QUESTION = "What should the sales team do on social media?"


def build(index: Path) -> None:
    from hmsearch.asr import TranscriberSpec
    from hmsearch.index import IndexStore
    from hmsearch.ingest import IndexOptions, index_paths

    from helpers import HashingEncoder

    eps = index.parent / "eps"
    eps.mkdir(parents=True, exist_ok=True)
    for name in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(REPO / "audio" / name, eps / name)
    store = IndexStore(index)
    with store.writing():
        index_paths([eps], store, encoder=HashingEncoder(), options=IndexOptions(TranscriberSpec("turbo")))


def heights(app: object) -> list[str]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return ["(no selenium: heights not measured)"]
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        return ["(no Chromium: heights not measured)"]
    from hmsearch.web.server import listen, make_server

    sock = listen("127.0.0.1", 0)
    server = make_server(app)
    threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    out = []
    try:
        for width, height in ((1200, 900), (390, 844)):
            browser.set_window_size(width, height)
            browser.get(f"http://127.0.0.1:{sock.getsockname()[1]}/?q={quote(QUESTION)}")
            tall, answer, screen = browser.execute_script(
                "var a = document.querySelector('section.answer li');"
                "return [document.documentElement.scrollHeight, a ? a.getBoundingClientRect().bottom : -1,"
                " window.innerHeight];"
            )
            out.append(f"| {width} px | {tall} px | {answer:.0f} px of {screen} |")
    finally:
        browser.quit()
        server.should_exit = True
    return ["| width | results page height | first answer ends at |", "|---|---|---|", *out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    from starlette.testclient import TestClient

    from hmsearch.query import QueryService
    from hmsearch.web.app import STATIC_FILES, WebLimits, create_app, web_link

    from helpers import HashingEncoder

    index = WORK / "web_page" / "ix"
    if not (index / "manifest.json").exists():
        shutil.rmtree(index.parent, ignore_errors=True)
        build(index)
    service = QueryService(index, encoder=HashingEncoder(), link=web_link)
    app = create_app(service, WebLimits(rate_per_minute=0))
    client = TestClient(app)
    episode = service.episodes()[0].id
    print(f"load {load()}\n\n| page | HTML bytes | median ms |\n|---|---|---|")
    for name, url in (
        ("search", "/?q=" + quote(QUESTION)),
        ("episode", f"/episode/{quote(episode, safe='')}?t=9.9"),
        ("home", "/"),
    ):
        client.get(url)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = client.get(url)
            times.append(time.perf_counter() - t0)
        print(f"| {name} | {len(r.content):,} | {statistics.median(times) * 1000:.1f} |")
    print("\n| static file | bytes |\n|---|---|")
    for name in STATIC_FILES:
        print(f"| {name} | {len(client.get('/static/' + name).content):,} |")
    print("\n" + "\n".join(heights(app)))


if __name__ == "__main__":
    main()
