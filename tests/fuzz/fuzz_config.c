/*
 * libFuzzer harness for the config parser.  Any input must either fail
 * cleanly or load; a config that loads must dump to text that loads again
 * and dumps to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Relative Include patterns resolve under a directory that never exists. */
static const char fuzz_name[] = "/nonexistent/fuzz.conf";

static struct cfg_env
fuzz_env(size_t size)
{
	struct cfg_env e;

	memset(&e, 0, sizeof(e));
	/* Both modes, chosen by the input, so user-mode defaults run too. */
	e.mode = (size & 1) ? CFG_USER : CFG_SYSTEM;
	strcpy(e.home, "/home/fuzz");
	strcpy(e.xdg_runtime_dir, (size & 2) ? "/run/user/1000" : "");
	strcpy(e.credentials_directory, (size & 4) ? "/run/credentials/x" : "");
	strcpy(e.hostname, "fuzzhost");
	e.uid = 1000;
	return e;
}

/*
 * An absolute Include would read the fuzzing host's own files (and a glob
 * such as /x/x/x/x walks the whole tree), so such inputs are skipped.
 */
static int
names_absolute_include(const uint8_t *data, size_t size)
{
	size_t i = 0, j;

	while (i < size) {
		while (i < size && (data[i] == ' ' || data[i] == '\t'))
			i++;
		if (size - i >= 7 &&
		    strncasecmp((const char *)data + i, "include", 7) == 0) {
			j = i + 7;
			while (j < size && (data[j] == ' ' || data[j] == '\t' ||
			    data[j] == '=' || data[j] == '"'))
				j++;
			if (j < size && data[j] == '/')
				return 1;
		}
		while (i < size && data[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

static char *
dump(const struct cfg *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		abort();
	if (cfg_dump(c, f) != 0)
		abort();
	if (fclose(f) != 0)
		abort();
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_env e = fuzz_env(size);
	struct cfg c, c2;
	struct cfg_err err;
	char *d1, *d2;
	size_t l1, l2;

	if (names_absolute_include(data, size))
		return 0;
	memset(&err, 0x55, sizeof(err));
	if (cfg_load_buffer(&c, fuzz_name, (const char *)data, size, &e,
	    &err) != 0) {
		if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL ||
		    memchr(err.file, '\0', sizeof(err.file)) == NULL ||
		    err.msg[0] == '\0' || err.line < 0 || c.vaults != NULL)
			abort();
		return 0;
	}
	if (c.nvaults == 0 || c.nvaults > CFG_MAX_VAULTS)
		abort();

	d1 = dump(&c, &l1);
	if (cfg_load_buffer(&c2, fuzz_name, d1, l1, &e, &err) != 0) {
		fprintf(stderr, "dump does not reparse: %s:%d: %s\n%s\n",
		    err.file, err.line, err.msg, d1);
		abort();
	}
	d2 = dump(&c2, &l2);
	if (l1 != l2 || memcmp(d1, d2, l1) != 0) {
		fprintf(stderr, "dump is not stable:\n%s\n---\n%s\n", d1, d2);
		abort();
	}
	free(d1);
	free(d2);
	cfg_free(&c);
	cfg_free(&c2);
	return 0;
}
