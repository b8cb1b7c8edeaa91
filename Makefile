# vaultsync — see README.md.  `make run` and `make check` are the two entry points.
#
# Out-of-tree builds: B=build (default), B=build-asan (SAN=1, clang ASan+UBSan).

VERSION		:= 0.1.0
PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
LIBEXECDIR	?= $(PREFIX)/libexec/vaultsync
SYSCONFDIR	?= /etc
DATADIR		?= $(PREFIX)/share
MANDIR		?= $(DATADIR)/man
BASHCOMPDIR	?= $(DATADIR)/bash-completion/completions
# systemd reads units, sysusers.d and tmpfiles.d below /usr/local/lib as well as /usr/lib.
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
SYSTEMDGENERATORDIR ?= $(PREFIX)/lib/systemd/system-generators
USERUNITDIR	?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR	?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR	?= $(PREFIX)/lib/tmpfiles.d
DESTDIR		?=

SAN		?=
ifeq ($(SAN),1)
B		?= build-asan
CC		:= clang
SANFLAGS	:= -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
B		?= build
SANFLAGS	:=
endif

PKGS		:= libcurl libcrypto libseccomp libcap libarchive jansson libmicrohttpd
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Compiler lines are shown with V=1; errors and warnings show either way.
V		?=
Q		:= $(if $(filter 1,$(V)),,@)

CFLAGS		?= -O2 -g
WARN		:= -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
		   -Wmissing-prototypes -Wno-unused-parameter -Werror=implicit-function-declaration
HARDEN		:= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
ALL_CFLAGS	:= -std=gnu11 $(CFLAGS) $(WARN) $(HARDEN) $(SANFLAGS) -D_GNU_SOURCE \
		   -DVS_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' \
		   -DDATADIR='"$(DATADIR)"' -Icommon $(PKG_CFLAGS)
LDFLAGS		?=
ALL_LDFLAGS	:= $(LDFLAGS) $(SANFLAGS) -pie -Wl,-z,relro,-z,now -Wl,--as-needed
LIBS		:= $(PKG_LIBS)

COMMON_SRC	:= $(sort $(wildcard common/*.c))
PARENT_SRC	:= $(filter-out parent/paths.c,$(sort $(wildcard parent/*.c)))
WATCHER_SRC	:= $(sort $(wildcard watcher/*.c))
UPLOADER_SRC	:= $(sort $(wildcard uploader/*.c))
STATUSD_SRC	:= $(sort $(wildcard statusd/*.c))
DECODER_SRC	:= $(sort $(wildcard decoder/*.c))
GENERATOR_SRC	:= $(sort $(wildcard generator/*.c))
CTL_SRC		:= $(sort $(wildcard ctl/*.c))
UNIT_SRC	:= $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC	:= $(sort $(wildcard tests/tools/*.c))
FUZZ_SRC	:= $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj		= $(patsubst %.c,$(B)/obj/%.o,$(1))
LIBVS		:= $(B)/libvs.a

PROGS		:= $(B)/vaultsyncd $(B)/vaultsyncctl $(B)/vaultsync-watcher \
		   $(B)/vaultsync-uploader $(B)/vaultsync-statusd $(B)/vaultsync-decoder \
		   $(B)/vaultsync-generator
# vaultsyncd-dev runs the children from the build tree, for make run and the tests.
DEVPROGS	:= $(B)/vaultsyncd-dev $(B)/vaultsyncd-evil
UNITS		:= $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TOOLS		:= $(patsubst tests/tools/%.c,$(B)/%,$(TOOL_SRC))

# Objects of the unit tests and tools are kept: make would otherwise delete
# them as intermediates, and say so, after every build.
.SECONDARY:

.PHONY: FORCE all progs install uninstall deb deps deps-test run check check-unit check-integration \
	check-fuzz asan fuzz clean bench torture
.DEFAULT_GOAL := all

all: $(PROGS) $(DEVPROGS) $(UNITS) $(TOOLS)
progs: $(PROGS)

$(B)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -I$(dir $<) -c -o $@ $<

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(LIBVS): $(call obj,$(COMMON_SRC))
	@rm -f $@
	$(Q)ar rcs $@ $^

# The one place the compile-time libexec path enters the parent.
$(B)/obj/parent/paths-%.o: parent/paths.c Makefile
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -DLIBEXECDIR='"$(LIBEXECDIR_$*)"' -c -o $@ $<
LIBEXECDIR_inst	= $(LIBEXECDIR)
# Rebuild the installed parent when LIBEXECDIR changes between invocations.
$(B)/obj/parent/paths-inst.o: $(B)/libexecdir.stamp
$(B)/libexecdir.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(LIBEXECDIR)' | cmp -s - $@ || echo '$(LIBEXECDIR)' > $@
FORCE:
LIBEXECDIR_dev	= $(abspath $(B))
LIBEXECDIR_evil	= $(abspath $(B))/evil

$(B)/vaultsyncd: $(call obj,$(PARENT_SRC)) $(B)/obj/parent/paths-inst.o $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsyncd-dev: $(call obj,$(PARENT_SRC)) $(B)/obj/parent/paths-dev.o $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsyncd-evil: $(call obj,$(PARENT_SRC)) $(B)/obj/parent/paths-evil.o $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsync-watcher: $(call obj,$(WATCHER_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsync-uploader: $(call obj,$(UPLOADER_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsync-statusd: $(call obj,$(STATUSD_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
# The page's files are assembled into ui.o (.incbin): it depends on them.
$(B)/obj/statusd/ui.o: $(wildcard statusd/ui/*)
$(B)/vaultsync-decoder: $(call obj,$(DECODER_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsync-generator: $(call obj,$(GENERATOR_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vaultsyncctl: $(call obj,$(CTL_SRC)) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link the production objects (libvs.a), never copies of them.
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBVS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka
# The stat scan of the change check is the parent's own (pure) object.
$(B)/obj/tests/unit/test_treescan.o: ALL_CFLAGS += -Iparent
$(B)/tests/test_treescan: $(B)/obj/tests/unit/test_treescan.o $(call obj,parent/treedigest.c) \
		$(LIBVS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka
# Test tools (vs-age, the substitute child, ...): built, never installed.
$(B)/%: $(B)/obj/tests/tools/%.o $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
# The policy test and the substitute child apply the children's own seccomp tables.
POLICY_OBJS	:= $(call obj,watcher/sandbox.c uploader/sandbox.c statusd/sandbox.c \
		   decoder/sandbox.c)
$(B)/vs-policytest: $(B)/obj/tests/tools/vs-policytest.o $(POLICY_OBJS) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/vs-evil: $(B)/obj/tests/tools/vs-evil.o $(POLICY_OBJS) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# ---- fuzzing (clang libFuzzer) ------------------------------------------------
FB		:= build-fuzz
FUZZ_CFLAGS	:= -std=gnu11 -O1 -g -D_GNU_SOURCE -DVS_VERSION='"$(VERSION)"' \
		   -DSYSCONFDIR='"$(SYSCONFDIR)"' -DDATADIR='"$(DATADIR)"' -Icommon $(PKG_CFLAGS) \
		   -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS		:= $(patsubst tests/fuzz/%.c,$(FB)/%,$(FUZZ_SRC))
fuzz: $(FUZZERS)
$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(COMMON_SRC) $(wildcard common/*.h)
	@mkdir -p $(FB)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(COMMON_SRC) $(PKG_LIBS)

# ---- S3 client: tests and tools ----
# vs-s3 links the uploader's S3 objects (and its seccomp table, for -Z); the
# unit test and the fuzzer link only the pure ones (no network, no libcurl calls).
S3_PURE_SRC	:= uploader/s3xml.c uploader/s3util.c
S3_OBJS		:= $(call obj,uploader/s3.c uploader/progress.c $(S3_PURE_SRC))
$(B)/obj/tests/tools/vs-s3.o $(B)/obj/tests/unit/test_s3xml.o: ALL_CFLAGS += -Iuploader
$(B)/vs-s3: $(B)/obj/tests/tools/vs-s3.o $(S3_OBJS) $(call obj,uploader/sandbox.c) $(LIBVS)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/tests/test_s3xml: $(B)/obj/tests/unit/test_s3xml.o $(call obj,$(S3_PURE_SRC)) $(LIBVS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka
$(FB)/fuzz_s3xml: tests/fuzz/fuzz_s3xml.c $(S3_PURE_SRC) $(wildcard uploader/s3*.h) \
		$(COMMON_SRC) $(wildcard common/*.h)
	@mkdir -p $(FB)
	$(Q)clang $(FUZZ_CFLAGS) -Iuploader -o $@ $< $(S3_PURE_SRC) $(COMMON_SRC) $(PKG_LIBS)
# ---- end of S3 client block ----

# ---- install ------------------------------------------------------------------
install: $(PROGS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(DATADIR)/vaultsync/empty
	install -m 0755 $(B)/vaultsyncd $(DESTDIR)$(SBINDIR)/vaultsyncd
	install -m 0755 $(B)/vaultsyncctl $(DESTDIR)$(BINDIR)/vaultsyncctl
	install -m 0755 $(B)/vaultsync-watcher $(B)/vaultsync-uploader $(B)/vaultsync-statusd \
		$(B)/vaultsync-decoder $(DESTDIR)$(LIBEXECDIR)/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 0644 packaging/man/vaultsyncctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 packaging/man/vaultsyncd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 packaging/man/vaultsyncd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 packaging/completion/vaultsyncctl $(DESTDIR)$(BASHCOMPDIR)/vaultsyncctl
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/vaultsync/vaultsyncd.conf.d \
		$(DESTDIR)$(SYSTEMDGENERATORDIR)
	install -m 0755 $(B)/vaultsync-generator $(DESTDIR)$(SYSTEMDGENERATORDIR)/vaultsync-generator
	$(SUBST) packaging/systemd/vaultsyncd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/vaultsyncd.service
	$(SUBST) packaging/systemd/vaultsyncd.user.service.in >$(DESTDIR)$(USERUNITDIR)/vaultsyncd.service
	install -m 0644 packaging/sysusers.d/vaultsync.conf $(DESTDIR)$(SYSUSERSDIR)/vaultsync.conf
	install -m 0644 packaging/tmpfiles.d/vaultsync.conf $(DESTDIR)$(TMPFILESDIR)/vaultsync.conf
	@# An existing configuration is the administrator's: never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/vaultsync/vaultsyncd.conf || { $(SUBST) \
		packaging/vaultsyncd.conf.in >$(DESTDIR)$(SYSCONFDIR)/vaultsync/vaultsyncd.conf; }

# The installed paths, into the units and the configuration (mode 0644: umask-proof).
SUBST		= umask 022 && sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		   -e 's|@DATADIR@|$(DATADIR)|g'

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/vaultsyncd $(DESTDIR)$(BINDIR)/vaultsyncctl \
		$(DESTDIR)$(LIBEXECDIR)/vaultsync-watcher $(DESTDIR)$(LIBEXECDIR)/vaultsync-uploader \
		$(DESTDIR)$(LIBEXECDIR)/vaultsync-statusd $(DESTDIR)$(LIBEXECDIR)/vaultsync-decoder \
		$(DESTDIR)$(MANDIR)/man1/vaultsyncctl.1 $(DESTDIR)$(MANDIR)/man5/vaultsyncd.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/vaultsyncd.8 $(DESTDIR)$(BASHCOMPDIR)/vaultsyncctl \
		$(DESTDIR)$(SYSTEMDUNITDIR)/vaultsyncd.service $(DESTDIR)$(USERUNITDIR)/vaultsyncd.service \
		$(DESTDIR)$(SYSTEMDGENERATORDIR)/vaultsync-generator \
		$(DESTDIR)$(SYSUSERSDIR)/vaultsync.conf $(DESTDIR)$(TMPFILESDIR)/vaultsync.conf
	-rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DATADIR)/vaultsync/empty \
		$(DESTDIR)$(DATADIR)/vaultsync

# ---- Debian package -------------------------------------------------------------
# The tree as it stands (committed or not) is copied to $(B)/deb with
# packaging/debian as its debian/, and built there; the .deb lands in $(B)/deb.
DEBSRC		:= $(B)/deb/vaultsync-$(VERSION)
deb:
	@sh tests/deps.sh deb
	@v=$$(dpkg-parsechangelog -l packaging/debian/changelog -S Version) && \
		test "$$v" = "$(VERSION)" || \
		{ echo "packaging/debian/changelog is at $$v, the Makefile at $(VERSION)" >&2; exit 1; }
	rm -rf $(B)/deb
	mkdir -p $(DEBSRC)
	tar -cf - --exclude-vcs --exclude='./build*' --exclude=./tests/artifacts . | \
		tar -xf - -C $(DEBSRC)
	cp -R packaging/debian $(DEBSRC)/debian
	cd $(DEBSRC) && dpkg-buildpackage -b -us -uc
	@ls $(B)/deb/*.deb

# ---- dependencies: the project installs what it needs ---------------------------
deps:
	@sh tests/deps.sh build
deps-test:
	@sh tests/deps.sh test

# ---- the two README commands --------------------------------------------------
run: deps
	@echo "make run: building in $(B)/ (V=1 shows the compiler lines)"
	@$(MAKE) --no-print-directory all
	@sh tests/run-demo.sh $(abspath $(B))

check: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory fuzz
	@bash tests/check.sh

# The long form of tests/torture (about 30 minutes), normal build, its own RGW.
torture: deps-test
	@$(MAKE) --no-print-directory all
	@sh tests/users.sh
	@bash tests/torture/run-long.sh $(abspath $(B))

bench: all
	@/usr/bin/python3 tests/bench/status_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/save_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/unlock_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/push_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/loop_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/tick_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/scale_bench.py $(abspath $(B))
	@/usr/bin/python3 tests/bench/idle_bench.py $(abspath $(B))

asan:
	@$(MAKE) --no-print-directory SAN=1 all

clean:
	rm -rf build build-asan build-fuzz
