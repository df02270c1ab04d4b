# Trove - build, test and install.
#
#   make            build the library, tools and tests (build/)
#   make test       build and run every test
#   make asan       build with ASan + UBSan (build-asan/) and run the unit tests
#   make run        build and start troved (the server) on ./data, port 6379
#   make shell      build and start the trove shell on ./data
#   make install    install library, headers and pkg-config file
#                   (PREFIX=/usr/local, DESTDIR= honoured)
#   make CC=clang   any of the above with clang

CC      ?= cc
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
BUILD   ?= build

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -pthread -Iinclude -Isrc
LDLIBS  := -llz4 -lzstd -lxxhash -lpthread -lm

LIB_SRCS  := $(wildcard src/util/*.c src/engine/*.c src/compat/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
CRASH_SRCS := $(wildcard tests/crash/*.c)
CRASH_BINS := $(CRASH_SRCS:tests/crash/%.c=$(BUILD)/tests/%)
CLI_SRCS  := $(wildcard src/cli/*.c)
# trove import/export helpers, one per peer library (see src/cli/peers.c).
PEERS     := gdbm ndbm bdb lmdb
PEER_BINS := $(PEERS:%=$(BUILD)/trove-peer-%)
PEER_OBJS := $(PEERS:%=$(BUILD)/src/cli/peers/%.o) $(BUILD)/src/cli/peers/main.o
SERVER_SRCS := $(wildcard src/server/*.c src/server/*/*.c)
SERVER_LIBS := -luv -lcrypto
TROVED    := $(if $(SERVER_SRCS),$(BUILD)/troved)
INTEG_TESTS := $(wildcard tests/integration/test_*.py)
MAN_PAGE  := $(if $(shell command -v scdoc 2>/dev/null),$(BUILD)/trove.1)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20

DEPS_STAMP := $(BUILD)/.deps-ok

# Keep the objects of test binaries (make would delete them as intermediate).
.SECONDARY:

.PHONY: all lib test unit crash asan run shell install uninstall clean format install-check \
        fuzz fuzzers fuzz-smoke
all: lib $(BUILD)/trove $(TROVED) $(UNIT_BINS) $(CRASH_BINS) $(MAN_PAGE)

lib: $(BUILD)/libtrove.a $(BUILD)/libtrove.so $(BUILD)/libtrove-int.a

# Installs the Debian packages once if any header we need is missing.
$(DEPS_STAMP):
	@for h in lz4.h zstd.h xxhash.h cmocka.h histedit.h ndbm.h db.h gdbm.h lmdb.h uv.h openssl/evp.h; do \
	  if ! echo "#include <stddef.h>\n#include <stdarg.h>\n#include <setjmp.h>\n#include <stdint.h>\n#include <$$h>" | \
	      $(CC) -E -x c - >/dev/null 2>&1; then \
	    echo "missing $$h: running scripts/install-deps.sh"; \
	    sh scripts/install-deps.sh || exit 1; break; \
	  fi; \
	done
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The engine's internal names stay inside the library: its objects are
# built with hidden visibility (trove.h marks the API), the shared library
# exports only the API, and the static library is one relocatable object
# whose hidden symbols are made local.  Tests, which call internals, link
# the plain archive libtrove-int.a instead.
$(BUILD)/src/engine/%.o $(BUILD)/src/util/%.o $(BUILD)/src/compat/%.o: CFLAGS += -fvisibility=hidden

$(BUILD)/libtrove-int.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libtrove.o: $(LIB_OBJS)
	$(LD) -r -o $@ $^
	objcopy --localize-hidden $@

$(BUILD)/libtrove.a: $(BUILD)/libtrove.o
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libtrove.so: $(LIB_OBJS)
	$(CC) $(CFLAGS) -shared -Wl,-soname,libtrove.so.0 -o $@ $^ $(LDLIBS)

$(BUILD)/trove: $(CLI_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libtrove.a | $(PEER_BINS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -ledit

# The helpers link their peer's library and never libtrove.
PEER_LIBS_gdbm := -lgdbm
PEER_LIBS_ndbm := -lgdbm_compat -lgdbm
PEER_LIBS_bdb  := -ldb-5.3
PEER_LIBS_lmdb := -llmdb
$(BUILD)/trove-peer-%: $(BUILD)/src/cli/peers/%.o $(BUILD)/src/cli/peers/main.o \
                       $(BUILD)/src/cli/dumpfmt.o
	$(CC) $(CFLAGS) -o $@ $^ $(PEER_LIBS_$*)

# The man page, when scdoc is installed.
$(BUILD)/trove.1: docs/trove.1.scd
	@mkdir -p $(@D)
	scdoc <$< >$@

$(BUILD)/troved: $(SERVER_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libtrove.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/testutil.o $(BUILD)/libtrove-int.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# The compat tests compare Trove's ndbm and Berkeley DB faces with the real
# libraries, linked into the same binary: tests/unit/peers/*.c include the
# peers' headers and export wrappers; Trove's compat headers rename their
# functions (dbm_open is trove_dbm_open), so the symbols do not clash.
$(BUILD)/tests/test_ndbm: $(BUILD)/tests/unit/peers/ndbm_gdbm.o
$(BUILD)/tests/test_ndbm: LDLIBS += -lgdbm_compat -lgdbm
$(BUILD)/tests/test_bdb: $(BUILD)/tests/unit/peers/bdb_libdb.o
$(BUILD)/tests/test_bdb: LDLIBS += -ldb

# The two suites that drive the trove binary share its child-process runner.
$(BUILD)/tests/test_cli: $(BUILD)/tests/unit/cliproc.o

# test_cli_io writes and reads peer files with the peers' own libraries and
# drives the trove binary; it needs nothing of libtrove, so it links none.
$(BUILD)/tests/test_cli_io: $(BUILD)/tests/unit/test_cli_io.o $(BUILD)/tests/unit/testutil.o \
                            $(BUILD)/tests/unit/cliproc.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka -lgdbm_compat -lgdbm -ldb-5.3 -llmdb

$(BUILD)/tests/crash_%: $(BUILD)/tests/crash/crash_%.o $(BUILD)/tests/unit/testutil.o $(BUILD)/libtrove-int.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

test: all install-check
	@PATH="/usr/bin:$$PATH" sh scripts/run-tests.sh $(BUILD) $(UNIT_BINS) $(CRASH_BINS) \
	    $(if $(INTEG_TESTS),pytest:tests/integration)

# Installs into a staging directory and builds examples/hello.c the way a
# user would, through pkg-config, then runs it.
install-check: lib $(BUILD)/trove
	@rm -rf $(BUILD)/stage
	@$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(BUILD)/stage PREFIX=/usr >/dev/null
	PKG_CONFIG_SYSROOT_DIR=$(CURDIR)/$(BUILD)/stage \
	PKG_CONFIG_LIBDIR=$(CURDIR)/$(BUILD)/stage/usr/lib/pkgconfig \
	  sh -c '$(CC) examples/hello.c $$(pkg-config --cflags --libs trove) -o $(BUILD)/hello'
	@rm -rf $(BUILD)/hello-data && LD_LIBRARY_PATH=$(CURDIR)/$(BUILD)/stage/usr/lib $(BUILD)/hello $(BUILD)/hello-data >/dev/null && rm -rf $(BUILD)/hello-data
	@echo "install-check: examples/hello.c built with pkg-config and ran"

unit: all
	@sh scripts/run-tests.sh $(BUILD) $(UNIT_BINS)

crash: all
	@sh scripts/run-tests.sh $(BUILD) $(CRASH_BINS)

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit

# libFuzzer targets (clang): `make fuzz` builds them into build-fuzz/fuzz/,
# `make fuzz-smoke` runs each for FUZZ_SECONDS.
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" fuzzers

fuzzers: $(FUZZ_BINS) $(BUILD)/fuzz-tools/seed_table

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libtrove-int.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# seed_table writes real tables for fuzz_table to start from.
$(BUILD)/fuzz-tools/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libtrove-int.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

fuzz-smoke: fuzz
	@mkdir -p build-fuzz/corpus/fuzz_table
	@build-fuzz/fuzz-tools/seed_table build-fuzz/corpus/fuzz_table
	@for f in build-fuzz/fuzz/*; do \
	  echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	  mkdir -p build-fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=build-fuzz/ \
	      build-fuzz/corpus/$$(basename $$f) 2>build-fuzz/$$(basename $$f).log || \
	      { tail -50 build-fuzz/$$(basename $$f).log; exit 1; }; \
	  tail -1 build-fuzz/$$(basename $$f).log; \
	done

run: $(BUILD)/troved
	@mkdir -p data
	@echo "troved: serving ./data on 127.0.0.1:6379 (Ctrl-C stops it)."
	@echo "        connect with:  redis-cli -p 6379   (then: set hello world, get hello)"
	$(BUILD)/troved --dir ./data --port 6379

shell: $(BUILD)/trove
	@mkdir -p data
	@echo "trove: shell on the database in ./data; type 'help', 'put hello world', 'get hello';"
	@echo "       'quit' or Ctrl-D leaves.  The shell holds the lock: afterwards try $(BUILD)/trove get ./data hello"
	$(BUILD)/trove shell ./data

install: lib $(BUILD)/trove $(MAN_PAGE)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(BUILD)/trove $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(PREFIX)/libexec/trove && install -m 755 $(PEER_BINS) $(DESTDIR)$(PREFIX)/libexec/trove/
	$(if $(MAN_PAGE),install -d $(DESTDIR)$(MANDIR)/man1 && install -m 644 $(MAN_PAGE) $(DESTDIR)$(MANDIR)/man1/)
	install -m 644 $(BUILD)/libtrove.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/libtrove.so $(DESTDIR)$(LIBDIR)/libtrove.so.0
	ln -sf libtrove.so.0 $(DESTDIR)$(LIBDIR)/libtrove.so
	install -m 644 include/trove.h $(DESTDIR)$(INCDIR)/
	install -d $(DESTDIR)$(INCDIR)/trove && install -m 644 include/trove/*.h $(DESTDIR)$(INCDIR)/trove/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|0.1.0|' \
	    trove.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/trove.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libtrove.a $(DESTDIR)$(LIBDIR)/libtrove.so \
	      $(DESTDIR)$(LIBDIR)/libtrove.so.0 $(DESTDIR)$(INCDIR)/trove.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/trove.pc $(DESTDIR)$(BINDIR)/trove \
	      $(DESTDIR)$(MANDIR)/man1/trove.1
	rm -rf $(DESTDIR)$(INCDIR)/trove
	rm -rf $(DESTDIR)$(PREFIX)/libexec/trove

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-clang build-fuzz

# ---- Benchmarks: `make bench` (QUICK=1 for a short run), `make bench-server`.
# Never built by `make` or `make test`: they need the peers' libraries and
# measure, they do not test.  Trove's backend is linked with libtrove into
# one object whose only global symbol is bench_trove, so no symbol of
# libtrove (such as its Berkeley-DB-style compat layer) can stand in for a
# peer's, and the peers' libraries cannot reach into Trove.
BENCH_SRCS  := $(filter-out bench/bench_trove.c,$(wildcard bench/*.c))
BENCH_OBJS  := $(BENCH_SRCS:%.c=$(BUILD)/%.o)
BENCH_LIBS  := -llmdb -lleveldb -lrocksdb -ldb-5.3 -lgdbm -lkyotocabinet -ltkrzw -lsqlite3
BENCH_HDRS  := lmdb.h leveldb/c.h rocksdb/c.h db.h gdbm.h kclangc.h tkrzw_langc.h sqlite3.h
BENCH_STAMP := $(BUILD)/bench/.deps-ok

.PHONY: bench bench-server
BENCH_LATEST := bench/results/latest$(if $(filter-out 0,$(QUICK)),-quick)
bench: $(BUILD)/bench/trove-bench
	BENCH_REV="$$(git rev-parse --short HEAD 2>/dev/null)$$(git status --porcelain -- src include 2>/dev/null | grep -q . && echo '+uncommitted')" \
	    $(BUILD)/bench/trove-bench $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS)
	gnuplot -e "in='$(BENCH_LATEST).dat'; out='$(BENCH_LATEST).png'" bench/chart.gp
	@echo "bench: chart in $(BENCH_LATEST).png"

bench-server: $(BUILD)/troved $(BENCH_STAMP)
	python3 bench/server.py $(BUILD)/troved $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_SERVER_ARGS)

$(BENCH_STAMP):
	@for h in $(BENCH_HDRS); do \
	  if ! echo "#include <stddef.h>\n#include <$$h>" | $(CC) -E -x c - >/dev/null 2>&1 || \
	     ! command -v gnuplot >/dev/null || ! command -v redis-server >/dev/null; then \
	    echo "bench: missing $$h, gnuplot or redis-server: running scripts/install-deps.sh"; \
	    sh scripts/install-deps.sh || exit 1; break; \
	  fi; \
	done
	@mkdir -p $(@D) && touch $@

$(BUILD)/bench/%.o: bench/%.c $(BENCH_STAMP) $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DBENCH_ROCKSDB_VERSION='"$(shell pkg-config --modversion rocksdb 2>/dev/null)"' \
	    -MMD -MP -c $< -o $@

$(BUILD)/bench/trove-backend.o: $(BUILD)/bench/bench_trove.o $(BUILD)/libtrove.a
	$(LD) -r -o $@ $^
	objcopy --keep-global-symbol=bench_trove $@

$(BUILD)/bench/trove-bench: $(BENCH_OBJS) $(BUILD)/bench/trove-backend.o
	$(CC) $(CFLAGS) -o $@ $^ $(BENCH_LIBS) $(LDLIBS)
	@if nm $@ | grep -qE ' [TW] (db_create|db_env_create|db_version|dbm_open)$$'; then \
	  echo "trove-bench: a Berkeley DB or dbm symbol is defined inside the binary, not taken from libdb"; \
	  rm -f $@; exit 1; fi

-include $(wildcard $(BUILD)/bench/*.d)

-include $(LIB_OBJS:.o=.d) $(CLI_SRCS:%.c=$(BUILD)/%.d) $(PEER_OBJS:.o=.d) $(SERVER_SRCS:%.c=$(BUILD)/%.d)
# The tests' objects too: a test built against an old struct layout of a
# header (trove_stats, say) would read and write past the new one.
-include $(wildcard $(BUILD)/tests/*/*.d $(BUILD)/tests/unit/peers/*.d)
