/*
 * The wire codec: every type round-trips; every length, sender, terminator,
 * enum, flag and fd rule is enforced; truncations and bit flips of real
 * encodings never get past the decoder unvalidated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"

struct sample {
	uint32_t type;
	unsigned sender;
	size_t size;
	int fd;			/* what to decode with: 99 for types that carry one */
	__typeof__(((struct msg *)0)->u) u;
};

/* One valid payload per type, with every string filled to make terminators matter. */
static void
make_samples(struct sample *s, size_t *n)
{
	size_t i = 0;

#define ADD(t, who, field) do {					\
	memset(&s[i], 0, sizeof(s[i]));				\
	s[i].type = (t);					\
	s[i].sender = (who);					\
	s[i].size = sizeof(s[i].u.field);			\
	s[i].fd = -1;						\
	i++;							\
} while (0)
	ADD(MSG_HELLO, PEER_WATCHER, hello);
	s[i - 1].u.hello.proto = VS_PROTO_VERSION;
	s[i - 1].u.hello.role = ROLE_WATCHER;
	msg_strlcpy(s[i - 1].u.hello.version, "1.2.3", 32);
	ADD(MSG_LOG, PEER_UPLOADER, log);
	s[i - 1].u.log.level = MLOG_INFO;
	s[i - 1].u.log.seccomp_nr = -1;
	memset(s[i - 1].u.log.msg, 'x', sizeof(s[i - 1].u.log.msg) - 1);
	ADD(MSG_WATCHER_CONFIG, PEER_PARENT, wcfg);
	s[i - 1].u.wcfg.debounce_ms = 500;
	ADD(MSG_WATCH_CHANGE, PEER_WATCHER, wchange);
	s[i - 1].u.wchange.wd = 7;
	ADD(MSG_WATCH_NEWDIR, PEER_WATCHER, wnewdir);
	memset(s[i - 1].u.wnewdir.name, 'd', 255);
	ADD(MSG_WATCH_OVERFLOW, PEER_WATCHER, woverflow);
	ADD(MSG_CRED_INFO, PEER_UPLOADER, cred);
	s[i - 1].u.cred.state = CRED_ST_OK;
	msg_strlcpy(s[i - 1].u.cred.path, "/etc/vaultsync/s3.env", 256);
	ADD(MSG_STATUSD_CONFIG, PEER_PARENT, scfg);
	s[i - 1].u.scfg.require_auth = 1;
	memset(s[i - 1].u.scfg.token, 'a', 64);
	ADD(MSG_SNAP_DAEMON, PEER_PARENT, sdaemon);
	ADD(MSG_SNAP_CHILD, PEER_PARENT, schild);
	s[i - 1].u.schild.role = ROLE_STATUSD;
	ADD(MSG_SNAP_VAULT, PEER_PARENT, svault);
	msg_strlcpy(s[i - 1].u.svault.name, "work", 64);
	s[i - 1].u.svault.verify_outcome = VERIFY_MISMATCH;
	s[i - 1].u.svault.verify_at = 1767225600;
	memset(s[i - 1].u.svault.verify_msg, 'v', 255);
	ADD(MSG_SNAP_END, PEER_PARENT, send);
	ADD(MSG_CTL_REQUEST, PEER_CTL, creq);
	s[i - 1].u.creq.cmd = CTL_STATUS;
	ADD(MSG_CTL_RESULT, PEER_PARENT, cres);
	msg_strlcpy(s[i - 1].u.cres.msg, "ok", 1024);
	ADD(MSG_CTL_SECRET, PEER_CTL, csecret);
	s[i - 1].u.csecret.len = 11;
	memcpy(s[i - 1].u.csecret.secret, "correct horse", 11);
	ADD(MSG_UPL_PUT, PEER_PARENT, uput);
	s[i - 1].fd = 99;
	s[i - 1].u.uput.cond = UPL_COND_IF_MATCH;
	msg_strlcpy(s[i - 1].u.uput.vault, "work", 64);
	msg_strlcpy(s[i - 1].u.uput.key, "vault.tar.age", UPL_KEY_MAX);
	memset(s[i - 1].u.uput.etag, 'e', UPL_ETAG_MAX - 1);
	ADD(MSG_UPL_GET, PEER_PARENT, uget);
	s[i - 1].fd = 99;
	msg_strlcpy(s[i - 1].u.uget.key, "history/20261201T000000Z-0123456789abcdef.tar.age",
	    UPL_KEY_MAX);
	ADD(MSG_UPL_OP, PEER_PARENT, uop);
	s[i - 1].u.uop.op = UPL_LIST;
	msg_strlcpy(s[i - 1].u.uop.key, "history/", UPL_KEY_MAX);
	ADD(MSG_UPL_ENTRY, PEER_UPLOADER, uentry);
	msg_strlcpy(s[i - 1].u.uentry.key, "conflicts/host-1.tar.age", UPL_KEY_MAX);
	ADD(MSG_UPL_MPU, PEER_UPLOADER, umpu);
	msg_strlcpy(s[i - 1].u.umpu.key, "vault.tar.age", UPL_KEY_MAX);
	memset(s[i - 1].u.umpu.upload_id, 'u', 255);
	ADD(MSG_UPL_RESULT, PEER_UPLOADER, ures);
	s[i - 1].u.ures.outcome = UPL_CONFLICT;
	s[i - 1].u.ures.http_status = 412;
	s[i - 1].u.ures.flags = UPL_F_MULTIPART;
	ADD(MSG_CTL_LINE, PEER_PARENT, cline);
	memset(s[i - 1].u.cline.line, 'l', 1023);
	ADD(MSG_PING, PEER_PARENT, ping);
	s[i - 1].u.ping.nonce = 0x5a5a0001;
	ADD(MSG_PONG, PEER_STATUSD, ping);
	s[i - 1].u.ping.nonce = 0x5a5a0001;
	ADD(MSG_UPL_CRED, PEER_PARENT, ucred);
	s[i - 1].u.ucred.source = CRED_SRC_SYSTEMD;
	s[i - 1].u.ucred.slot = 3;
	memset(s[i - 1].u.ucred.name, 'n', 63);
	s[i - 1].u.ucred.path[0] = '/';
	memset(s[i - 1].u.ucred.path + 1, 'p', 254);
	ADD(MSG_UPL_REMOTE, PEER_PARENT, uremote);
	s[i - 1].u.uremote.kind = UPL_REMOTE_S3;
	s[i - 1].u.uremote.cred = 2;
	s[i - 1].u.uremote.path_style = 1;
	memset(s[i - 1].u.uremote.vault, 'v', 63);
	memset(s[i - 1].u.uremote.region, 'r', 63);
	memset(s[i - 1].u.uremote.bucket, 'b', 63);
	memset(s[i - 1].u.uremote.prefix, 'k', UPL_KEY_MAX - 1);
	memcpy(s[i - 1].u.uremote.endpoint, "https://", 8);
	memset(s[i - 1].u.uremote.endpoint + 8, 'e', 247);
	ADD(MSG_UPL_CONF_END, PEER_PARENT, uconfend);
	s[i - 1].u.uconfend.multipart_threshold = 8u << 20;
	s[i - 1].u.uconfend.ncreds = 2;
	s[i - 1].u.uconfend.nremotes = 5;
	ADD(MSG_DEC_START, PEER_PARENT, dstart);
	s[i - 1].u.dstart.max_logn = 22;
	s[i - 1].u.dstart.max_total_bytes = 64u << 20;
	s[i - 1].u.dstart.max_entries = 1000000;
	s[i - 1].u.dstart.passlen = 1023;
	memset(s[i - 1].u.dstart.pass, 'p', 1023);
	ADD(MSG_DEC_READY, PEER_DECODER, dready);
	ADD(MSG_DEC_ENTRY, PEER_DECODER, dentry);
	s[i - 1].u.dentry.type = DEC_SYMLINK;
	s[i - 1].u.dentry.perm = 0777;
	s[i - 1].u.dentry.has_mtime = 1;
	s[i - 1].u.dentry.mtime_nsec = 999999999;
	memset(s[i - 1].u.dentry.name, 'n', DEC_PATH_MAX - 1);
	memset(s[i - 1].u.dentry.link, 'l', DEC_PATH_MAX - 1);
	ADD(MSG_DEC_END, PEER_DECODER, dend);
	s[i - 1].u.dend.ok = 1;
	s[i - 1].u.dend.stage = DEC_STAGE_ARCHIVE;
	memset(s[i - 1].u.dend.msg, 'm', 511);
	ADD(MSG_TICK_REC, PEER_PARENT, tick);
	msg_strlcpy(s[i - 1].u.tick.vault, "work", 64);
	s[i - 1].u.tick.index = 42;
	s[i - 1].u.tick.trigger = TRIG_CTL;
	s[i - 1].u.tick.outcome = TICK_CONFLICT;
	s[i - 1].u.tick.saved = s[i - 1].u.tick.pushed = 1;
	memset(s[i - 1].u.tick.sha256, 'a', 64);
	memset(s[i - 1].u.tick.error, 'e', 255);
	ADD(MSG_UPL_PROGRESS, PEER_UPLOADER, uprog);
	s[i - 1].u.uprog.id = 9;
	s[i - 1].u.uprog.sent = 1 << 20;
	s[i - 1].u.uprog.total = 200u << 20;
#undef ADD
	*n = i;
}

static size_t
encode(const struct sample *s, unsigned char *buf)
{
	struct vs_hdr h = { s->type, (uint32_t)s->size, 1, 0 };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &s->u, s->size);
	return sizeof(h) + s->size;
}

static void
test_every_type_round_trips(void **state)
{
	struct sample s[MSG_TYPE_MAX + 1];
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg m;
	size_t n, i, len;
	const char *why;

	(void)state;
	make_samples(s, &n);
	assert_int_equal(n, MSG_TYPE_MAX);
	for (i = 0; i < n; i++) {
		len = encode(&s[i], buf);
		assert_int_equal(msg_decode(buf, len, s[i].sender, s[i].fd, &m, &why), MSG_OK);
		assert_int_equal(m.hdr.type, s[i].type);
		assert_memory_equal(&m.u, &s[i].u, s[i].size);
		assert_int_equal(m.fd, s[i].fd);
	}
}

static void
test_length_must_be_exact(void **state)
{
	struct sample s[MSG_TYPE_MAX + 1];
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD + 8];
	struct msg m;
	size_t n, i, len;
	const char *why;

	(void)state;
	make_samples(s, &n);
	for (i = 0; i < n; i++) {
		struct vs_hdr h;

		len = encode(&s[i], buf);
		/* Claimed length one off either way, datagram unchanged. */
		memcpy(&h, buf, sizeof(h));
		h.len = (uint32_t)s[i].size + 1;
		memcpy(buf, &h, sizeof(h));
		assert_int_equal(msg_decode(buf, len, s[i].sender, s[i].fd, &m, &why), MSG_VIOLATION);
		h.len = (uint32_t)s[i].size - 1;
		memcpy(buf, &h, sizeof(h));
		assert_int_equal(msg_decode(buf, len, s[i].sender, s[i].fd, &m, &why), MSG_VIOLATION);
		/* Honest header, datagram longer or shorter than it says. */
		h.len = (uint32_t)s[i].size;
		memcpy(buf, &h, sizeof(h));
		assert_int_equal(msg_decode(buf, len + 1, s[i].sender, s[i].fd, &m, &why), MSG_VIOLATION);
		assert_int_equal(msg_decode(buf, len - 1, s[i].sender, s[i].fd, &m, &why), MSG_VIOLATION);
		assert_string_equal(why, "payload length does not match its type");
	}
}

static void
test_every_truncation_is_rejected(void **state)
{
	struct sample s[MSG_TYPE_MAX + 1];
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg m;
	size_t n, i, len, cut;
	const char *why;

	(void)state;
	make_samples(s, &n);
	for (i = 0; i < n; i++) {
		len = encode(&s[i], buf);
		for (cut = 0; cut < len; cut++)
			assert_int_equal(msg_decode(buf, cut, s[i].sender, s[i].fd, &m, &why),
			    MSG_VIOLATION);
	}
}

/*
 * Every single-bit flip either still decodes (it hit a free-form field) or is
 * a violation; a flip in type, len or flags is always a violation, and any
 * decoded result still has terminated strings (checked by re-validating).
 */
static void
test_every_bit_flip(void **state)
{
	struct sample s[MSG_TYPE_MAX + 1];
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg m, m2;
	size_t n, i, len, bit;
	const char *why;

	(void)state;
	make_samples(s, &n);
	for (i = 0; i < n; i++) {
		len = encode(&s[i], buf);
		for (bit = 0; bit < len * 8; bit++) {
			size_t byte = bit / 8;
			unsigned char hdr[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
			int rv;

			buf[byte] ^= (unsigned char)(1u << (bit % 8));
			rv = msg_decode(buf, len, s[i].sender, s[i].fd, &m, &why);
			/* len and flags: always caught.  type: only another type of the same size and sender may pass. */
			if ((byte >= 4 && byte < 8) || (byte >= 12 && byte < 16))
				assert_int_equal(rv, MSG_VIOLATION);
			if (byte < 4 && rv == MSG_OK)
				assert_int_equal(m.hdr.len, len - sizeof(struct vs_hdr));
			if (rv == MSG_OK) {
				memcpy(hdr, &m.hdr, sizeof(m.hdr));
				memcpy(hdr + sizeof(m.hdr), &m.u, m.hdr.len);
				assert_int_equal(msg_decode(hdr, len, s[i].sender, s[i].fd, &m2, &why),
				    MSG_OK);
			} else
				assert_int_equal(rv, MSG_VIOLATION);
			buf[byte] ^= (unsigned char)(1u << (bit % 8));
		}
	}
}

static void
test_strings_must_be_terminated(void **state)
{
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg_watch_newdir d;
	struct msg_ctl_request rq;
	struct vs_hdr h = { MSG_WATCH_NEWDIR, sizeof(d), 1, 0 };
	struct msg m;
	const char *why;

	(void)state;
	memset(&d, 'A', sizeof(d));
	d.wd = 1;
	d.pad = 0;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &d, sizeof(d));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(d), PEER_WATCHER, -1, &m, &why),
	    MSG_VIOLATION);
	assert_non_null(strstr(why, "not terminated"));

	memset(&rq, 0, sizeof(rq));
	rq.cmd = CTL_STATUS;
	memset(rq.arg, 'z', sizeof(rq.arg));
	h = (struct vs_hdr){ MSG_CTL_REQUEST, sizeof(rq), 1, 0 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rq, sizeof(rq));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_CTL, -1, &m, &why),
	    MSG_VIOLATION);
}

static void
test_enums_and_senders(void **state)
{
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg_ctl_request rq;
	struct msg_log l;
	struct vs_hdr h = { MSG_CTL_REQUEST, sizeof(rq), 1, 0 };
	struct msg m;
	const char *why;

	(void)state;
	memset(&rq, 0, sizeof(rq));
	rq.cmd = CTL_CMD_MAX + 1;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rq, sizeof(rq));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_CTL, -1, &m, &why),
	    MSG_VIOLATION);
	rq.cmd = CTL_STATUS;
	memcpy(buf + sizeof(h), &rq, sizeof(rq));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_CTL, -1, &m, &why), MSG_OK);
	/* A child may not send a control request, nor the ctl a watcher event. */
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_WATCHER, -1, &m, &why),
	    MSG_VIOLATION);
	assert_string_equal(why, "message type not permitted from this peer");

	memset(&l, 0, sizeof(l));
	l.level = MLOG_MAX + 1;
	l.seccomp_nr = -1;
	h = (struct vs_hdr){ MSG_LOG, sizeof(l), 1, 0 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &l, sizeof(l));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(l), PEER_WATCHER, -1, &m, &why),
	    MSG_VIOLATION);
	/* Unknown types and reserved flags. */
	h = (struct vs_hdr){ 0, 0, 1, 0 };
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_decode(buf, sizeof(h), PEER_PARENT, -1, &m, &why), MSG_VIOLATION);
	h = (struct vs_hdr){ MSG_TYPE_MAX + 1, 0, 1, 0 };
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_decode(buf, sizeof(h), PEER_PARENT, -1, &m, &why), MSG_VIOLATION);
	l.level = MLOG_INFO;
	h = (struct vs_hdr){ MSG_LOG, sizeof(l), 1, 1 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &l, sizeof(l));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(l), PEER_WATCHER, -1, &m, &why),
	    MSG_VIOLATION);
	assert_string_equal(why, "reserved flags set");
}

/* The restore drill's snapshot fields and command: checked like the others. */
static void
test_verify_fields(void **state)
{
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct msg_snap_vault sv;
	struct msg_ctl_request rq;
	struct vs_hdr h = { MSG_SNAP_VAULT, sizeof(sv), 1, 0 };
	struct msg m;
	const char *why;

	(void)state;
	memset(&sv, 0, sizeof(sv));
	sv.verify_outcome = VERIFY_OUTCOME_MAX;
	msg_strlcpy(sv.verify_msg, "vault.tar.age: differs at byte 1234", sizeof(sv.verify_msg));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &sv, sizeof(sv));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(sv), PEER_PARENT, -1, &m, &why),
	    MSG_OK);
	assert_int_equal(m.u.svault.verify_outcome, VERIFY_SKIPPED);
	assert_string_equal(m.u.svault.verify_msg, "vault.tar.age: differs at byte 1234");

	sv.verify_outcome = VERIFY_OUTCOME_MAX + 1;
	memcpy(buf + sizeof(h), &sv, sizeof(sv));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(sv), PEER_PARENT, -1, &m, &why),
	    MSG_VIOLATION);
	assert_non_null(strstr(why, "verify outcome"));

	sv.verify_outcome = VERIFY_OK;
	memset(sv.verify_msg, 'x', sizeof(sv.verify_msg));
	memcpy(buf + sizeof(h), &sv, sizeof(sv));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(sv), PEER_PARENT, -1, &m, &why),
	    MSG_VIOLATION);
	assert_non_null(strstr(why, "not terminated"));

	/* Appended, so every older command keeps its number. */
	assert_int_equal(CTL_HISTORY, 11);
	assert_int_equal(CTL_VERIFY, CTL_HISTORY + 1);
	memset(&rq, 0, sizeof(rq));
	rq.cmd = CTL_VERIFY;
	msg_strlcpy(rq.vault, "work", sizeof(rq.vault));
	h = (struct vs_hdr){ MSG_CTL_REQUEST, sizeof(rq), 1, 0 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rq, sizeof(rq));
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_CTL, -1, &m, &why), MSG_OK);
	assert_int_equal(m.u.creq.cmd, CTL_VERIFY);
	assert_int_equal(msg_decode(buf, sizeof(h) + sizeof(rq), PEER_PARENT, -1, &m, &why),
	    MSG_VIOLATION);
}

static int
decode_one(uint32_t type, const void *p, size_t len, unsigned from, const char **why)
{
	unsigned char buf[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD];
	struct vs_hdr h = { type, (uint32_t)len, 1, 0 };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, len);
	return msg_decode(buf, sizeof(h) + len, from, -1, &m, why);
}

/* The uploader's configuration: from the parent only, and only what it can use. */
static void
test_uploader_config_fields(void **state)
{
	struct msg_upl_cred c;
	struct msg_upl_remote r;
	struct msg_upl_conf_end e;
	const char *why;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.source = CRED_SRC_FILE;
	msg_strlcpy(c.path, "/etc/vaultsync/s3.env", sizeof(c.path));
	assert_int_equal(decode_one(MSG_UPL_CRED, &c, sizeof(c), PEER_PARENT, &why), MSG_OK);
	assert_int_equal(decode_one(MSG_UPL_CRED, &c, sizeof(c), PEER_UPLOADER, &why),
	    MSG_VIOLATION);
	msg_strlcpy(c.path, "s3.env", sizeof(c.path));
	assert_int_equal(decode_one(MSG_UPL_CRED, &c, sizeof(c), PEER_PARENT, &why), MSG_VIOLATION);
	assert_non_null(strstr(why, "not absolute"));
	c.path[0] = '/';
	c.slot = UPL_MAX_CREDS;
	assert_int_equal(decode_one(MSG_UPL_CRED, &c, sizeof(c), PEER_PARENT, &why), MSG_VIOLATION);

	memset(&r, 0, sizeof(r));
	r.kind = UPL_REMOTE_DIR;
	r.dirfd = UPL_DIRFD_FIRST;
	msg_strlcpy(r.vault, "work", sizeof(r.vault));
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why), MSG_OK);
	r.dirfd = 3;		/* the channel: never a remote */
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);
	r.dirfd = UPL_DIRFD_LAST + 1;
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);
	r.kind = UPL_REMOTE_S3;
	msg_strlcpy(r.bucket, "b", sizeof(r.bucket));
	msg_strlcpy(r.endpoint, "http://127.0.0.1:9000", sizeof(r.endpoint));
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why), MSG_OK);
	msg_strlcpy(r.prefix, "/abs", sizeof(r.prefix));
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);
	r.prefix[0] = '\0';
	msg_strlcpy(r.endpoint, "file:///etc", sizeof(r.endpoint));
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);
	msg_strlcpy(r.endpoint, "https://s3.example", sizeof(r.endpoint));
	msg_strlcpy(r.vault, "../x", sizeof(r.vault));
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);
	msg_strlcpy(r.vault, "work", sizeof(r.vault));
	r.kind = 7;
	assert_int_equal(decode_one(MSG_UPL_REMOTE, &r, sizeof(r), PEER_PARENT, &why),
	    MSG_VIOLATION);

	memset(&e, 0, sizeof(e));
	e.multipart_threshold = (5u << 20) - 1;
	assert_int_equal(decode_one(MSG_UPL_CONF_END, &e, sizeof(e), PEER_PARENT, &why),
	    MSG_VIOLATION);
	e.multipart_threshold = 5u << 20;
	assert_int_equal(decode_one(MSG_UPL_CONF_END, &e, sizeof(e), PEER_PARENT, &why), MSG_OK);
}

/* What a decoder may say, and what it may not: the parent relies on every line of this. */
static void
test_decoder_fields(void **state)
{
	struct msg_dec_start st;
	struct msg_dec_entry e;
	struct msg_dec_end end;
	const char *why;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.max_logn = 22;
	st.passlen = 3;
	memcpy(st.pass, "abc", 3);
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why), MSG_OK);
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_DECODER, &why),
	    MSG_VIOLATION);
	st.pass[3] = 'd';	/* longer than it says */
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why),
	    MSG_VIOLATION);
	st.pass[3] = '\0';
	st.max_logn = 40;
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why),
	    MSG_VIOLATION);
	st.max_logn = 22;
	st.flags = DEC_F_SCAN;
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why), MSG_OK);
	st.flags = DEC_F_SCAN | DEC_F_IDENTITY_ONLY;	/* one or the other */
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why),
	    MSG_VIOLATION);
	st.flags = 0x4;
	assert_int_equal(decode_one(MSG_DEC_START, &st, sizeof(st), PEER_PARENT, &why),
	    MSG_VIOLATION);
	st.flags = 0;

	memset(&e, 0, sizeof(e));
	e.type = DEC_FILE;
	e.perm = 0644;
	e.size = 10;
	msg_strlcpy(e.name, "a/b", sizeof(e.name));
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why), MSG_OK);
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_UPLOADER, &why),
	    MSG_VIOLATION);
	e.perm = 04755;
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);
	e.perm = 0644;
	e.type = 4;		/* no devices, fifos or anything else */
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);
	e.type = DEC_DIR;	/* a directory has no bytes to follow */
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);
	e.size = 0;
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why), MSG_OK);
	msg_strlcpy(e.link, "x", sizeof(e.link));
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);
	e.link[0] = '\0';
	e.mtime_nsec = 1000000000;
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);
	e.mtime_nsec = 0;
	e.name[0] = '\0';
	assert_int_equal(decode_one(MSG_DEC_ENTRY, &e, sizeof(e), PEER_DECODER, &why),
	    MSG_VIOLATION);

	memset(&end, 0, sizeof(end));
	end.stage = DEC_STAGE_IDENTITY;
	assert_int_equal(decode_one(MSG_DEC_END, &end, sizeof(end), PEER_DECODER, &why), MSG_OK);
	end.stage = DEC_STAGE_SCAN;
	assert_int_equal(decode_one(MSG_DEC_END, &end, sizeof(end), PEER_DECODER, &why), MSG_OK);
	end.stage = DEC_STAGE_MAX + 1;
	assert_int_equal(decode_one(MSG_DEC_END, &end, sizeof(end), PEER_DECODER, &why),
	    MSG_VIOLATION);
	end.stage = 0;
	assert_int_equal(decode_one(MSG_DEC_END, &end, sizeof(end), PEER_DECODER, &why),
	    MSG_VIOLATION);
	end.stage = DEC_STAGE_ARCHIVE;
	memset(end.msg, 'm', sizeof(end.msg));
	assert_int_equal(decode_one(MSG_DEC_END, &end, sizeof(end), PEER_DECODER, &why),
	    MSG_VIOLATION);
}

/* The liveness check goes one way and its answer the other, and only with statusd. */
static void
test_ping_pong_directions(void **state)
{
	struct msg_ping p = { 42, 0 };
	struct msg m;
	const char *why;
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(msg_send(sp[0], PEER_STATUSD, MSG_PING, 1, &p, sizeof(p), -1), -1);
	assert_int_equal(msg_send(sp[0], PEER_PARENT, MSG_PONG, 1, &p, sizeof(p), -1), -1);
	assert_int_equal(msg_send(sp[0], PEER_WATCHER, MSG_PONG, 1, &p, sizeof(p), -1), -1);
	assert_int_equal(msg_send(sp[0], PEER_PARENT, MSG_PING, 1, &p, sizeof(p), -1), 0);
	assert_int_equal(msg_recv(sp[1], PEER_PARENT, &m, &why), MSG_OK);
	assert_int_equal(m.hdr.type, MSG_PING);
	assert_int_equal(m.u.ping.nonce, 42);
	assert_int_equal(msg_send(sp[1], PEER_STATUSD, MSG_PONG, 1, &m.u.ping, sizeof(m.u.ping),
	    -1), 0);
	assert_int_equal(msg_recv(sp[0], PEER_STATUSD, &m, &why), MSG_OK);
	assert_int_equal(m.hdr.type, MSG_PONG);
	assert_int_equal(m.u.ping.nonce, 42);
	/* A PONG from the uploader's channel is refused by the decoder. */
	assert_int_equal(msg_send(sp[1], PEER_STATUSD, MSG_PONG, 2, &p, sizeof(p), -1), 0);
	assert_int_equal(msg_recv(sp[0], PEER_UPLOADER, &m, &why), MSG_VIOLATION);
	assert_string_equal(why, "message type not permitted from this peer");
	close(sp[0]);
	close(sp[1]);
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Over a real socketpair: encoder refusals, and fds that arrive uninvited are closed. */
static void
test_socket_send_recv_and_fds(void **state)
{
	struct msg_watch_overflow o = { 0, 0 };
	struct msg_ctl_result r;
	struct msg m;
	const char *why;
	int sp[2], devnull, before;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	memset(&r, 0, sizeof(r));
	/* The encoder refuses what the table forbids. */
	assert_int_equal(msg_send(sp[0], PEER_WATCHER, MSG_CTL_RESULT, 1, &r, sizeof(r), -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(msg_send(sp[0], PEER_WATCHER, MSG_WATCH_OVERFLOW, 1, &o, sizeof(o) - 1, -1),
	    -1);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(devnull >= 0);
	assert_int_equal(msg_send(sp[0], PEER_WATCHER, MSG_WATCH_OVERFLOW, 1, &o, sizeof(o), devnull),
	    -1);
	/* A proper message arrives intact. */
	assert_int_equal(msg_send(sp[0], PEER_WATCHER, MSG_WATCH_OVERFLOW, 9, &o, sizeof(o), -1), 0);
	assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_OK);
	assert_int_equal(m.hdr.seq, 9);
	/* An fd smuggled onto a type that carries none: violation, and it is closed. */
	{
		struct vs_hdr h = { MSG_WATCH_OVERFLOW, sizeof(o), 2, 0 };
		unsigned char buf[sizeof(h) + sizeof(o)];
		union { struct cmsghdr a; char s[CMSG_SPACE(2 * sizeof(int))]; } cb;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh;
		struct cmsghdr *cm;
		int fds[2] = { devnull, devnull };

		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), &o, sizeof(o));
		memset(&mh, 0, sizeof(mh));
		memset(&cb, 0, sizeof(cb));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.s;
		mh.msg_controllen = CMSG_SPACE(sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), fds, sizeof(int));
		assert_true(sendmsg(sp[0], &mh, 0) > 0);
		before = fcntl(0, F_DUPFD, 0);	/* the next free fd number */
		close(before);
		assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_VIOLATION);
		assert_string_equal(why, "unexpected fd");
		assert_false(fd_is_open(before));	/* the received copy was closed */
		/* Two fds at once: violation, both closed. */
		mh.msg_controllen = CMSG_SPACE(2 * sizeof(int));
		cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
		assert_true(sendmsg(sp[0], &mh, 0) > 0);
		assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_VIOLATION);
		assert_false(fd_is_open(before));
		assert_false(fd_is_open(before + 1));
	}
	/* Oversized datagram. */
	{
		unsigned char big[sizeof(struct vs_hdr) + MSG_MAX_PAYLOAD + 64];

		memset(big, 0, sizeof(big));
		assert_true(send(sp[0], big, sizeof(big), 0) > 0);
		assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_VIOLATION);
		assert_string_equal(why, "oversized datagram");
	}
	/* Nothing pending: EAGAIN, not a block. */
	assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_ERR);
	assert_int_equal(errno, EAGAIN);
	close(sp[0]);
	assert_int_equal(msg_recv(sp[1], PEER_WATCHER, &m, &why), MSG_EOF);
	close(sp[1]);
	close(devnull);
}

/* Remote keys: the one rule both ends apply before a key becomes a path or an object name. */
static void
test_valid_key(void **state)
{
	static const char *const good[] = {
		"vault.tar.age", "identity.age", "history/", "history/20261201T000000Z-0123456789abcdef.tar.age",
		"conflicts/host-1_a.tar.age", "a", "a/b/c", "x..y",
	};
	static const char *const bad[] = {
		"", "/abs", "..", "../x", "a/../b", "a/./b", ".hidden", "a/.tmp", "a//b", "//",
		"a b", "a\\b", "a\nb", "caf\xc3\xa9", "a%2fb", "a:b", "~x", "*",
	};
	char longk[UPL_KEY_MAX + 8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(msg_valid_key(good[i]), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(msg_valid_key(bad[i]), -1);
	memset(longk, 'k', sizeof(longk));
	longk[UPL_KEY_MAX - 1] = '\0';
	assert_int_equal(msg_valid_key(longk), 0);
	memset(longk, 'k', sizeof(longk));
	longk[UPL_KEY_MAX] = '\0';
	assert_int_equal(msg_valid_key(longk), -1);	/* no room for the terminator on the wire */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_round_trips),
		cmocka_unit_test(test_length_must_be_exact),
		cmocka_unit_test(test_every_truncation_is_rejected),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_strings_must_be_terminated),
		cmocka_unit_test(test_enums_and_senders),
		cmocka_unit_test(test_verify_fields),
		cmocka_unit_test(test_uploader_config_fields),
		cmocka_unit_test(test_decoder_fields),
		cmocka_unit_test(test_ping_pong_directions),
		cmocka_unit_test(test_socket_send_recv_and_fds),
		cmocka_unit_test(test_valid_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
