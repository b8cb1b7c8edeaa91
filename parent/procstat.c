/*
 * CPU time, resident memory and open descriptors of a process, read from
 * /proc/PID/stat and /proc/PID/fd.  The parent reads its children's (as
 * root, or as their owner in user mode); a figure it cannot read is 0.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

void
procstat_read(pid_t pid, struct msg_proc_stat *p)
{
	char path[64], buf[1024], *s;
	unsigned long long utime, stime, rss;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int fd;

	memset(p, 0, sizeof(*p));
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		/* After the command's closing parenthesis (it may hold spaces and parentheses). */
		if (n > 0 && (buf[n] = '\0', s = strrchr(buf, ')')) != NULL &&
		    sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
		    "%*d %*d %*d %*d %*u %*u %llu", &utime, &stime, &rss) == 3 && tick > 0) {
			p->cpu_ms = (utime + stime) * 1000 / (unsigned long long)tick;
			p->rss_bytes = rss * (unsigned long long)page;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				p->open_fds++;
		if (pid == getpid() && p->open_fds > 0)
			p->open_fds--;	/* the one reading the directory */
		closedir(d);
	}
}
