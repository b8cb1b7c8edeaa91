/* Compiled separately so that the install, build-tree and test variants differ only here. */
#include "vaultsyncd.h"

#ifndef LIBEXECDIR
#error LIBEXECDIR must be defined
#endif

const char *const libexec_dir = LIBEXECDIR;
