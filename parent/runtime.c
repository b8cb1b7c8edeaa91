/*
 * Runtime state on disk: RuntimeDir (lock, control socket, daemon.json),
 * StateDir, the empty chroot, and the status listener.  Every directory we
 * trust is checked for owner and mode before use.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "log.h"
#include "vault_ops.h"
#include "vaultsyncd.h"

static char lock_path[CFG_PATH_MAX + 32];
static char json_path[CFG_PATH_MAX + 32];

/*
 * mkdir -p, the last component with 'mode'; then insist on owner and mode.
 * The daemon's umask (077) would take the group's search bit from every
 * mode asked for here: it is lifted for the mkdirs.  1 if the last
 * component was made now, 0 if it was there, -1 with err.
 */
static int
ensure_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
	char tmp[CFG_PATH_MAX];
	struct stat st;
	mode_t old = umask(022);
	int made = 1;
	char *p;

	msg_strlcpy(tmp, path, sizeof(tmp));
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", tmp, strerror(errno));
			umask(old);
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, mode) == -1) {
		made = 0;
		if (errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
			umask(old);
			return -1;
		}
	}
	umask(old);
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is owned by uid %u, not by us (uid %u)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 022) {
		snprintf(err, errlen, "%s is writable by group or others (mode %04o)", path,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return made;
}

static int
dir_is_empty(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), empty;

	if (fd == -1)
		return 0;
	empty = vault_dir_empty(fd);
	close(fd);
	return empty;
}

/* The chroot must be root-owned, not writable by anyone else, and empty. */
static int
prepare_chroot(char *err, size_t errlen)
{
	struct stat st;

	if (stat(D.cfg.privsep_chroot, &st) == 0)
		msg_strlcpy(D.chroot_dir, D.cfg.privsep_chroot, sizeof(D.chroot_dir));
	else {
		snprintf(D.chroot_dir, sizeof(D.chroot_dir), "%s/empty", D.cfg.runtime_dir);
		if (ensure_dir(D.chroot_dir, 0755, err, errlen) < 0)
			return -1;
		log_debug("PrivsepChroot %s does not exist; using %s", D.cfg.privsep_chroot,
		    D.chroot_dir);
	}
	if (stat(D.chroot_dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0) {
		snprintf(err, errlen, "PrivsepChroot %s must be a directory owned by root and "
		    "not writable by group or others", D.chroot_dir);
		return -1;
	}
	if (!dir_is_empty(D.chroot_dir)) {
		snprintf(err, errlen, "PrivsepChroot %s is not empty", D.chroot_dir);
		return -1;
	}
	return 0;
}

static int
take_lock(char *err, size_t errlen)
{
	char buf[32];
	ssize_t n;
	int fd;

	snprintf(lock_path, sizeof(lock_path), "%s/vaultsyncd.lock", D.cfg.runtime_dir);
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		snprintf(err, errlen, "open %s: %s", lock_path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errlen, "another vaultsyncd is running (pid %s, lock %s)",
		    buf[0] ? buf : "unknown", lock_path);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "write %s: %s", lock_path, strerror(errno));
		close(fd);
		return -1;
	}
	D.lock_fd = fd;
	return 0;
}

/*
 * RuntimeDir: 0750 root:ControlGroup in system mode, so that the group's
 * members reach the control socket (0660 root:ControlGroup) and nobody
 * else sees in; daemon.json (the status token) stays 0600 in it.  A
 * directory that was there already is left as it is (RuntimeDir might name
 * one that is not only ours), but said so when it keeps the group out.
 */
static int
runtime_dir(char *err, size_t errlen)
{
	const char *dir = D.cfg.runtime_dir;
	size_t n = strlen(dir);
	int group = D.cfg.mode == CFG_SYSTEM && D.have_control_gid &&
	    strncmp(D.cfg.control_socket, dir, n) == 0 && D.cfg.control_socket[n] == '/';
	int made, fd;
	struct stat st;

	if ((made = ensure_dir(dir, group ? 0750 : 0700, err, errlen)) < 0 || !group)
		return made < 0 ? -1 : 0;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || (made && fchown(fd, (uid_t)-1, D.control_gid) == -1)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	if (!made && !(st.st_mode & S_IXOTH) &&
	    !(st.st_gid == D.control_gid && (st.st_mode & S_IXGRP)))
		log_warn("RuntimeDir %s (mode %04o, gid %u) keeps ControlGroup %s from the "
		    "control socket: chgrp %s and chmod 0750 it, or remove it to have it made",
		    dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid,
		    D.cfg.control_group, D.cfg.control_group);
	return 0;
}

int
runtime_prepare(char *err, size_t errlen)
{
	int sys = D.cfg.mode == CFG_SYSTEM;

	if (runtime_dir(err, errlen) != 0)
		return -1;
	if (take_lock(err, errlen) != 0)
		return -2;
	if (ensure_dir(D.cfg.state_dir, 0700, err, errlen) < 0)
		return -1;
	if (sys && strcmp(D.cfg.privsep_chroot, "none") == 0)
		msg_strlcpy(D.chroot_dir, "-", sizeof(D.chroot_dir));
	else if (sys && prepare_chroot(err, errlen) != 0)
		return -1;
	return 0;
}

int
runtime_status_listen(char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[INET6_ADDRSTRLEN];
	unsigned char rnd[32];
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (D.cfg.status_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, D.cfg.status_addr, 16);
		s6->sin6_port = htons(D.cfg.status_port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, D.cfg.status_addr, 4);
		s4->sin_port = htons(D.cfg.status_port);
		sl = sizeof(*s4);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(err, errlen, "StatusListen %s: %s", D.cfg.status_listen, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(D.status_url, sizeof(D.status_url), "http://[%s]:%u/", host,
		    ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(D.status_url, sizeof(D.status_url), "http://%s:%u/", host,
		    ntohs(s4->sin_port));
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		close(fd);
		return -1;
	}
	hex_encode(rnd, sizeof(rnd), D.token);
	explicit_bzero(rnd, sizeof(rnd));
	D.status_fd = fd;
	return 0;
}

/* RuntimeDir/daemon.json, 0600, written whole or not at all. */
int
runtime_write_daemon_json(void)
{
	char tmp[CFG_PATH_MAX + 48], started[40];
	struct tm tm;
	time_t t = (time_t)D.started_at;
	FILE *f;
	int fd;

	snprintf(json_path, sizeof(json_path), "%s/daemon.json", D.cfg.runtime_dir);
	snprintf(tmp, sizeof(tmp), "%s/.daemon.json.%d", D.cfg.runtime_dir, (int)getpid());
	gmtime_r(&t, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	fprintf(f, "{\"schema_version\":1,\"pid\":%d,\"url\":\"%s\",\"token\":\"%s\","
	    "\"started_at\":\"%s\"}\n", (int)getpid(), D.status_url, D.token, started);
	if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0 || rename(tmp, json_path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

void
runtime_cleanup(void)
{
	if (json_path[0] != '\0')
		unlink(json_path);
	if (D.lock_fd >= 0) {
		/* Keep the file (unlinking a lock file races a new instance); drop the pid. */
		if (ftruncate(D.lock_fd, 0) == -1)
			log_debug("truncate lock file: %s", strerror(errno));
		close(D.lock_fd);
		D.lock_fd = -1;
	}
}
