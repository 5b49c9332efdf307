"""`hmsearch web` in a real browser: Debian's headless Chromium driven by selenium, against the
installed `hmsearch web` started on a free port of 127.0.0.1 over a real index (the bundled
sample episode, indexed with the default multilingual-e5-small, plus an SRT episode whose title
and transcript carry <script> and onerror= markup). Type a question, submit, click a result, and
the page's audio plays from the passage's second; the episode page highlights the passage and
follows along; nothing from the transcript runs; the narrow layout fits a phone.

Skips (saying why) only where no browser can be had: `scripts/setup.sh --test` installs Debian's
chromium and chromium-driver when run as root. Screenshots of a run go to $WEB_SCREENSHOTS
when set (docs/ holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import write_srt

pytest.importorskip("starlette")
selenium = pytest.importorskip("selenium", reason="selenium is not installed: sh scripts/setup.sh --test")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HMSEARCH = Path(sys.executable).with_name("hmsearch")
QUESTION = "What should the sales team do on social media?"
EVIL_TITLE = 'evil <img src=x onerror="window.__pwned=1">'
EVIL_LINES = [
    "Velkommen til <script>window.__pwned=2</script> afsnittet om nyhedsbreve.",
    'Et billede <img src=x onerror="window.__pwned=3"> og et nyhedsbrev hver uge.',
    '<svg onload="window.__pwned=4"></svg> Hvor tit skal man sende et nyhedsbrev?',
]


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if not chromium or not driver:
        pytest.skip(
            "no Chromium here: install Debian's chromium and chromium-driver (sh scripts/setup.sh --test as root)"
        )
    return chromium, driver


def _env(home: Path) -> dict[str, str]:
    """A clean environment; models built from installed packages go to the session's shared folder
    (conftest's shared_model_dir), which `home/models` links to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMSEARCH_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), HMSEARCH_MODEL_DIR=str(home / "models"))
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared_model_dir):
    """`hmsearch web` over the indexed sample (and the evil SRT), on 127.0.0.1:PORT."""
    _browser_paths()
    home = tmp_path_factory.mktemp("web-home")
    (home / "models").symlink_to(shared_model_dir)
    eps = home / "eps"
    eps.mkdir()
    for name in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(ROOT / "audio" / name, eps / name)
    write_srt(eps / f"{EVIL_TITLE}.srt", EVIL_LINES)
    env = _env(home)
    index = home / "index"
    done = subprocess.run(
        [str(HMSEARCH), "--index-dir", str(index), "index", str(eps)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    port = _free_port()
    log = (home / "web.log").open("wb")
    proc = subprocess.Popen(
        [str(HMSEARCH), "--index-dir", str(index), "web", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/api/episodes", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"hmsearch web did not come up: {(home / 'web.log').read_text(errors='replace')}")
        time.sleep(0.3)
    yield url, index
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",  # headless has no user gesture to wait for
        "--mute-audio",
        "--window-size=1200,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(service=Service(driver), options=options)
    b.set_page_load_timeout(60)
    yield b
    b.quit()


def _shot(browser, name: str) -> None:
    folder = os.environ.get("WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / name))


def _wait(browser, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def _player(browser) -> dict:
    return browser.execute_script(
        "var p = document.getElementById('player');"
        "return {t: p.currentTime, paused: p.paused, ready: p.readyState, src: p.currentSrc};"
    )


def _csp_violations(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def test_ask_click_a_result_and_it_plays_from_that_second(site, browser):
    from selenium.webdriver.common.by import By

    url, _ = site
    browser.get(url + "/")
    box = browser.find_element(By.ID, "q")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=q]").text  # the box has a label
    box.send_keys(QUESTION)
    box.submit()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    assert "q=What+should+the+sales+team" in browser.current_url  # shareable
    answer = browser.find_elements(By.CSS_SELECTOR, "section.answer li")
    # the guest's point (00:26), never the episode's introduction (00:09), issue 23
    assert answer and "Social selling er" in answer[0].text and "[00:26]" in answer[0].text
    assert browser.find_elements(By.CSS_SELECTOR, "li.hit mark")  # matching words highlighted
    link = browser.find_elements(By.CSS_SELECTOR, "li.hit a.play")[1]  # a passage that does not start at 0
    start = float(link.get_attribute("data-start"))
    assert start > 5
    link.click()
    _wait(browser, lambda b: not _player(b)["paused"] and _player(b)["t"] > 0, timeout=30)
    state = _player(browser)
    assert state["src"].endswith("/audio/hm-sample-001#t=" + link.get_attribute("data-start"))
    assert abs(state["t"] - start) < 1.0, (state, start)
    assert browser.current_url.startswith(url + "/?q=")  # played in place, the results stay
    time.sleep(1.5)  # it goes on playing
    later = _player(browser)
    assert not later["paused"] and later["t"] > state["t"]
    _shot(browser, "web-search.png")
    # another result of the same episode seeks the same player
    first = browser.find_elements(By.CSS_SELECTOR, "section.answer a.play")[0]
    first.click()
    _wait(browser, lambda b: abs(_player(b)["t"] - float(first.get_attribute("data-start"))) < 1.0, timeout=30)
    assert not _player(browser)["paused"]
    assert not _csp_violations(browser)


def test_episode_page_highlights_the_passage_and_reads_along(site, browser):
    from selenium.webdriver.common.by import By

    url, _ = site
    browser.get(url + "/?q=" + QUESTION.replace(" ", "+"))
    read = browser.find_elements(By.CSS_SELECTOR, "li.hit a.read")[1]
    read.click()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.sentence.asked"))
    assert "/episode/hm-sample-001?t=" in browser.current_url
    asked = browser.find_elements(By.CSS_SELECTOR, "li.sentence.asked")
    assert len(asked) > 3
    # scrolled to: the first sentence asked for is on screen
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top;", asked[0])
    assert 0 <= top < browser.execute_script("return window.innerHeight;")
    assert browser.execute_script("return window.scrollY;") > 100
    _shot(browser, "web-episode.png")
    # click a sentence: the audio seeks there, plays, and that sentence becomes the current one
    target = browser.find_elements(By.CSS_SELECTOR, "li.sentence")[20]
    start = float(target.get_attribute("data-start"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)  # not under the player
    target.find_element(By.CSS_SELECTOR, "a.ts").click()
    _wait(browser, lambda b: not _player(b)["paused"] and abs(_player(b)["t"] - start) < 1.0, timeout=30)
    _wait(browser, lambda b: "current" in target.get_attribute("class"), timeout=10)
    assert f"t={target.get_attribute('data-start').rstrip('0').rstrip('.')}" in browser.current_url
    # read-along moves on with the audio
    browser.execute_script("var p = document.getElementById('player'); p.currentTime = arguments[0];", start + 30)
    _wait(browser, lambda b: "current" not in target.get_attribute("class"), timeout=10)
    current = browser.find_elements(By.CSS_SELECTOR, "li.sentence.current")
    assert len(current) == 1 and float(current[0].get_attribute("data-start")) > start
    assert current[0].get_attribute("aria-current") == "true"
    # the back button returns to the results
    browser.back()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    assert browser.find_element(By.ID, "q").get_attribute("value") == QUESTION
    assert not _csp_violations(browser)


def test_shared_episode_link_starts_the_player_there(site, browser):
    url, _ = site
    browser.get(url + "/episode/hm-sample-001?t=130.5")
    _wait(browser, lambda b: _player(b)["ready"] >= 1, timeout=30)
    assert abs(_player(browser)["t"] - 130.5) < 1.0  # the #t= fragment, without a click
    asked = browser.execute_script("return document.querySelector('li.sentence.asked').dataset.start;")
    assert float(asked) <= 130.5 + 0.05


def test_transcript_markup_never_runs(site, browser):
    from selenium.webdriver.common.by import By

    url, index = site
    browser.get(url + "/?q=nyhedsbrev+billede")
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    evil_link = browser.find_element(By.CSS_SELECTOR, "article.episode-group h3 a")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>window.__pwned=2</script>" in text or "<img src=x" in text  # shown as text
    evil_link.click()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.sentence"))
    assert "<script>window.__pwned=2</script>" in browser.find_element(By.ID, "transcript").text
    assert EVIL_TITLE in browser.find_element(By.TAG_NAME, "h1").text
    for page in (browser.current_url, url + "/episodes", url + "/?q=nyhedsbrev"):
        browser.get(page)
        time.sleep(0.5)  # an onerror or onload would have fired by now
        assert browser.execute_script("return window.__pwned === undefined;"), page
        assert not browser.find_elements(By.CSS_SELECTOR, "main img, main svg, main script")


def test_narrow_layout_fits_a_phone(site, browser):
    from selenium.webdriver.common.by import By

    url, _ = site
    browser.set_window_size(390, 844)
    for page in ("/?q=" + QUESTION.replace(" ", "+"), "/episode/hm-sample-001?t=60", "/episodes"):
        browser.get(url + page)
        width = browser.execute_script("return document.documentElement.clientWidth;")
        assert width <= 400
        # nothing wider than the screen: no sideways scrolling
        assert browser.execute_script("return document.documentElement.scrollWidth;") <= width, page
    browser.get(url + "/?q=" + QUESTION.replace(" ", "+"))
    box, button = browser.find_element(By.ID, "q"), browser.find_element(By.CSS_SELECTOR, "form.search button")
    assert box.rect["width"] > 300 and button.rect["y"] > box.rect["y"]  # the button goes under the box
    _shot(browser, "web-narrow.png")


def test_keyboard_alone_searches_and_plays(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _ = site
    browser.get(url + "/")
    active = browser.switch_to.active_element
    active.send_keys(Keys.TAB)  # skip link, then the site links, then the box
    for _ in range(6):
        if browser.switch_to.active_element.get_attribute("id") == "q":
            break
        ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    ActionChains(browser).send_keys("hvor hurtigt skal man svare", Keys.ENTER).perform()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    first = browser.find_elements(By.CSS_SELECTOR, "a.play")[0]
    browser.execute_script("arguments[0].focus();", first)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    _wait(browser, lambda b: not _player(b)["paused"], timeout=30)
    assert abs(_player(browser)["t"] - float(first.get_attribute("data-start"))) < 1.0


def _dark(browser, on: bool) -> None:
    """prefers-color-scheme as the system would set it (Chromium's DevTools emulation)."""
    features = [{"name": "prefers-color-scheme", "value": "dark" if on else "light"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def _shared(browser) -> str:
    from selenium.webdriver.common.by import By

    fields = browser.find_elements(By.CSS_SELECTOR, "#share-out input")
    return fields[0].get_attribute("value") if fields else browser.find_element(By.ID, "share-out").text.split()[-1]


def test_chapters_seek_skip_and_share_a_moment(site, browser):
    from selenium.webdriver.common.by import By

    url, _ = site
    browser.get(url + "/episode/hm-sample-001?t=100")  # the sample is one chapter: start away from it
    _wait(browser, lambda b: _player(b)["ready"] >= 1, timeout=30)
    chapters = browser.find_elements(By.CSS_SELECTOR, "a.chapter")
    assert chapters
    target = chapters[-1]
    start = float(target.get_attribute("data-start"))
    assert abs(_player(browser)["t"] - start) > 30
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    target.click()
    _wait(browser, lambda b: not _player(b)["paused"] and abs(_player(b)["t"] - start) < 1.0, timeout=30)
    _wait(browser, lambda b: "current" in target.get_attribute("class"), timeout=10)
    assert len(browser.find_elements(By.CSS_SELECTOR, "a.chapter.current")) == 1
    browser.execute_script("window.scrollTo(0, 0);")
    _shot(browser, "web-chapters.png")
    # skip back 15 s and on 30 s
    before = _player(browser)["t"]
    browser.find_element(By.ID, "fwd30").click()
    _wait(browser, lambda b: _player(b)["t"] > before + 25, timeout=10)
    before = _player(browser)["t"]
    browser.find_element(By.ID, "back15").click()
    _wait(browser, lambda b: _player(b)["t"] < before - 10, timeout=10)
    # share: the link to this second (copied, or shown to copy where the clipboard is refused)
    browser.execute_script("document.getElementById('player').pause();")
    at = _player(browser)["t"]
    browser.find_element(By.ID, "share").click()
    _wait(
        browser,
        lambda b: (
            "/episode/"
            in (
                b.find_element(By.ID, "share-out").text
                + "".join(f.get_attribute("value") for f in b.find_elements(By.CSS_SELECTOR, "#share-out input"))
            )
        ),
        timeout=10,
    )
    fields = browser.find_elements(By.CSS_SELECTOR, "#share-out input")
    link = fields[0].get_attribute("value") if fields else browser.find_element(By.ID, "share-out").text.split()[-1]
    assert link.startswith(url + "/episode/hm-sample-001?t=")
    second = int(link.rsplit("t=", 1)[1])
    assert abs(second - at) < 1.5
    # share the sentence being said: its span, highlighted where the link opens
    browser.find_element(By.ID, "share-sentence").click()
    _wait(browser, lambda b: "#s-" in _shared(b), timeout=10)
    said = _shared(browser)
    assert said.startswith(url + "/episode/hm-sample-001?t=") and "&end=" in said
    browser.get(link)  # the shared link opens at that second
    _wait(browser, lambda b: _player(b)["ready"] >= 1, timeout=30)
    assert abs(_player(browser)["t"] - second) < 1.0
    assert not _csp_violations(browser)


def test_keys_reach_the_first_result_and_search(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, _ = site
    browser.get(url + "/?q=" + QUESTION.replace(" ", "+"))
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    _shot(browser, "web-results.png")
    ActionChains(browser).send_keys("j").perform()  # one press: the first result (the answer)
    first = browser.find_elements(By.CSS_SELECTOR, "a.play")[0]
    assert browser.execute_script("return document.activeElement === arguments[0];", first)
    ActionChains(browser).send_keys("j").perform()
    assert browser.execute_script("return document.activeElement;") != first
    ActionChains(browser).send_keys("/").perform()  # / goes to the search box
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    # snippets are short: at most ~50 words each, the whole passage one click away
    snippets = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "li.hit .snippet")]
    assert snippets and all(len(s.split()) <= 52 for s in snippets)
    whole = browser.find_elements(By.CSS_SELECTOR, "li.hit details.whole")
    if whole:
        assert not whole[0].find_element(By.CSS_SELECTOR, ".passage").is_displayed()
        whole[0].find_element(By.TAG_NAME, "summary").click()
        assert whole[0].find_element(By.CSS_SELECTOR, ".passage").is_displayed()


def test_dark_mode_renders_dark_and_a_phone_shows_the_answer_first(site, browser):
    from selenium.webdriver.common.by import By

    url, _ = site
    search = url + "/?q=" + QUESTION.replace(" ", "+")
    _dark(browser, True)
    browser.get(search)
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "li.hit"))
    bg = _rgb(browser.execute_script("return getComputedStyle(document.body).backgroundColor;"))
    fg = _rgb(browser.execute_script("return getComputedStyle(document.body).color;"))
    assert sum(bg) < 120 and sum(fg) > 600, (bg, fg)
    _shot(browser, "web-dark.png")
    _dark(browser, False)
    browser.get(search)
    assert sum(_rgb(browser.execute_script("return getComputedStyle(document.body).backgroundColor;"))) > 700
    # 390 px: the filters are folded away and the first answer sentence is on the first screen
    browser.set_window_size(390, 844)
    browser.get(search)
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "section.answer li"))
    first = browser.find_element(By.CSS_SELECTOR, "section.answer li")
    bottom = browser.execute_script("return arguments[0].getBoundingClientRect().bottom;", first)
    assert bottom <= browser.execute_script("return window.innerHeight;"), bottom
    assert not browser.find_element(By.ID, "episode").is_displayed()  # inside the closed <details>


def _axe_core_js() -> Path | None:
    """axe.min.js: AXE_CORE_JS if set, else where `sh scripts/setup.sh --test` puts it (the project's
    .venv/axe-core/, or beside the venv running the tests)."""
    if os.environ.get("AXE_CORE_JS"):
        return Path(os.environ["AXE_CORE_JS"])
    for venv in (ROOT / ".venv", Path(sys.prefix)):
        if (venv / "axe-core" / "axe.min.js").is_file():
            return venv / "axe-core" / "axe.min.js"
    return None


def test_axe_core_finds_no_critical_or_serious_violations(site, browser):
    """axe-core's audit in the real browser, on the search, results and episode pages (light and
    dark). axe is not vendored: `sh scripts/setup.sh --test` fetches a pinned version with npm into
    .venv/axe-core/, AXE_CORE_JS overrides (it is injected by the driver, so the page's CSP stays)."""
    axe = _axe_core_js()
    if axe is None or not axe.is_file():
        pytest.skip(
            f"no axe.min.js: AXE_CORE_JS={os.environ.get('AXE_CORE_JS', '')!r}, none in .venv/axe-core/"
            " (sh scripts/setup.sh --test fetches it when npm is installed)"
        )
    source = Path(axe).read_text(encoding="utf-8")
    url, _ = site
    pages_ = ["/", "/?q=" + QUESTION.replace(" ", "+"), "/episode/hm-sample-001?t=60", "/episodes"]
    found = []
    for dark in (False, True):
        _dark(browser, dark)
        for page in pages_:
            browser.get(url + page)
            browser.execute_script(source)
            result = browser.execute_async_script(
                "var done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then(function (r) { done(r.violations); },"
                " function (e) { done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]); });"
            )
            for v in result:
                if v["impact"] in ("critical", "serious"):
                    targets = [n["target"] for n in v["nodes"]][:3]
                    found.append(f"{'dark ' if dark else ''}{page}: {v['id']} ({v['impact']}): {v['help']} {targets}")
    assert not found, "\n".join(found)
