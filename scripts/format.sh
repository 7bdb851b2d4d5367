#!/usr/bin/env bash
# Formats every C file of ours in place with the checked-in .clang-format (clang-format 14).
#   scripts/format.sh            rewrite the files
#   scripts/format.sh --check    change nothing; list what is off and exit 1 if anything is
#                                (the ctest test lint/clang-format, so scripts/test.sh)
# The files: *.c and *.h under common/ gateway/ worker/ tools/ tests/ that git tracks or would
# track (new files count before their first commit). Not covered: the llhttp sources (Debian's
# node-llhttp, outside the tree), the generated build-*/tg_migrations.c, tests/peers/node_modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
dirs=(common gateway worker tools tests)

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${dirs[@]/%//*.c}" \
                         "${dirs[@]/%//*.h}" | sort -u)
else # an unpacked tarball: the same directories, minus what .gitignore would leave out
  mapfile -t files < <(find "${dirs[@]}" -path tests/peers/node_modules -prune -o \
                         -type f \( -name '*.c' -o -name '*.h' \) -print | sort)
fi
# A file deleted in the work tree but still in the index is skipped.
existing=()
for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
((${#existing[@]})) || { echo "format: no C files found under ${dirs[*]}" >&2; exit 1; }

if [ "${1:-}" = --check ]; then
  # --dry-run -Werror reports every change as an error with file:line:column and exits 1.
  exec "$CLANG_FORMAT" --style=file --dry-run -Werror "${existing[@]}"
fi
exec "$CLANG_FORMAT" --style=file -i "${existing[@]}"
