#!/usr/bin/env bash
# pyxis 0.24's own test suite (NVIDIA/pyxis, tests/*.bats) against pyxis-cache, every step in
# cache mode (PYXIS_CONTAINER_CACHE=1), under the enroot runtime and under the bwrap runtime.
# Not part of `make test` (it takes long and measures rather than asserts): `make pyxis-suite`.
# Run as root (after `make bootstrap-test stub`):
#
#   bash tests/pyxis-suite/run.sh [--tests DIR] [--runtimes "enroot bwrap"] [--writable] [FILE.bats...]
#
#   --tests DIR   pyxis's tests/ directory (pyxis 0.24.0). Default: extracted from the bare
#                 mirror $PYXIS_MIRROR (/work/.mirror/NVIDIA+pyxis/repo) when there is one
#   --writable    every step with PYXIS_CONTAINER_WRITABLE=1, as on a site whose enroot.conf has
#                 ENROOT_ROOTFS_WRITABLE=yes (pyxis's tests write into / without --container-writable)
#   FILE.bats     only these files (names as in pyxis's tests/, e.g. mounts.bats)
#
# What it does:
#   - boots the e2e suite's private one-node Slurm (tests/e2e/slurm.sh) with the plugin, its
#     node declared with 8 CPUs (steps of the suite ask for 4 tasks); cache root a directory
#   - starts a local registry (tests/lib/registry.sh: Debian's docker-registry on 127.0.0.1)
#     and pushes stand-ins for the images the suite pulls: one Debian bookworm minbase rootfs
#     (debootstrap, built once into $PYXIS_CACHE_TEST_CACHE/pyxis-suite) plus a small layer
#     per image with what the tests look at: /etc/os-release ("Ubuntu 24.04"…), CentOS's
#     /etc/redhat-release, the CUDA images' variables and entrypoint banner, docker:dind's
#     entrypoint (DOCKER_HOST), the PyTorch images' variable and WORKDIR, redis's and
#     rabbitmq's commands on the image's PATH. The list is stand_ins() below
#   - copies pyxis's tests into the user's home and rewrites the image references on that copy
#     (rewrite() below: `ubuntu:24.04` -> `127.0.0.1:PORT#ubuntu:24.04`, `nvcr.io#…`,
#     `docker.io/…` and `docker.io#…` likewise); the rest of the tests is untouched
#   - runs each file with bats, as an unprivileged user, inside `salloc -N1 --exclusive` (but
#     sbatch/*.bats, which submit jobs of their own, outside an allocation), with
#     PYXIS_CONTAINER_CACHE=1, ENROOT_ALLOW_HTTP=y and enroot on PATH (the suite calls
#     `srun enroot import/list/export/remove` itself), once per runtime; the cache root is
#     shared, so the second runtime starts with the first one's entries
#   - prints a table of passed/failed/skipped per file and per runtime; the TAP of each file
#     is kept in $PYXIS_SUITE_OUT (default /var/tmp/pyxis-suite.XXXXXX; not under /tmp, which
#     env.bats mounts as the home: the cache root under it is not how a site has it)
#
# Skipped files (hardware, networks, images that cannot be stood in for): mpi.bats,
# mpi4py.bats (PMIx, Open MPI, Horovod), pytorch.bats (the NGC PyTorch image's real
# environment), ssh.bats (sshd from Ubuntu's archive inside a named container).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
me=tests/pyxis-suite/run.sh
die() {
  echo "$me: $*" >&2
  exit 2
}

SKIPPED_FILES="mpi.bats mpi4py.bats pytorch.bats ssh.bats"
PYXIS_MIRROR=${PYXIS_MIRROR:-/work/.mirror/NVIDIA+pyxis/repo}
tests_dir= runtimes="enroot bwrap" only=() site_env=()
while (($#)); do
  case $1 in
    --tests) tests_dir=${2:?}; shift 2 ;;
    --runtimes) runtimes=${2:?}; shift 2 ;;
    # As on a site whose enroot.conf has ENROOT_ROOTFS_WRITABLE=yes, which pyxis's tests assume.
    --writable) site_env=(PYXIS_CONTAINER_WRITABLE=1); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *.bats) only+=("$1"); shift ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

((EUID == 0)) || die "must run as root (it starts slurmctld, slurmd, munged and a registry, and adds a user)"
for tool in slurmctld slurmd munged srun salloc sinfo bats mksquashfs bwrap docker-registry umoci skopeo curl useradd runuser debootstrap; do
  command -v "$tool" >/dev/null || die "$tool not found (make bootstrap-test; debootstrap: apt-get install debootstrap)"
done
for r in $runtimes; do [[ $r == enroot || $r == bwrap ]] || die "unknown runtime: $r (enroot or bwrap)"; done

# pyxis's tests: --tests, else the mirror's (checked before anything is made).
if [[ -z $tests_dir ]] && ! git -C "$PYXIS_MIRROR" rev-parse -q --verify HEAD:tests/common.bash >/dev/null 2>&1; then
  die "no pyxis tests: pass --tests DIR, pyxis 0.24.0's tests/ directory (git clone -b v0.24.0 https://github.com/NVIDIA/pyxis), or put a bare mirror at $PYXIS_MIRROR"
fi
[[ -z $tests_dir || -f $tests_dir/common.bash ]] || die "$tests_dir has no common.bash: not pyxis's tests/ directory"
for f in ${only[@]+"${only[@]}"}; do
  if [[ -n $tests_dir ]]; then [[ -f $tests_dir/$f ]]; else git -C "$PYXIS_MIRROR" cat-file -e "HEAD:tests/$f" 2>/dev/null; fi ||
    die "no $f in pyxis's tests"
done

OUT=${PYXIS_SUITE_OUT:-$(mktemp -d /var/tmp/pyxis-suite.XXXXXX)}
mkdir -p "$OUT"
chmod 755 "$OUT"
if [[ -z $tests_dir ]]; then
  mkdir -p "$OUT/pyxis-tests"
  git -C "$PYXIS_MIRROR" archive HEAD tests | tar -x -C "$OUT/pyxis-tests"
  tests_dir=$OUT/pyxis-tests/tests
  echo "# pyxis tests: $PYXIS_MIRROR at $(git -C "$PYXIS_MIRROR" describe --tags HEAD 2>/dev/null || git -C "$PYXIS_MIRROR" rev-parse HEAD)" >&2
fi
[[ -f $tests_dir/common.bash ]] || die "$tests_dir has no common.bash: not pyxis's tests/ directory"

make -s -C "$repo/spank-stub" all
# shellcheck source=tests/lib/enroot.sh
source "$repo/tests/lib/enroot.sh"
ENROOT=$(test_enroot) || die "enroot is neither installed nor buildable (tests/lib/enroot.sh)"
ENROOT_DIR=$(dirname "$ENROOT")

# The stand-ins' base: Debian bookworm minbase, built once (about 30 s and 60 MB of downloads).
CACHE=${PYXIS_CACHE_TEST_CACHE:-/var/cache/pyxis-cache-test}/pyxis-suite
BASE_TAR=$CACHE/bookworm-minbase.tar
if [[ ! -s $BASE_TAR ]]; then
  echo "# building $BASE_TAR with debootstrap" >&2
  mkdir -p "$CACHE"
  rm -rf "$CACHE/rootfs"
  debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed: $(tail -1 "$CACHE/debootstrap.log")"
  rm -rf "$CACHE/rootfs"/var/cache/apt/archives/*.deb "$CACHE/rootfs"/var/lib/apt/lists/* \
    "$CACHE/rootfs"/usr/share/{doc,man,info,locale}/*
  tar -C "$CACHE/rootfs" --numeric-owner -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$CACHE/rootfs"
fi

export E2E_TMP=$OUT/slurm
mkdir -p "$E2E_TMP"
chmod 755 "$E2E_TMP"
# slurmstepd loads the plugin at every step: a copy, so that a rebuild meanwhile changes nothing.
cp "$repo/spank-stub/spank_pyxis_cache.so" "$OUT/spank_pyxis_cache.so"
chmod 755 "$OUT/spank_pyxis_cache.so"
export E2E_PLUGIN=$OUT/spank_pyxis_cache.so E2E_CLI=$repo/bin/pyxis-cache
export E2E_BASE=$OUT/base E2E_NODE=${E2E_NODE:-pxsuite}
# Not the e2e suites' ports (20000-25999, cold 18000-19999) nor the ops cluster's (26000-31999).
export E2E_PORTS=${E2E_PORTS:-16000 17999} E2E_CPUS=8
export SUITE_USER=${E2E_USER:-pxc-ps}
REGISTRY_DIR=$OUT/registry

# shellcheck source=tests/e2e/slurm.sh
source "$repo/tests/e2e/slurm.sh"

created_user=
cleanup() {
  set +e
  slurm_stop
  bash "$repo/tests/lib/registry.sh" stop "$REGISTRY_DIR"
  # A cold step's FUSE mounts, if a step died with them.
  grep -o " $E2E_BASE/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  [[ -z $created_user ]] || userdel -r "$created_user" >/dev/null 2>&1
  if [[ -z ${PYXIS_SUITE_KEEP:-} ]]; then rm -rf "$E2E_BASE" "$REGISTRY_DIR" "$OUT/images"; fi
  echo "# logs in $OUT" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! id "$SUITE_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$SUITE_USER"
  created_user=$SUITE_USER
fi
HOME_DIR=$(getent passwd "$SUITE_USER" | cut -d: -f6)
mkdir -p "$E2E_BASE"
chmod 755 "$E2E_BASE"

# --- the registry and its stand-ins ---------------------------------------------------------
REGISTRY=$(bash "$repo/tests/lib/registry.sh" start "$REGISTRY_DIR")
echo "# registry at $REGISTRY" >&2
IMG=$OUT/images
mkdir -p "$IMG"
umoci init --layout "$IMG/oci"
umoci new --image "$IMG/oci:base"
umoci raw add-layer --image "$IMG/oci:base" "$BASE_TAR"
umoci config --image "$IMG/oci:base" --config.cmd /bin/bash \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Ubuntu's /etc/profile, which the images stood in for have: Debian's sets PATH, and enroot
# starts a login shell (ENROOT_LOGIN_SHELL), so the image's PATH would be lost there.
mkdir -p "$IMG/layer/etc"
printf '%s\n' '# /etc/profile as Ubuntu has it: PATH comes from the environment (/etc/environment).' \
  'if [ -d /etc/profile.d ]; then' '  for i in /etc/profile.d/*.sh; do' '    if [ -r "$i" ]; then . "$i"; fi' \
  '  done' '  unset i' 'fi' >"$IMG/layer/etc/profile"
tar -C "$IMG/layer" --numeric-owner --owner=0 --group=0 -cf "$IMG/layer.tar" .
umoci raw add-layer --image "$IMG/oci:base" "$IMG/layer.tar"
rm -rf "$IMG/layer" "$IMG/layer.tar"

# stand_in NAME:TAG [umoci config options...]: the base plus a layer of the files under
# $IMG/layer (made by the caller), pushed as REGISTRY/NAME:TAG.
stand_in() {
  local ref=$1 tag=img$RANDOM$RANDOM
  shift
  umoci tag --image "$IMG/oci:base" "$tag"
  tar -C "$IMG/layer" --numeric-owner --owner=0 --group=0 -cf "$IMG/layer.tar" .
  umoci raw add-layer --image "$IMG/oci:$tag" "$IMG/layer.tar"
  (($# == 0)) || umoci config --image "$IMG/oci:$tag" "$@"
  skopeo copy -q --format v2s2 --dest-tls-verify=false "oci:$IMG/oci:$tag" "docker://$REGISTRY/$ref" >&2
  rm -rf "$IMG/layer" "$IMG/layer.tar"
}
layer_file() { # layer_file PATH MODE: the file's content from stdin
  mkdir -p "$(dirname "$IMG/layer/$1")"
  cat >"$IMG/layer/$1"
  chmod "$2" "$IMG/layer/$1"
}
os_release() { # os_release VERSION PRETTY [CODENAME]
  printf 'PRETTY_NAME="Ubuntu %s"\nNAME="Ubuntu"\nVERSION_ID="%s"\nVERSION="%s"\nVERSION_CODENAME=%s\nID=ubuntu\nID_LIKE=debian\n' \
    "$2" "$1" "$2" "${3:-}" | layer_file etc/os-release 644
}
CUDA_ENV=(--config.env LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64
  --config.env PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
stand_ins() {
  local v
  os_release 12.04 "precise (12.04.5 LTS)" precise && stand_in ubuntu:12.04
  for v in 14.04 16.04 18.04 20.04 22.04 24.04; do os_release "$v" "$v LTS" && stand_in "ubuntu:$v"; done
  os_release 26.04 "26.04 (Resolute Raccoon)" resolute && stand_in ubuntu:26.04
  for v in "5 CentOS release 5.11 (Final)" "6 CentOS release 6.10 (Final)" "7 CentOS Linux release 7.9.2009 (Core)" \
    "8 CentOS Linux release 8.4.2105"; do
    echo "${v#* }" | layer_file etc/redhat-release 644 && stand_in "centos:${v%% *}"
  done
  os_release 20.04 "20.04 LTS" && stand_in nvidia/cuda:11.8.0-base-ubuntu20.04 --config.env CUDA_VERSION=11.8.0 "${CUDA_ENV[@]}"
  os_release 22.04 "22.04 LTS" && stand_in nvidia/cuda:11.8.0-base-ubuntu22.04 --config.env CUDA_VERSION=11.8.0 "${CUDA_ENV[@]}"
  os_release 24.04 "24.04 LTS" && stand_in nvidia/cuda:12.9.1-base-ubuntu24.04 --config.env CUDA_VERSION=12.9.1 "${CUDA_ENV[@]}"
  for v in 12.9.1 12.5.1; do
    os_release 24.04 "24.04 LTS"
    printf '#!/bin/bash\nprintf "\\n==========\\n== CUDA ==\\n==========\\n\\nCUDA Version %%s\\n\\n" "$CUDA_VERSION"\nexec "$@"\n' |
      layer_file opt/nvidia/nvidia_entrypoint.sh 755
    stand_in "nvidia/cuda:$v-runtime-ubuntu24.04" --config.env "CUDA_VERSION=$v" "${CUDA_ENV[@]}" \
      --config.entrypoint /opt/nvidia/nvidia_entrypoint.sh
  done
  # docker:dind's entrypoint: DOCKER_HOST from DOCKER_TLS_VERIFY, then the command.
  cat <<'EOF' | layer_file usr/local/bin/dockerd-entrypoint.sh 755
#!/bin/sh
if [ -z "${DOCKER_HOST:-}" ]; then
  if [ -n "${DOCKER_TLS_VERIFY:-}" ]; then export DOCKER_HOST=tcp://docker:2376; else export DOCKER_HOST=tcp://docker:2375; fi
fi
exec "$@"
EOF
  stand_in docker:26.1.0-dind-rootless --config.entrypoint dockerd-entrypoint.sh
  for v in "20.02 1.5.0a0+3bbb36e" "22.04 1.12.0a0+bd13bc6"; do
    mkdir -p "$IMG/layer/workspace"
    stand_in "nvidia/pytorch:${v%% *}-py3" --config.env "PYTORCH_VERSION=${v#* }" --config.workingdir /workspace
  done
  printf '#!/bin/sh\necho "Redis server v=5.0.8 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64 build=0"\n' |
    layer_file usr/local/bin/redis-server 755
  stand_in redis:5.0.8
  printf '#!/bin/sh\necho 3.8.3\n' | layer_file opt/rabbitmq/sbin/rabbitmqctl 755
  stand_in rabbitmq:3.8.3 --config.env PATH=/opt/rabbitmq/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}
echo "# pushing the stand-in images" >&2
stand_ins

# --- the tests' copy, its image references rewritten -----------------------------------------
# rewrite FILE: the images stood in for, as pyxis's tests name them (after `=`, a space, a
# quote, `docker://`, `nvcr.io#`, `docker.io/`, `docker.io#`), go to the local registry with
# enroot's REGISTRY#IMAGE syntax, but REGISTRY/IMAGE in `#SBATCH` lines (sbatch ends such a
# line's option at a `#`; pyxis-cache takes a first component with a `:` as the registry, as
# Docker does); not in `@test` lines (the names stay pyxis's, and
# "Docker Hub docker.io/ubuntu:24.04" would become another test's name). Other references (images not stood in for,
# `thisimagedoesntexist`) stay as they are: they fail as they would on a node without network.
rewrite() {
  sed -E -i \
    -e "/^@test /!s,(nvcr\\.io#|docker\\.io/|docker\\.io#)(nvidia/pytorch:|ubuntu:),$REGISTRY#\\2,g" \
    -e "/^@test /!s,(^|[= \"']|docker://)(ubuntu:[0-9.]+|centos:[0-9]+|nvidia/cuda:[0-9.]+-(base|runtime)-ubuntu[0-9.]+|docker:26\\.1\\.0-dind-rootless|redis:5\\.0\\.8|rabbitmq:3\\.8\\.3)([ \"']|$),\\1$REGISTRY#\\2\\4,g" \
    "$1"
  sed -E -i "/^#SBATCH /s,$REGISTRY#,$REGISTRY/,g" "$1"
}
WORK=$HOME_DIR/pyxis
rm -rf "$WORK"
mkdir -p "$WORK"
cp -a "$tests_dir" "$WORK/tests"
while IFS= read -r -d '' f; do rewrite "$f"; done < <(find "$WORK/tests" -name '*.bats' -print0)
chown -R "$SUITE_USER:" "$WORK"

files=()
if ((${#only[@]})); then
  for f in "${only[@]}"; do
    [[ -f $WORK/tests/$f ]] || die "no $f in pyxis's tests"
    files+=("$f")
  done
else
  while IFS= read -r f; do
    [[ " $SKIPPED_FILES " == *" ${f##*/} "* ]] || files+=("$f")
  done < <(cd "$WORK/tests" && find . -name '*.bats' | sed 's,^\./,,' | sort)
fi

slurm_start

# run_file RUNTIME FILE: one pyxis test file in an allocation, as the user; its TAP in $OUT.
run_file() {
  local runtime=$1 file=$2 tap alloc=(salloc --quiet -N1 --exclusive -J "pyxis-suite-$runtime")
  # sbatch/*.bats submit batch jobs, which an allocation holding the node would keep pending:
  # they run outside one, as pyxis keeps them apart (tests/sbatch/).
  [[ $file != sbatch/* ]] || alloc=()
  tap=$OUT/$runtime/${file//\//_}.tap
  mkdir -p "$OUT/$runtime"
  echo "# $runtime: $file" >&2
  (cd "$WORK" && timeout -k 30 "${PYXIS_SUITE_FILE_TIMEOUT:-900}" runuser -u "$SUITE_USER" -- env -i \
    PATH="$ENROOT_DIR:/usr/local/bin:/usr/bin:/bin" HOME="$HOME_DIR" USER="$SUITE_USER" LOGNAME="$SUITE_USER" \
    SHELL=/bin/bash TERM=dumb SLURM_CONF="$SLURM_CONF" PYXIS_CONTAINER_CACHE=1 ENROOT_ALLOW_HTTP=y \
    ENROOT_RUNTIME_PATH="$HOME_DIR/.enroot/run" ENROOT_CACHE_PATH="$HOME_DIR/.enroot/cache" \
    ENROOT_DATA_PATH="$HOME_DIR/.enroot/data" ENROOT_TEMP_PATH="$HOME_DIR/.enroot/tmp" \
    "${site_env[@]}" "${alloc[@]}" bats --tap "tests/$file") >"$tap" 2>&1 </dev/null || true
}

for runtime in $runtimes; do
  slurmd_stop
  write_plugstack "$E2E_TMP/slurmd/plugstack.conf" "$(plugstack_line "container_cache_runtime=$runtime")"
  E2E_SLURMD_PATH=$ENROOT_DIR:$PATH slurmd_start
  runuser -u "$SUITE_USER" -- mkdir -p "$HOME_DIR/.enroot/tmp"
  for f in "${files[@]}"; do run_file "$runtime" "$f"; done
done

# --- the table --------------------------------------------------------------------------------
counts() { # counts TAP: "passed failed skipped"
  local p f s
  p=$(grep -cE '^ok [0-9]+ ' "$1" | tr -d '\n') || true
  s=$(grep -cE '^ok [0-9]+ .*# skip' "$1" | tr -d '\n') || true
  f=$(grep -cE '^not ok [0-9]+ ' "$1" | tr -d '\n') || true
  echo "$((p - s)) $f $s"
}
{
  printf '| file |'
  for r in $runtimes; do printf ' %s passed | failed | skipped |' "$r"; done
  printf '\n|---|'
  for _ in $runtimes; do printf -- '---|---|---|'; done
  printf '\n'
  declare -A total=()
  for r in $runtimes; do total[$r]="0 0" total[$r.s]=0; done
  for f in "${files[@]}"; do
    printf '| %s |' "$f"
    for r in $runtimes; do
      read -r p fl s < <(counts "$OUT/$r/${f//\//_}.tap")
      printf ' %s | %s | %s |' "$p" "$fl" "$s"
      total[$r]="$((${total[$r]%% *} + p)) $((${total[$r]#* } + fl))"
      total[$r.s]=$((${total[$r.s]} + s))
    done
    printf '\n'
  done
  printf '| **total** |'
  for r in $runtimes; do
    printf ' **%s** | **%s** | **%s** |' "${total[$r]%% *}" "${total[$r]#* }" "${total[$r.s]}"
  done
  printf '\n'
} | tee "$OUT/table.md"
echo "# skipped files: $SKIPPED_FILES" | tee -a "$OUT/table.md"
