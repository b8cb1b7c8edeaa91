"""The torture suite's harness: the integration harness (tests/integration)
plus a state journal, a writer that changes the vault one atomic step at a
time, and the one verdict every scenario ends with.

Bounded form (make check): VS_TORTURE_SCALE unset or "bounded".
Long form (make torture): --torture-long or VS_TORTURE_SCALE=long.
Every scenario draws from random.Random(seed); the seed is VS_TORTURE_SEED
(or a fresh one), combined with the scenario's name, and printed with any
failure so that the run can be replayed:
    VS_TORTURE_SEED=N python3 -m pytest tests/torture -k NAME
"""
import ctypes
import hashlib
import importlib
import importlib.util
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ITDIR = os.path.join(REPO, "tests", "integration")
if ITDIR not in sys.path:
    sys.path.insert(0, ITDIR)


def _load_harness():
    """tests/integration/conftest.py under its own name (this file is also
    "conftest"), and the integration modules that import it by that name."""
    spec = importlib.util.spec_from_file_location("vs_it_conftest",
                                                  os.path.join(ITDIR, "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_it_conftest"] = mod
    spec.loader.exec_module(mod)
    saved = sys.modules.get("conftest")
    sys.modules["conftest"] = mod
    try:
        cred = importlib.import_module("test_credentials")
        agei = importlib.import_module("test_age_interop")
    finally:
        if saved is not None:
            sys.modules["conftest"] = saved
        else:
            sys.modules.pop("conftest", None)
    return mod, cred, agei


IT, _cred, _agei = _load_harness()
import s3server  # noqa: E402

scan_memory = _cred.scan_memory
age_tty = _agei.age_tty
wait_for = IT.wait_for
pid_alive = IT.pid_alive
binpath = IT.binpath
IS_ROOT = IT.IS_ROOT

# Fixtures re-exported from the integration harness.
workdir = IT.workdir
daemon_factory = IT.daemon_factory
s3 = s3server.s3
s3_rgw_guard = s3server.s3_rgw_guard

# ---- scale, seeds, tally ------------------------------------------------------

TALLY_KEYS = ("kills", "restarts", "outages", "faults", "states_checked", "lost", "clobbers")
TALLY = {k: 0 for k in TALLY_KEYS}
_TALLY_LOCK = threading.Lock()
BASE_SEED = int(os.environ.get("VS_TORTURE_SEED") or random.SystemRandom().randrange(1, 10**9))
_SEEDS = {}


def tally(**kw):
    with _TALLY_LOCK:
        for k, v in kw.items():
            TALLY[k] += v


def pytest_addoption(parser):
    parser.addoption("--torture-long", action="store_true", default=False,
                     help="the long form of the torture suite (make torture)")


class Scale:
    long = False

    def pick(self, bounded, long):
        return long if self.long else bounded


SCALE = Scale()


def pytest_configure(config):
    SCALE.long = config.getoption("--torture-long") or \
        os.environ.get("VS_TORTURE_SCALE", "bounded") == "long"
    config.addinivalue_line("markers", "root: needs root (system mode, privilege drops)")


def pytest_collection_modifyitems(config, items):
    IT.pytest_collection_modifyitems(config, items)


@pytest.fixture
def scale():
    return SCALE


@pytest.fixture
def rnd(request):
    seed = zlib.crc32(request.node.name.encode()) ^ BASE_SEED
    _SEEDS[request.node.nodeid] = seed
    return random.Random(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    out = yield
    rep = out.get_result()
    if rep.failed:
        rep.sections.append(("torture seed", "replay: VS_TORTURE_SEED=%d%s python3 -m pytest "
                             "tests/torture -k '%s' (scenario seed %s)"
                             % (BASE_SEED, " VS_TORTURE_SCALE=long" if SCALE.long else "",
                                item.name, _SEEDS.get(item.nodeid))))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(
        "torture: %s (seed %d, %s form)" % (" ".join("%s=%d" % (k, TALLY[k]) for k in TALLY_KEYS),
                                           BASE_SEED, "long" if SCALE.long else "bounded"))


# ---- trees and the state journal ---------------------------------------------

def tree(root):
    """What a state is: relative path -> (type, mode, content hash, mtime) for
    files, (type, mode) for directories, (type, target) for links."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("f", stat.S_IMODE(st.st_mode),
                                hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns)
    return out


def state_id(t):
    return hashlib.sha256(repr(sorted(t.items())).encode()).hexdigest()[:16]


class Journal:
    """Every complete state the vault had (or was about to have), recorded
    before the step that makes it, so no archive can precede its entry."""

    def __init__(self):
        self.states = {}
        self.order = []
        self.lock = threading.Lock()

    def add(self, t):
        sid = state_id(t)
        with self.lock:
            if sid not in self.states:
                self.states[sid] = dict(t)
                self.order.append(sid)
        return sid

    def knows(self, t):
        return state_id(t) in self.states

    def nearest(self, t):
        """The recorded state closest to t, and how they differ (for reports)."""
        with self.lock:
            cands = [self.states[s] for s in self.order[-200:]]
        best, bd = None, None
        for c in cands:
            d = {k for k in set(c) | set(t) if c.get(k) != t.get(k)}
            if bd is None or len(d) < len(bd):
                best, bd = c, d
        return best, sorted(bd or [])


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400


def link_fd(fd, dst):
    """Give an O_TMPFILE a name (os.link would link the /proc symlink itself)."""
    if _libc.linkat(AT_FDCWD, b"/proc/self/fd/%d" % fd, AT_FDCWD, os.fsencode(dst),
                    AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dst)


class Writer:
    """Changes the vault in steps that are each one atomic system call, so
    that every tree the daemon can see is a journaled state: a new content is
    written into an O_TMPFILE, linked under a fresh name, then renamed into
    place; deletes, mkdir, rmdir, chmod and symlink are single calls.
    In user mode the thread's file system ids are the vault owner's."""

    NAMES = ["f%02d" % i for i in range(12)]
    DIRS = ["d0", "d1", "d1/x", "ssh"]

    def __init__(self, root, journal, rnd, owner=None, big=False, mtimes=None):
        self.root = root
        self.j = journal
        self.rnd = rnd
        self.owner = owner
        self.big = big
        self.mtimes = mtimes	# None, or a list of mtimes (s) to give some files
        self.model = {}
        self.n = 0
        self.steps = 0
        self.errors = []
        self._stop = threading.Event()
        self._pause = threading.Lock()
        self._thread = None
        self.delay = (0.0, 0.05)

    # -- the thread's identity --
    def _as_owner(self):
        if self.owner and self.owner != (0, 0):
            _libc.setfsgid(self.owner[1])
            _libc.setfsuid(self.owner[0])

    def resync(self):
        """The model from the real tree (after init, unlock, pull)."""
        self.model = tree(self.root)
        self.j.add(self.model)
        return self.model

    def _commit(self, change):
        new = dict(self.model)
        for k, v in change.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        self.j.add(new)
        return new

    def _dirs(self):
        return [d for d in self.DIRS if self.model.get(d, ("",))[0] == "d"]

    def _data(self):
        r = self.rnd.random()
        if self.big and r < 0.08:
            n = self.rnd.randint(200_000, 900_000)
        elif r < 0.3:
            n = self.rnd.randint(2_000, 40_000)
        else:
            n = self.rnd.randint(0, 600)
        return self.rnd.randbytes(n)

    def write_file(self, rel, data, mode=0o600, mtime=None):
        parent = os.path.dirname(rel)
        d = os.path.join(self.root, parent)
        fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if mtime is not None:
                os.utime(fd, ns=(mtime, mtime))
            st = os.fstat(fd)
            entry = ("f", mode, hashlib.sha256(data).hexdigest(), st.st_mtime_ns)
            self.n += 1
            tmp = os.path.join(parent, ".n%06d" % self.n)
            self.model = self._commit({tmp: entry})
            link_fd(fd, os.path.join(self.root, tmp))
            self.model = self._commit({tmp: None, rel: entry})
            os.rename(os.path.join(self.root, tmp), os.path.join(self.root, rel))
        finally:
            os.close(fd)

    def step(self):
        rnd, m = self.rnd, self.model
        files = [k for k, v in m.items() if v[0] == "f"]
        r = rnd.random()
        if r < 0.6 or not files:
            parent = rnd.choice([""] + self._dirs())
            rel = os.path.join(parent, rnd.choice(self.NAMES))
            if m.get(rel, ("f",))[0] != "f":
                return
            mtime = None
            if self.mtimes and rnd.random() < 0.5:
                mtime = rnd.choice(self.mtimes) * 1_000_000_000 + rnd.randrange(10**9)
            self.write_file(rel, self._data(), rnd.choice([0o600, 0o640, 0o400]), mtime)
        elif r < 0.75:
            rel = rnd.choice(files)
            if os.path.basename(rel) == "canary":
                return
            self.model = self._commit({rel: None})
            os.unlink(os.path.join(self.root, rel))
        elif r < 0.85:
            rel = rnd.choice(files)
            mode = rnd.choice([0o600, 0o644, 0o400, 0o640])
            self.model = self._commit({rel: (m[rel][0], mode) + m[rel][2:]})
            os.chmod(os.path.join(self.root, rel), mode)
        elif r < 0.93:
            d = rnd.choice(self.DIRS)
            if d in m:
                if not any(k.startswith(d + "/") for k in m):
                    self.model = self._commit({d: None})
                    os.rmdir(os.path.join(self.root, d))
            elif os.path.dirname(d) == "" or os.path.dirname(d) in m:
                self.model = self._commit({d: ("d", 0o700)})
                os.mkdir(os.path.join(self.root, d), 0o700)
        else:
            rel = "link%d" % rnd.randrange(3)
            if rel in m:
                self.model = self._commit({rel: None})
                os.unlink(os.path.join(self.root, rel))
            else:
                target = rnd.choice(files)
                self.model = self._commit({rel: ("l", target)})
                os.symlink(target, os.path.join(self.root, rel))
        self.steps += 1

    def _run(self):
        self._as_owner()
        while not self._stop.is_set():
            with self._pause:
                try:
                    self.step()
                except OSError as e:
                    # A full vault (ENOSPC) is a scenario, not an error; anything
                    # else means the model may be off: resync from the real tree.
                    self.errors.append(repr(e))
                    self.model = tree(self.root)
                    self.j.add(self.model)
            time.sleep(self.rnd.uniform(*self.delay))

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(30)
            self._thread = None
        # The model must be the tree: the journal's premise.
        real = tree(self.root)
        assert real == self.model, ("writer model differs from the vault",
                                    sorted(k for k in set(real) | set(self.model)
                                           if real.get(k) != self.model.get(k)))
        return real

    class _Paused:
        def __init__(self, w):
            self.w = w

        def __enter__(self):
            self.w._pause.acquire()

        def __exit__(self, *a):
            self.w._pause.release()

    def paused(self):
        return self._Paused(self)

    def run_as_owner(self, fn, *a):
        """fn(*a) in a thread with the owner's file system ids."""
        res = {}

        def body():
            self._as_owner()
            try:
                res["v"] = fn(*a)
            except BaseException as e:  # noqa: B902
                res["e"] = e
        t = threading.Thread(target=body)
        t.start()
        t.join()
        if "e" in res:
            raise res["e"]
        return res.get("v")


# ---- a log of every object version RGW stored -------------------------------
#
# RGW 16.2 answers 412 to every If-Match PUT in a versioned bucket, so the
# bucket's own version list cannot be had without breaking what is tested.
# The daemon reaches RGW through this proxy instead, which records every write
# RGW accepted (method, key, the condition sent, RGW's status and ETag, the
# bytes): with the test's own writes as "another device", that is every
# version the key ever had.  The same proxy injects faults (faultproxy.py).

import faultproxy  # noqa: E402


class RecordingProxy(faultproxy.FaultProxy):
    def __init__(self, upstream_port):
        super().__init__(upstream_port)
        self.stored = []

    def start(self, port=0):
        """Listen (again) on port: a stopped proxy is a server that is down."""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        self._stopping = False
        self._lsock = s
        self.port = s.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        self._thread.start()
        return self.port

    def _forward(self, up, req, method):
        resp, close = super()._forward(up, req, method)
        if method in ("PUT", "DELETE", "POST"):
            code = int(resp.first.split(" ")[1])
            target = req.first.split(" ")[1]
            cond = None
            for h in ("If-Match", "If-None-Match"):
                if req.get(h) is not None:
                    cond = (h, req.get(h).strip('"'))
            rec = {"t": time.monotonic(), "method": method, "target": target, "code": code,
                   "etag": (resp.get("ETag") or "").strip('"'), "cond": cond,
                   "body": req.body if method == "PUT" and code == 200 and
                   "?" not in target and target.endswith(".tar.age") else None}
            with self._lock:
                self.stored.append(rec)
        return resp, close


def s3_key_of(target, bucket):
    from urllib.parse import unquote
    path = unquote(target.split("?")[0])
    return path[len("/%s/" % bucket):] if path.startswith("/%s/" % bucket) else path


# ---- the vault under test ----------------------------------------------------

class Env:
    """One daemon with one vault "v": system mode (a tmpfs the daemon mounts)
    or user mode (a directory in /dev/shm), with an S3 remote in the
    versioned bucket or a dir: remote."""

    def __init__(self, factory, workdir, rnd, *, user_mode=False, s3v=None, remote="s3",
                 conf="", vault_extra="", mount_size="16M", endpoint=None, state_tmpfs=None):
        self.workdir = workdir
        self.rnd = rnd
        self.user_mode = user_mode
        self.s3v = s3v
        self.passphrase = "torture %s %s" % (os.urandom(6).hex(), os.urandom(6).hex())
        self.canary = "CANARY-%s" % os.urandom(12).hex()
        self.shm = None
        if user_mode:
            self.shm = tempfile.mkdtemp(prefix="vs-tt-", dir="/dev/shm")
            os.chmod(self.shm, 0o755)
            self.path = os.path.join(self.shm, "vault")
            os.makedirs(self.path)
            vconf = "Vault v\n  Path %s\n  Mount no\n  MountSize %s\n" % (self.path, mount_size)
        else:
            self.path = os.path.join(workdir, "mnt")
            vconf = "Vault v\n  Path %s\n  Mount yes\n  MountSize %s\n" % (self.path, mount_size)
        self.statedir = os.path.join(workdir, "state")
        if state_tmpfs:
            os.makedirs(self.statedir, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=700" % state_tmpfs,
                            "tmpfs", self.statedir], check=True)
        self.remote_kind = remote
        self.proxy = None
        if remote == "s3":
            self.proxy = RecordingProxy(s3v.port)
            self.proxy.start()
            endpoint = endpoint or "http://127.0.0.1:%d" % self.proxy.port
            self.prefix = s3v.new_prefix()
            self.creds = os.path.join(workdir, "s3.env")
            s3v.creds_file(self.creds)
            vconf += ("  Remote s3://%s/%s\n  Endpoint %s\n  Region %s\n  PathStyle yes\n"
                      "  CredentialsFile %s\n" % (s3v.bucket, self.prefix,
                                                  endpoint or s3v.endpoint, s3v.region,
                                                  self.creds))
            self.rkey = self.prefix + "/v/"
            self.latest_key = self.rkey + "vault.tar.age"
        else:
            self.remote = os.path.join(workdir, "remote-v")
            vconf += "  Remote dir:%s\n" % self.remote
            self.rlatest = os.path.join(self.remote, "v", "vault.tar.age")
        if "WatcherDebounce" not in conf:
            conf = "WatcherDebounce 100ms\n" + conf
        self.d = factory(user_mode=user_mode, vault_conf=vconf + vault_extra, extra_conf=conf)
        self.d._seen_pids = []
        if user_mode and IS_ROOT:
            for dp, dns, fns in os.walk(self.shm):
                for n in dns + fns + [""]:
                    os.chown(os.path.join(dp, n), self.d.ident.uid, self.d.ident.gid)
            if remote == "s3":
                os.chown(self.creds, self.d.ident.uid, self.d.ident.gid)
        self.passfile = os.path.join(workdir, "pass")
        with open(self.passfile, "w") as f:
            f.write(self.passphrase + "\n")
        os.chmod(self.passfile, 0o600)
        if user_mode and IS_ROOT:
            os.chown(self.passfile, self.d.ident.uid, self.d.ident.gid)
        self.state = os.path.join(self.statedir, "v")
        self.archive = os.path.join(self.state, "vault.tar.age")
        self.owner = (self.d.ident.uid, self.d.ident.gid) if user_mode else (0, 0)
        self.journal = Journal()
        self.writer = None
        self._idf = None
        self.problems = []
        self.other_writes = []	# (time done, ETag) of the test's writes as another device
        self.resolutions = []	# times a pull or push --force began
        self.state_tmpfs = state_tmpfs

    # -- daemon --
    def ctl(self, *args, timeout=60):
        try:
            return self.d.ctl(*args, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.problems.append("vaultsyncctl %s gave no answer in %ds" % (" ".join(args),
                                                                           timeout))
            return subprocess.CompletedProcess(args, -1, "", "no answer (timeout)")

    def status(self):
        r = self.ctl("status", "--json", timeout=30)
        if r.returncode not in (0, 1):
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def vstate(self):
        st = self.status()
        return st["vaults"][0] if st else None

    def start(self):
        self.d.start()
        self.note_pids()
        return self

    def note_pids(self):
        st = self.status()
        if st:
            for c in st["children"]:
                if c["pid"] and c["pid"] not in self.d._seen_pids:
                    self.d._seen_pids.append(c["pid"])

    def init(self, big=False, mtimes=None):
        r = self.ctl("init", "v", "--passphrase-file", self.passfile)
        assert r.returncode == 0, (r.stdout, r.stderr, self.d.read_log()[-3000:])
        self.writer = Writer(self.path, self.journal, self.rnd, self.owner, big=big,
                             mtimes=mtimes)
        self.writer.resync()
        self.writer.run_as_owner(self.writer.write_file, "canary", self.canary.encode())
        return self.writer

    def children_of_parent(self):
        """The daemon's children, from /proc (no question to the daemon)."""
        out = {}
        pid = self.d.proc.pid
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return out
        for k in kids:
            try:
                with open("/proc/%d/comm" % k) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            for n in ("watcher", "uploader", "statusd"):
                if comm.startswith("vaultsync-" + n[:5]):
                    out[n] = k
        return out

    # -- archives --
    def identity(self):
        if self._idf is None:
            idf = os.path.join(self.workdir, "id.txt")
            rc, out = age_tty(["-d", "-o", idf, os.path.join(self.state, "identity.age")],
                              self.passphrase)
            assert rc == 0, out
            self._idf = idf
        return self._idf

    def recipient(self):
        with open(os.path.join(self.state, "recipient")) as f:
            return f.read().strip()

    def decrypt_tree(self, data):
        """age -d | tar -x with the real tools; the tree, or an error string."""
        out = tempfile.mkdtemp(prefix="vs-tt-x-", dir="/dev/shm")	# a disk may clamp far mtimes
        try:
            p = subprocess.run(["age", "-d", "-i", self.identity()], input=data,
                               capture_output=True)
            if p.returncode != 0:
                return "age: " + p.stderr.decode(errors="replace").strip()
            r = subprocess.run(["tar", "-x", "-p", "-C", out], input=p.stdout,
                               capture_output=True)
            if r.returncode != 0:
                return "tar: " + r.stderr.decode(errors="replace").strip()
            return tree(out)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def check_archive(self, what, data):
        """One archive: it must decrypt to a complete journaled state."""
        t = self.decrypt_tree(data)
        tally(states_checked=1)
        if isinstance(t, str):
            self.problems.append("%s does not decrypt: %s" % (what, t))
            return None
        if not self.journal.knows(t):
            near, diff = self.journal.nearest(t)
            self.problems.append("%s is no state the vault had (torn or invented); "
                                 "differs from the nearest state in %s, e.g. archive %s, "
                                 "state %s" % (what, diff[:10], [t.get(k) for k in diff[:2]],
                                               [near.get(k) for k in diff[:2]]))
            return None
        return t

    def read_local(self):
        try:
            with open(self.archive, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def remote_latest(self):
        if self.remote_kind == "s3":
            st, h, body = self.s3v.request("GET", self.latest_key)
            return body if st == 200 else None
        try:
            with open(self.rlatest, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def remote_archives(self):
        """(name, bytes) of every archive the remote holds or held: with S3 every
        .tar.age write RGW accepted (from the proxy's log) and what is there
        now; with dir: the files there now."""
        out = []
        if self.remote_kind == "s3":
            seen = set()
            with self.proxy._lock:
                recs = list(self.proxy.stored)
            for i, r in enumerate(recs):
                key = s3_key_of(r["target"], self.s3v.bucket)
                if r["body"] is None or not key.startswith(self.rkey):
                    continue
                h = hashlib.sha256(r["body"]).digest()
                if h not in seen:
                    seen.add(h)
                    out.append(("write %d of %s" % (i, key[len(self.rkey):]), r["body"]))
            for key in self.s3v.list_keys(self.rkey):
                if key.endswith(".tar.age") and key != self.latest_key:
                    st, hd, body = self.s3v.request("GET", key)
                    if st == 200 and hashlib.sha256(body).digest() not in seen:
                        out.append((key[len(self.rkey):], body))
        else:
            base = os.path.join(self.remote, "v")
            for dp, dns, fns in os.walk(base):
                for n in fns:
                    if n.endswith(".tar.age") and not n.startswith("."):
                        with open(os.path.join(dp, n), "rb") as f:
                            out.append((os.path.relpath(os.path.join(dp, n), base), f.read()))
        return out

    # -- another device --
    def other_device_write(self, files):
        """Another device writes the latest: a tar of `files` encrypted with the
        real age to this vault's recipient, with other credentials.  Returns
        the tree it holds (journaled: a pull brings it into the vault)."""
        src = tempfile.mkdtemp(prefix="vs-tt-other-")
        try:
            for name, data in files.items():
                p = os.path.join(src, name)
                with open(p, "wb") as f:
                    f.write(data)
                os.chmod(p, 0o600)
            want = tree(src)
            tarb = subprocess.run(["tar", "--format=pax", "-cf", "-", "-C", src] + sorted(files),
                                  capture_output=True, check=True).stdout
        finally:
            shutil.rmtree(src, ignore_errors=True)
        enc = subprocess.run(["age", "-r", self.recipient()], input=tarb, capture_output=True,
                             check=True).stdout
        self.journal.add(want)
        st, h, body = self.s3v.request("PUT", self.latest_key, data=enc,
                                       access_key=self.s3v.access_key2,
                                       secret_key=self.s3v.secret_key2)
        assert st == 200, (st, body[:300])
        self.other_writes.append((time.monotonic(), h.get("etag", "").strip('"')))
        return want

    def resolving(self):
        """A pull or push --force begins now."""
        self.resolutions.append(time.monotonic())

    # -- the end --
    def cleanup(self):
        if self.writer:
            self.writer._stop.set()
        self.d.stop()
        if not self.user_mode and os.path.ismount(self.path):
            subprocess.run(["umount", "-l", self.path])
        if self.state_tmpfs and os.path.ismount(self.statedir):
            subprocess.run(["umount", "-l", self.statedir])
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)
        if self.proxy:
            self.proxy.stop()
        if self.remote_kind == "s3":
            for key in self.s3v.list_keys(self.prefix + "/"):
                self.s3v.request("DELETE", key)


@pytest.fixture
def envs(daemon_factory, workdir, rnd):
    made = []

    def make(**kw):
        e = Env(daemon_factory, kw.pop("workdir", workdir), rnd, **kw)
        made.append(e)
        return e
    yield make
    for e in made:
        e.cleanup()


# ---- the verdict ---------------------------------------------------------------

# A push waiting out its backoff answers a sync with its last error: one of
# these, left by a fault the proxy injected (a reply cut off, an unconfirmed
# write, a mangled status line), is an outage being recovered too.
OUTAGE_WORDS = ("connect", "Connection", "timed out", "timeout", "HTTP 5", " 500", " 503",
                "reset", "unavailable", "retry", "Couldn't resolve", "uploader", "No space", "Read-only",
                "network", "Couldn't", "failed to", "empty reply", "Empty reply",
                "cut off", "unconfirmed", "without an ETag", "Unsupported response",
                "cannot tell whose write")


def sync_until_pushed(e, bound):
    """vaultsyncctl sync until it succeeds; retried only while the failure is
    an outage being recovered (network, server, disk).  Returns the answers."""
    answers = []
    deadline = time.monotonic() + bound
    while True:
        r = e.ctl("sync", "v", timeout=bound + 30)
        answers.append((r.returncode, (r.stdout + r.stderr).strip()))
        if r.returncode == 0:
            return answers
        text = r.stdout + r.stderr
        if "conflict" in text and not e.other_writes:
            e.problems.append("sync reports a conflict, but no other device wrote the vault: "
                              "%r; versions of the latest, oldest first: %s"
                              % (text.strip(), describe_versions(e)))
            return answers
        if "busy" in text:
            e.problems.append("sync answered %r" % text.strip())
        elif not any(w in text for w in OUTAGE_WORDS):
            e.problems.append("sync failed without an outage: %d %r" % (r.returncode,
                                                                         text.strip()))
            return answers
        if time.monotonic() > deadline:
            e.problems.append("sync did not succeed within %ds after the faults stopped: %s"
                              % (bound, answers[-3:]))
            return answers
        time.sleep(0.5)


def verdict(e, *, final_bound=60, unasked_within=None, check_memory=True, extra_secret=None):
    """Every scenario ends here, with the faults stopped:
    - the writer's model is the vault's tree (the journal's premise);
    - the final state reaches the local archive (without asking, within
      unasked_within seconds, when given) and, after vaultsyncctl sync, the
      remote latest: otherwise a change was lost;
    - every archive on disk and every version the remote stored decrypts (real
      age and tar) to a complete state from the journal;
    - no version written by another device was followed by a daemon write
      unless a pull or push --force came between (clobbers);
    - no secret (passphrase, S3 secret, canary file content) in the daemon's
      log, nor in the memory of a process that does not own it;
    - vaultsyncctl status still answers."""
    final = e.writer.stop() if e.writer else tree(e.path)
    e.journal.add(final)
    lost = 0
    if unasked_within:
        try:
            wait_for(lambda: (lambda d: d is not None and e.decrypt_tree(d) == final)(
                e.read_local()), timeout=unasked_within, interval=0.5,
                what="the final state saved without being asked")
        except AssertionError:
            e.problems.append("the final state was not saved by itself within %ds"
                              % unasked_within)
    answers = sync_until_pushed(e, final_bound)
    # The sync's answer describes the state after the request: the local
    # archive and the remote latest now hold the final state.
    local = e.read_local()
    lt = e.check_archive("local vault.tar.age", local) if local else None
    if lt != final:
        lost = 1
        e.problems.append("local archive is not the final state after sync (answers %s)"
                          % answers[-2:])
    rl = e.remote_latest()
    rt = e.check_archive("remote latest", rl) if rl else None
    if rt != final:
        lost = 1
        e.problems.append("remote latest is not the final state after sync (answers %s)"
                          % answers[-2:])
    for name, data in e.remote_archives():
        e.check_archive("remote " + name, data)
    clobbers = check_clobbers(e) if e.remote_kind == "s3" else 0
    tally(lost=lost, clobbers=clobbers)
    # Secrets.
    secrets = {"passphrase": e.passphrase.encode(), "canary": e.canary.encode()}
    if e.remote_kind == "s3":
        secrets["S3 secret"] = e.s3v.secret_key.encode()
    if extra_secret:
        secrets.update(extra_secret)
    with open(e.d.log, "rb") as f:
        log = f.read()
    for n, s in secrets.items():
        if s in log:
            e.problems.append("the %s appears in the daemon's log" % n)
    st = e.status()
    if st is None:
        e.problems.append("vaultsyncctl status does not answer at the end")
    elif check_memory:
        pids = {c["name"]: c["pid"] for c in st["children"] if c["pid"]}
        pids["parent"] = e.d.proc.pid
        owners = {"S3 secret": {"uploader"}, "canary": {"parent"}, "passphrase": set()}
        for n, s in secrets.items():
            for who, pid in pids.items():
                if who in owners.get(n, set()):
                    continue
                try:
                    if scan_memory(pid, s):
                        e.problems.append("the %s is in the memory of %s (pid %d)"
                                          % (n, who, pid))
                except OSError:
                    pass
    if e.problems:
        keep = "/tmp/vs-torture-%s.log" % re.sub(r"[^A-Za-z0-9_.-]+", "-", os.environ.get(
            "PYTEST_CURRENT_TEST", "x").split(" ")[0].split("::")[-1])
        shutil.copy(e.d.log, keep)
        e.problems.append("the daemon's log: %s" % keep)
    assert not e.problems, "\n".join(["%d problem(s):" % len(e.problems)] + e.problems)
    assert e.d.proc.poll() is None, "the daemon exited"
    return final


def writes_of_latest(e):
    """Every write of the latest RGW accepted, oldest first: ("daemon", rec)
    from the proxy's log, ("other", time, etag) from the test's."""
    with e.proxy._lock:
        recs = [r for r in e.proxy.stored
                if s3_key_of(r["target"], e.s3v.bucket) == e.latest_key and
                "?" not in r["target"]]
    out = [(r["t"], "daemon", r) for r in recs if r["code"] in (200, 204)]
    out += [(t, "other", {"etag": et}) for t, et in e.other_writes]
    return sorted(out, key=lambda x: x[0])


def describe_versions(e):
    if e.remote_kind != "s3":
        return "(dir remote)"
    return ["%s %s %s %s" % (who, r.get("method", "PUT"), r["etag"], r.get("cond"))
            for t, who, r in writes_of_latest(e)][-8:]


def check_clobbers(e):
    """From the log of every write of the latest RGW accepted: a daemon write
    may replace only a version the daemon wrote itself (If-Match one of its
    own ETags), nothing (If-None-Match: *), or another device's version once
    a pull or push --force began after that version was written."""
    clobbers = 0
    own = set()
    last_other = None	# time of the last write by another device
    for t, who, r in writes_of_latest(e):
        if who == "other":
            last_other = t
            continue
        cond = r["cond"]
        resolved = last_other is None or any(last_other < tr < t for tr in e.resolutions)
        ok = r["method"] == "PUT" and (
            (cond and cond[0] == "If-None-Match") or
            (cond and cond[0] == "If-Match" and cond[1] in own) or resolved)
        if not ok:
            clobbers += 1
            e.problems.append("clobber: the daemon's %s of the latest (condition %s, new ETag "
                              "%s) replaced another device's version with no pull or push "
                              "--force after it" % (r["method"], cond, r["etag"]))
        if r["method"] == "PUT":
            own.add(r["etag"])
    return clobbers
