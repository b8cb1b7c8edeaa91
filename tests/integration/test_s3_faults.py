"""An S3 endpoint that lies, stalls or fails halfway: the daemon talks to RGW
through tests/integration/faultproxy.py.  A 200 is not proof of a write; an
outcome that may or may not have landed is settled by a HEAD comparing the
object's content id with ours, never taken for another device's write; and
no request holds the one uploader longer than its deadline."""
import os
import re
import signal
import time

import pytest

from conftest import MODES, wait_for
from faultproxy import FaultProxy
from test_remote_s3 import S3Env, restores_to, started
from test_vault import populate, tree

# Slow (fault proxy: retries and deadlines): the sanitizer pass of make check leaves it out.
pytestmark = pytest.mark.slow

LATEST = r"/v/vault\.tar\.age$"		# the single PUT and HEAD of the latest, not parts


@pytest.fixture
def proxy(s3):
    p = FaultProxy(s3.port)
    p.start()
    yield p
    p.stop()


@pytest.fixture(params=MODES)
def fenv(request, daemon_factory, workdir, s3, proxy):
    made = []

    def make(**kw):
        env = S3Env(daemon_factory, workdir, request.param, s3, **kw)
        with open(env.e.d.conf) as f:
            c = f.read()
        assert "Endpoint %s\n" % s3.endpoint in c
        with open(env.e.d.conf, "w") as f:
            f.write(c.replace("Endpoint %s\n" % s3.endpoint, "Endpoint %s\n" % proxy.endpoint))
        made.append(env)
        return env
    yield make
    for env in made:
        env.e.close()


def settled(e, timeout=30):
    """The vault's status once no tick or push is running and the push is done."""
    return wait_for(lambda: (lambda v: v if v["state"] == "unlocked" and v["pushed"] else None)(
        e.vstate()), timeout=timeout, what="settled and pushed")


def change(e, what=b"changed"):
    with open(os.path.join(e.path, "token"), "ab") as f:
        f.write(what)
    if not e.user_mode:
        os.chown(os.path.join(e.path, "token"), *e.owner)


def first_push(env):
    e = started(env)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    return e, settled(e)


def holds_ours(env, s3, e, v, want):
    """The remote latest is our archive, under the ETag and content id the daemon recorded."""
    head = s3.head(env.key)
    assert head["ETag"].strip('"') == v["remote_etag"], (head, v)
    assert head.get("Metadata", {}).get("content-id") == v["content_id"], (head, v)
    assert restores_to(env, env.download(), want)


def no_conflict_ever(env, s3, e):
    assert not any("written by another device" in r.get("msg", "") for r in e.d.records())
    assert not s3.list_keys(env.prefix + "/v/conflicts/")


@pytest.mark.parametrize("kind", ["put_200_garbage", "put_200_empty", "put_no_etag",
                                  "close_mid_headers"])
def test_unconfirmed_write_is_not_a_push(fenv, s3, proxy, kind):
    env = fenv()
    e, v0 = first_push(env)
    # Every request for the latest, its HEAD too: nothing can confirm the write.
    proxy.set_fault(kind, path=LATEST)
    change(e)
    want = tree(e.path)
    r = e.ctl("sync", "v", check=False)
    assert proxy.count(kind) >= 1
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "pushed vault.tar.age" not in r.stdout
    v = e.vstate()
    assert not v["pushed"], v
    assert v["state"] != "conflict", v
    # What the daemon believes the remote holds is still the last confirmed write.
    assert v["remote_etag"] == v0["remote_etag"], v
    proxy.clear()
    # The retry settles it: the archive is up, under its real ETag, no conflict.
    v = settled(e, timeout=60)
    holds_ours(env, s3, e, v, want)
    no_conflict_ever(env, s3, e)
    # Not stuck: the next change goes up under If-Match as usual.
    change(e, b"again")
    want = tree(e.path)
    e.ctl("sync", "v")		# a watcher tick may have pushed it first
    holds_ours(env, s3, e, settled(e), want)
    assert e.d.stop() == 0


@pytest.mark.parametrize("kind", ["forward_then_500", "bad_status"])
def test_write_behind_an_error_is_adopted(fenv, s3, proxy, kind):
    env = fenv()
    e, v0 = first_push(env)
    # The write lands in RGW; the daemon is told it failed, or cannot read the reply.
    proxy.set_fault(kind, method="PUT", path=LATEST, times=1)
    change(e)
    want = tree(e.path)
    e.ctl("sync", "v", check=False)
    assert proxy.count(kind) == 1
    v = settled(e, timeout=60)
    assert v["remote_etag"] != v0["remote_etag"]
    holds_ours(env, s3, e, v, want)
    no_conflict_ever(env, s3, e)
    change(e, b"again")
    want = tree(e.path)
    e.ctl("sync", "v")
    holds_ours(env, s3, e, settled(e), want)
    assert e.d.stop() == 0


@pytest.mark.parametrize("kind", ["close_mid_headers", "bad_status"])
def test_many_unanswered_writes_of_changing_archives_are_not_a_conflict(fenv, s3, proxy, kind):
    """The first write lands and no reply says so; every later attempt, each
    of a newer archive, is refused (412) or unreadable, and so is every HEAD:
    more attempts than the daemon keeps in doubt.  When the server answers
    again, the remote holds a write of ours, not another device's: no
    conflict, and the newest archive goes up."""
    env = fenv(conf="WatcherDebounce 60s\n")
    e, v0 = first_push(env)
    proxy.set_fault(kind, path=LATEST)
    for i in range(40):
        change(e, b"%d " % i)
        r = e.ctl("sync", "v", check=False)
        assert r.returncode == 1, (r.stdout, r.stderr)
    assert e.vstate()["state"] != "conflict"
    proxy.clear()
    change(e, b"last")
    want = tree(e.path)
    e.ctl("sync", "v", check=False)
    v = settled(e, timeout=60)
    holds_ours(env, s3, e, v, want)
    no_conflict_ever(env, s3, e)
    assert e.d.stop() == 0


def test_uploader_killed_after_its_write_landed(fenv, s3, proxy):
    """The uploader dies after RGW stored its PUT and before the reply: that write
    is in doubt, not failed, and stays so while later attempts are refused.  The
    next archive's If-Match then meets a 412 caused by that write of ours: it
    must be adopted, never taken for another device's.  The watcher waits a
    minute, so that no tick of its own carries a change before the sync does."""
    env = fenv(conf="WatcherDebounce 60s\n")
    e, v0 = first_push(env)
    upl = e.d.child_pids()["uploader"]
    proxy.set_fault("pass", method="PUT", path=LATEST, times=1,
                    after_forward=lambda: os.kill(upl, signal.SIGKILL))
    # Every attempt after it is refused until the vault has changed again, so
    # what goes up next is a different archive, not a retry of the one in doubt.
    proxy.add_fault("status", code=503, method="PUT", path=LATEST)
    change(e)
    r = e.ctl("sync", "v", check=False)
    assert proxy.count("pass") == 1
    assert r.returncode == 1 and "killed before answering" in r.stdout + r.stderr, \
        (r.stdout, r.stderr)
    landed = s3.head(env.key)		# the killed uploader's write, under a new ETag
    assert landed["ETag"].strip('"') != v0["remote_etag"]
    change(e, b"after the kill")
    want = tree(e.path)
    # The next attempt must meet the 503, not the gap while the uploader restarts.
    wait_for(lambda: e.d.children()["uploader"]["state"] == "running" and
             e.d.child_pids()["uploader"] != upl, timeout=30, what="the uploader restarted")
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1 and "503" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert proxy.count("status") >= 1
    proxy.clear()
    v = settled(e, timeout=60)
    holds_ours(env, s3, e, v, want)
    no_conflict_ever(env, s3, e)
    assert any("holds an earlier write of ours" in r.get("msg", "") for r in e.d.records())
    assert e.d.stop() == 0


def test_unknown_outcome_then_another_device_is_a_conflict(fenv, s3, proxy):
    env = fenv()
    e, v0 = first_push(env)
    # Our write does not land (500 without forwarding), then another device writes.
    proxy.set_fault("status", code=500, method="PUT", path=LATEST)
    change(e)
    mine = tree(e.path)
    assert e.ctl("sync", "v", check=False).returncode == 1
    theirs = b"another device's archive\n" * 100
    s3.put(env.key, theirs)
    their_etag = s3.head(env.key)["ETag"]
    proxy.clear()
    v = wait_for(lambda: (lambda v: v if v["state"] == "conflict" else None)(e.vstate()),
                 timeout=60, what="a conflict")
    assert s3.get(env.key) == theirs and s3.head(env.key)["ETag"] == their_etag
    assert v["remote_etag"] == v0["remote_etag"]
    conflicts = s3.list_keys(env.prefix + "/v/conflicts/")
    for k in conflicts:
        assert restores_to(env, env.download(k), mine)
    assert e.d.stop() == 0


def test_write_adopted_only_if_it_holds_ours(fenv, s3, proxy):
    """A PUT answered without an ETag, and another device's write before we look:
    the ETag the HEAD shows is theirs, and must not become ours."""
    env = fenv()
    e, v0 = first_push(env)
    theirs = b"another device's archive\n" * 100
    proxy.set_fault("put_no_etag", method="PUT", path=LATEST, times=1,
                    after_forward=lambda: s3.put(env.key, theirs))
    change(e)
    e.ctl("sync", "v", check=False)
    assert proxy.count("put_no_etag") == 1
    wait_for(lambda: e.vstate()["state"] == "conflict", timeout=60, what="a conflict")
    assert s3.get(env.key) == theirs
    their_etag = s3.head(env.key)["ETag"].strip('"')
    assert e.vstate()["remote_etag"] != their_etag
    # Still nothing overwritten after more changes.
    change(e, b"more")
    e.ctl("sync", "v", check=False)
    assert s3.get(env.key) == theirs
    assert e.d.stop() == 0


def test_dripping_server_cannot_hold_the_uploader(fenv, s3, proxy):
    env = fenv()
    e, v0 = first_push(env)
    # Just above libcurl's stall limit: 600 bytes/s, 60 kB of it before the listing.
    proxy.set_fault("drip", rate=600, pad=60000, method="GET", path=r"list-type=2")
    t = time.monotonic()
    r = e.d.ctl("history", "v", check=False, timeout=240)
    took = time.monotonic() - t
    assert proxy.count("drip") >= 1
    assert took < 60, (took, r.stdout, r.stderr)
    assert r.returncode == 0 or "timed out" in r.stderr, (r.stdout, r.stderr)
    # The uploader is free at once for what comes next.
    proxy.clear()
    t = time.monotonic()
    r = e.d.ctl("history", "v", check=False, timeout=60)
    assert r.returncode == 0 and "history version(s)" in r.stdout, (r.stdout, r.stderr)
    assert time.monotonic() - t < 15
    change(e)
    want = tree(e.path)
    e.ctl("sync", "v")
    holds_ours(env, s3, e, settled(e), want)
    assert e.d.stop() == 0


def on_a_pty(e, *args, timeout=120):
    """vaultsyncctl with a terminal for stdout and stderr: its exit code and all it wrote."""
    import pty
    import select
    import subprocess
    from conftest import binpath
    master, slave = pty.openpty()
    p = subprocess.Popen(e.d.ident.wrap([binpath("vaultsyncctl"), "-s", e.d.sock] + list(args)),
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                         env=e.d.ident.env())
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:		# EIO: the other end closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
    finally:
        os.close(master)
    return p.wait(10), out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("fenv", [True], ids=["user"], indirect=True)
def test_push_on_a_terminal_draws_progress_and_piped_prints_the_summary(fenv, s3, proxy):
    """A push of a 200 MiB vault over a link of 48 MiB/s: on a terminal, a
    line with bytes, rate and time left, redrawn as the upload goes on, then
    the summary; piped, only the summary."""
    env = fenv()
    e, v0 = first_push(env)
    with open(os.path.join(e.path, "big"), "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    proxy.set_fault("slow_body", rate=48 << 20, method="PUT")
    e.ctl("sync", "v")
    code, out = on_a_pty(e, "push", "v")
    assert code == 0, out
    lines = [x for x in out.split("\r") if "uploading:" in x]
    assert len(lines) >= 3, out
    assert re.search(r"uploading: [0-9.]+ of 200\.[0-9] MiB \([0-9]+%\), [0-9.]+ MiB/s, "
                     r"about [0-9]+ s left", out), out
    sent = [float(re.search(r"uploading: ([0-9.]+) of", x).group(1)) for x in lines]
    assert sent == sorted(sent) and sent[-1] > sent[0], sent
    assert "pushed" in out.rsplit("\x1b[K", 1)[-1], out	# the line cleared, then the summary
    # Piped: the summary alone.
    r = e.ctl("push", "v")
    assert r.returncode == 0 and "uploading" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "pushed" in r.stdout
    proxy.clear()
    assert e.d.stop() == 0
    # With debug logging, through many requests: no secret in the log.
    with open(env.creds) as f:
        secret = [l.split("=", 1)[1].strip().strip("'\"") for l in f
                  if l.strip().startswith(("AWS_SECRET_ACCESS_KEY", "export AWS_SECRET"))][0]
    log = e.d.read_log()
    assert len(secret) >= 16 and secret not in log
