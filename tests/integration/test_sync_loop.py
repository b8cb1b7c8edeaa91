"""The change-driven sync loop: ticks and their triggers, coalescing, deep new
directories, overflow and the polling fallback, the head poller, the tick
records' envelope, shutdown and reload."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import IS_ROOT, MODES, wait_for
from test_remote_dir import remote_env, restore, same_tree
from test_remote_s3 import S3Env, restores_to
from test_vault import populate, tree

TRIGGERS = {"startup", "watcher", "head-poll", "interval", "ctl"}
OUTCOMES = {"ok", "error", "conflict"}
CHECKS = {"no-state", "events", "age", "no-archive", "scan-error", "changed", "racy",
          "unchanged"}


def ticks(d, event=None, trigger=None):
    return [r for r in d.records() if r.get("event") in ("tick_start", "tick_end", "tick_skip")
            and (event is None or r["event"] == event)
            and (trigger is None or r["trigger"] == trigger)]


def check_envelope(r):
    """DESIGN §8: field names, types and enum values of one tick record."""
    assert r["schema_version"] == 1
    assert r["event"] in ("tick_start", "tick_end", "tick_skip")
    assert isinstance(r["vault"], str) and r["vault"]
    assert isinstance(r["tick_index"], int) and r["tick_index"] >= 1
    assert r["trigger"] in TRIGGERS, r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", r["time"]), r["time"]
    assert r["level"] in ("error", "warning", "info", "debug")
    assert isinstance(r["msg"], str) and r["msg"]
    if r["event"] == "tick_skip":
        assert r["reason"] == "locked"
    if r["event"] == "tick_end":
        assert isinstance(r["duration_ms"], int) and r["duration_ms"] >= 0
        assert r["outcome"] in OUTCOMES
        assert r["error"] is None or isinstance(r["error"], str)
        assert (r["error"] is None) == (r["outcome"] == "ok"), r
        s = r["sync"]
        assert set(s) == {"saved", "sha256", "archive_bytes", "pushed", "uploaded_bytes",
                          "etag", "remote_key"}, s
        assert isinstance(s["saved"], bool) and isinstance(s["pushed"], bool)
        assert s["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", s["sha256"])
        assert isinstance(s["archive_bytes"], int) and isinstance(s["uploaded_bytes"], int)
        assert s["etag"] is None or isinstance(s["etag"], str)
        assert (s["remote_key"] is not None) == s["pushed"], s
        # The change check: its verdict, its scan's time, and no archive when unchanged.
        assert isinstance(r["unchanged"], bool), r
        assert r["check"] is None or r["check"] in CHECKS, r
        assert r["unchanged"] == (r["check"] == "unchanged"), r
        assert (r["scan_us"] is None) == (r["check"] is None), r
        assert r["scan_us"] is None or (isinstance(r["scan_us"], int) and r["scan_us"] >= 0)
        assert not (r["unchanged"] and s["saved"]), r


@pytest.fixture(params=MODES)
def dirloop(request, daemon_factory, workdir):
    envs = []

    def make(extra="", conf="", mount_size=None):
        e = remote_env(daemon_factory, workdir, request.param, extra,
                       "Interval 1h\n" + conf, mount_size)
        envs.append(e)
        return e
    yield make
    for e in envs:
        e.close()


def started(e):
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    return e


def write(e, rel, data):
    p = os.path.join(e.path, rel)
    with open(p, "w") as f:
        f.write(data)
    if not e.user_mode and IS_ROOT:
        os.chown(p, *e.owner)


@pytest.mark.parametrize("mode", MODES)
def test_change_reaches_s3_through_a_watcher_tick(mode, daemon_factory, workdir, s3):
    env = S3Env(daemon_factory, workdir, mode, s3, conf="Interval 1h\n")
    e = env.e
    try:
        started(e)
        populate(e.path, e.owner)
        want = tree(e.path)

        def pushed_by_watcher():
            return [r for r in ticks(e.d, "tick_end", "watcher")
                    if r["outcome"] == "ok" and r["sync"]["pushed"]]
        recs = wait_for(pushed_by_watcher, timeout=20, what="a watcher tick that pushed")
        assert recs[-1]["sync"]["remote_key"].endswith("/v/vault.tar.age")
        wait_for(lambda: restores_to(env, env.download(), want), timeout=10,
                 what="the remote holds the change")
        for r in ticks(e.d):
            check_envelope(r)
        assert e.d.stop() == 0
    finally:
        e.close()


def test_burst_of_writes_coalesces(dirloop):
    e = started(dirloop(conf="WatcherDebounce 500ms\n", mount_size="128M"))
    wait_for(lambda: e.vstate()["pushed"], what="first push")
    before = len(ticks(e.d, "tick_start"))
    os.makedirs(os.path.join(e.path, "burst"))
    if not e.user_mode:
        os.chown(os.path.join(e.path, "burst"), *e.owner)
    t0 = time.monotonic()
    for i in range(10000):
        with open(os.path.join(e.path, "burst", "f%05d" % i), "w") as f:
            f.write("%d\n" % i)
    assert time.monotonic() - t0 < 2.5, "the writes themselves took too long"
    if not e.user_mode:
        subprocess.run(["chown", "-R", "%d:%d" % e.owner, os.path.join(e.path, "burst")],
                       check=True)
    want = tree(e.path)
    wait_for(lambda: same_tree(e, e.archive, want), timeout=60, what="all writes saved")
    time.sleep(2)	# anything still coming would show now
    new = len(ticks(e.d, "tick_start")) - before
    assert 1 <= new <= 3, new
    assert same_tree(e, e.rlatest, want) or wait_for(lambda: same_tree(e, e.rlatest, want))
    assert e.d.stop() == 0


def test_new_deep_directories_are_synced(dirloop):
    e = started(dirloop())
    deep = os.path.join(e.path, "a", "b", "c", "d", "e")
    os.makedirs(deep)
    time.sleep(0.3)
    with open(os.path.join(deep, "secret"), "w") as f:
        f.write("deep\n")
    # Directories made after the first level's watch, a level at a time, each with a file.
    for i in range(3):
        d = os.path.join(e.path, "later%d" % i, "x", "y")
        os.makedirs(d)
        with open(os.path.join(d, "f"), "w") as f:
            f.write(str(i))
    if not e.user_mode:
        subprocess.run(["chown", "-R", "%d:%d" % e.owner, e.path], check=True)
    want = tree(e.path)
    wait_for(lambda: same_tree(e, e.rlatest, want), timeout=20, what="deep files pushed")
    assert e.vstate()["watcher"]["mode"] == "inotify"
    assert e.d.stop() == 0


@pytest.mark.root
@pytest.mark.alone
def test_queue_overflow_rescans(daemon_factory, workdir):
    e = remote_env(daemon_factory, workdir, False, conf="Interval 1h\n")
    path = "/proc/sys/fs/inotify/max_queued_events"
    with open(path) as f:
        old = f.read().strip()
    try:
        with open(path, "w") as f:
            f.write("64\n")
        started(e)	# the inotify instance takes the limit at creation
        wait_for(lambda: e.vstate()["pushed"], what="first push")
        os.kill(e.d.child_pids()["watcher"], signal.SIGSTOP)	# events pile up
        for i in range(500):
            os.makedirs(os.path.join(e.path, "d%03d" % i, "sub"))
        with open(os.path.join(e.path, "d499", "sub", "late"), "w") as f:
            f.write("x")
        os.kill(e.d.child_pids()["watcher"], signal.SIGCONT)
        wait_for(lambda: any("overflowed" in r.get("msg", "") for r in e.d.records()),
                 timeout=10, what="an overflow")
        want = tree(e.path)
        wait_for(lambda: same_tree(e, e.rlatest, want), timeout=30, what="rescan pushed")
        # After the rescan the new directories are watched: a change deep in one syncs.
        with open(os.path.join(e.path, "d250", "sub", "after"), "w") as f:
            f.write("y")
        want = tree(e.path)
        wait_for(lambda: same_tree(e, e.rlatest, want), timeout=30, what="watched again")
        assert e.d.stop() == 0
    finally:
        with open(path, "w") as f:
            f.write(old + "\n")
        e.d.stop()
        if os.path.ismount(e.path):
            subprocess.run(["umount", "-l", e.path])


@pytest.mark.root
@pytest.mark.alone
def test_exhausted_watches_switch_to_polling(daemon_factory, workdir):
    e = remote_env(daemon_factory, workdir, False, conf="Interval 1h\n")
    path = "/proc/sys/fs/inotify/max_user_watches"
    with open(path) as f:
        old = f.read().strip()
    try:
        started(e)
        for i in range(40):
            os.makedirs(os.path.join(e.path, "dir%02d" % i))
        with open(path, "w") as f:
            f.write("%d\n" % 8)	# fewer than the vault's directories
        e.ctl("lock", "v")
        e.ctl("unlock", "v", "--passphrase-file", e.passfile)	# rebuilds its watches
        v = wait_for(lambda: (lambda v: v if v["watcher"]["mode"] == "polling" else None)(
            e.vstate()), what="polling mode")
        assert "max_user_watches" in v["watcher"]["reason"], v
        with open(os.path.join(e.path, "dir39", "polled"), "w") as f:
            f.write("found by the scan\n")
        want = tree(e.path)
        wait_for(lambda: same_tree(e, e.rlatest, want), timeout=30, what="polled change pushed")
        r = e.d.ctl("status")
        assert "polling" in r.stdout, r.stdout
        assert e.d.stop() == 0
    finally:
        with open(path, "w") as f:
            f.write(old + "\n")
        e.d.stop()
        if os.path.ismount(e.path):
            subprocess.run(["umount", "-l", e.path])


@pytest.mark.parametrize("mode", MODES)
def test_remote_change_triggers_a_head_poll_tick(mode, daemon_factory, workdir, s3):
    env = S3Env(daemon_factory, workdir, mode, s3,
                conf="Interval 1h\nHeadPollInterval 1s\nHeadPollMaxInterval 2s\n")
    e = env.e
    try:
        started(e)
        populate(e.path, e.owner)
        wait_for(lambda: e.vstate()["pushed"], timeout=20, what="first push")
        time.sleep(2.5)		# the poller has primed
        s3.put(env.key, b"another client's version\n")
        r = wait_for(lambda: ticks(e.d, "tick_end", "head-poll"), timeout=20,
                     what="a head-poll tick")[-1]
        assert r["outcome"] == "conflict", r
        check_envelope(r)
        assert e.vstate()["state"] == "conflict"
        assert s3.get(env.key) == b"another client's version\n"
        assert e.d.stop() == 0
    finally:
        e.close()


def test_tick_records_in_every_format(dirloop):
    e = started(dirloop())
    write(e, "a", "1")
    wait_for(lambda: ticks(e.d, "tick_end", "watcher"), what="a watcher tick")
    e.ctl("sync", "v")
    e.ctl("lock", "v")
    e.ctl("sync", "v", check=False)	# a tick on a locked vault: tick_skip
    recs = ticks(e.d)
    kinds = {r["event"] for r in recs}
    assert kinds == {"tick_start", "tick_end", "tick_skip"}, kinds
    trig = {r["trigger"] for r in recs}
    assert {"startup", "watcher", "ctl"} <= trig, trig
    for r in recs:
        check_envelope(r)
    # Indices count up per vault, each start has its end.
    ends = [r["tick_index"] for r in recs if r["event"] == "tick_end"]
    starts = [r["tick_index"] for r in recs if r["event"] == "tick_start"]
    assert starts == ends == sorted(ends)
    assert e.d.stop() == 0


def test_sigterm_during_push_completes_it(dirloop):
    e = started(dirloop(conf="WatcherDebounce 60s\n"))
    with open(os.path.join(e.path, "big"), "wb") as f:
        f.write(os.urandom(12 << 20))
    if not e.user_mode:
        os.chown(os.path.join(e.path, "big"), *e.owner)
    want = tree(e.path)
    t = threading.Thread(target=lambda: e.d.ctl("sync", "v", check=False, timeout=60))
    t.start()
    wait_for(lambda: ticks(e.d, "tick_start", "ctl"), what="the tick")
    e.d.proc.send_signal(signal.SIGTERM)
    assert e.d.proc.wait(60) == 0
    t.join()
    assert same_tree(e, e.rlatest, want)
    assert any(r.get("event") == "tick_end" and r["trigger"] == "ctl" and r["outcome"] == "ok"
               for r in e.d.records())


def test_second_signal_exits_130(dirloop):
    e = started(dirloop(conf="WatcherDebounce 60s\n"))
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    # Hold the shutdown up: the uploader cannot finish the push it is given.
    uploader = e.d.child_pids()["uploader"]
    os.kill(uploader, signal.SIGSTOP)
    try:
        write(e, "more", "x" * 100000)
        t = threading.Thread(target=lambda: e.d.ctl("sync", "v", check=False, timeout=60))
        t.start()
        wait_for(lambda: e.vstate()["state"] == "pushing", what="a push in flight")
        e.d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert e.d.proc.poll() is None	# waiting for the push
        t0 = time.monotonic()
        e.d.proc.send_signal(signal.SIGTERM)
        assert e.d.proc.wait(5) == 130
        assert time.monotonic() - t0 < 1.0
        t.join()
    finally:
        try:
            os.kill(uploader, signal.SIGCONT)
        except ProcessLookupError:
            pass
    wait_for(lambda: not os.path.exists("/proc/%d" % uploader), what="uploader gone")
    # Nothing torn: the archive on disk decrypts to a whole tree.
    out = restore(e, e.archive)
    assert os.path.exists(os.path.join(out, "token"))


def test_sighup_adds_and_removes_vaults(dirloop, workdir):
    e = started(dirloop())
    write(e, "keep", "me")
    wait_for(lambda: e.vstate()["pushed"], what="v pushed")
    wpath = os.path.join(e.shm or workdir, "w-vault")
    os.makedirs(wpath, exist_ok=True)
    if e.user_mode and IS_ROOT:
        os.chown(wpath, e.d.ident.uid, e.d.ident.gid)
    with open(e.d.conf) as f:
        conf = f.read()
    with open(e.d.conf, "w") as f:
        f.write(conf + "Vault w\n  Path %s\n  Mount no\n" % wpath)
    e.d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [r for r in ticks(e.d) if r["vault"] == "w"], what="w's first tick")
    names = [v["name"] for v in e.d.status()["vaults"]]
    assert names == ["v", "w"], names
    assert e.vstate()["state"] in ("unlocked", "dirty", "saving", "pushing")	# not disturbed
    with open(e.d.conf, "w") as f:
        f.write(conf)
    e.d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [v["name"] for v in e.d.status()["vaults"]] == ["v"], what="w removed")
    n_w = len([r for r in ticks(e.d) if r["vault"] == "w"])
    write(e, "after", "reload")
    wait_for(lambda: same_tree(e, e.rlatest, tree(e.path)), what="v still syncs")
    assert len([r for r in ticks(e.d) if r["vault"] == "w"]) == n_w
    assert os.path.exists(os.path.join(e.path, "keep"))
    # w comes back, now first in the file: a new vault (its own startup tick,
    # numbered from 1), listed in the file's order; v keeps its state, so its
    # ticks go on counting where they were.
    v_last = max(r["tick_index"] for r in ticks(e.d) if r["vault"] == "v")
    with open(e.d.conf, "w") as f:
        f.write(conf.replace("Vault v\n", "Vault w\n  Path %s\n  Mount no\nVault v\n" % wpath, 1))
    e.d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [v["name"] for v in e.d.status()["vaults"]] == ["w", "v"], what="w back")
    first = lambda: [r["tick_index"] for r in ticks(e.d, "tick_skip", "startup")	# noqa: E731
                     if r["vault"] == "w"]
    wait_for(lambda: len(first()) == 2, what="w's second startup tick")
    assert first() == [1, 1]
    write(e, "after", "w came back")
    wait_for(lambda: same_tree(e, e.rlatest, tree(e.path)), what="v still syncs")
    idx = [r["tick_index"] for r in ticks(e.d) if r["vault"] == "v" and r["event"] != "tick_end"]
    assert idx == list(range(1, len(idx) + 1)) and idx[-1] > v_last, idx
    v = [v for v in e.d.status()["vaults"] if v["name"] == "v"][0]
    assert v["state"] in ("unlocked", "dirty", "saving", "pushing"), v
    assert e.d.stop() == 0


def readme_recipes():
    """The jq commands of the README's tick-log section, in order."""
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(readme) as f:
        text = f.read()
    block = text.split("<!-- jq-recipes")[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [l for l in block.splitlines() if l.startswith("jq ")]


def test_readme_jq_recipes(dirloop):
    e = started(dirloop())
    write(e, "a", "1")
    wait_for(lambda: [r for r in ticks(e.d, "tick_end") if r["sync"]["pushed"]],
             timeout=30, what="a tick that pushed")
    e.ctl("lock", "v")
    e.ctl("sync", "v", check=False)
    wait_for(lambda: ticks(e.d, "tick_skip"), what="a skip")
    recipes = readme_recipes()
    assert len(recipes) == 4, recipes
    outs = []
    for cmd in recipes:
        cmd = cmd.replace('"work"', '"v"').replace("vaultsyncd.log", e.d.log)
        r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip(), (cmd, r.stdout, r.stderr)
        outs.append(r.stdout.strip().splitlines())
    every, pushed, skips, per_vault = outs
    assert all(json.loads(l)["vault"] == "v" and json.loads(l)["event"] for l in every)
    assert len(every) == len(ticks(e.d))
    for l in pushed:
        assert re.fullmatch(r"\S+Z v (startup|watcher|ctl|interval|head-poll) dir:\S+/v/"
                            r"vault\.tar\.age", l), l
    for l in skips:
        assert re.fullmatch(r"\S+Z v (startup|ctl|interval) locked", l), l
    total = json.loads("\n".join(per_vault))
    assert total == [{"vault": "v", "uploaded_bytes": sum(
        r["sync"]["uploaded_bytes"] for r in ticks(e.d, "tick_end"))}], total
    assert total[0]["uploaded_bytes"] > 0
    assert e.d.stop() == 0


def test_many_ticks_do_not_exhaust_the_timers(dirloop):
    """Every tick re-arms the Interval backstop; the old timer must go, or a busy
    vault runs the daemon out of timers (512) within one Interval."""
    e = started(dirloop())
    for _ in range(600):
        assert e.d.ctl("sync", "v").returncode == 0
    assert e.d.proc.poll() is None
    assert len(ticks(e.d, "tick_end", "ctl")) >= 600
    assert e.d.stop() == 0
