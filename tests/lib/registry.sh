#!/usr/bin/env bash
# A real, offline container registry for the tests, and small images pushed to it,
# built without Docker:
#
#   registry.sh start DIR [USER:PASSWORD]
#                                    Debian's docker-registry on 127.0.0.1 at a free port, with
#                                    its config, storage and access log under DIR; prints HOST:PORT.
#                                    With USER:PASSWORD it wants them (Basic, htpasswd)
#   registry.sh stop DIR             stops the registry DIR's start started (by its pid)
#   registry.sh push DIR REPO:TAG [PATH=CONTENT]...
#                                    builds an image with umoci (a busybox rootfs, /bin/sh
#                                    included, plus the files given: CONTENT is a line, or
#                                    @random:BYTES) and pushes it to the registry of DIR with
#                                    skopeo; prints its manifest digest. With REGISTRY_TREE=DIR
#                                    in the environment, DIR's tree is copied into the rootfs too
#
# Pushed as Docker v2 schema 2 (`skopeo copy --format v2s2`): enroot 4.1.2 first asks
# with a HEAD without an Accept header, and registry 2.8 answers 404 for an OCI manifest then.
set -euo pipefail

die() {
  echo "registry.sh: $*" >&2
  exit 1
}

start() {
  local dir=$1 credentials=${2:-} port attempt auth=
  mkdir -p "$dir/storage"
  if [[ -n $credentials ]]; then
    # htpasswd wants bcrypt; Python's crypt makes it without apache2-utils.
    printf '%s:%s\n' "${credentials%%:*}" "$(python3 -W ignore -c 'import crypt, sys
print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' "${credentials#*:}")" >"$dir/htpasswd"
    auth="auth:
  htpasswd:
    realm: pyxis-cache-test
    path: $dir/htpasswd"
  fi
  for attempt in 1 2 3 4 5 6 7 8; do
    # Above the private Slurms' ports (20000-31999).
    port=$((32768 + RANDOM % 28000))
    cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
CONF
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    # Up when it answers /v2/ and is still ours (a port someone else holds makes it exit).
    for _ in $(seq 100); do
      kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
      if [[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null) =~ ^(200|401)$ ]]; then
        echo "127.0.0.1:$port" >"$dir/address"
        if [[ -n $credentials ]]; then echo "$credentials" >"$dir/credentials"; else rm -f "$dir/credentials"; fi
        echo "127.0.0.1:$port"
        return 0
      fi
      sleep 0.05
    done
    kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
    wait "$(cat "$dir/registry.pid")" 2>/dev/null || true
  done
  die "docker-registry did not start: $(tail -3 "$dir/registry.log")"
}

stop() {
  local dir=$1 pid
  [[ -f $dir/registry.pid ]] || return 0
  pid=$(cat "$dir/registry.pid")
  # Only the registry this script started: the pid must still be a docker-registry.
  if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-regist* ]]; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/registry.pid"
}

push() {
  local dir=$1 ref=$2 address work file
  shift 2
  address=$(cat "$dir/address") || die "no registry started in $dir"
  work=$(mktemp -d "$dir/build.XXXXXX")
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:img"
  umoci unpack --image "$work/oci:img" "$work/bundle" >/dev/null
  local root=$work/bundle/rootfs
  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for tool in sh cat ls echo true id env; do ln -s busybox "$root/bin/$tool"; done
  [[ -z ${REGISTRY_TREE:-} ]] || cp -a "$REGISTRY_TREE/." "$root/"
  for file in "$@"; do
    mkdir -p "$(dirname "$root/${file%%=*}")"
    if [[ ${file#*=} == @random:* ]]; then
      head -c "${file#*=@random:}" /dev/urandom >"$root/${file%%=*}"
    else
      printf '%s\n' "${file#*=}" >"$root/${file%%=*}"
    fi
  done
  umoci repack --image "$work/oci:img" "$work/bundle" >/dev/null
  umoci config --image "$work/oci:img" --config.cmd /bin/sh >/dev/null
  local creds=()
  [[ -f $dir/credentials ]] && creds=(--dest-creds "$(cat "$dir/credentials")")
  skopeo copy -q --format v2s2 --dest-tls-verify=false "${creds[@]}" "oci:$work/oci:img" "docker://$address/$ref" >&2
  rm -rf "$work"
  digest "$dir" "$ref"
}

# The digest of the manifest a tag names now, asked as enroot and pyxis-cache ask (without
# the Accept headers the registry converts to schema 1 and answers with that digest).
digest() {
  local address ref=$2 creds=()
  address=$(cat "$1/address")
  [[ -f $1/credentials ]] && creds=(-u "$(cat "$1/credentials")")
  curl -fsS -I "${creds[@]}" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$address/v2/${ref%:*}/manifests/${ref##*:}" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

command=${1:-}
case $command in
  start) [[ $# -eq 2 || $# -eq 3 ]] || die "usage: registry.sh start DIR [USER:PASSWORD]"; shift; start "$@" ;;
  stop) [[ $# -eq 2 ]] || die "usage: registry.sh stop DIR"; stop "$2" ;;
  push) [[ $# -ge 3 ]] || die "usage: registry.sh push DIR REPO:TAG [PATH=CONTENT]..."; shift; push "$@" ;;
  *) die "usage: registry.sh start|stop|push DIR ..." ;;
esac
