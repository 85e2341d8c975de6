# pyxis-cache: two set-up commands for a fresh Debian node (as root):
#   make demo   bootstrap, then srun --container-cache cold and warm on a private one-node Slurm, status and gc
#   make test   bootstrap, then every test suite (tests/run.sh: side by side, a table at the end)
#   make soak   the fault suite's load case for a full minute (FAULTS_LOAD_SECONDS=60)
#   make pyxis-suite   pyxis 0.24's own tests against pyxis-cache, per runtime (docs/pyxis-suite.md;
#                      not part of make test: PYXIS_TESTS=DIR for pyxis's tests/ directory)
# and for operators:
#   make install [PREFIX=/usr/local] [DESTDIR=...] [INSTALL_DENO=1]   (see scripts/install.sh)
#   make uninstall [PREFIX=...] [DESTDIR=...]                          removes exactly what install did
DENO_VERSION := 2.9.6
DENO := .tools/node_modules/deno/deno
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(PATH)

# What the demo needs (a private Slurm, the stub's build, bwrap, squashfuse for a cold step's mount,
# useradd for its user), and what the test suites need on top (bats; a registry, umoci and skopeo to
# build and serve images for the registry cases, python3 for its htpasswd).
DEMO_PACKAGES := squashfs-tools busybox-static slurmctld slurmd munge slurm-client libslurm-dev gcc libc6-dev make \
	bubblewrap squashfuse fuse3 passwd
TEST_PACKAGES := $(DEMO_PACKAGES) bats e2fsprogs util-linux attr prometheus docker-registry umoci skopeo curl python3

.PHONY: all bootstrap bootstrap-test deno-dir demo test test-unit test-e2e test-faults test-ops soak bench check stub clean \
	install uninstall pyxis-suite

# Where `make install` puts things; INSTALL_DENO=1 also installs the bootstrapped Deno beside
# the code (otherwise the installed command finds deno on PATH).
PREFIX ?= /usr/local
INSTALL_VARS = PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) DENO=$(DENO) INSTALL_DENO=$(INSTALL_DENO) \
	$(foreach v,BINDIR PKGLIBDIR MANDIR DOCDIR SYSTEMDUNITDIR PLUGINDIR,$(if $($(v)),$(v)=$($(v))))

all: $(DENO) stub

$(DENO):
	$(call apt_install,$(if $(shell command -v npm),,npm))
	npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error deno@$(DENO_VERSION)
	@test -x $(DENO) || { echo "bootstrap: $(DENO) did not install" >&2; exit 1; }

# Installs the Debian packages that are missing (needs root, or all of them present).
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "bootstrap: installing" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

bootstrap: $(DENO) deno-dir
	$(call apt_install,$(DEMO_PACKAGES))

bootstrap-test: $(DENO) deno-dir
	$(call apt_install,$(TEST_PACKAGES))

# The transpiled code, in a directory the launcher gives every caller as DENO_DIR (see bin/pyxis-cache).
deno-dir: $(DENO)
	DENO_DIR=$(CURDIR)/.deno-dir $(DENO) cache --quiet --no-config --no-lock cmd/main.ts
	chmod -R a+rX .deno-dir

demo: bootstrap stub
	bash scripts/demo.sh

stub:
	$(MAKE) -C spank-stub

# The static checks (tests/run.sh runs them beside the other suites).
check: $(DENO)
	$(DENO) task check
	$(DENO) task lint
	$(DENO) fmt --check
	bash tests/lint-bats.sh

test: bootstrap-test stub
	bash tests/run.sh

test-unit: $(DENO)
	$(DENO) task test

test-e2e: bootstrap-test stub
	bash tests/e2e/run.sh

test-faults: bootstrap-test
	@if [ -f tests/faults/run.sh ]; then bash tests/faults/run.sh; else echo "test-faults: no fault suite yet"; fi

test-ops: bootstrap-test stub
	bash tests/ops/run.sh

# pyxis's own test suite (tests/pyxis-suite/run.sh): a measurement, not part of `make test`.
pyxis-suite: bootstrap-test stub
	$(call apt_install,debootstrap)
	bash tests/pyxis-suite/run.sh $(if $(PYXIS_TESTS),--tests $(PYXIS_TESTS))

# The load case as a soak: four workers and the collector for FAULTS_LOAD_SECONDS (60) seconds.
soak: bootstrap-test
	FAULTS_LOAD_SECONDS=$${FAULTS_LOAD_SECONDS:-60} bash tests/faults/run.sh '^load$$'

install: stub
	$(MAKE) -C spank-stub install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) $(if $(PLUGINDIR),PLUGINDIR=$(PLUGINDIR))
	$(INSTALL_VARS) bash scripts/install.sh install

uninstall:
	$(MAKE) -C spank-stub uninstall PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) $(if $(PLUGINDIR),PLUGINDIR=$(PLUGINDIR))
	$(INSTALL_VARS) bash scripts/install.sh uninstall

bench: bootstrap-test stub
	bash bench/run.sh

clean:
	$(MAKE) -C spank-stub clean
	rm -rf dist .deno-dir
