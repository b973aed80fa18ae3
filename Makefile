# SPDX-License-Identifier: Apache-2.0
# Citadel top-level Makefile (plain GNU make).
#   make deps        install missing Debian packages (scripts/deps.txt)
#   make             build build/citadel (+ citadel-net), tpmd, enrolld and the libraries
#   make check       deps + build + every test (ends with "N passed, N failed")
#   make demo        deps + build + an end-to-end demo on the embedded vTPM
#   make SANITIZE=1 check   the same with ASan+UBSan, in build-san/
#   make bench       benchmarks against peers measured in the same run
#   make check-long  soak and fault runs

ifeq ($(SANITIZE),1)
B ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B ?= build
SANFLAGS =
endif

CC ?= cc
PKGS = tss2-esys tss2-sys tss2-mu tss2-rc tss2-tctildr libtpms libcrypto sqlite3 jansson yaml-0.1 libsodium
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libtss2-rc and libtss2-tctildr are dlopen'ed when first needed (src/lib/tpm/tpm.c): not linked.
# SQLite, jansson and libyaml are linked from their static archives (in their -dev packages): every
# shared library costs each command its mapping and relocation at start, 0.9 ms for these three
# (bench/README.md step 7). libcitadel.a depends on the archives, so `make` relinks everything after
# a security update of one of them. Where an archive is missing the shared library is used.
STATIC_LIBDIR := $(shell pkg-config --variable=libdir sqlite3 2>/dev/null)
static_or_shared = $(or $(wildcard $(STATIC_LIBDIR)/lib$(1).a),-l$(1))
STATIC_DEP_LIBS := $(call static_or_shared,sqlite3) $(call static_or_shared,jansson) $(call static_or_shared,yaml)
PKG_LIBS = $(shell pkg-config --libs $(filter-out tss2-rc tss2-tctildr sqlite3 jansson yaml-0.1,$(PKGS)) 2>/dev/null) \
           $(STATIC_DEP_LIBS) -lm

WERROR = $(if $(filter true,$(CI)),-Werror,)
CFLAGS ?= -O2 -g
# -Wno-format-truncation: messages are cut to their bounded buffers on purpose.
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation \
          -fvisibility=hidden -fstack-protector-strong -fPIC $(WERROR) $(SANFLAGS)
ifneq ($(SANITIZE),1)
CFLAGS += -D_FORTIFY_SOURCE=2
endif
CPPFLAGS += -Iinclude -Isrc -Isrc/lib $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

BASIC_SRC = $(wildcard src/basic/*.c)
# ---- enroll: enrolld, the enrollment server (docs/enrollment.md); it shares tpmd's API keys file code ----
ENROLLD_SRC = $(wildcard src/enrolld/*.c)
ENROLLD_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,$(ENROLLD_SRC)) $(B)/obj/tpmd/auth.o
# ---- end enroll ----
LIB_SRC = $(wildcard src/lib/*/*.c)
CLI_SRC = $(wildcard src/cli/*.c)
# tpmd, the REST daemon: libmicrohttpd for HTTP, GnuTLS for its TPM-held TLS key.
TPMD_SRC = $(wildcard src/tpmd/*.c)
TPMD_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,$(TPMD_SRC))
TPMD_PKGS = libmicrohttpd gnutls
TPMD_CFLAGS = $(shell pkg-config --cflags $(TPMD_PKGS) 2>/dev/null)
TPMD_LIBS = $(shell pkg-config --libs $(TPMD_PKGS) 2>/dev/null)
# The shared network layer (src/net/, branch tpmnet): TLS credentials with TPM-held keys and an
# HTTP/1.1 client, on GnuTLS. build/libcitadel-net.a is linked into citadel-net, tpmd and enrolld
# (not citadel) after libcitadel.a: link with $(B)/libcitadel-net.a $(B)/libcitadel.a $(NET_LIBS).
NET_SRC = $(wildcard src/net/*.c)
NET_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,$(NET_SRC))
NET_CFLAGS = $(shell pkg-config --cflags gnutls 2>/dev/null)
NET_LIBS = $(shell pkg-config --libs gnutls 2>/dev/null)
# The built-in EK manufacturer trust store (data/ek-ca/*.pem), embedded in the library.
EK_CA_PEM = $(sort $(wildcard data/ek-ca/*.pem))
GEN_OBJ = $(B)/obj/gen/ek_ca_bundle.o
LIB_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,$(BASIC_SRC) $(LIB_SRC)) $(GEN_OBJ)
CLI_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,$(CLI_SRC))
# The network commands (`node`, `enroll`) link GnuTLS through libcitadel-net: they make up
# citadel-net, which citadel runs for them (src/cli/net_verbs.c), so that every other command
# starts without loading GnuTLS and its eight libraries (about 4 ms a process).
CLI_NET_OBJ = $(patsubst src/%.c,$(B)/obj/%.o,src/cli/cmd_node.c src/cli/cmd_enroll.c src/cli/enroll_client.c)
CLI_CORE_OBJ = $(filter-out $(CLI_NET_OBJ),$(CLI_OBJ))
# citadel-net's verb tables reference the handlers strongly: a missing one fails its link.
CLI_NETBIN_OBJ = $(filter-out $(B)/obj/cli/net_verbs.o,$(CLI_OBJ)) $(B)/obj/cli/net_verbs_strong.o
UNIT_SRC = $(wildcard tests/unit/test-*.c)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz-*.c)
UNIT_BIN = $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC)) \
           $(patsubst tests/fuzz/fuzz-%.c,$(B)/tests/test-fuzz-%,$(FUZZ_SRC))
# Helpers the shell tests drive (not unit tests: run.sh runs only tests/test-*): a program on
# the library and an LD_PRELOAD fault-injection shim.
DRIVER_BIN = $(B)/tests/audit-append-driver $(B)/tests/killshim.so $(B)/tests/http-driver
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))

.PHONY: all deps check check-long demo bench clean docs unit
all: $(B)/citadel $(B)/citadel-net $(B)/tpmd $(B)/enrolld $(B)/libcitadel.a $(B)/libcitadel-net.a docs/ERRORS.md

deps:
	@scripts/deps.sh

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/gen/ek_ca_bundle.c: $(EK_CA_PEM) scripts/gen-ek-ca-bundle.sh
	@mkdir -p $(dir $@)
	scripts/gen-ek-ca-bundle.sh data/ek-ca > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/%.o: $(B)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libcitadel.a: $(LIB_OBJ) $(filter %.a,$(STATIC_DEP_LIBS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

$(B)/libcitadel-net.a: $(NET_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(NET_OBJ) $(CLI_NET_OBJ): CPPFLAGS += $(NET_CFLAGS)

$(B)/citadel: $(CLI_CORE_OBJ) $(B)/libcitadel.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_CORE_OBJ) $(B)/libcitadel.a $(LDLIBS)

$(B)/obj/cli/net_verbs_strong.o: src/cli/net_verbs.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DCLI_NET_STRONG -c -o $@ $<

$(B)/citadel-net: $(CLI_NETBIN_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_NETBIN_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a $(NET_LIBS) $(LDLIBS)

$(TPMD_OBJ): CPPFLAGS += $(TPMD_CFLAGS)

$(B)/tpmd: $(TPMD_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a
	$(CC) $(LDFLAGS) -o $@ $(TPMD_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a $(TPMD_LIBS) $(NET_LIBS) $(LDLIBS)

# ---- enroll ----
$(ENROLLD_OBJ): CPPFLAGS += $(TPMD_CFLAGS)

$(B)/enrolld: $(ENROLLD_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a
	$(CC) $(LDFLAGS) -o $@ $(ENROLLD_OBJ) $(B)/libcitadel-net.a $(B)/libcitadel.a $(TPMD_LIBS) $(NET_LIBS) $(LDLIBS)
# ---- end enroll ----

$(B)/tests/%: tests/unit/%.c $(B)/libcitadel.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< \
	    $(B)/libcitadel.a $(LDLIBS) $(shell pkg-config --libs cmocka)

$(B)/tests/%: tests/drivers/%.c $(B)/libcitadel-net.a $(B)/libcitadel.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(NET_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcitadel-net.a $(B)/libcitadel.a \
	    $(NET_LIBS) $(LDLIBS)

# no sanitizer flags: a preloaded library may not come before the ASan runtime
$(B)/tests/%.so: tests/drivers/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra $(WERROR) -fPIC -shared -o $@ $< -ldl

$(B)/tests/test-fuzz-%: tests/fuzz/fuzz-%.c $(B)/libcitadel-net.a $(B)/libcitadel.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(NET_CFLAGS) $(CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< \
	    $(B)/libcitadel-net.a $(B)/libcitadel.a $(NET_LIBS) $(LDLIBS) $(shell pkg-config --libs cmocka)

$(B)/bench/%: bench/%.c $(B)/libcitadel.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcitadel.a $(LDLIBS)

$(B)/gen-errors: scripts/gen-errors.c src/lib/diag/error.c src/basic/util.c src/lib/diag/codes.def
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ scripts/gen-errors.c src/lib/diag/error.c src/basic/util.c

docs/ERRORS.md: src/lib/diag/codes.def scripts/gen-errors.c
	$(MAKE) --no-print-directory $(B)/gen-errors
	$(B)/gen-errors > $@.tmp && mv $@.tmp $@

unit: $(UNIT_BIN) $(DRIVER_BIN)

check: deps
	$(MAKE) --no-print-directory all unit
	B=$(B) tests/run.sh
ifeq ($(CI),true)
ifneq ($(SANITIZE),1)
	$(MAKE) --no-print-directory SANITIZE=1 check-san
endif
endif

# The sanitizer pass: unit tests and the integration suite on an ASan+UBSan build.
check-san:
	$(MAKE) --no-print-directory SANITIZE=1 all unit
	B=build-san CIT_SANITIZE=1 tests/run.sh

check-long: deps
	$(MAKE) --no-print-directory all unit
	B=$(B) CIT_LONG=1 CIT_FUZZ_ITERATIONS=200000 tests/run.sh

demo: deps
	$(MAKE) --no-print-directory all
	B=$(B) scripts/demo.sh

bench: deps
	$(MAKE) --no-print-directory all $(BENCH_BIN)
	B=$(B) bench/run.sh

clean:
	rm -rf build build-san

-include $(shell find $(B) -name '*.d' 2>/dev/null)
