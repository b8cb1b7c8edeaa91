"""Shared harness for the integration tests: real binaries, real privilege
drops as root, a real unprivileged user for user mode."""
import json
import os
import pwd
import grp
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("VS_BUILD", os.path.join(REPO, "build")))
IS_ROOT = os.geteuid() == 0
TEST_USER = os.environ.get("VS_TEST_USER", "vstest")

# Sanitizer builds: leak checks belong to the unit tests (LSan cannot stop
# the world inside a non-dumpable or seccomp-confined process).
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def binpath(name):
    return os.path.join(BUILD, name)


def proc_children():
    """{parent pid: [(pid, name, state), ...]} of every process at this moment."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            kids.setdefault(int(rest[1]), []).append((int(d), st[st.index("(") + 1:st.rindex(")")],
                                                      rest[0]))
    return kids


def proc_tree(top):
    """Each process under top with its state and where in the kernel it waits: a daemon that
    does not answer is either busy, blocked on the disk (fsync) or waiting for an event."""
    kids, lines = proc_children(), []

    def walk(pid, comm, state, depth):
        try:
            with open("/proc/%d/wchan" % pid) as f:
                wchan = f.read().strip() or "-"
        except OSError:
            wchan = "?"
        lines.append("%s%d %s %s %s" % ("  " * depth, pid, comm, state, wchan))
        for c in sorted(kids.get(pid, [])):
            walk(*c, depth + 1)
    try:
        with open("/proc/%d/stat" % top) as f:
            st = f.read()
        walk(top, st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2], 0)
    except OSError:
        pass
    return "\n".join(lines) or "(none left)"


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def pty_run(argv, answers, env=None, timeout=60):
    """Run argv with a pty as its terminal.  Each time the output ends in a
    prompt (":") that has not been answered yet, write the next answer."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            if env is None:
                os.execv(argv[0], [str(a) for a in argv])
            os.execve(argv[0], [str(a) for a in argv], env)
        finally:
            os._exit(127)
    seen, i = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 1)
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
            if i < len(answers) and seen.rstrip().endswith(b":") and \
                    seen.count(b":") > i:
                os.write(fd, answers[i].encode() + b"\n")
                i += 1
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


class Identity:
    """Who a process runs as: root (system mode) or the test user (user mode)."""

    def __init__(self, user_mode):
        self.user_mode = user_mode
        if user_mode and IS_ROOT:
            pw = pwd.getpwnam(TEST_USER)
            self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.home = os.environ.get("HOME", "/root")
        self.runtime = "/run/user/%d" % self.uid

    def wrap(self, argv):
        if self.user_mode and IS_ROOT:
            return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                    "--init-groups", "--"] + argv
        return argv

    def env(self, extra=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.home, "LANG": "C.UTF-8"}
        e.update(SAN_ENV)
        if self.user_mode:
            e["XDG_RUNTIME_DIR"] = self.runtime
        if extra:
            e.update(extra)
        return e


@pytest.fixture
def workdir():
    """A scratch directory the test user can also use (pytest's tmp_path is 0700 root)."""
    d = tempfile.mkdtemp(prefix="vs-it-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["umount", "-R", "-l"] + [os.path.join(d, x) for x in os.listdir(d)
                    if os.path.ismount(os.path.join(d, x))], stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)


class Daemon:
    def __init__(self, workdir, user_mode=False, binary="vaultsyncd-dev", extra_conf="",
                 vault_conf=None, debug=True, args=(), env_extra=None):
        self.dir = workdir
        self.ident = Identity(user_mode)
        self.user_mode = user_mode
        self.binary = binary
        self.debug = debug
        self.args = list(args)
        self.env_extra = env_extra or {}
        self.run = os.path.join(workdir, "run")
        self.sock = os.path.join(self.run, "ctl.sock")
        self.vault = os.path.join(workdir, "vault")
        self.conf = os.path.join(workdir, "vaultsyncd.conf")
        self.log = os.path.join(workdir, "daemon.log")
        self.proc = None
        os.makedirs(self.vault, exist_ok=True)
        if vault_conf is None:
            vault_conf = ("Vault demo\n  Path %s\n  Mount no\n  Remote dir:%s/remote\n"
                          % (self.vault, workdir))
        with open(self.conf, "w") as f:
            f.write("RuntimeDir %s\nStateDir %s/state\nLogFormat json\n%s\n%s"
                    % (self.run, workdir, extra_conf, vault_conf))
        if user_mode and IS_ROOT:
            for root, dirs, files in os.walk(workdir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), self.ident.uid, self.ident.gid)
            os.chown(workdir, self.ident.uid, self.ident.gid)
            os.makedirs(self.ident.runtime, exist_ok=True)
            os.chown(self.ident.runtime, self.ident.uid, self.ident.gid)
            os.chmod(self.ident.runtime, 0o700)

    def argv(self):
        a = [binpath(self.binary), "-f", self.conf]
        if self.debug:
            a.append("-d")
        if self.user_mode:
            a.append("--user")
        return self.ident.wrap(a + self.args)

    def start(self, wait=True, prefix=()):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(list(prefix) + self.argv(), stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.ident.env(self.env_extra))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %s:\n%s" % (self.proc.returncode,
                                                                     self.read_log()))
            st = self.status(check=False)
            return st if st and all(c["state"] == "running" for c in st["children"]
                                    if c["name"] != "statusd" or c["pid"]) else None
        return wait_for(ready, timeout, what="daemon ready")

    def ctl(self, *args, check=True, as_ident=None, timeout=60):
        ident = as_ident or self.ident
        try:
            r = subprocess.run(ident.wrap([binpath("vaultsyncctl"), "-s", self.sock] +
                                          list(args)),
                               capture_output=True, text=True, env=ident.env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            # A command that never answers is a stall in the daemon: what it was doing is
            # in its log, and without it the failure says nothing.
            raise AssertionError("vaultsyncctl %s: no answer in %g s; the daemon's processes:\n"
                                 "%s\nits log ends:\n%s"
                                 % (" ".join(args), timeout, proc_tree(self.proc.pid),
                                    "\n".join(self.read_log().splitlines()[-80:]))) from None
        if check and r.returncode not in (0, 1):
            raise AssertionError("vaultsyncctl %s: %d %s%s" % (args, r.returncode, r.stdout,
                                                                r.stderr))
        return r

    def status(self, check=True):
        r = self.ctl("status", "--json", check=check)
        if r.returncode not in (0, 1):
            return None
        return json.loads(r.stdout)

    def children(self):
        st = self.status()
        return {c["name"]: c for c in st["children"]}

    def child_pids(self):
        return {n: c["pid"] for n, c in self.children().items() if c["pid"]}

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def records(self):
        out = []
        for line in self.read_log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        return self.proc.returncode if self.proc else None


@pytest.fixture
def daemon_factory(workdir):
    made = []

    def make(**kw):
        d = Daemon(kw.pop("workdir", workdir), **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()
        # Children run in seccomp TRAP mode under -d: a missing syscall is named here.
        bad = [r["msg"] for r in d.records() if "seccomp stopped" in r.get("msg", "")]
        assert not bad, bad
        # No child may outlive its parent, whatever the test did.
        for pid in getattr(d, "_seen_pids", []):
            assert not pid_alive(pid)


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs root (system mode, privilege drops)")
    config.addinivalue_line("markers", "slow: most of its time is waiting out deadlines, "
                            "timers or retries; make check runs it on the normal build only")
    config.addinivalue_line("markers", "alone: changes or uses something host-wide (an "
                            "inotify sysctl, make run's demo directories) that tests running "
                            "beside it must not meet; make check runs these after the shards, "
                            "by themselves")


def pytest_collection_modifyitems(config, items):
    # VS_SHARD=K/N keeps the tests whose id hashes to K modulo N: make check
    # runs the shards side by side, each with its own S3 server, since most
    # of a test's time is spent waiting, not computing.
    shard = os.environ.get("VS_SHARD")
    if shard:
        k, n = (int(x) for x in shard.split("/"))
        mine = [zlib.crc32(it.nodeid.encode()) % n == k for it in items]
        config.hook.pytest_deselected(items=[it for it, m in zip(items, mine) if not m])
        items[:] = [it for it, m in zip(items, mine) if m]
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root")
    for it in items:
        if "root" in it.keywords:
            it.add_marker(skip)


MODES = [pytest.param(False, id="system", marks=pytest.mark.root),
         pytest.param(True, id="user")]


# The S3 test server (Ceph RGW on 127.0.0.1): the session fixture "s3".
from s3server import s3, s3_rgw_guard  # noqa: E402,F401
