#!/usr/bin/env bash
# Fails when a lower layer of src/ calls into a higher one (docs/architecture.md
# "Layers"). Reads the symbols of libdonkey's object files with nm: for every
# function or variable a file uses and another file of the library defines,
# the user's folder must not be below the definer's. Prints each offending
# symbol with both files. Also fails when a file of src/ includes a header of
# a higher folder, or includes with "../" (headers are named from src/).
#
# Usage: scripts/check-layers.sh [BUILD_DIR]   (default: build)
#
# Order, lowest first. A folder may use its own layer and those before it.
# adapters/ (Redis, PostgreSQL NOTIFY) sit just below app/: only app/ wires
# them to the services, nothing below may call them.
set -euo pipefail
LAYERS="base db services http rpc web adapters app"

build=${1:-build}
objdir="$build/CMakeFiles/donkey_objects.dir/src"
if [ ! -d "$objdir" ]; then
  echo "check-layers: no object files in $objdir (build the library first)" >&2
  exit 2
fi
NM=${NM:-nm}

rank() {
  local i=0 l
  for l in $LAYERS; do
    [ "$l" = "$1" ] && { echo "$i"; return; }
    i=$((i + 1))
  done
  echo -1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/defs"
: >"$tmp/uses"
unknown=0
while IFS= read -r obj; do
  rel=${obj#"$objdir"/}   # e.g. http/server.c.o
  src=src/${rel%.o}
  folder=${rel%%/*}
  r=$(rank "$folder")
  if [ "$r" -lt 0 ]; then
    echo "check-layers: $src is in no layer (folder '$folder'; layers: $LAYERS)" >&2
    unknown=1
    continue
  fi
  # Defined (text, data, bss, read-only, common) and undefined symbols.
  "$NM" "$obj" | awk -v f="$src" -v r="$r" '
    NF == 3 && $2 ~ /^[TDBRCV]$/ { print $3, f, r >> "'"$tmp/defs"'" }
    NF == 2 && $1 == "U"        { print $2, f, r >> "'"$tmp/uses"'" }'
done < <(find "$objdir" -name '*.o' | sort)

# Join uses with definitions; report a use whose definer ranks higher.
bad=$(awk '
  FNR == NR { def[$1] = $2; rk[$1] = $3; next }
  ($1 in def) && def[$1] != $2 && rk[$1] > $3 { print $2 " -> " def[$1] ": " $1 }
' "$tmp/defs" "$tmp/uses" | sort -u)

# Includes: "layer/file.h" must not name a higher layer; no "../".
src_root=$(cd "$(dirname "$0")/.." && pwd)/src
inc_bad=""
while IFS= read -r f; do
  rel=${f#"$src_root"/}
  folder=${rel%%/*}
  r=$(rank "$folder")
  [ "$r" -ge 0 ] || continue
  while IFS= read -r inc; do
    case $inc in
      ../*) inc_bad+="src/$rel includes \"$inc\" (name headers from src/, without ../)"$'\n'; continue ;;
    esac
    il=$(rank "${inc%%/*}")
    if [ "$il" -gt "$r" ]; then
      inc_bad+="src/$rel includes \"$inc\" (layer ${inc%%/*} is above $folder)"$'\n'
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find "$src_root" -name '*.[ch]' | sort)
if [ -n "$inc_bad" ]; then
  bad+=$'\n'"${inc_bad%$'\n'}"
  bad=${bad#$'\n'}
fi

if [ -n "$bad" ]; then
  echo "check-layers: a lower layer calls or includes a higher one (order: $LAYERS):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  echo "check-layers: move the code down, or let the app layer wire a hook (src/internal.h dk__wiring)." >&2
  exit 1
fi
[ "$unknown" -eq 0 ] || exit 1
n=$(find "$objdir" -name '*.o' | wc -l)
echo "check-layers: $n object files, no call or include from a lower layer into a higher one ($LAYERS)"
