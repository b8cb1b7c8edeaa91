"""vaultsync-generator: what systemd is told to mount and allow, from the
configuration alone (its run under systemd is in tests/systemd)."""
import os
import subprocess

import pytest

from conftest import BUILD, binpath

pytestmark = pytest.mark.skipif(BUILD.endswith("-asan"), reason="checked with the normal build")


def generate(workdir, conf):
    path = os.path.join(workdir, "vaultsyncd.conf")
    with open(path, "w") as f:
        f.write(conf)
    out = os.path.join(workdir, "out")
    os.makedirs(out, exist_ok=True)
    r = subprocess.run([binpath("vaultsync-generator"), "-f", path, out, out + "-early",
                        out + "-late"], capture_output=True, text=True, timeout=30)
    files = {}
    for dp, _, fs in os.walk(out):
        for n in fs:
            with open(os.path.join(dp, n)) as f:
                files[os.path.relpath(os.path.join(dp, n), out)] = f.read()
    return r, files


def escape(path):
    return subprocess.run(["systemd-escape", "-p", "--suffix=mount", path],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_mount_units_named_as_systemd_names_them(workdir):
    paths = ["/run/vaults/work", "/run/vaults/a.b_c:d@e+f-g", "/run/vaults//x/", "/srv/.hidden"]
    conf = "".join("Vault v%d\n\tPath %s\n\tMountSize %dM\n" % (i, p, 8 * (i + 1))
                   for i, p in enumerate(paths))
    r, files = generate(workdir, conf)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for i, p in enumerate(paths):
        name = escape(p)
        assert name in files, (name, sorted(files))
        unit = files[name]
        assert "What=vaultsync\n" in unit and "Type=tmpfs\n" in unit, unit
        assert "Options=mode=0700,uid=0,gid=0,size=%d,nosuid,nodev,noexec\n" \
            % (8 * (i + 1) << 20) in unit, unit
    dropin = files["vaultsyncd.service.d/50-vaults.conf"]
    for p in paths:
        assert "RequiresMountsFor=%s\n" % p in dropin
        assert "ReadWritePaths=-%s\n" % p in dropin
    # Root's vaults, no dir: remote: the unit's two capabilities suffice.
    assert "CapabilityBoundingSet" not in dropin, dropin


def test_capabilities_follow_the_configuration(workdir):
    r, files = generate(workdir, "Vault a\n\tPath /run/vaults/a\n\tMount no\n"
                        "\tRemote dir:/srv/remote-a\n")
    dropin = files["vaultsyncd.service.d/50-vaults.conf"]
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n" in dropin, dropin
    assert not [n for n in files if n.endswith(".mount")], files
    assert "ReadWritePaths=-/srv/remote-a\n" in dropin
    # Made before the start, outside the sandbox, for PrivsepUser.
    assert "ExecStartPre=+/bin/sh -c 'test -d /srv/remote-a || install -d -m 0700 -o " in dropin
    r, files = generate(workdir, "Vault b\n\tPath /run/vaults/b\n\tOwner nobody\n")
    dropin = files["vaultsyncd.service.d/50-vaults.conf"]
    assert "CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER\n" in dropin, dropin
    assert ",uid=65534," in files[escape("/run/vaults/b")]


def test_what_a_unit_cannot_hold_is_left_out_saying_so(workdir):
    r, files = generate(workdir, 'Vault a\n\tPath "/run/vaults/my vault"\n'
                        "Vault b\n\tPath /run/vaults/100%\n")
    assert r.returncode == 0
    assert "/run/vaults/my vault: only letters, digits and /._:@+- go into a unit" in r.stderr
    assert "/run/vaults/100%" in r.stderr
    assert sorted(files) == ["vaultsyncd.service.d/50-vaults.conf"], files
    assert "/run/vaults/" not in files["vaultsyncd.service.d/50-vaults.conf"]


def test_a_configuration_that_does_not_load_generates_nothing(workdir):
    r, files = generate(workdir, "Vault a\n\tPath /run/vaults/a\n\tNoSuchKeyword 1\n")
    assert r.returncode == 0
    assert "vaultsyncd.conf:3: unknown keyword" in r.stderr, r.stderr
    assert files == {}
