#!/usr/bin/env bash
# Refuses an assertion that cannot fail in a bats test: a command negated with `!` in the middle
# of a @test (or of a function in a file bats loads). errexit ignores a negated command, so
# `! pgrep x` followed by more lines passes whatever pgrep finds; only the last command of a
# function decides its status. Allowed: `run ! cmd`, `! cmd || false` (any `||` after it), a `!`
# inside `if`/`while`/`until`/`[[ ]]`, and a `!` statement that is the last before the function's
# closing `}`.
#
#   bash tests/lint-bats.sh [FILE...]   (default: every .bats and .bash file under tests/)
#
# Prints one line per offence, `file:line: a mid-test '! cmd' cannot fail (write 'run ! cmd' or
# '! cmd || false')`, and exits 1 if there was any; exits 0 and prints nothing otherwise.
set -euo pipefail
shopt -s extglob

if (($# == 0)); then
  cd "$(dirname "$0")/.."
  mapfile -t files < <(find tests -type f \( -name '*.bats' -o -name '*.bash' \) | sort)
  set -- "${files[@]}"
fi

# A negated command starts a statement: at the line's start or after `;`, `&&`, `||`, `{`,
# `then`, `do` or `else`. (`if !`, `while !`, `until !`, `elif !` are conditions, not statements;
# `run !`, `[ ! …`, `[[ ! …` and `test ! …` are not negated commands.)
negated='(^|;|&&|\|\||\{|[[:space:]]then|[[:space:]]do|[[:space:]]else|^then|^do|^else)[[:space:]]*![[:space:]]'

bad=0
for file in "$@"; do
  mapfile -t lines <"$file"
  n=${#lines[@]}
  heredoc=
  i=0
  while ((i < n)); do
    start=$((i + 1))
    line=${lines[i]}
    i=$((i + 1))
    if [[ -n $heredoc ]]; then
      [[ ${line#"${line%%[![:space:]]*}"} == "$heredoc" ]] && heredoc=
      continue
    fi
    # Join continued lines, so an `|| false` on the next line counts.
    while [[ $line == *\\ ]] && ((i < n)); do
      line=${line%\\}${lines[i]}
      i=$((i + 1))
    done
    # Quoted text is not code here (`bash -c '...; ! x'` is another shell's business).
    code=${line//\'*([^\'])\'/}
    code=${code//\"*([^\"\\]|\\?)\"/}
    code=${code%%[[:space:]]#*}
    [[ $code =~ ^[[:space:]]*# ]] && continue
    # A heredoc's body is text; its word may be quoted (and so gone from $code).
    if [[ $code == *'<<'* && $code != *'<<<'* && $line =~ \<\<-?[[:space:]]*[\'\"]?([A-Za-z_][A-Za-z0-9_]*) ]]; then
      heredoc=${BASH_REMATCH[1]}
    fi
    # `[[ … ! … ]]` is a test, not a negated command; so is any `!` in the condition of an
    # `if`/`elif`/`while`/`until` (up to its `then` or `do`).
    code=${code//\[\[*\]\]/[[ ]]}
    if [[ $code =~ ^[[:space:]]*(if|elif|while|until)[[:space:]] ]]; then
      if [[ $code =~ [\;[:space:]](then|do)([[:space:]].*|$) ]]; then code=${BASH_REMATCH[0]}; else continue; fi
    fi
    [[ $code =~ $negated ]] || continue
    # `! cmd || …`: the `||` after the negation makes a failure count.
    after=${code#*"${BASH_REMATCH[0]}"}
    [[ $after == *'||'* ]] && continue
    # The last statement of a function (a @test is one) is its status: allowed.
    j=$i
    while ((j < n)) && [[ ${lines[j]} =~ ^[[:space:]]*(#.*)?$ ]]; do j=$((j + 1)); done
    ((j < n)) && [[ ${lines[j]} =~ ^\}[[:space:]]*$ ]] && continue
    echo "$file:$start: a mid-test '! cmd' cannot fail (write 'run ! cmd' or '! cmd || false'): ${line#"${line%%[![:space:]]*}"}"
    bad=1
  done
done
exit "$bad"
