"""The module map of docs/ARCHITECTURE.md, kept honest where a test can:
private headers are included only by the files their first comment names,
code that runs on a worker thread never sees the daemon's shared state, and
common/ never reaches up into a program's own headers, and the files of
parent/ call each other without a cycle through more than two files."""
import glob
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER_SIDE = ("vault_ops.c", "save.c", "ring.c", "unpack.c", "tmpfs.c", "voperr.c",
               "decode.c", "store.c", "treedigest.c", "vjudge.c")


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


def code_of(path):
    """The C text without comments and string literals (names there are not calls)."""
    s = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    s = re.sub(r"//[^\n]*", "", s)
    return re.sub(r'"(\\.|[^"\\])*"', '""', s)


def parent_graph():
    """file -> the files whose functions it names (calls, or hands on as callbacks)."""
    files = sorted(glob.glob(os.path.join(REPO, "parent", "*.c")))
    code = {f: code_of(f) for f in files}
    owner = {}
    for f in files:
        # A definition: its name at the start of a line, its type on the line before.
        for m in re.finditer(r"^([a-z_][a-z0-9_]*)\(", code[f], re.M):
            before = code[f][:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if not before.startswith("static") and re.match(r"[a-z]", before):
                owner[m.group(1)] = f
    words = {f: set(re.findall(r"\b[a-z_][a-z0-9_]*\b", code[f])) for f in files}
    return {os.path.basename(f): {os.path.basename(owner[n]) for n in words[f] & owner.keys()
                                  if owner[n] != f} for f in files}


def long_cycles(graph):
    """Simple cycles through three files or more (each found once, from its least file)."""
    found = []

    def walk(start, node, path):
        for nxt in sorted(graph[node]):
            if nxt == start and len(path) > 2:
                found.append(path[:])
            elif nxt > start and nxt not in path:
                path.append(nxt)
                walk(start, nxt, path)
                path.pop()
    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_the_graph_check_finds_cycles():
    assert long_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert long_cycles({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}) == []


def test_parent_modules_call_each_other_without_long_cycles():
    """A lower module reports to a callback its caller passed; main.c wires the
    control socket and the supervisor to the modules that answer them."""
    graph = parent_graph()
    assert len(graph) > 20 and "tick.c" in graph["ctlq.c"], graph["ctlq.c"]
    assert "remote.c" in graph["tick.c"] and "ctl.c" in graph["waiter.c"]
    cycles = long_cycles(graph)
    assert cycles == [], cycles[:10]



# What struct vault_rt still holds: the vault module's own record (identity,
# lock state, the running job, the last save, what the watcher reported).
VAULT_RT_FIELDS = {"in_use", "name", "state", "watch_mode", "nwatches", "consecutive_failures",
                   "busy", "busy_op", "save_done", "last_save_at", "st", "changes",
                   "last_change_at", "watch_reason", "last_error", "save_error", "skip_note"}
# Modules whose per-vault state is their own (a static VREG_STATE array).
OWN_STATE = ("tick.c", "headpoll.c", "ctlq.c", "verify.c", "pollscan.c", "keep.c", "rstate.c",
             "chgcheck.c")


def test_modules_own_their_per_vault_state():
    """struct vault_rt is the vault module's record, nothing more: a tick's,
    a push's, a poller's, a queue's or a drill's state lives in its module,
    which answers for it through functions."""
    with open(os.path.join(REPO, "parent", "vaultsyncd.h")) as f:
        h = f.read()
    body = h[h.index("struct vault_rt {"):]
    body = body[:body.index("\n};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    fields = set()
    for decl in body.split(";")[:-1]:
        decl = decl.strip().splitlines()[-1] if decl.strip() else ""
        for name in decl.split(",")[0:1] + decl.split(",")[1:]:
            m = re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*$", name.strip())
            if m:
                fields.add(m.group(1))
    assert fields == VAULT_RT_FIELDS, (sorted(fields - VAULT_RT_FIELDS),
                                       sorted(VAULT_RT_FIELDS - fields))
    for name in OWN_STATE:
        with open(os.path.join(REPO, "parent", name)) as f:
            src = f.read()
        assert re.search(r"^static struct \w+ \w+\[CFG_MAX_VAULTS\];$", src, re.M), name
        assert "VREG_STATE(" in src, name
    # No other file names a module's state type.
    for path in sources():
        with open(path) as f:
            src = f.read()
        base = os.path.basename(path)
        for typ, owners in (("tick_state", {"tick.c"}), ("hp_state", {"headpoll.c"}),
                            ("ctlq_state", {"ctlq.c"}), ("verify_state", {"verify.c"}),
                            ("scan_state", {"pollscan.c"}), ("keep_state", {"keep.c"}),
                            ("chk_state", {"chgcheck.c"})):
            if base not in owners:
                assert "struct %s " % typ not in src, (base, typ)


def test_the_parent_runs_no_parser_on_remote_bytes():
    """The keyless age scan of the restore drill runs in the decoder, like
    every other parser of what came from a remote or a disk."""
    for path in glob.glob(os.path.join(REPO, "parent", "*.[ch]")):
        assert "agescan.h" not in includes(path), path
    assert "agescan.h" in includes(os.path.join(REPO, "decoder", "main.c"))
