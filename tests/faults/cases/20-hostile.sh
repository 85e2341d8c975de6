# shellcheck shell=bash
# Hostile input: what users plant in the directories root's collector and status walk,
# hostile images, and one user against another.
CASES+=" planted_links hostile_records swap_race odd_names bad_user_dirs bad_images dangerous_images crafted_images cross_user"

# as1_sh SCRIPT: a shell as pcfault1 in the cache root.
as1_sh() { as1 env BASE="$BASE" U1="$U1" SENT="$SENT" OUTSIDE="$OUTSIDE" bash -c "$1"; }

root_status_and_gc() { # both run as root over what users planted: never a crash, never a hang
  local out rc
  out=$(timeout 60 "$PC" status --json --no-plugstack --set "container_cache_data_path=$BASE" 2>"$WORK/err")
  rc=$?
  ((rc == 0)) || fail "status exited $rc: $(head -c 300 "$WORK/err")"
  jq -e . <<<"$out" >/dev/null 2>&1 || fail "status printed no JSON"
  out=$(timeout 60 "$PC" gc --all --stale-after 0 --json --no-plugstack \
    --set "container_cache_data_path=$BASE" 2>>"$WORK/err")
  rc=$?
  ((rc == 0 || rc == 1)) || fail "gc exited $rc: $(head -c 300 "$WORK/err")"
  jq -e . <<<"$out" >/dev/null 2>&1 || fail "gc printed no JSON"
  grep -qE '^\s+at |Uncaught|panicked' "$WORK/err" && fail "a crash: $(head -c 300 "$WORK/err")"
  return 0
}

# Symlinks and hardlinks as entries, inside entries, as temporaries and trash, as lock and record files.
case_planted_links() {
  newbase 128m
  local h=0123456789abcdef0123 d=$BASE/$U1
  local real
  real=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail reuse
  as1_sh '
    d=$BASE/$U1 h=0123456789abcdef0123
    ln -s "$SENT/root" "$d/pyxis_cache_u${U1}_$h"
    ln -s "$SENT/root/file" "$d/pyxis_cache_u${U1}_${h%?}1"
    ln -s "$SENT/root" "$d/.pyxis_cache_tmp.pyxis_cache_u${U1}_$h.abc"
    ln -s "$SENT/root/dir" "$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.def"
    ln -s "$SENT/root/file" "$d/.pyxis_cache_create.pyxis_cache_u${U1}_${h%?}2"
    e=$d/pyxis_cache_u${U1}_${h%?}a
    mkdir -p "$e/inner"
    ln -s "$SENT/root" "$e/inner/to-root"
    ln -s "$SENT/root/file" "$e/.pyxis_cache_lock"
    ln "$OUTSIDE/file" "$e/inner/hardlink"
    e=$d/pyxis_cache_u${U1}_${h%?}b
    mkdir -p "$e"
    mkfifo "$e/.pyxis_cache_lock"
    t=$d/.pyxis_cache_tmp.pyxis_cache_u${U1}_${h%?}c.abc
    mkdir -p "$t/x"
    ln -s "$SENT/root" "$t/x/escape"
    ln "$OUTSIDE/file" "$t/hardlink"
  ' || fail "planting failed"
  # Eleven plants the collector and status meet: symlinks as an entry (to a directory, to a file), as a
  # temporary, as trash, as a creation lock and as an entry's lock file (to a root-owned file: never locked
  # or touched), a FIFO as an entry's lock file, and symlinks and hardlinks inside an entry and a temporary.
  attacks=$((attacks + 11))
  root_status_and_gc
  check_sentinel "status and gc over planted links"
  # Not the cache's (a symlink is no entry): reported, and removed once stale (here at once), as a link.
  [[ ! -L $d/pyxis_cache_u${U1}_$h ]] || fail "the planted entry symlink is still there (it is not the cache's)"
  grep -q 'not a directory' "$WORK/err" || fail "the planted symlinks were not reported: $(head -c 300 "$WORK/err")"
  # root's reuse for the user over a planted entry symlink: refused, nothing outside touched
  local name
  name=$(pckey --image "$IMG/many1.sqfs" --uid "$U1")
  as1 ln -s "$SENT/root/dir" "$d/$name"
  attacks=$((attacks + 1))
  pc reuse --image "$IMG/many1.sqfs" --uid "$U1" >/dev/null 2>"$WORK/err"
  check_sentinel "reuse over a planted entry symlink"
  # and the user's own reuse through a symlinked entry does not report the outside tree as theirs
  [[ ! -e $real || $(manifest "$real") == "$(img_manifest small)" ]] || fail "a real entry was damaged"
}

# What a user writes into the files root opens in their directory: the record in an entry's lock file
# (status prints it, the collector reports it), and creation locks that are no regular file.
case_hostile_records() {
  newbase 128m
  local d=$BASE/$U1 c=(--no-plugstack --set "container_cache_data_path=$BASE") p1 p2 out lines name2 name3 image
  p1=$(as1 "$PC" reuse --image "$IMG/small.sqfs" "${c[@]}") || fail reuse
  p2=$(as1 "$PC" reuse --image "$IMG/many1.sqfs" "${c[@]}") || fail reuse
  # A record that would forge a row and drive root's terminal, with a size no disk holds; a lock file of 1 GiB.
  as1 sh -c 'cat >"$1"' _ "$p1/.pyxis_cache_lock" <<'JSON'
{"image":"/x\u001b[2J\nroot  0  9 GiB  FORGED","bytes":1e400}
JSON
  as1 truncate -s 1G "$p2/.pyxis_cache_lock"
  # Creation locks of images root is about to create for the user: a FIFO (opening it would hang) and a
  # symlink to a root-owned file.
  name2=$(pckey --image "$IMG/many2.sqfs" --uid "$U1") name3=$(pckey --image "$IMG/many3.sqfs" --uid "$U1")
  as1 mkfifo "$d/.pyxis_cache_create.$name2"
  as1 ln -s "$SENT/root/file" "$d/.pyxis_cache_create.$name3"
  attacks=$((attacks + 5))
  out=$(timeout 60 "$PC" status "${c[@]}" 2>"$WORK/err") || fail "status over hostile records: $(cat "$WORK/err")"
  [[ $out != *$'\e'* ]] || fail "status printed a record's escape sequence to root's terminal"
  lines=$(wc -l <<<"$out")
  # Two entries' rows under a header and a title, then a blank line and the users' table: one user.
  ((lines == 7)) || fail "status printed $lines lines for two entries (a forged row?): $out"
  out=$(timeout 60 "$PC" status --json "${c[@]}" 2>"$WORK/err") || fail "status --json: $(cat "$WORK/err")"
  [[ $(jq -c '[.entries[].bytes]' <<<"$out") == "[null,null]" ]] ||
    fail "records with a size no disk holds, or past 64 KiB, were trusted: $(jq -c '[.entries[].bytes]' <<<"$out")"
  for image in many2 many3; do
    timeout 60 "$PC" reuse --image "$IMG/$image.sqfs" --uid "$U1" "${c[@]}" >/dev/null 2>"$WORK/err" &&
      fail "root's reuse of $image went through a creation lock that is no regular file"
    one_line_error "$WORK/err" "not a regular file"
  done
  check_sentinel "creation locks planted as a symlink"
  out=$(timeout 60 "$PC" gc --all --stale-after 0 --json "${c[@]}" 2>"$WORK/err") || fail "gc over hostile records: $(cat "$WORK/err")"
  [[ $(jq -c '[.evicted[].bytes | type]' <<<"$out") == '["number","number"]' ]] ||
    fail "gc reported sizes that are no numbers: $(jq -c '.evicted' <<<"$out")"
  # A FIFO or a symlink under a lock's name is not the cache's: removed once stale (here at once), as itself.
  [[ ! -e $d/.pyxis_cache_create.$name2 && ! -L $d/.pyxis_cache_create.$name3 ]] ||
    fail "gc left what is not a lock of ours"
  check_sentinel "gc over hostile records"
}

# A directory swapped for a symlink (and back) while the collector scans and deletes: 80 collector runs
# (gc, then status) during which the swapper went round its loop at least once (at most 160 runs).
case_swap_race() {
  newbase 256m
  local racer i n=0 runs=0 before after rounds=$WORK/swap-rounds
  mkdir -p "$rounds" && chown "$U1" "$rounds" && echo 0 >"$rounds/n"
  as1_sh '
    d=$BASE/$U1
    for i in 1 2 3 4; do
      e=$d/pyxis_cache_u${U1}_0000000000000000000$i
      mkdir -p "$e/sub/deeper"
      for f in $(seq 50); do echo $f > "$e/sub/deeper/$f"; done
    done
  '
  ( exec setpriv --reuid="$U1" --regid="$G1" --init-groups -- env BASE="$BASE" U1="$U1" SENT="$SENT" ROUNDS="$rounds" bash -c '
    d=$BASE/$U1 k=0
    while :; do
      k=$((k + 1)) && echo "$k" >"$ROUNDS/n.new" && mv -f "$ROUNDS/n.new" "$ROUNDS/n"
      for i in 1 2 3 4; do
        e=$d/pyxis_cache_u${U1}_0000000000000000000$i
        mkdir -p "$e/sub/deeper" 2>/dev/null && echo x > "$e/sub/deeper/f" 2>/dev/null
        ln -sfn "$SENT/root" "$d/swap.$i" && mv -Tf "$d/swap.$i" "$e/sub" 2>/dev/null
        mkdir -p "$d/swapdir.$i/deeper" && mv -Tf "$d/swapdir.$i" "$e/sub" 2>/dev/null
        ln -sfn "$SENT/root" "$d/swap.$i" && mv -Tf "$d/swap.$i" "$e/sub/deeper" 2>/dev/null
        for t in "$d"/.pyxis_cache_trash.*; do
          [ -d "$t" ] && ! [ -L "$t" ] && { rm -rf "$t/sub" 2>/dev/null; ln -sfn "$SENT/root" "$t/sub" 2>/dev/null; }
        done
        mkdir -p "$e.new/sub" && ln -sfn "$SENT/root/dir" "$e.new/sub/deeper" 2>/dev/null
        mv -Tf "$e.new" "$e" 2>/dev/null || rm -rf "$e.new"
        ln -sfn "$SENT/root" "$d/swap.$i" && mv -Tf "$d/swap.$i" "$e" 2>/dev/null
        mkdir -p "$e" 2>/dev/null
        rm -f "$e" 2>/dev/null; mkdir -p "$e/sub" 2>/dev/null
      done
    done
  ' 2>/dev/null ) &
  racer=$!
  bgpids+=("$racer")
  while ((n < 80 && runs < 160)); do
    before=$(<"$rounds/n")
    timeout 60 "$PC" gc --all --stale-after 0 --no-plugstack --set "container_cache_data_path=$BASE" \
      >/dev/null 2>"$WORK/err"
    (($? <= 1)) || fail "gc exited badly during the race: $(head -c 200 "$WORK/err")"
    timeout 60 "$PC" status --no-plugstack --set "container_cache_data_path=$BASE" >/dev/null 2>&1 ||
      fail "status failed during the race"
    after=$(<"$rounds/n")
    runs=$((runs + 1))
    ((after > before)) && n=$((n + 1))
  done
  kill -9 "$racer"
  wait "$racer" 2>/dev/null
  attacks=$((attacks + n))
  echo "    $n of $runs collector runs raced the swapper" >&2
  ((n == 80)) || fail "the swapper went round its loop during $n of $runs collector runs only"
  check_sentinel "the swap race"
}

# Names with spaces, newlines and non-UTF-8 bytes, in the user's directory and inside an image.
case_odd_names() {
  newbase 128m
  as1_sh '
    d=$BASE/$U1
    mkdir "$d/pyxis_cache_ with spaces" "$d/pyxis_cache_u${U1}_0123456789abcdef0123 " \
      "$d/$(printf "pyxis_cache_u%s_0123456789abcdef0123\nx" "$U1")" "$d/$(printf "pyxis_cache_\xff\xfe")" \
      "$d/$(printf ".pyxis_cache_tmp.\xff")"
    touch "$d/$(printf "pyxis_cache_\xff\xfe")/$(printf "\xfe")"
  '
  attacks=$((attacks + 5))
  # None is the cache's (three are no entry names, two not even UTF-8): reported, and removed once stale,
  # here at once (root_status_and_gc runs gc with --stale-after 0).
  root_status_and_gc
  local n
  n=$(find "$BASE/$U1" -mindepth 1 -maxdepth 1 -name '*pyxis_cache_*' ! -name '.pyxis_cache_create.*' -printf x | wc -c)
  ((n == 0)) || fail "names that are not the cache's were left: $n left: $(ls -A "$BASE/$U1" | od -c | head -5)"
  grep -q 'not an entry name' "$WORK/err" || fail "odd names were not reported"
  # An image whose files have such names unpacks and its entry is complete.
  mkdir -p "$WORK/src/odd/dir with space"
  printf 'x' >"$WORK/src/odd/$(printf 'bad\xffname')"
  printf 'y' >"$WORK/src/odd/$(printf 'new\nline')"
  mkdir -p "$WORK/src/odd/$(printf 'dir\xfe')" && printf 'z' >"$WORK/src/odd/$(printf 'dir\xfe')/f"
  mkimg odd "$WORK/src/odd" && chmod a+r "$IMG/odd.sqfs"
  local out
  for who in 0 "$U1"; do
    out=$(pc reuse --image "$IMG/odd.sqfs" --uid "$who" --gid "$who" --json 2>"$WORK/err") ||
      { fail "an image with odd file names (uid $who): $(cat "$WORK/err")"; continue; }
    [[ $(manifest "$(jq -r .path <<<"$out")") == "$(img_manifest odd)" ]] || lose "odd-name entry incomplete"
  done
  pc gc --all >/dev/null 2>"$WORK/err" || fail "gc of entries with odd file names: $(cat "$WORK/err")"
  (($(leftovers) == 0)) || fail "leftovers after evicting odd names"
}

# A file where <base>/<uid> should be, a directory owned by someone else, an entry named for another uid.
case_bad_user_dirs() {
  newbase 128m
  local u3=$((U2 + 1000)) u4=$((U2 + 1001)) out
  echo "not a dir" >"$BASE/$u3"
  mkdir "$BASE/$u4" && chown "$U1" "$BASE/$u4"
  attacks=$((attacks + 5))
  pc reuse --image "$IMG/small.sqfs" --uid "$u3" --gid "$u3" >/dev/null 2>"$WORK/err" &&
    fail "reuse used a file as <base>/<uid>"
  one_line_error "$WORK/err" "not a directory"
  pc reuse --image "$IMG/small.sqfs" --uid "$u4" --gid "$u4" >/dev/null 2>"$WORK/err" &&
    fail "reuse used <base>/<uid> owned by another user"
  one_line_error "$WORK/err" "owned by"
  [[ -z $(find "$BASE/$u4" -mindepth 1) ]] || lose "something was written into another user's directory"
  # pcfault1 plants an entry named for uid 0 and for pcfault2 in their own directory.
  local n0 n2
  n0=$(pckey --image "$IMG/small.sqfs" --uid 0)
  n2=$(pckey --image "$IMG/small.sqfs" --uid "$U2")
  as1 mkdir -p "$BASE/$U1/$n0/bin" "$BASE/$U1/$n2/bin"
  as1 cp /bin/busybox "$BASE/$U1/$n0/bin/evil"
  out=$(pc status --json 2>"$WORK/err") || fail "status"
  [[ $(jq '[.entries[] | select(.path | contains("'"$BASE/$U1/"'"))] | length' <<<"$out") == 0 ]] ||
    fail "status trusted an entry named for another uid"
  grep -q "entry of uid 0 in the directory of uid $U1" "$WORK/err" || fail "not reported: $(cat "$WORK/err")"
  out=$(pc reuse --image "$IMG/small.sqfs" --uid 0 --gid 0) || fail "root's own reuse"
  [[ $out == "$BASE/0/$n0" && ! -e $out/bin/evil ]] || lose "root's reuse used the planted tree: $out"
  out=$(pc reuse --image "$IMG/small.sqfs" --uid "$U2") || fail "pcfault2's reuse"
  [[ $out == "$BASE/$U2/$n2" && ! -e $out/bin/evil ]] || lose "pcfault2's reuse used the planted tree: $out"
  root_status_and_gc
  # Entries named for another uid are not the cache's: removed once stale (here at once); the bad user
  # directories themselves are only skipped.
  [[ ! -e $BASE/$U1/$n0 && ! -e $BASE/$U1/$n2 ]] || fail "gc left entries named for another uid"
  [[ -f $BASE/$u3 && -d $BASE/$u4 ]] || fail "gc removed what it must only skip"
  grep -q "$BASE/$u3: not a directory" "$WORK/err" && grep -q "$BASE/$u4: owned by uid $U1" "$WORK/err" ||
    fail "gc did not report the bad user directories: $(head -c 400 "$WORK/err")"
}

# Images that are not squashfs, or broken ones: a clear one-line error, nothing left behind.
case_bad_images() {
  newbase 128m
  local b=$WORK/bad
  mkdir -p "$b"
  : >"$b/empty.sqfs"
  head -c 100000 "$IMG/many1.sqfs" >"$b/truncated.sqfs"
  cp "$IMG/many1.sqfs" "$b/superblock.sqfs" && printf '\x07\x00' | dd of="$b/superblock.sqfs" bs=1 seek=28 conv=notrunc 2>/dev/null
  cp "$IMG/many1.sqfs" "$b/magic.sqfs" && printf 'XXXX' | dd of="$b/magic.sqfs" bs=1 conv=notrunc 2>/dev/null
  cp "$IMG/big.sqfs" "$b/data.sqfs"
  local size
  size=$(stat -c %s "$b/data.sqfs")
  head -c 65536 /dev/urandom | dd of="$b/data.sqfs" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
  cp "$IMG/many1.sqfs" "$b/tables.sqfs"
  head -c 4096 /dev/urandom | dd of="$b/tables.sqfs" bs=1 seek=$(($(stat -c %s "$b/tables.sqfs") - 4200)) conv=notrunc 2>/dev/null
  mkdir -p "$b/dir.sqfs"
  chmod -R a+rX "$b"
  local f want
  for f in empty:"not a squashfs" truncated:"truncated" superblock:"corrupt" magic:"not a squashfs" \
    data:"unsquashfs failed|corrupt" tables:"unsquashfs failed|corrupt" dir:"not a regular file|directory" \
    missing:"not found"; do
    want=${f#*:} f=${f%%:*}
    attacks=$((attacks + 1))
    for who in 0 "$U1"; do
      if pc reuse --image "$b/$f.sqfs" --uid "$who" --gid "$who" >/dev/null 2>"$WORK/err"; then
        # A corruption unsquashfs does not notice is not ours to detect, but it must be reported if it is.
        [[ $f == data ]] || fail "reuse accepted the $f image"
        pc gc --all >/dev/null 2>&1
        continue
      fi
      one_line_error "$WORK/err" "$want" || echo "    ($f image, uid $who)" >&2
    done
  done
  (($(leftovers) == 0)) || fail "broken images left temporary directories: $(leftovers)"
  [[ -z $(find "$BASE" -mindepth 2 -maxdepth 2 -name 'pyxis_cache_u*') ]] || lose "a broken image left an entry"
}

# Device nodes, setuid/setgid files, absolute symlinks: nothing outside the entry, no privileges inside.
case_dangerous_images() {
  newbase 128m
  local s=$WORK/src/danger out path who
  tree "$s" 5 0
  cp /bin/busybox "$s/bin/su" && chmod 4755 "$s/bin/su"
  cp /bin/busybox "$s/bin/sg" && chmod 2755 "$s/bin/sg"
  mkdir -p "$s/sgid-dir" && chmod 2775 "$s/sgid-dir"
  ln -s "$SENT/root/file" "$s/etc/outside"
  ln -s "$SENT/root" "$s/outside-dir"
  mksquashfs "$s" "$IMG/danger.sqfs" -noappend -quiet -no-progress \
    -p "dev d 755 0 0" -p "dev/null c 666 0 0 1 3" -p "dev/sda b 660 0 0 8 0" -p "dev/fifo i 666 0 0 f" >/dev/null 2>&1
  chmod a+r "$IMG/danger.sqfs"
  attacks=$((attacks + 2))
  for who in 0 "$U1"; do
    out=$(pc reuse --image "$IMG/danger.sqfs" --uid "$who" --gid "$who" 2>"$WORK/err") ||
      { fail "reuse of an image with devices and setuid files (uid $who): $(cat "$WORK/err")"; continue; }
    path=$out
    [[ -z $(find "$path" \( -perm /6000 -o -type b -o -type c \) -print -quit) ]] ||
      lose "setuid/setgid files or device nodes survived into the rootfs of uid $who: $(find "$path" \( -perm /6000 -o -type b -o -type c \) | head -3)"
    [[ -x $path/bin/su && -L $path/etc/outside ]] || fail "the rest of the image is missing (uid $who)"
    [[ -z $(find "$path" ! -user "$who" -print -quit) ]] || fail "files not owned by uid $who"
  done
  as1 "$PC" reuse --image "$IMG/danger.sqfs" --no-plugstack --set "container_cache_data_path=$BASE" \
    >/dev/null 2>"$WORK/err" || fail "the user's own reuse of an image with devices: $(cat "$WORK/err")"
  pc gc --all >/dev/null 2>"$WORK/err" || fail "gc of entries with outside symlinks: $(cat "$WORK/err")"
  check_sentinel "images with outside symlinks"
}

# Images crafted past mksquashfs: a '..' name, and a symlink and a directory under one name.
case_crafted_images() {
  newbase 128m
  local s=$WORK/src/crafted
  mkdir -p "$s/QQ" "$s/dupa/dir" "$s/dupb"
  echo "escaped" >"$s/QQ/ESCAPED-DOTDOT"
  ln -s "$SENT/root/dir" "$s/dupa/AAAA"
  mkdir -p "$s/dupa/AAAB"
  echo "escaped" >"$s/dupa/AAAB/ESCAPED-DUP"
  # Uncompressed metadata, so that names can be patched in place.
  mksquashfs "$s" "$WORK/crafted.sqfs" -noappend -quiet -no-progress -noI -noD -noF -noX -no-fragments >/dev/null
  perl -0777 -pe 's/QQ/../; s/AAAB/AAAA/' "$WORK/crafted.sqfs" >"$IMG/crafted.sqfs"
  chmod a+r "$IMG/crafted.sqfs"
  cmp -s "$WORK/crafted.sqfs" "$IMG/crafted.sqfs" && fail "the image was not patched"
  attacks=$((attacks + 2))
  local who
  for who in 0 "$U1"; do
    pc reuse --image "$IMG/crafted.sqfs" --uid "$who" --gid "$who" >/dev/null 2>"$WORK/err" &&
      echo "    (crafted image accepted for uid $who)" >&2
    [[ -z $(find "$BASE" "$SENT" "$WORK" -maxdepth 3 \( -name ESCAPED-DOTDOT -o -name ESCAPED-DUP \) ! -path "$BASE/*/pyxis_cache_*/*" ! -path "$WORK/src/*" -print -quit) ]] ||
      lose "a crafted image wrote outside its entry: $(find "$BASE" "$SENT" \( -name 'ESCAPED-*' \) | head -3)"
    grep -qE '^\s+at |Uncaught' "$WORK/err" && fail "a crash: $(cat "$WORK/err")"
  done
  check_sentinel "crafted images"
  (($(leftovers) == 0)) || fail "crafted images left temporary directories"
}

# One user cannot read, reuse or delete another user's entries through any command.
case_cross_user() {
  newbase 128m
  local p1 out sum
  p1=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail reuse
  sum=$(manifest "$p1")
  local c=(--no-plugstack --set "container_cache_data_path=$BASE")
  attacks=$((attacks + 8))
  as2 "$PC" reuse --image "$IMG/small.sqfs" --uid "$U1" "${c[@]}" >/dev/null 2>"$WORK/err" &&
    lose "pcfault2 reused pcfault1's entry"
  grep -q 'only root' "$WORK/err" || fail "refusal not explained: $(cat "$WORK/err")"
  as2 "$PC" prepare --uid "$U2" --gid "$G2" "${c[@]}" >/dev/null 2>&1 && fail "a user ran prepare"
  out=$(as2 "$PC" status --json "${c[@]}" 2>/dev/null) || fail "pcfault2's status failed"
  [[ $(jq "[.entries[] | select(.uid != $U2)] | length" <<<"$out") == 0 ]] || lose "pcfault2's status shows others' entries"
  as2 "$PC" gc --all "${c[@]}" >/dev/null 2>&1
  as2 "$PC" gc --all --uid "$U1" --stale-after 0 "${c[@]}" >/dev/null 2>&1
  as2 cat "$p1/etc/os-release" >/dev/null 2>&1 && lose "pcfault2 read pcfault1's files"
  as2 ls "$BASE/$U1" >/dev/null 2>&1 && lose "pcfault2 listed pcfault1's directory"
  as2 flock -s -n "$p1/.pyxis_cache_lock" true 2>/dev/null && lose "pcfault2 took pcfault1's lock"
  out=$(as2 "$PC" reuse --image "$IMG/small.sqfs" "${c[@]}") || fail "pcfault2's own reuse"
  [[ $out == "$BASE/$U2/"* ]] || lose "pcfault2 got a path outside their directory: $out"
  [[ -d $p1 && $(manifest "$p1") == "$sum" ]] || lose "pcfault1's entry was changed by pcfault2"
  as2 "$PC" gc --all "${c[@]}" >/dev/null 2>&1
  [[ -d $p1 ]] || lose "pcfault2's gc --all evicted pcfault1's entry"
}
