"""The rating pages in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which tools/setup.sh installs) driven through Selenium.

The kits are built with the package's own functions on a small generated split (the whole
demo DAG would add its training time for nothing: the pages depend only on the sheets and
the videos): sheets and key (:mod:`tiktalk.report.kit.human_eval` / ``context_sources``), playable
clips (:mod:`tiktalk.report.kit.clips`), thumbnails, pages, exactly as the rules write them. An
annotator session then rates with the mouse and the keyboard, reloads, downloads the CSV, and
``tiktalk human-eval score`` must give exactly the ratings that were given.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from annotation_sim import fill_sheets
from kit_fixtures import SYSTEMS, write_predictions, write_split
from media_utils import write_video
from tiktalk.cli import main as tiktalk
from tiktalk.report.kit import context_sources as cs
from tiktalk.report.kit import human_eval as he
from tiktalk.report.kit.clips import clip_links, write_clips
from tiktalk.report.kit.frames import extract_thumbnails, load_strips
from tiktalk.report.kit.settings import Scale

FRAMES = 4


def _missing() -> list[str]:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return missing


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"no {missing} on the CI machine: tools/setup.sh installs them")
        pytest.skip(f"no {missing} (tools/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1280,960", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    # never the user's ~/Downloads; each test points the downloads at its own folder
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(tmp_path_factory.mktemp("downloads")),
        "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


def downloads_to(driver, folder: Path) -> Path:
    """Downloads of the current tab go to ``folder`` (call again after switching tabs)."""
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(folder)})
    return folder


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def downloaded(folder: Path, name: str) -> Path:
    path = folder / name
    wait_for(lambda: path.is_file() and not list(folder.glob("*.crdownload")), f"download {path}")
    return path


def add_media(root: Path, key: dict, kit, pages: Path) -> list[str]:
    """Videos for the key's items, their clips and thumbnails, and the pages (as the rules)."""
    videos = sorted({it["video_id"] for it in key["items"]})
    (root / "videos").mkdir()
    for k, video_id in enumerate(videos):
        write_video(root / "videos" / f"{video_id}.mp4", duration=2.0, fps=8, width=72,
                    height=128, tone_hz=300.0 + 40 * k)
    assert write_clips(videos, [root / "videos"], pages / "clips", height=360) == {}
    assert extract_thumbnails(videos, [root / "videos"], root / "frames", n_frames=FRAMES) == {}
    kit.write_pages(key, pages, load_strips(root / "frames", videos, max_frames=FRAMES),
                    clip_links(pages / "clips", videos))
    return videos


def active_cell(driver) -> int | None:
    value = driver.execute_script(
        "var c = document.activeElement && document.activeElement.closest('.cell');"
        "return c ? +c.dataset.cell : null;")
    return value


def progress(driver) -> str:
    return driver.execute_script("return document.getElementById('progress').textContent")


def keys(driver, text) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(text).perform()


def alert_text(driver, timeout: float = 5.0) -> str | None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(expected_conditions.alert_is_present())
    except TimeoutException:
        return None
    return driver.switch_to.alert.text


@pytest.mark.slow
def test_annotator_session_in_chromium(browser, tmp_path):
    """160 candidates x 4 criteria (40 dialogues, 4 systems): the first two candidates rated
    with the mouse, the rest with the keyboard; reloaded and reopened in a new tab midway;
    Download CSV warns while one criterion is unrated; the downloaded sheet scores to exactly
    the ratings given. A screenshot of the filled page is left in the test's tmp dir."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    systems = SYSTEMS + ("sysfour_blip2",)
    rows = write_split(tmp_path / "test.jsonl", n_videos=20, per_video=2)
    preds = write_predictions(tmp_path / "predictions", rows, systems)
    key = he.make_sheets(tmp_path / "test.jsonl", preds, split="test", n=40, annotators=2,
                         seed=5, scale=Scale(), sheets_dir=tmp_path / "kit" / "sheets",
                         key_path=tmp_path / "kit" / "key.json")
    pages = tmp_path / "kit" / "sheets"
    videos = add_media(tmp_path, key, he, pages)
    criteria = list(Scale().criteria)
    data_rows = [(it["item"], slot) for it in key["items"] for slot in key["slots"]["annotator_1"][it["item"]]]
    assert len(data_rows) == 160
    cells = [(item, slot, c) for item, slot in data_rows for c in criteria]

    def plan(k: int) -> int:
        item, slot, c = cells[k]
        return 1 + (int(item[1:]) * 7 + ord(slot) * 3 + criteria.index(c)) % 5

    given: dict[tuple[str, str, str], int] = {}
    dl = downloads_to(browser, tmp_path / "downloads")
    url = (pages / "annotator_1.html").as_uri()
    browser.get(url)
    assert progress(browser) == "0 / 160 done"

    # every item plays its own clip (from the folder, no server) above its thumbnails strip
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('section.item')).map(function (b) {"
        " var v = b.querySelector('video');"
        " return [b.id, v && v.getAttribute('src'), b.querySelectorAll('.frames img').length]; });")
    video_of = {it["item"]: it["video_id"] for it in key["items"]}
    assert shown == [[f"item-{i}", f"clips/{video_of[i]}.mp4", FRAMES] for i in video_of]
    played = browser.execute_async_script(
        "var done = arguments[0]; var v = document.querySelector('video'); v.muted = true;"
        "v.addEventListener('timeupdate', function t() { if (v.currentTime > 0.2) {"
        "  v.removeEventListener('timeupdate', t); v.pause();"
        "  done([v.readyState, v.currentTime, v.duration, v.videoWidth, v.videoHeight, v.error]); } });"
        "v.play().catch(function (e) { done(String(e)); });")
    assert isinstance(played, list), f"the clip does not play: {played}"
    ready, current, duration, width, height, error = played
    assert error is None and ready >= 2 and current > 0.2 and duration == pytest.approx(2.0, abs=0.2)
    assert (width, height) == (72, 128)
    assert len(videos) == 20

    # the mouse: click the rating's label for every criterion of the first two candidates
    for k in range(8):
        row, f = divmod(k, 4)
        radio = browser.find_element(By.CSS_SELECTOR, f'input[name="r{row}_{f}"][value="{plan(k)}"]')
        radio.find_element(By.XPATH, "..").click()
        given[cells[k]] = plan(k)
    # ... and change one's mind once
    browser.find_element(By.CSS_SELECTOR, 'input[name="r0_0"][value="5"]').find_element(By.XPATH, "..").click()
    given[cells[0]] = 5
    assert progress(browser) == "2 / 160 done"

    # the keyboard: a click on the third candidate's first criterion, then digits only
    browser.find_element(By.CSS_SELECTOR, '.cell[data-cell="8"] .name').click()
    assert active_cell(browser) == 8
    keys(browser, "".join(str(plan(k)) for k in range(8, 320)))
    given.update({cells[k]: plan(k) for k in range(8, 320)})
    assert active_cell(browser) == 320 and progress(browser) == "80 / 160 done"
    keys(browser, Keys.TAB)
    assert active_cell(browser) == 321
    keys(browser, Keys.ARROW_LEFT)
    assert active_cell(browser) == 320
    keys(browser, Keys.ARROW_RIGHT + Keys.ARROW_DOWN + Keys.ARROW_UP)
    assert active_cell(browser) == 321

    # nothing lost: a reload, then the page opened again in a new tab with the old one closed
    browser.refresh()
    assert progress(browser) == "80 / 160 done"
    old = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(url)
    new = browser.current_window_handle
    browser.switch_to.window(old)
    browser.close()
    browser.switch_to.window(new)
    downloads_to(browser, dl)
    assert progress(browser) == "80 / 160 done"
    checked = browser.execute_script(
        "return Array.from(document.querySelectorAll('input[type=radio]:checked')).map("
        "function (r) { return [r.name, +r.value]; });")
    assert sorted(checked) == sorted([f"r{k // 4}_{k % 4}", given[cells[k]]] for k in range(320))
    assert browser.execute_script("return document.getElementById('storage-note').hidden") is True

    # N jumps to the next unrated criterion; the rest by keyboard but the very last one
    keys(browser, "n")
    assert active_cell(browser) == 320
    keys(browser, "".join(str(plan(k)) for k in range(320, 639)))
    given.update({cells[k]: plan(k) for k in range(320, 639)})
    assert progress(browser) == "159 / 160 done"

    # Download CSV warns about the unrated one; declining jumps to it
    browser.find_element(By.ID, "download").click()
    text = alert_text(browser)
    assert text is not None and "1 of 160 responses are not rated yet" in text
    browser.switch_to.alert.dismiss()
    assert active_cell(browser) == 639
    assert not list(dl.iterdir())
    keys(browser, Keys.ARROW_LEFT + "1")            # go back and correct the one before
    given[cells[638]] = 1
    assert active_cell(browser) == 639
    keys(browser, str(plan(639)))
    given[cells[639]] = plan(639)
    assert progress(browser) == "160 / 160 done"

    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "filled_page.png"))
    browser.find_element(By.ID, "download").click()
    assert alert_text(browser, timeout=1.0) is None
    sheet = downloaded(dl, "annotator_1.csv")

    # the downloaded sheet holds exactly the ratings given, row by row ...
    with open(sheet, encoding="utf-8-sig", newline="") as fh:
        got = {(r["item"], r["slot"], c): int(r[c]) for r in csv.DictReader(fh) for c in criteria}
    assert got == given
    # ... and `tiktalk human-eval score` gives what the same ratings typed into the sheet give
    # (annotator_2 filled by the independent simulator in both folders)
    slot_of = {(a, it, system): slot for a, per in key["slots"].items()
               for it, slots in per.items() for slot, system in slots.items()}

    def rate(annotator, item, system, criterion):
        if annotator == "annotator_1":
            return given[(item, slot_of[(annotator, item, system)], criterion)]
        return 1 + (int(item[1:]) + systems.index(system)) % 5

    fill_sheets(pages, tmp_path / "kit" / "key.json", tmp_path / "typed", rate)
    (tmp_path / "from_page").mkdir()
    shutil.copy(tmp_path / "typed" / "annotator_2.csv", tmp_path / "from_page")
    shutil.copy(sheet, tmp_path / "from_page")
    for name in ("from_page", "typed"):
        assert tiktalk(["human-eval", "score", "--ratings", str(tmp_path / name), "--key",
                        str(tmp_path / "kit" / "key.json"), "--out", str(tmp_path / f"{name}.json")]) == 0
    from_page = json.loads((tmp_path / "from_page.json").read_text(encoding="utf-8"))
    assert from_page == json.loads((tmp_path / "typed.json").read_text(encoding="utf-8"))
    for system in systems:
        mine = [v for (item, slot, c), v in given.items()
                if key["slots"]["annotator_1"][item][slot] == system and c == "Quality"]
        theirs = [rate("annotator_2", item, system, "Quality") for item in video_of]
        assert from_page["means"][system]["Quality"] == pytest.approx(
            (sum(mine) + sum(theirs)) / (len(mine) + len(theirs)))
    assert (tmp_path / "filled_page.png").stat().st_size > 0


def test_labels_page_by_keyboard_in_chromium(browser, tmp_path):
    """A Figure 2 labelling page filled with the keyboard only (digits tick sources, 0 marks
    labelled, S skips); its download scores like the same labels typed into the sheet."""
    from selenium.webdriver.common.by import By

    write_split(tmp_path / "test.jsonl", n_videos=6, per_video=1)
    key = cs.make_sheets(tmp_path / "test.jsonl", split="test", n_videos=2, annotators=2, seed=2,
                         sheets_dir=tmp_path / "kit" / "sheets", key_path=tmp_path / "kit" / "key.json")
    pages = tmp_path / "kit" / "sheets"
    add_media(tmp_path, key, cs, pages)
    responses = [(it["item"], slot) for it in key["items"] for slot in key["slots"]["annotator_1"][it["item"]]]
    sources = list(cs.FIGURE2_SOURCES)

    def label(annotator, item, system, field):
        n, ref = int(item[1:]), int(system[3:])
        if (n + ref + len(annotator)) % 4 == 0:
            return 1 if field == "skip" else None
        return 0 if field == "skip" else int((n * ref + sources.index(field)) % 3 == 0)

    typed = {}
    strokes = ""
    for item, slot in responses:
        system = key["slots"]["annotator_1"][item][slot]
        if label("annotator_1", item, system, "skip"):
            strokes += "s"
            continue
        ticks = [k for k, s in enumerate(sources, 1) if label("annotator_1", item, system, s)]
        strokes += "".join(str(k) for k in ticks) + "0"
        typed[(item, slot)] = ticks
    assert 0 < len(typed) < len(responses), "the plan must both label and skip"

    dl = downloads_to(browser, tmp_path / "downloads")
    browser.get((pages / "annotator_1.html").as_uri())
    assert progress(browser) == f"0 / {len(responses)} done"
    browser.find_element(By.CSS_SELECTOR, '.cell[data-cell="0"] .name').click()
    keys(browser, strokes)
    assert progress(browser) == f"{len(responses)} / {len(responses)} done"
    browser.find_element(By.ID, "download").click()
    assert alert_text(browser, timeout=1.0) is None
    sheet = downloaded(dl, "annotator_1.csv")

    # a browser that keeps nothing (local storage off or full): the page says so
    note = "return document.getElementById('storage-note').hidden"
    assert browser.execute_script(note) is True
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source":
        "Storage.prototype.setItem = function () { throw new Error('QuotaExceededError'); };"})
    browser.refresh()
    assert browser.execute_script(note) is False
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)

    fill_sheets(pages, tmp_path / "kit" / "key.json", tmp_path / "typed", label)
    (tmp_path / "from_page").mkdir()
    shutil.copy(tmp_path / "typed" / "annotator_2.csv", tmp_path / "from_page")
    shutil.copy(sheet, tmp_path / "from_page")
    from_page = cs.score(tmp_path / "from_page", tmp_path / "kit" / "key.json")
    assert from_page["skipped"] > 0
    assert from_page == cs.score(tmp_path / "typed", tmp_path / "kit" / "key.json")
