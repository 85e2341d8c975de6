#!/usr/bin/env bash
# One load worker: loops `reuse` over the load images until $DEADLINE or until the file $STOP
# exists, and on until it has verified $MIN_OK of them however slow the machine (but not past
# $HARD_DEADLINE); takes each
# returned entry's lock shared and checks, while holding it, that the entry is still there
# and is the image's complete tree. Last line: counts.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
total=0 ok=0 retry=0 nospace=0 bad=0 lost=0
going() { [[ -z ${STOP:-} || ! -e $STOP ]] && ((now < DEADLINE)); }
while now=$(date +%s); going || ((ok < ${MIN_OK:-0} && now < ${HARD_DEADLINE:-0})); do
  i=$((RANDOM % 20 + 1))
  total=$((total + 1))
  if ! out=$(pc reuse --image "$IMG/load$i.sqfs" --json 2>/tmp/.pcf-err.$$); then
    if grep -qi 'no space' /tmp/.pcf-err.$$; then nospace=$((nospace + 1)); else bad=$((bad + 1)); echo "FAIL: $(cat /tmp/.pcf-err.$$)"; fi
    continue
  fi
  path=$(jq -r .path <<<"$out") lock=$(jq -r .lock <<<"$out")
  if ! exec {fd}<"$lock" 2>/dev/null; then retry=$((retry + 1)); continue; fi
  flock -s "$fd"
  if [[ $(stat -L -c %d:%i "/proc/self/fd/$fd") != "$(stat -c %d:%i "$lock" 2>/dev/null)" ]]; then
    retry=$((retry + 1))
  elif [[ $(manifest "$path") != "$(cat "$IMG/load$i.manifest")" ]]; then
    lost=$((lost + 1)); echo "LOST: $path is not load$i's tree"
  elif [[ ! -d $path || $(stat -L -c %d:%i "/proc/self/fd/$fd") != "$(stat -c %d:%i "$lock" 2>/dev/null)" ]]; then
    lost=$((lost + 1)); echo "LOST: $path was evicted while its lock was held"
  else
    ok=$((ok + 1))
  fi
  exec {fd}<&-
done
rm -f /tmp/.pcf-err.$$
echo "$total $ok $retry $nospace $bad $lost"
