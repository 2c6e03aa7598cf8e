# swafs: one Makefile for the daemon, the CLI, the tests and the benchmark.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-unused-parameter
PKGS    := fuse3 libxxhash liblz4 libsystemd
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu17 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread -I.
LDLIBS  += -pthread

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# swactl alone writes and reads archives (save, verify, restore)
TOOL_PKGS  := libarchive libxxhash
TOOL_LIBS   = $(shell pkg-config --libs $(TOOL_PKGS) 2>/dev/null)

SNAP_SRCS := $(wildcard snapshot/*.c)
FS_SRCS   := $(wildcard fs/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(TOOL_SRCS:.c=.o)
SNAP_OBJS := $(SNAP_SRCS:.c=.o)
FS_OBJS   := $(FS_SRCS:.c=.o)
# fs/ modules that need no FUSE headers, so unit tests can link them alone
FS_CORE   := fs/inode.o fs/fdcap.o fs/vmount.o

HDRS      := $(wildcard snapshot/*.h fs/*.h)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/unit/%)
SAN_BINS  := $(UNIT_SRCS:tests/unit/%.c=build/unit-san/%)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# libFuzzer harnesses (tests/fuzz/); each links the modules it reaches
FUZZ_CC    ?= clang-14
FUZZ_SECS  ?= 120
FUZZ_SMOKE ?= 15
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)

BINS := bin/swafs bin/swactl

.PHONY: all deps test check unit unit-san fuzz fuzz-build fuzz-smoke integration \
	demo bench install clean
all: $(BINS)

deps:
	@bash scripts/install-deps.sh

bin/swafs: $(FS_OBJS) $(SNAP_OBJS)
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

bin/swactl: $(TOOL_OBJS) snapshot/ctlmsg.o snapshot/parse.o
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(TOOL_LIBS) $(LDLIBS)

$(TOOL_OBJS): PKG_CFLAGS += $(shell pkg-config --cflags $(TOOL_PKGS) 2>/dev/null)

%.o: %.c
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

build/unit/%: tests/unit/%.c $(SNAP_SRCS) $(FS_CORE:.o=.c) $(HDRS)
	@mkdir -p $(@D)
	@echo "  CCLD    $@"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(filter %.c,$^) -lcriterion $(PKG_LIBS) $(LDLIBS)

build/unit-san/%: tests/unit/%.c $(SNAP_SRCS) $(FS_CORE:.o=.c) $(HDRS)
	@mkdir -p $(@D)
	@echo "  CCLD    $@"
	@$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) $(PKG_CFLAGS) -o $@ $(filter %.c,$^) -lcriterion $(PKG_LIBS) $(LDLIBS)

# unit tests of swactl modules link those modules too
build/unit/test_savemf build/unit-san/test_savemf: tools/manifest.c tools/balance.c

unit: $(UNIT_BINS)
	@fail=0; for t in $^; do echo "== $$t"; $$t --jobs 2 || fail=1; done; exit $$fail

unit-san: $(SAN_BINS)
	@fail=0; for t in $^; do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$$t --jobs 2 || fail=1; done; exit $$fail

check: unit unit-san

build/fuzz/fuzz_ctlmsg: snapshot/ctlmsg.c snapshot/parse.c
build/fuzz/fuzz_ctlconn: snapshot/ctlconn.c snapshot/ctlmsg.c
build/fuzz/fuzz_pstore: snapshot/pstore.c
build/fuzz/%: tests/fuzz/%.c $(HDRS)
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	@$(FUZZ_CC) -std=gnu17 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
		-pthread -I. $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $(filter %.c,$^) \
		$(PKG_LIBS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# FUZZ_SECS seconds per harness, from an empty corpus; nonzero on a crash
fuzz: $(FUZZ_BINS)
	@bash scripts/fuzz.sh $(FUZZ_SECS) $^

# a short run that keeps the harnesses building and working (make test)
fuzz-smoke: $(FUZZ_BINS)
	@bash scripts/fuzz.sh $(FUZZ_SMOKE) $^

integration: $(BINS)
	bash tests/integration/run.sh

test: deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) fuzz-smoke
	$(MAKE) integration

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: deps
	$(MAKE) all
	bash scripts/bench.sh

MANS    := fs/swafs.8 tools/swactl.8
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MANS) $(DESTDIR)$(PREFIX)/share/man/man8/
	for u in swafs@.service swafs-save@.service; do \
		sed 's|@BINDIR@|$(PREFIX)/bin|g' contrib/$$u.in \
			>$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 644 contrib/swafs-save@.timer $(DESTDIR)$(UNITDIR)/
	install -m 644 contrib/swactl.bash $(DESTDIR)$(BASHCOMPDIR)/swactl

clean:
	rm -rf bin build fs/*.o fs/*.d snapshot/*.o snapshot/*.d tools/*.o tools/*.d

-include $(FS_OBJS:.o=.d) $(SNAP_OBJS:.o=.d) $(TOOL_OBJS:.o=.d)
