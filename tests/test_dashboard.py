"""The web dashboard in a real browser: Debian's Chromium driven by Playwright, against the real
stack (web under eventlet, an RQ worker, rq cron) as the Procfile starts it.

The fake microphone plays real speech (RAVDESS clips, or generated voiced audio without the
corpus). Screenshots of every page, desktop and phone width, go to test-artifacts/dashboard/.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the playwright package; without
either the tests skip and say why. Playwright's own browser downloads are never used.
"""
import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
import requests
import soundfile

from devtools.stack import Stack

import audio_fixtures

ROOT = Path(__file__).resolve().parent.parent
RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"
SHOTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
PROBABILITIES = {"neutral": 0.1, "calm": 0.1, "happy": 0.4, "sad": 0.1, "angry": 0.1, "fearful": 0.1,
                 "disgust": 0.05, "surprised": 0.05}

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -r requirements-dev.txt)")
if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get update && apt-get install -y chromium`",
                allow_module_level=True)

pytestmark = pytest.mark.timeout(300)


def speech_wav(path, seconds_wanted=10.0):
    """~10 s of real speech as a 16 kHz mono WAV: RAVDESS clips joined by short pauses."""
    clips = sorted((RAVDESS / "audio").glob("ravdess_2*/*.flac"))[::11] if (RAVDESS / "audio").exists() else []
    if clips:
        parts, total = [], 0.0
        for clip in clips:
            audio, rate = soundfile.read(clip, dtype="float32")
            assert rate == 16000
            if audio.ndim > 1:
                audio = audio.mean(axis=1)
            parts += [audio, np.zeros(3200, np.float32)]
            total += (audio.size + 3200) / 16000
            if total >= seconds_wanted:
                break
        audio = np.concatenate(parts)
    else:
        audio = audio_fixtures.speech_like(seconds_wanted, 16000)[0]
    soundfile.write(path, np.clip(audio, -1, 1), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def stack(mongo_uri, redis_url, tmp_path_factory):
    own_redis = redis_url.rsplit("/", 1)[0] + "/12"
    redis_lib.Redis.from_url(own_redis).flushdb()
    own_mongo = re.sub(r"/moodmirror_test\b", "/moodmirror_dashboard", mongo_uri)
    running = Stack(own_mongo, own_redis, tmp_path_factory.mktemp("dashboard-stack"),
                    extra_env={"COLLECTIVE_INTERVAL_SECONDS": "2", "COLLECTIVE_MIN_USERS": "1"})
    try:
        running.start()
        running.start_process("cron", running.commands["cron"])
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    wav = speech_wav(tmp_path_factory.mktemp("mic") / "speech.wav")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={wav}"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


class Page:
    """A tab with the console watched: any error or CSP violation fails the test."""

    def __init__(self, browser, base_url):
        self.context = browser.new_context(base_url=base_url, viewport=DESKTOP, accept_downloads=True,
                                           permissions=["microphone"])
        self.page = self.context.new_page()
        self.page.set_default_timeout(20000)
        self.problems = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def shot(self, name, full_page=True):
        self.page.set_viewport_size(DESKTOP)
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=full_page)
        self.page.set_viewport_size(PHONE)
        self.page.wait_for_timeout(400)
        self.page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=full_page)
        self.page.set_viewport_size(DESKTOP)

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, stack, shots):
    tab = Page(browser, stack.base_url)
    yield tab
    tab.close()
    assert tab.problems == [], "browser console errors"


def sign_up(tab, email):
    page = tab.page
    page.goto("/signup")
    form = page.locator("#signup-form")
    form.get_by_label("Display name").fill(email.split("@")[0].title())
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/live")
    page.get_by_role("heading", name="Live").wait_for()


def wait_until(page, expression, timeout=20000):
    """Poll a JS expression until truthy (wait_for_function compiles with eval, which the CSP blocks)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(250)


def chart_points(page, canvas_id):
    return page.evaluate("id => { const c = Chart.getChart(document.getElementById(id)); "
                         "return c ? c.data.labels.length || c.data.datasets[0].data.length : -1; }", canvas_id)


def test_sign_in_pages_and_guard(tab, stack):
    page = tab.page
    page.goto("/history")
    page.wait_for_url("**/login?next=%2Fhistory")
    page.get_by_role("heading", name="Sign in").wait_for()
    login = page.locator("#login-form")
    login.get_by_label("Email").fill("nobody@example.com")
    login.get_by_label("Password").fill("wrong password here")
    login.get_by_role("button", name="Sign in").click()
    page.get_by_text("Invalid email or password").wait_for()
    tab.problems = [p for p in tab.problems if "401" not in p]  # the refused sign-in itself
    tab.shot("login")
    page.get_by_role("link", name="Create one").click()
    page.get_by_role("heading", name="Create an account").wait_for()
    signup = page.locator("#signup-form")
    signup.get_by_label("Email").fill("short@example.com")
    signup.get_by_label("Password").fill("short")
    signup.get_by_role("button", name="Create account").click()
    page.locator("#signup-form [data-form-error]").filter(has_text="password").wait_for()
    tab.problems = [p for p in tab.problems if "422" not in p]
    tab.shot("signup")

    # Signed up, then signed out (both tokens revoked) and in again, landing where it was sent.
    sign_up(tab, "guard@example.com")
    assert page.evaluate("sessionStorage.getItem('moodmirror.access')")
    assert page.evaluate("localStorage.length") == 0, "no token in localStorage"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.evaluate("sessionStorage.getItem('moodmirror.access')") is None
    page.goto("/collective")
    page.wait_for_url("**/login?next=%2Fcollective")
    login.get_by_label("Email").fill("guard@example.com")
    login.get_by_label("Password").fill(PASSWORD)
    login.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/collective")

    # An access token the API refuses is refreshed (refresh token in memory) ...
    page.evaluate("sessionStorage.setItem('moodmirror.access', 'not-a-token')")
    page.get_by_role("link", name="History").click()
    page.locator("#distribution-summary").filter(has_text="No readings").wait_for()
    assert page.evaluate("sessionStorage.getItem('moodmirror.access')") != "not-a-token"
    # ... and without a refresh token (a reload forgets it), a 401 sends the user to sign in.
    page.evaluate("sessionStorage.setItem('moodmirror.access', 'not-a-token')")
    page.reload()
    page.wait_for_url("**/login?next=%2Fhistory")
    page.get_by_text("Please sign in again").wait_for()
    # The view's other requests, sent in parallel with the refused one, are refused too: let
    # them all finish before their console lines are set aside.
    page.wait_for_load_state("networkidle")
    tab.problems = [p for p in tab.problems if "401" not in p]


def test_live_microphone_then_history_with_readings_and_export(tab, stack):
    page = tab.page
    sign_up(tab, "live@example.com")
    page.get_by_label("Session name").fill("Browser mic")
    page.get_by_role("button", name="Start microphone").click()
    page.get_by_text("Listening").wait_for()
    # Emotions arrive on the live charts and as the current emotion.
    wait_until(page, "Chart.getChart(document.getElementById('live-prob-chart')).data.labels.length >= 4",
                           timeout=90000)
    assert chart_points(page, "live-va-chart") >= 4
    wait_until(page, "/^[A-Z][a-z]+ · \\d+ % sure$/.test(document.getElementById('current-emotion').textContent)",
                           timeout=30000)
    probabilities = page.evaluate(
        "Chart.getChart(document.getElementById('live-prob-chart')).data.datasets.map(d => d.data.at(-1))")
    assert len(probabilities) == 8
    if None not in probabilities:
        assert abs(sum(probabilities) - 1) < 1e-3
    # The environment response paints the panel and drives the particles.
    wait_until(page, "document.getElementById('environment-panel').dataset.light", timeout=30000)
    light = page.evaluate("document.getElementById('environment-panel').dataset.light")
    assert re.fullmatch(r"#[0-9a-f]{6}", light)
    assert int(page.evaluate("document.getElementById('particles').dataset.particles")) > 0
    assert page.locator("#current-emotion").get_attribute("aria-live") == "polite"
    # Every reading says whether it is a guess; an uncertain one shows its note.
    uncertain = page.locator("#current-emotion").get_attribute("data-uncertain")
    assert uncertain in ("true", "false")
    assert page.locator("#current-uncertain").is_visible() == (uncertain == "true")
    assert page.locator("#live-errors").inner_text().strip() == ""
    tab.shot("live", full_page=False)
    session_id = page.evaluate("document.getElementById('environment-panel').dataset.sessionId")

    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped.").wait_for()
    windows = int(re.search(r"(\d+) window", page.locator("#live-status").inner_text()).group(1))
    assert windows >= 4

    # The session is in History, with its readings.
    page.get_by_role("link", name="History").click()
    row = page.locator(f"#sessions-table tr[data-session-id='{session_id}']")
    row.wait_for()
    assert "Browser mic" in row.inner_text() and "Ended" in row.inner_text()
    wait_until(page, "+document.getElementById('distribution-chart').dataset.total > 0")
    assert chart_points(page, "trend-chart") >= 1
    tab.shot("history")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    csv_text = Path(download.path()).read_text()
    assert csv_text.splitlines()[0].startswith("id,session_id,source,timestamp,")
    assert 2 <= len(csv_text.splitlines()) <= windows + 1, "a row per reading of the user's one session"

    row.get_by_role("link").click()
    page.wait_for_url(f"**/history/{session_id}")
    wait_until(page, "+document.getElementById('readings-table').dataset.rows > 0", timeout=30000)
    readings = int(page.evaluate("document.getElementById('view-session').dataset.readings"))
    assert readings >= 1
    assert page.locator("#session-summary").inner_text().strip()
    assert chart_points(page, "session-doughnut") >= 1
    tab.shot("session")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export JSON").click()
    exported = __import__("json").loads(Path(download_info.value.path()).read_text())
    assert exported and {r["session_id"] for r in exported} == {session_id}


def test_new_account_trends_have_a_point_per_minute(tab, stack):
    """Eight minutes of readings on a new account: the 24-hour trend chooses minutes (one point
    each), not one hourly dot."""
    sign_up(tab, "fresh@example.com")
    token = requests.post(f"{stack.base_url}/api/auth/login", timeout=30,
                          json={"email": "fresh@example.com", "password": PASSWORD}).json()["access_token"]
    now = datetime.now(UTC)
    for minutes in range(8):
        answer = requests.post(f"{stack.base_url}/api/readings", headers={"Authorization": f"Bearer {token}"},
                               timeout=30, json={"probabilities": PROBABILITIES,
                                                 "timestamp": (now - timedelta(minutes=minutes)).isoformat()})
        assert answer.status_code == 201, answer.text
    page = tab.page
    page.get_by_role("link", name="History").click()
    page.locator("#history-range").select_option(label="Last 24 hours")
    wait_until(page, "+document.getElementById('distribution-chart').dataset.total === 8")
    wait_until(page, "+document.getElementById('trend-chart').dataset.points === 8")
    assert chart_points(page, "trend-chart") == 8
    tab.shot("history-new-account")


def test_upload_analyses_a_file_and_shows_its_timeline(tab, stack, tmp_path):
    page = tab.page
    sign_up(tab, "upload@example.com")
    tab.shot("upload-empty")
    path = audio_fixtures.write(tmp_path, "flac", seconds=6.0)
    page.get_by_role("link", name="Upload").click()
    page.get_by_label("Audio file").set_input_files(str(path))
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("Done: analysed.").wait_for(timeout=90000)
    assert page.locator("#upload-progress").evaluate("p => p.value") == 1
    points = int(page.evaluate("document.getElementById('upload-chart').dataset.points"))
    assert points >= 3 and chart_points(page, "upload-chart") == points
    assert re.fullmatch(r"Mixed|[A-Z][a-z]+ · in \d+ % of windows", page.locator("#upload-overall").inner_text())
    assert page.locator("#upload-overall").get_attribute("data-uncertain") in ("true", "false")
    tab.shot("upload")

    # The upload taught the model this voice: the account page shows the baseline, turns
    # adaptation off (kept after a reload) and resets the baseline.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("heading", name="Account", exact=True).wait_for()
    page.get_by_text("A voice baseline exists").wait_for()
    toggle = page.get_by_label("Adapt to my voice")
    assert toggle.is_checked()
    tab.shot("account")
    with page.expect_response(lambda r: r.url.endswith("/api/auth/profile") and r.request.method == "PUT") as put:
        toggle.uncheck()
    assert put.value.status == 200
    page.reload()
    page.get_by_text("A voice baseline exists").wait_for()
    assert not page.get_by_label("Adapt to my voice").is_checked()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset voice baseline").click()
    page.get_by_text("No voice baseline yet").wait_for()
    assert page.get_by_role("button", name="Reset voice baseline").is_disabled()


def test_collective_page_updates_live(tab, stack):
    page = tab.page
    sign_up(tab, "together@example.com")
    page.get_by_role("link", name="Collective").click()
    page.get_by_role("heading", name="Collective mood").wait_for()
    # rq cron takes a snapshot every 2 s here; each arrives over Socket.IO.
    wait_until(page, "+(document.getElementById('view-collective').dataset.updates || 0) >= 2", timeout=60000)
    assert page.locator("#collective-status").inner_text().startswith("Live · updated")
    assert chart_points(page, "collective-history") >= 2
    tab.shot("collective")


def test_keyboard_focus_and_phone_layout(tab, stack):
    page = tab.page
    sign_up(tab, "keys@example.com")
    # The skip link comes first and is visible when focused; nav links are reachable by Tab.
    page.goto("/live")
    page.get_by_role("heading", name="Live").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Live"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/upload")
    page.get_by_role("heading", name="Analyse a recording").wait_for()
    # A session in the list: its table, wider than a phone, scrolls inside its box.
    token = page.evaluate("sessionStorage.getItem('moodmirror.access')")
    requests.post(f"{stack.base_url}/api/sessions", json={"name": "A session with a long name"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
    page.set_viewport_size(PHONE)
    for path in ("/live", "/upload", "/history", "/collective", "/account"):
        page.goto(path)
        page.wait_for_timeout(300)
        if path == "/history":
            page.locator("#sessions-table tbody tr").first.wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways at phone width"


def test_a_long_stereo_upload_is_converted_in_the_browser_and_becomes_a_session(tab, stack, tmp_path):
    page = tab.page
    sign_up(tab, "recording@example.com")
    # 3 minutes of 44.1 kHz stereo 16-bit WAV: 31.8 MB, over the 25 MB upload limit as it is.
    audio = audio_fixtures.speech_like(180.0, 44100, channels=2)
    path = tmp_path / "Long interview.wav"
    soundfile.write(path, audio.T, 44100, subtype="PCM_16")
    assert path.stat().st_size > 25 * 1024 * 1024
    page.get_by_role("link", name="Upload").click()
    hint = page.locator("#upload-hint").inner_text()
    assert "10 minutes" in hint and "25 MB" in hint
    page.get_by_label("Audio file").set_input_files(str(path))
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("Done: analysed.").wait_for(timeout=180000)
    sent = int(page.locator("#upload-form").get_attribute("data-sent-bytes"))
    assert sent == 44 + 180 * 16000 * 2, "sent as 16 kHz mono 16-bit WAV"
    # The breakdown: a share of windows per emotion, summing to 100 %, and a headline that
    # is either the dominant emotion's share or "Mixed".
    shares = page.locator("#upload-breakdown li").all_inner_texts()
    assert shares and all(re.fullmatch(r"[A-Z][a-z]+: in \d+ % of windows", s) for s in shares)
    assert abs(sum(int(re.search(r"(\d+) %", s).group(1)) for s in shares) - 100) <= len(shares)
    overall = page.locator("#upload-overall").inner_text()
    assert re.fullmatch(r"Mixed|[A-Z][a-z]+ · in \d+ % of windows", overall)
    assert (overall == "Mixed") == (page.locator("#upload-overall").get_attribute("data-mixed") == "true")
    # The timeline band: one stripe per 3 s window (178 start in 180 s), each telling its
    # probabilities on focus.
    points = int(page.evaluate("document.getElementById('upload-chart').dataset.points"))
    assert points == 178 and page.locator("#upload-band .band-stripe").count() == points
    page.locator("#upload-band .band-stripe").nth(10).focus()
    detail = page.locator("#upload-band-detail").inner_text()
    assert re.match(r"10–13 s: (silence|[A-Z][a-z]+, \d+ % sure.*Probabilities: )", detail), detail
    # The past analyses list it under its file name.
    page.locator("#uploads-table tbody tr").filter(has_text="Long interview.wav").wait_for()
    tab.shot("upload-long")

    # It is a session in History, named after the file, with its duration and insights.
    page.get_by_role("link", name="Open this recording in History").click()
    page.get_by_role("heading", name="Long interview.wav").wait_for()
    assert page.locator("#session-meta").inner_text().startswith("Upload ·")
    wait_until(page, "+document.getElementById('readings-table').dataset.rows > 0", timeout=30000)
    facts = page.locator("#session-facts").inner_text()
    assert re.search(r"Duration\D*180 s", facts), facts
    assert page.locator("#session-summary").inner_text().strip()
    tab.shot("upload-session")
    page.get_by_role("link", name="All sessions").click()
    row = page.locator("#sessions-table tbody tr").filter(has_text="Long interview.wav")
    row.wait_for()
    assert "Upload" in row.inner_text()
    # Deleting it asks first, then it is gone (with its readings).
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete session Long interview.wav").click()
    page.get_by_text('Deleted "Long interview.wav".').wait_for()
    assert page.locator("#sessions-table tbody tr").count() == 0
    assert page.locator("#sessions-empty").is_visible()


def test_a_file_over_the_limit_that_the_browser_cannot_convert_gets_a_sentence(tab, stack, tmp_path):
    page = tab.page
    sign_up(tab, "toobig@example.com")
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(26 * 1024 * 1024))
    page.get_by_role("link", name="Upload").click()
    page.get_by_label("Audio file").set_input_files(str(path))
    page.get_by_role("button", name="Analyse").click()
    error = page.locator("#upload-form [data-form-error]")
    error.filter(has_text="larger than the 25 MB").wait_for(timeout=60000)
    assert "capacity" not in error.inner_text()
    tab.problems = [p for p in tab.problems if "413" not in p]


def _api_login(stack, email, password=PASSWORD):
    return requests.post(f"{stack.base_url}/api/auth/login", json={"email": email, "password": password}, timeout=10)


def _profile_status(stack, token):
    return requests.get(f"{stack.base_url}/api/auth/profile", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code


def test_account_page_name_password_sign_out_everywhere_and_delete(tab, stack):
    page = tab.page
    sign_up(tab, "account@example.com")
    phone = _api_login(stack, "account@example.com").json()["access_token"]  # another device
    page.get_by_role("link", name="Account").click()
    page.get_by_role("heading", name="Account", exact=True).wait_for()
    page.locator("#account-email").filter(has_text="account@example.com").wait_for()

    account = page.locator("#view-account")
    account.get_by_label("Display name").fill("Ada Lovelace")
    page.get_by_role("button", name="Save name").click()
    page.get_by_text("Display name saved.").wait_for()
    page.get_by_role("link", name="Live").click()
    assert page.locator("#account-name").inner_text() == "Ada Lovelace"

    # A password change signs out every other device; this tab carries on with its new tokens.
    page.get_by_role("link", name="Account").click()
    account.get_by_label("Current password").fill(PASSWORD)
    account.get_by_label("New password").fill("a second good password")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed.").wait_for()
    assert _profile_status(stack, phone) == 401
    page.get_by_role("link", name="History").click()
    page.locator("#distribution-summary").filter(has_text="No readings").wait_for()
    assert page.url.endswith("/history")
    tab.shot("account-changed")

    # Sign out everywhere: this tab too; the address bar shows sign-in, and Back leads nowhere private.
    mine = page.evaluate("sessionStorage.getItem('moodmirror.access')")
    page.get_by_role("link", name="Account").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url("**/login")
    page.get_by_text("You were signed out everywhere.").wait_for()
    assert _profile_status(stack, mine) == 401
    tab.problems = [p for p in tab.problems if "401" not in p]

    login = page.locator("#login-form")
    login.get_by_label("Email").fill("account@example.com")
    login.get_by_label("Password").fill("a second good password")
    login.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/live")
    page.get_by_role("link", name="Account").click()
    form = page.locator("#delete-form")
    form.get_by_label("Your password, to confirm").fill("a second good password")
    form.get_by_role("button", name="Delete my account").click()
    form.get_by_text("Tick the box").wait_for()
    form.get_by_label("Your password, to confirm").fill("not the password")
    form.get_by_label("I understand").check()
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Delete my account").click()
    form.get_by_text("The password is wrong.").wait_for()
    tab.shot("account-delete")
    form.get_by_label("Your password, to confirm").fill("a second good password")
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Delete my account").click()
    page.wait_for_url("**/login")
    page.get_by_text("Your account and all its data have been deleted.").wait_for()
    assert _api_login(stack, "account@example.com", "a second good password").status_code == 401
    tab.problems = [p for p in tab.problems if "401" not in p]


def test_forgotten_password_is_reset_by_the_link_in_the_email(tab, stack):
    page = tab.page
    sign_up(tab, "forgetful@example.com")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.get_by_text("You are signed out.").wait_for()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("heading", name="Reset your password").wait_for()
    mailbox = stack.log_dir / "var" / "mail"
    answers = []
    for email in ("nobody@example.com", "forgetful@example.com"):
        page.locator("#forgot-form").get_by_label("Email").fill(email)
        page.get_by_role("button", name="Send the link").click()
        page.locator("#forgot-sent").filter(has_text="If an account uses this address").wait_for()
        answers.append(page.locator("#forgot-sent").inner_text())
        page.evaluate("document.getElementById('forgot-sent').textContent = ''")
    assert answers[0] == answers[1], "the answer does not tell whether an account exists"
    tab.shot("forgot-password")
    deadline = time.monotonic() + 30
    while not (mailbox.exists() and list(mailbox.glob("*.eml"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    mails = [m.read_text().replace("=\n", "") for m in mailbox.glob("*.eml")]
    assert len([m for m in mails if "forgetful@example.com" in m]) == 1
    assert not [m for m in mails if "nobody@example.com" in m]
    link = re.search(r"http://\S+/reset-password#token=[A-Za-z0-9_\-.]+", mails[0]).group(0)

    page.goto(link)
    page.get_by_role("heading", name="Choose a new password").wait_for()
    page.locator("#reset-form").get_by_label("New password").fill("my new passphrase")
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url("**/login")
    page.get_by_text("Your password has been changed.").wait_for()
    login = page.locator("#login-form")
    login.get_by_label("Email").fill("forgetful@example.com")
    login.get_by_label("Password").fill("my new passphrase")
    login.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/live")
    # The link worked once.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto(link)
    page.locator("#reset-form").get_by_label("New password").fill("yet another passphrase")
    page.get_by_role("button", name="Set the password").click()
    page.get_by_text("This reset link has been used").wait_for()
    tab.shot("reset-used")
    tab.problems = [p for p in tab.problems if "400" not in p]


def test_dark_mode_follows_the_system_and_numbers_are_explained(tab, stack):
    page = tab.page
    page.emulate_media(color_scheme="dark")
    sign_up(tab, "night@example.com")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert background == "rgb(15, 23, 42)" and text == "rgb(229, 231, 235)"
    # Chart text follows the scheme too.
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--chart-text').trim()") \
        == "#e5e7eb"
    # Every number on the live panel has its explanation, behind a labelled button.
    explain = page.get_by_role("button", name="What is valence?").first
    assert explain.get_attribute("aria-expanded") == "false"
    explain.click()
    assert explain.get_attribute("aria-expanded") == "true"
    page.get_by_text("How pleasant the emotion sounds").first.wait_for()
    for term in ("arousal", "light", "pattern", "lag", "windows"):
        assert page.get_by_role("button", name=f"What is {term}?").count() >= 1, term
    page.get_by_role("link", name="Collective").click()
    page.get_by_role("heading", name="Collective mood").wait_for()
    assert page.get_by_role("button", name="What is right now?").count() == 1  # shares, not confidences
    tab.shot("dark-collective")
    page.get_by_role("link", name="History").click()
    wrap = page.locator("#sessions-table").locator("xpath=..")
    assert wrap.get_attribute("tabindex") == "0" and "scrolls sideways" in wrap.get_attribute("aria-label")
    tab.shot("dark-history")
