"""A state directory removed under an unlocked vault is put back from what
the daemon holds, and no change after it is lost or mistaken for another
device's write."""
import os

from conftest import wait_for
from fsutil import rmtree_under_writer
from test_remote_dir import same_tree
from test_sync_loop import dirloop, write  # noqa: F401 (a fixture)
from test_vault import pushed_or_current, tree


def test_removed_state_directory_is_put_back(dirloop):
    e = dirloop()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    write(e, "a", "first\n")
    e.ctl("sync", "v")
    etag_before = e.vstate()["remote_etag"]
    with open(os.path.join(e.state, "key"), "rb") as f:
        key = f.read()
    with open(os.path.join(e.state, "identity.age"), "rb") as f:
        ident = f.read()
    rmtree_under_writer(e.state)	# a watcher tick for "a" may still be saving
    write(e, "b", "written after the state directory went\n")
    r = e.ctl("sync", "v")
    assert pushed_or_current(r), r.stdout
    want = tree(e.path)
    # Everything is back, the same key and identity, and the archive holds the change.
    for name in ("recipient", "key", "identity.age", "state", "remote", "unlocked",
                 "vault.tar.age"):
        assert os.path.exists(os.path.join(e.state, name)), name
    with open(os.path.join(e.state, "key"), "rb") as f:
        assert f.read() == key
    with open(os.path.join(e.state, "identity.age"), "rb") as f:
        assert f.read() == ident
    assert same_tree(e, e.archive, want)
    assert same_tree(e, e.rlatest, want)
    v = e.vstate()
    # A normal conditional write followed ours: no false conflict.
    assert v["state"] != "conflict" and v["remote_etag"] != etag_before, v
    assert any("lost its files" in r.get("msg", "") for r in e.d.records())
    # A restart adopts the vault from the restored directory.
    assert e.d.stop() == 0
    e.d.start()
    wait_for(lambda: e.vstate()["state"] == "unlocked", timeout=20, what="adoption")
    write(e, "c", "after the restart\n")
    e.ctl("sync", "v")
    assert same_tree(e, e.rlatest, tree(e.path))
    assert e.d.stop() == 0
