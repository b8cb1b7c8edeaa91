"""The watcher reports changes, new directories and overflow to the parent."""
import os
import re
import socket
import signal
import time

import pytest

from conftest import IS_ROOT, MODES, wait_for


def msgs(d):
    return [r.get("msg", "") for r in d.records()]


@pytest.mark.parametrize("user_mode", MODES)
def test_changes_and_new_directories(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode, extra_conf="WatcherDebounce 50ms\n").start()
    assert d.status()["vaults"][0]["watcher"]["watches"] == 1
    with open(os.path.join(d.vault, "token"), "w") as f:
        f.write("s3cr3t")
    wait_for(lambda: any("change(s) under %s" % d.vault in m for m in msgs(d)),
             what="change report")
    # Directories created after startup, several levels deep, get watches.
    deep = os.path.join(d.vault, "a", "b", "c")
    os.makedirs(deep)
    wait_for(lambda: d.status()["vaults"][0]["watcher"]["watches"] == 4, what="new watches")
    with open(os.path.join(deep, "key"), "w") as f:
        f.write("x")
    wait_for(lambda: any("change(s) under %s" % deep in m for m in msgs(d)),
             what="change in a new directory")
    # A removed directory drops its watch.
    os.unlink(os.path.join(deep, "key"))
    os.rmdir(deep)
    wait_for(lambda: d.status()["vaults"][0]["watcher"]["watches"] == 3, what="watch removal")
    assert d.stop() == 0


@pytest.mark.root
@pytest.mark.alone
def test_overflow_reported(daemon_factory):
    path = "/proc/sys/fs/inotify/max_queued_events"
    old = open(path).read()
    try:
        with open(path, "w") as f:
            f.write("16\n")
        d = daemon_factory(user_mode=False).start()
        # Stop the watcher from reading while events pile up.
        wpid = d.child_pids()["watcher"]
        os.kill(wpid, signal.SIGSTOP)
        for i in range(200):
            with open(os.path.join(d.vault, "f%d" % i), "w") as f:
                f.write("x")
        os.kill(wpid, signal.SIGCONT)
        wait_for(lambda: any("inotify queue overflowed" in m for m in msgs(d)),
                 what="overflow report")
        assert d.children()["watcher"]["restarts"] == 0
        assert d.stop() == 0
    finally:
        with open(path, "w") as f:
            f.write(old)


def test_sd_notify_protocol(daemon_factory, workdir):
    """READY, WATCHDOG, RELOADING and STOPPING as datagrams on $NOTIFY_SOCKET."""
    path = os.path.join(workdir, "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.settimeout(5)
    d = daemon_factory(user_mode=not IS_ROOT,
                       env_extra={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    d.start()
    got = []

    def until(word):
        while not any(word in g for g in got):
            got.append(srv.recv(4096).decode())
        return True
    until("READY=1")
    ready = [g for g in got if "READY=1" in g][0]
    assert "MAINPID=%d" % d.proc.pid in ready and "STATUS=" in ready
    # Then the one-line summary systemctl status shows, when it changes.
    until("locked; ")
    line = [g for g in got if "locked; " in g][-1]
    assert re.match(r"^STATUS=1 vault\(s\): 0 unlocked, 1 locked; (healthy|UNHEALTHY)", line), line
    t0 = time.monotonic()
    n0 = sum("WATCHDOG=1" in g for g in got)
    while sum("WATCHDOG=1" in g for g in got) < n0 + 3:
        got.append(srv.recv(4096).decode())
    assert time.monotonic() - t0 < 1.5	# every 100 ms, half of WATCHDOG_USEC
    d.proc.send_signal(signal.SIGHUP)
    until("RELOADING=1")
    d.proc.send_signal(signal.SIGTERM)
    until("STOPPING=1")
    assert d.proc.wait(5) == 0
    srv.close()
