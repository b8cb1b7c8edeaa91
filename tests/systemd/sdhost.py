"""Helpers of the tests under a real systemd: the containers (tests/systemd/host.sh),
the package, waiting."""
import contextlib
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HOST_SH = os.path.join(HERE, "host.sh")
DEB_DIR = "/mnt/deb"	# where a container sees the packages


def _integration_harness():
    """tests/integration/conftest.py under a name of its own (the name
    "conftest" is this directory's), as tests/torture loads it."""
    mod = sys.modules.get("vs_it_conftest")
    if mod is None:
        spec = importlib.util.spec_from_file_location(
            "vs_it_conftest", os.path.join(HERE, "..", "integration", "conftest.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["vs_it_conftest"] = mod
        spec.loader.exec_module(mod)
    return mod


wait_for = _integration_harness().wait_for


def run(argv, timeout=600, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def report(request, line):
    """A result worth reading in make check's output (scores, lintian's tags)."""
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print("\n  " + line.replace("\n", "\n  "), flush=True)


class Deb:
    def __init__(self, path):
        self.path = path
        self.dir = os.path.dirname(path)
        self.name = os.path.basename(path)
        self.changes = glob.glob(os.path.join(self.dir, "vaultsync_*.changes"))[0]
        self.version = run(["dpkg-deb", "-f", path, "Version"]).stdout.strip()

    def depends(self):
        """The packages it needs, first alternative of each, without versions."""
        f = run(["dpkg-deb", "-f", self.path, "Depends"]).stdout
        return sorted({re.split(r"[ (|]", d.strip())[0] for d in f.split(",") if d.strip()})

    def newer(self):
        """The same package under a higher version: an upgrade runs the
        maintainer scripts as a rebuild's would, and dpkg cares for no more."""
        out = os.path.join(self.dir, self.name.replace("_" + self.version + "_",
                                                       "_" + self.version + "+1_"))
        if not os.path.exists(out):
            t = tempfile.mkdtemp(dir=self.dir)
            subprocess.run(["dpkg-deb", "-R", self.path, t], check=True)
            ctl = os.path.join(t, "DEBIAN", "control")
            with open(ctl) as f:
                text = f.read()
            with open(ctl, "w") as f:
                f.write(re.sub(r"(?m)^Version: .*$", "Version: %s+1" % self.version, text))
            subprocess.run(["dpkg-deb", "-b", "-Zxz", t, out], check=True,
                           capture_output=True)
            shutil.rmtree(t)
        return os.path.basename(out)


class HostError(Exception):
    pass


class Host:
    """One booted container.  exec() runs a command in it as root; sh() a
    shell script; as_user() a command as one of its users."""

    def __init__(self, root, run_dir):
        self.root = root
        self.run_dir = run_dir
        self.booted = False

    def boot(self, *nspawn_args):
        r = run([HOST_SH, "boot", self.root, self.run_dir] + list(nspawn_args), timeout=120)
        if r.returncode != 0:
            log = ""
            with contextlib.suppress(OSError), open(os.path.join(self.run_dir,
                                                                 "console.log")) as f:
                log = f.read()[-3000:]
            raise HostError((r.stderr + log).strip())
        self.booted = True
        return self

    def stop(self):
        run([HOST_SH, "stop", self.run_dir], timeout=120)
        self.booted = False

    def exec(self, *argv, check=True, input=None, timeout=300):
        r = run([HOST_SH, "exec", self.run_dir] + list(argv), input=input, timeout=timeout)
        if check and r.returncode != 0:
            why = r.stdout + r.stderr
            if argv[0] == "systemctl":
                why += run([HOST_SH, "exec", self.run_dir, "journalctl", "-q", "-n", "30",
                            "--no-pager", "-u", "vaultsyncd"]).stdout
            raise AssertionError("in the container: %s: exit %d\n%s"
                                 % (" ".join(argv), r.returncode, why))
        return r

    def sh(self, script, check=True, timeout=300):
        return self.exec("/bin/sh", "-ec", script, check=check, timeout=timeout)

    def as_user(self, user, *argv, check=False):
        return self.exec("runuser", "-u", user, "--", *argv, check=check)

    def write(self, path, text, mode="0644"):
        self.exec("install", "-D", "-m", mode, "/dev/stdin", path, input=text)

    def read(self, path):
        return self.exec("cat", path).stdout

    def show(self, prop, unit="vaultsyncd"):
        return self.exec("systemctl", "show", "-P", prop, unit).stdout.strip()

    def active(self, unit="vaultsyncd"):
        return self.exec("systemctl", "is-active", unit, check=False).stdout.strip()

    def install(self, name):
        return self.exec("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                         "-q", "--no-install-recommends", os.path.join(DEB_DIR, name))

    def journal(self, unit="vaultsyncd"):
        return self.exec("journalctl", "-q", "-o", "cat", "--no-pager", "-u", unit).stdout

    def files(self):
        """Every path on the container's root file system and below /run."""
        out = self.sh("find / -xdev; find /run -xdev").stdout
        return set(out.split("\n")) - {""}


def wait_in(host, script, timeout=30, what=None):
    """Waits until a shell script succeeds in the container."""
    return wait_for(lambda: host.sh(script, check=False).returncode == 0, timeout,
                    interval=0.2, what=what or script)
