"""The newcomer path on a fresh machine: the README's `make run` in a Debian 12
container that has none of the build dependencies (no compiler, no -dev
package, not even make: the README's one prerequisite is installed the way
it says).  As root it installs what it needs with apt, builds quietly and
leaves a demo vault syncing; an ordinary user's `make run` after that works
in the same tree, in user mode.

The container boots the cached root of the systemd tests (minbase, systemd,
and the libraries the package links against; nothing to build with) with a
tmpfs overlay, so every run starts without the -dev packages.  apt fetches
them from this machine's mirror; its downloads are kept between runs in
CACHE/apt-archives, so only the first run of a machine waits for them."""
import os
import re
import subprocess

import pytest

from conftest import CACHE, REPO
from sdhost import HOST_SH, wait_in

SRC = "/srv/vaultsync"		# the tree, in the container
CTL = SRC + "/build/vaultsyncctl"


@pytest.fixture(scope="module")
def fresh(host_factory):
    archives = os.path.join(CACHE, "apt-archives")
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    h = host_factory("--bind=%s:/var/cache/apt/archives" % archives)
    # No build dependency is there to begin with: the test would prove nothing.
    r = h.sh("for p in make gcc libc6-dev libcurl4-openssl-dev libssl-dev libcmocka-dev; do"
             " dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' &&"
             " echo $p; done; true")
    assert r.stdout.strip() == "", "the container root has %s" % r.stdout.split()
    # The tree under test as a checkout has it: no build directories.
    tar = subprocess.Popen(["tar", "-C", REPO, "-cf", "-", "--exclude-vcs", "--exclude=./build*",
                            "--exclude=./tests/artifacts", "."], stdout=subprocess.PIPE)
    x = subprocess.run([HOST_SH, "exec", h.run_dir, "sh", "-ec",
                        "mkdir -p %s && tar -C %s -xf - && chmod -R a+rX %s" % (SRC, SRC, SRC)],
                       stdin=tar.stdout, capture_output=True, text=True, timeout=300)
    tar.stdout.close()
    assert tar.wait() == 0 and x.returncode == 0, x.stderr
    h.exec("useradd", "-m", "-s", "/bin/sh", "newcomer")
    return h


# A login's environment, not make check's: its MAKEFLAGS and MAKELEVEL would
# reach the make in the container through nsenter.
CLEAN_ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG=C.UTF-8"]


def make_run(h, user=None):
    cmd = "cd %s && VAULTSYNC_DEMO_DETACH=1 make run </dev/null" % SRC
    who = ["runuser", "-u", user, "--"] if user else []
    argv = CLEAN_ENV + ["HOME=/home/" + user if user else "HOME=/root"] + who + ["sh", "-c", cmd]
    r = h.exec(*argv, check=False, timeout=1500)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    # Quiet: no compiler line on the screen, and the text to try next is the
    # last thing there.
    assert not re.search(r"^(cc|gcc|ar) ", r.stdout, re.M), r.stdout[-4000:]
    lines = r.stdout.rstrip("\n").splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("vaultsync demo: vault ")]
    assert starts, r.stdout[-4000:]
    text = lines[starts[-1]:]
    assert text[1] == "Try, in another terminal:", text
    assert text[-1].startswith("The daemon runs on in the background: "), text
    m = re.match(r"vaultsync demo: vault (\S+) -> dir:(\S+) ", text[0])
    assert m, text[0]
    return m.group(1), m.group(2), r.stdout


def check_demo(h, vault, remote, sock, user=None):
    def as_who(*argv):
        return h.exec(*(["runuser", "-u", user, "--"] if user else []), *argv, check=False)
    r = as_who("sh", "-c", "echo from-a-fresh-machine > %s/hello" % vault)
    assert r.returncode == 0, r.stderr
    r = as_who(CTL, "-s", sock, "sync", "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    r = as_who(CTL, "-s", sock, "status")
    assert r.returncode == 0 and "vault demo: unlocked" in r.stdout, r.stdout + r.stderr
    # What reached the remote is an age file that holds the write.
    arch = "%s/demo/vault.tar.age" % remote
    h.exec("test", "-s", arch)
    head = h.exec("head", "-c", "21", arch).stdout
    assert head == "age-encryption.org/v1", head
    as_who(CTL, "-s", sock, "lock", "demo")
    as_who(CTL, "-s", sock, "stop")
    wait_in(h, "! test -S %s || ! %s -s %s status >/dev/null 2>&1" % (sock, CTL, sock),
            60, "the demo daemon stopped")


def test_make_run_on_a_fresh_debian_12(fresh):
    h = fresh
    # The README's prerequisite, as a newcomer follows it.
    h.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
         " --no-install-recommends make </dev/null", timeout=900)
    vault, remote, out = make_run(h)
    assert "installing:" in out and "libcmocka-dev" in out, out[:3000]
    assert vault == "/tmp/vaultsync-demo-0/vault", vault
    check_demo(h, vault, remote, "/tmp/vaultsync-demo-0/run/ctl.sock")

    # An ordinary user after root, in the same tree: nothing left to install
    # or build, a demo directory of their own, user mode.
    uid = h.exec("id", "-u", "newcomer").stdout.strip()
    vault, remote, out = make_run(h, "newcomer")
    assert "installing:" not in out, out[:3000]
    assert vault == "/dev/shm/vaultsync-demo-%s/vault" % uid, vault
    assert remote == "/tmp/vaultsync-demo-%s/remote" % uid, remote
    check_demo(h, vault, remote, "/tmp/vaultsync-demo-%s/run/ctl.sock" % uid, "newcomer")
