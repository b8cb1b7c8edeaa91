"""The status page in a real browser (headless Chromium): what a person sees,
with and without the token, live updates without a reload, a phone's width
and dark mode.  Screenshots go to tests/artifacts/ (VS_ARTIFACTS)."""
import os
import time

import pytest

from cdp import CHROMIUM, Browser
from conftest import wait_for
from test_statusd import api

ARTIFACTS = os.environ.get("VS_ARTIFACTS") or os.path.join(
    os.path.dirname(__file__), "..", "artifacts")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="chromium is not installed (make deps-test)")


def shot(b, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = b.screenshot(os.path.join(ARTIFACTS, name))
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000, path
    return path


def page_errors(b):
    """Script exceptions, and console errors (a CSP that blocked our own file says so there)."""
    out = []
    for m in b.console_messages():
        if "exceptionDetails" in m:
            out.append(m["exceptionDetails"].get("text"))
        elif m.get("type") == "error":
            out.append(" ".join(str(a.get("value", a.get("description"))) for a in m["args"]))
    return out


@pytest.fixture
def page_env(daemon_factory, workdir):
    from test_remote_dir import remote_env
    e = remote_env(daemon_factory, workdir, os.geteuid() != 0,
                   conf="WatcherDebounce 200ms\n")
    b = None
    try:
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        e.ctl("sync", "v")
        wait_for(lambda: e.vstate()["pushed"], what="the first push")
        b = Browser()
        yield e, b
    finally:
        if b is not None:
            b.close()
        e.close()


def test_page_without_the_token_says_so(page_env):
    e, b = page_env
    url, _ = api(e.d)
    b.goto(url)
    text = b.wait("document.getElementById('problem').hidden ? '' : "
                  "document.getElementById('problem').innerText", what="the message")
    assert "token needed" in text and "vaultsyncctl status --ui" in text, text
    assert b.eval("document.querySelectorAll('#vaults article').length") == 0
    shot(b, "status-page-no-token.png")
    assert page_errors(b) == [], page_errors(b)
    # A wrong token is named as such, not shown as an empty daemon.
    b.goto(url + "#t=" + "0" * 64)
    text = b.wait("document.getElementById('problem').hidden ? '' : "
                  "document.getElementById('problem').innerText", what="the message")
    assert "token is missing or wrong" in text, text


def test_page_shows_the_vaults_and_follows_a_write_without_a_reload(page_env):
    e, b = page_env
    url, auth = api(e.d)
    token = auth["Authorization"][len("Bearer "):]
    b.goto(url + "#t=" + token)
    b.wait("document.querySelectorAll('#vaults article').length === 1", what="the vault")
    # The token has left the address bar and the history entry.
    href = b.eval("location.href")
    assert token not in href and "#" not in href and href == url, href
    # The history count comes from a listing after the first push: it may follow
    # (no event says so; the page looks again every 15 s).
    card = b.wait("(function(t){return /history/.test(t) ? t : ''})"
                  "(document.querySelector('#vaults article').innerText)", timeout=20,
                  what="the history count on the page")
    for want in ("v", "unlocked", "remote", "last good push", "history", "archive"):
        assert want in card, (want, card)
    daemon = b.eval("document.getElementById('daemon').innerText")
    assert "healthy" in daemon and str(e.d.proc.pid) in daemon, daemon
    procs = b.eval("document.querySelector('#children tbody').innerText")
    for child in ("watcher", "uploader", "statusd"):
        assert child in procs, procs
    creds = b.eval("document.querySelector('#creds tbody').innerText")
    assert "none in use" in creds, creds	# a dir: remote needs none

    # A write reaches the page through the events, not a reload: a marker
    # set in the page survives, and the archive's size changes on it.
    archive_row = ("(function(){var dt=[...document.querySelectorAll('#vaults dt')]"
                   ".find(function(x){return x.textContent==='archive'});"
                   "return dt?dt.nextElementSibling.textContent:''})()")
    before = b.eval(archive_row)
    b.eval("window.vsMarker = 1")
    path = os.path.join(e.path, "new-secret")
    with open(path + ".tmp", "wb") as f:
        f.write(os.urandom(40000))
    if not e.user_mode:
        os.chown(path + ".tmp", *e.owner)
    t0 = time.monotonic()
    os.rename(path + ".tmp", path)
    after = b.wait("(function(r){return r !== %r ? r : ''})(%s)" % (before, archive_row),
                   timeout=10, what="the page to show the new archive")
    took = time.monotonic() - t0
    assert took < 2.0, "the page followed the write after %.2f s" % took
    assert b.eval("window.vsMarker") == 1	# not reloaded
    assert str(e.vstate()["archive_bytes"]) in after, (after, e.vstate()["archive_bytes"])
    # The chart has a bar per tick, the newest one the write's.
    b.wait("document.querySelectorAll('#vaults svg.ticks rect').length >= 2", timeout=10,
           what="the tick chart")
    shot(b, "status-page.png")
    assert page_errors(b) == [], page_errors(b)

    # A phone: nothing wider than the screen.  Dark mode: another background.
    light = b.eval("getComputedStyle(document.body).backgroundColor")
    b.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
           deviceScaleFactor=2, mobile=True)
    b.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme",
                                                    "value": "dark"}])
    b.wait("document.documentElement.scrollWidth <= window.innerWidth", timeout=5,
           what="the page to fit a phone's width")
    dark = b.eval("getComputedStyle(document.body).backgroundColor")
    assert dark != light, (light, dark)
    shot(b, "status-page-phone-dark.png")
    assert e.d.stop() == 0
