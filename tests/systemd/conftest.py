"""The harness of the tests under a real systemd: the package that make deb
builds from this tree, installed in Debian 12 containers with systemd as
PID 1 (tests/systemd/host.sh).

The containers' root is built once (mmdebstrap, a minute or so) and kept in
VS_SYSTEMD_CACHE (default /var/cache/vaultsync-tests), under a name that
changes with the packages it holds; every container boots it read-only with
a tmpfs overlay, so each starts from the same clean state.  The tests skip
only when this machine cannot boot a container at all; a missing tool or a
failed build fails them."""
import glob
import hashlib
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("VS_SYSTEMD_CACHE", "/var/cache/vaultsync-tests")
ITDIR = os.path.join(REPO, "tests", "integration")
if ITDIR not in sys.path:
    sys.path.insert(0, ITDIR)

from s3server import s3, s3_rgw_guard  # noqa: E402,F401
from sdhost import HOST_SH, DEB_DIR, Deb, Host, HostError, run  # noqa: E402


@pytest.fixture(scope="session")
def scratch():
    d = tempfile.mkdtemp(prefix="vs-systemd-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def tools():
    if os.geteuid() != 0:
        pytest.skip("needs root: containers, dpkg and mounts")
    missing = [t for t in ("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "lintian",
                           "nsenter") if shutil.which(t) is None]
    if missing:
        pytest.fail("missing %s: make deps-test installs them" % " ".join(missing),
                    pytrace=False)


@pytest.fixture(scope="session")
def deb(tools, scratch):
    """The .deb that make deb builds from this tree, and a newer build of it."""
    b = os.path.join(scratch, "b")
    r = run(["make", "-s", "deb", "B=" + b], cwd=REPO, timeout=1200)
    if r.returncode != 0:
        pytest.fail("make deb failed (exit %d):\n%s" % (r.returncode,
                    (r.stdout + r.stderr)[-4000:]), pytrace=False)
    debs = glob.glob(os.path.join(b, "deb", "vaultsync_*.deb"))
    assert len(debs) == 1, debs
    return Deb(debs[0])


@pytest.fixture(scope="session")
def rootfs(deb):
    """The containers' root: systemd and what the package depends on, so that
    apt installs it without a network.  Built once, kept in CACHE."""
    pkgs = [p for p in deb.depends() if p not in ("init-system-helpers", "libc6")]
    with open(HOST_SH, "rb") as f:
        key = hashlib.sha256(f.read() + " ".join(pkgs).encode()).hexdigest()[:12]
    root = os.path.join(CACHE, "bookworm-" + key)
    if not os.path.isdir(root):
        os.makedirs(CACHE, exist_ok=True)
        for old in glob.glob(os.path.join(CACHE, "bookworm-*")):
            shutil.rmtree(old, ignore_errors=True)
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        r = run([HOST_SH, "rootfs", tmp] + pkgs, timeout=1200)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.fail("tests/systemd/host.sh rootfs failed (exit %d):\n%s"
                        % (r.returncode, (r.stdout + r.stderr)[-4000:]), pytrace=False)
        os.rename(tmp, root)
    return root


@pytest.fixture(scope="session")
def can_boot(rootfs, scratch):
    """Whether this machine can run a container at all: the bare root boots."""
    h = Host(rootfs, os.path.join(scratch, "probe"))
    try:
        h.boot()
    except HostError as e:
        pytest.skip("this machine cannot boot a systemd-nspawn container: %s" % e)
    finally:
        h.stop()
    return rootfs


@pytest.fixture(scope="module")
def host_factory(can_boot, deb, scratch):
    """Boots containers from the cached root with the packages at DEB_DIR;
    powers them all off at the end of the module."""
    hosts = []

    # check.sh names a directory its exit trap looks in for containers left running.
    base = os.environ.get("VS_SYSTEMD_RUNDIR", scratch)
    os.makedirs(base, exist_ok=True)

    def boot(*nspawn_args):
        h = Host(can_boot, tempfile.mkdtemp(prefix="run-", dir=base))
        hosts.append(h)
        return h.boot("--bind-ro=%s:%s" % (deb.dir, DEB_DIR), *nspawn_args)

    yield boot
    for h in hosts:
        h.stop()
