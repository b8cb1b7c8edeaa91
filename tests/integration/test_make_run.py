"""`make run` as a newcomer meets it, as root and then as an ordinary user:
it builds without showing the compiler lines, each user gets a demo
directory of their own (/tmp/vaultsync-demo-UID), the demo vault syncs, and
what to try next is the last thing on the screen.

With VAULTSYNC_DEMO_DETACH=1 (tests/run-demo.sh) the demo leaves its daemon
in the background and returns, which is how these tests run it without a
terminal; the foreground run is ended with a Ctrl-C through a pty.  Marked
alone: they use the default demo directories and the build directory, which
tests beside them (the other build's shard) must not share."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, REPO, Identity, binpath, wait_for

pytestmark = [pytest.mark.alone, pytest.mark.root]


def make_argv():
    argv = ["make", "-C", REPO, "--no-print-directory", "run", "B=" + BUILD]
    if os.path.basename(BUILD) == "build-asan":
        argv.append("SAN=1")
    return argv


class Demo:
    """One identity's demo: its directory, set aside if it was there before."""

    def __init__(self, ident):
        self.ident = ident
        self.dir = "/tmp/vaultsync-demo-%d" % ident.uid
        self.shm = "/dev/shm/vaultsync-demo-%d" % ident.uid
        self.sock = os.path.join(self.dir, "run", "ctl.sock")
        self.saved = []
        for d in (self.dir, self.shm):
            if os.path.lexists(d):
                if self.ctl("status").returncode in (0, 1):
                    pytest.skip("a demo daemon runs in %s" % self.dir)
                os.rename(d, d + ".before-test")
                self.saved.append(d)

    def ctl(self, *args):
        return subprocess.run(self.ident.wrap([binpath("vaultsyncctl"), "-s", self.sock] +
                                              list(args)),
                              capture_output=True, text=True, timeout=60,
                              env=self.ident.env())

    def close(self):
        if self.ctl("status").returncode in (0, 1):
            self.ctl("lock", "demo")
            self.ctl("stop")
            wait_for(lambda: self.ctl("status").returncode == 2, 30, 0.2, "demo stopped")
        vault = os.path.join(self.dir, "vault")
        if os.path.ismount(vault):
            subprocess.run(["umount", "-l", vault])
        for d in (self.dir, self.shm):
            shutil.rmtree(d, ignore_errors=True)
            if d in self.saved:
                os.rename(d + ".before-test", d)


def the_text(out):
    """The lines from the demo's summary to the end of the output."""
    lines = out.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("vaultsync demo: vault ")]
    assert starts, out
    return lines[starts[-1]:]


def check_text(text, demo, last):
    assert text[1] == "Try, in another terminal:", text
    assert all(ln.startswith("  ") for ln in text[2:-1]), text
    assert "  %s -s %s status" % (binpath("vaultsyncctl"), demo.sock) in text
    assert text[-1] == last, text


def run_detached(demo):
    env = demo.ident.env({"VAULTSYNC_DEMO_DETACH": "1"})
    r = subprocess.run(demo.ident.wrap(make_argv()), capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # Nothing but errors on stderr, and there were none.
    assert r.stderr == "", r.stderr
    # Quiet: no compiler line, whatever had to be built.
    assert not re.search(r"^(cc|gcc|clang|ar) ", r.stdout, re.M), r.stdout
    text = the_text(r.stdout)
    check_text(text, demo, "The daemon runs on in the background: %s -s %s stop"
               % (binpath("vaultsyncctl"), demo.sock))
    m = re.match(r"vaultsync demo: vault (\S+) -> dir:(\S+) ", text[0])
    return m.group(1), m.group(2)


def check_demo_works(demo, vault, remote):
    subprocess.run(demo.ident.wrap(["sh", "-c", "echo hello > %s/hello" % vault]),
                   check=True)
    r = demo.ctl("sync", "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(os.path.join(remote, "demo", "vault.tar.age"))
    r = demo.ctl("status")
    assert r.returncode == 0 and "vault demo: unlocked" in r.stdout, r.stdout + r.stderr


def test_make_run_as_root_then_as_a_user():
    root, user = Demo(Identity(False)), Demo(Identity(True))
    try:
        vault, remote = run_detached(root)
        assert vault == root.dir + "/vault" and remote == root.dir + "/remote"
        check_demo_works(root, vault, remote)
        # An ordinary user after root: a directory of their own, user mode.
        vault, remote = run_detached(user)
        assert vault == user.shm + "/vault" and remote == user.dir + "/remote"
        assert os.stat(user.dir).st_uid == user.ident.uid
        assert os.stat(root.dir).st_uid == 0
        check_demo_works(user, vault, remote)
        st = user.ctl("status", "--json")
        assert '"mode":"user"' in st.stdout.replace(" ", ""), st.stdout
        # Both demos run side by side; the second run of root's unlocks it.
        root.ctl("lock", "demo")
        root.ctl("stop")
        wait_for(lambda: root.ctl("status").returncode == 2, 30, 0.2, "root's demo stopped")
        vault, remote = run_detached(root)
        r = root.ctl("status")
        assert r.returncode == 0 and "vault demo: unlocked" in r.stdout, r.stdout
        assert os.path.exists(os.path.join(vault, "hello"))
    finally:
        root.close()
        user.close()


def test_make_run_in_the_foreground_ends_with_ctrl_c():
    """The default: the demo stays in the foreground with the text last on the
    screen, and Ctrl-C stops the daemon (a final save, exit 0)."""
    demo = Demo(Identity(True))
    try:
        pid, fd = pty.fork()
        if pid == 0:
            # As at a terminal: a run started in the background (nohup ... &)
            # ignores SIGINT, and a signal ignored on entry cannot be trapped.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            argv = demo.ident.wrap(make_argv())
            os.execvpe(argv[0], argv, demo.ident.env())
        seen, deadline = b"", time.monotonic() + 300
        while b"Stop with Ctrl-C." not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        text = the_text(seen.decode(errors="replace").replace("\r\n", "\n"))
        check_text(text, demo, "Stop with Ctrl-C.")
        assert demo.ctl("status").returncode == 0
        time.sleep(0.5)		# the screen as the newcomer sees it: nothing came after
        while select.select([fd], [], [], 0)[0]:
            extra = os.read(fd, 4096)
            assert extra.strip() == b"", extra
        os.write(fd, b"\x03")
        try:
            wait_for(lambda: demo.ctl("status").returncode == 2, 30, 0.2, "the daemon to stop")
        except AssertionError:
            with open(os.path.join(demo.dir, "vaultsyncd.log"), errors="replace") as f:
                log = f.read()[-4000:]
            raise AssertionError("the daemon did not stop after Ctrl-C; the screen:\n%s\n"
                                 "the end of its log:\n%s" % (seen[-2000:], log))
        os.waitpid(pid, 0)
        os.close(fd)
        with open(os.path.join(demo.dir, "vaultsyncd.log")) as f:
            assert "vaultsyncd exiting with status 0" in f.read()
    finally:
        demo.close()
