"""The module map of docs/ARCHITECTURE.md, kept honest where a test can:
private headers are included only by the files their first comment names,
code that runs on a worker thread never sees the daemon's shared state, and
common/ never reaches up into a program's own headers."""
import glob
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER_SIDE = ("vault_ops.c", "save.c", "ring.c", "unpack.c", "tmpfs.c", "decode.c",
               "store.c", "treedigest.c")


def includes(path):
    return re.findall(r'^#include "([^"]+)"', open(path).read(), re.M)


def first_comment(path):
    m = re.match(r"/\*(.*?)\*/", open(path).read(), re.S)
    return m.group(1) if m else ""


def sources():
    return [p for d in ("parent", "common", "watcher", "uploader", "statusd", "decoder", "ctl")
            for p in glob.glob(os.path.join(REPO, d, "*.[ch]"))]


def test_private_headers_are_included_only_where_their_comment_says():
    private = [h for h in glob.glob(os.path.join(REPO, "parent", "*.h"))
               if first_comment(h).lstrip(" *\n").startswith("Private to")]
    assert {os.path.basename(h) for h in private} >= {"vault_ops_int.h", "ring.h"}
    for h in private:
        allowed = set(re.findall(r"[a-z_]+\.c", first_comment(h)))
        assert allowed, h
        users = {os.path.basename(p) for p in sources()
                 if os.path.basename(h) in includes(p)}
        assert users, "%s is included nowhere" % h
        assert users <= allowed, (os.path.basename(h), sorted(users - allowed))


def test_worker_side_never_includes_the_daemon_state():
    for name in WORKER_SIDE:
        path = os.path.join(REPO, "parent", name)
        assert os.path.exists(path), path
        assert "vaultsyncd.h" not in includes(path), name
        header = path[:-2] + ".h"
        if os.path.exists(header):
            assert "vaultsyncd.h" not in includes(header), header


def test_no_parent_file_over_600_lines():
    sizes = {os.path.basename(p): sum(1 for _ in open(p))
             for p in glob.glob(os.path.join(REPO, "parent", "*.c"))}
    assert len(sizes) > 20, sizes
    assert max(sizes.values()) <= 600, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_common_does_not_reach_into_programs():
    own = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "common", "*.h"))}
    for p in glob.glob(os.path.join(REPO, "common", "*.[ch]")):
        for inc in includes(p):
            assert inc in own, (p, inc)


def test_no_header_shadows_a_system_header():
    """Each program is built with -I of its own directory: a header named like
    a system one (spawn.h once did) hides it from every file there."""
    deliberate = {"archive.h"}	# includes libarchive's with #include_next
    for h in glob.glob(os.path.join(REPO, "*", "*.h")):
        name = os.path.basename(h)
        if name in deliberate:
            continue
        assert not os.path.exists(os.path.join("/usr/include", name)), h
        assert not glob.glob(os.path.join("/usr/include", "*-linux-gnu", name)), h
