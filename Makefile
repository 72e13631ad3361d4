# Sluice: build, test and run the whole suite.
#
#   make            every daemon and tool (build/release/bin)
#   make run        install what is missing, build, start the suite locally
#   make test       build (plain, ASan+UBSan, fuzz), unit + integration tests, short fuzz
#   make fuzz       every libFuzzer harness for FUZZ_SECONDS each (default 60)
#   make bench      benchmarks, printed side by side with their peers
#   make install    PREFIX=/usr/local DESTDIR=
#
# BUILD=release|asan|fuzz picks the flavour; objects go to build/$(BUILD).
# Layout is by convention, so a new daemon or tool needs no edit here:
#   services/<name>/*.c  -> sluice-<name> (main.c holds main; the rest also
#                           goes to libsvc-<name>.a for unit tests and fuzzers)
#   tools/<name>/*.c     -> <name>
#   tests/unit/<path>/test_*.c, tests/fuzz/<path>/fuzz_*.c, where <path> is
#   libcommon or services/<name>, link what they mirror.

BUILD   ?= release
O       := build/$(BUILD)
PREFIX  ?= /usr/local
FUZZ_SECONDS ?= 60

PKGS := libevent libevent_pthreads hiredis jansson libjwt srt libpq libcrypto
# Quiet when packages are missing: `make test` installs them, then re-runs make.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       := gcc
CPPFLAGS := -Ilibcommon/include -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS   := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wformat=2 -Wno-missing-field-initializers -g -O2 -MMD -MP
LDFLAGS  := -Wl,--as-needed
LDLIBS   := $(PKG_LIBS) -lpthread -lm

ifeq ($(BUILD),asan)
  CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(BUILD),fuzz)
  CC      := clang
  CFLAGS  += -O1 -fno-omit-frame-pointer \
             -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

# V=1 shows full commands.
ifeq ($(V),1)
  say :=
else
  say = @printf '  %-6s %s\n' $(1) $(2);
endif

COMMON_OBJ := $(patsubst %.c,$(O)/%.o,$(wildcard libcommon/*.c))
SERVICES   := $(notdir $(patsubst %/main.c,%,$(wildcard services/*/main.c)))
TOOLS      := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c)))))
BINS       := $(strip $(SERVICES:%=$(O)/bin/sluice-%) $(sort $(TOOLS:%=$(O)/bin/%)))
UNIT_BINS  := $(patsubst %.c,$(O)/%,$(shell find tests/unit -name 'test_*.c' 2>/dev/null))
FUZZ_BINS  := $(patsubst %.c,$(O)/%,$(shell find tests/fuzz -name 'fuzz_*.c' 2>/dev/null))

.PHONY: all build deps unit-bins fuzzers test run fuzz bench install clean
.DEFAULT_GOAL := all

all: build
build: $(BINS)
unit-bins: $(UNIT_BINS)
fuzzers: $(FUZZ_BINS)

deps:
	@scripts/deps.sh

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(O)/lib/libcommon.a: $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)$(AR) rcs $@ $^

define service_rules
$(1)_OBJ := $$(patsubst %.c,$$(O)/%.o,$$(wildcard services/$(1)/*.c))
$$(O)/lib/libsvc-$(1).a: $$(filter-out %/main.o,$$($(1)_OBJ))
	@mkdir -p $$(@D)
	$$(call say,AR,$$@)$$(AR) rcs $$@ $$^
$$(O)/bin/sluice-$(1): $$($(1)_OBJ) $$(O)/lib/libcommon.a
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach s,$(SERVICES),$(eval $(call service_rules,$(s))))

define tool_rules
$(1)_TOBJ := $$(patsubst %.c,$$(O)/%.o,$$(wildcard tools/$(1)/*.c))
$$(O)/bin/$(1): $$($(1)_TOBJ) $$(O)/lib/libcommon.a
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rules,$(t))))

# A test or harness under .../services/<name>/ links that daemon's library.
svc_lib = $(if $(filter services/%,$(1)),$(O)/lib/libsvc-$(word 2,$(subst /, ,$(1))).a)

.SECONDEXPANSION:
$(O)/tests/unit/%: tests/unit/%.c $$(call svc_lib,$$*) $(O)/lib/libcommon.a
	@mkdir -p $(@D)
	$(call say,TEST,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit $(LDFLAGS) $< $(filter %.a,$^) $(LDLIBS) -lcmocka -o $@

$(O)/tests/fuzz/%: tests/fuzz/%.c $$(call svc_lib,$$*) $(O)/lib/libcommon.a
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(filter %.a,$^) $(LDLIBS) -o $@

# Each of these installs what is missing first, so it works on a bare machine.
test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory BUILD=asan build unit-bins
	@$(MAKE) --no-print-directory BUILD=fuzz fuzzers
	@scripts/test.sh

run: deps
	@$(MAKE) --no-print-directory build
	@scripts/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=fuzz fuzzers
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: deps
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	$(if $(BINS),install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/)

clean:
	rm -rf build

-include $(shell find $(O) -name "*.d" 2>/dev/null)
