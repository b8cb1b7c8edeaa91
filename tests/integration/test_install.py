"""make install honours PREFIX, DESTDIR, SBINDIR, BINDIR, LIBEXECDIR and MANDIR, and
the installed parent starts its children from the installed LIBEXECDIR; the
units name the installed binaries, and an existing configuration is kept."""
import os
import re
import subprocess

import pytest

from conftest import BUILD, REPO


@pytest.mark.skipif(BUILD.endswith("-asan"), reason="checked once, with the normal build")
def test_make_install_paths(workdir):
    dest = os.path.join(workdir, "dest")
    b = os.path.join(workdir, "b")
    r = subprocess.run(["make", "-s", "-j2", "B=" + b, "install", "DESTDIR=" + dest,
                        "PREFIX=/opt/vs", "SBINDIR=/opt/vs/bin-s", "BINDIR=/opt/vs/bin-u",
                        "LIBEXECDIR=/opt/vs/lx"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    files = sorted(os.path.relpath(os.path.join(dp, f), dest)
                   for dp, _, fs in os.walk(dest) for f in fs)
    assert files == ["etc/vaultsync/vaultsyncd.conf",
                     "opt/vs/bin-s/vaultsyncd", "opt/vs/bin-u/vaultsyncctl",
                     "opt/vs/lib/systemd/system-generators/vaultsync-generator",
                     "opt/vs/lib/systemd/system/vaultsyncd.service",
                     "opt/vs/lib/systemd/user/vaultsyncd.service",
                     "opt/vs/lib/sysusers.d/vaultsync.conf",
                     "opt/vs/lib/tmpfiles.d/vaultsync.conf",
                     "opt/vs/lx/vaultsync-decoder", "opt/vs/lx/vaultsync-statusd",
                     "opt/vs/lx/vaultsync-uploader", "opt/vs/lx/vaultsync-watcher",
                     "opt/vs/share/bash-completion/completions/vaultsyncctl",
                     "opt/vs/share/man/man1/vaultsyncctl.1",
                     "opt/vs/share/man/man5/vaultsyncd.conf.5",
                     "opt/vs/share/man/man8/vaultsyncd.8"]
    for page in ("man1/vaultsyncctl.1", "man5/vaultsyncd.conf.5", "man8/vaultsyncd.8"):
        assert os.stat(os.path.join(dest, "opt/vs/share/man", page)).st_mode & 0o777 == 0o644
    assert os.path.isdir(os.path.join(dest, "opt/vs/share/vaultsync/empty"))
    assert os.path.isdir(os.path.join(dest, "etc/vaultsync/vaultsyncd.conf.d"))
    for unit in ("system", "user"):
        with open(os.path.join(dest, "opt/vs/lib/systemd", unit, "vaultsyncd.service")) as f:
            text = f.read()
        assert not re.search(r"@[A-Z]+@", text), text
        assert "ExecStart=/opt/vs/bin-s/vaultsyncd" in text
    conf = os.path.join(dest, "etc/vaultsync/vaultsyncd.conf")
    with open(conf) as f:
        assert "Include /etc/vaultsync/vaultsyncd.conf.d/*.conf" in f.read()
    check_default_configuration(os.path.join(dest, "opt/vs/bin-s/vaultsyncd"), conf)
    with open(conf, "a") as f:
        f.write("# the administrator's\n")
    with open(os.path.join(dest, "opt/vs/bin-s/vaultsyncd"), "rb") as f:
        assert b"/opt/vs/lx\0" in f.read()
    # Changing only LIBEXECDIR rebuilds the parent with the new path.
    r = subprocess.run(["make", "-s", "B=" + b, "install", "DESTDIR=" + dest,
                        "PREFIX=/opt/vs", "LIBEXECDIR=/opt/other"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(os.path.join(dest, "opt/vs/sbin/vaultsyncd"), "rb") as f:
        assert b"/opt/other\0" in f.read()
    with open(conf) as f:
        assert f.read().endswith("# the administrator's\n")


def check_default_configuration(vaultsyncd, conf):
    """The installed configuration passes -t, and each commented "#Keyword
    value" line of a keyword -T prints shows the value it prints: the default."""
    r = subprocess.run([vaultsyncd, "-t", "-f", conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([vaultsyncd, "-T", "-f", conf], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    effective = {tuple(line.split(None, 1)) for line in r.stdout.splitlines()
                 if line.strip() and not line.startswith("#")}
    printed = {k for k, _ in effective}
    with open(conf) as f:
        shown = [tuple(m.groups()) for m in re.finditer(r"(?m)^\s*#([A-Z]\w+) ([^\s(]\S*)$",
                                                         f.read())]
    assert len(shown) > 20, shown
    wrong = [kv for kv in shown if kv[0] in printed and kv not in effective]
    assert wrong == [], (wrong, r.stdout)
