#!/usr/bin/env bash
# Enforces the one-way folder dependencies of ../shared/design/ARCHITECTURE.md:
#   core -> nothing; text, vision, video -> core; fusion -> text, vision, core; cuda -> core; cli -> anything.
# Every project include is written with its folder ("core/tensor.h"), so an include line is an edge.
set -u
declare -A allowed=(
  [core]="core"
  [text]="text core"
  [vision]="vision core"
  [video]="video core"
  [fusion]="fusion text vision core"
  [cuda]="cuda core"
)
bad=0
for dir in "${!allowed[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include[[:space:]]*"([^"]+)".*/\1/' <<<"${line#*:}")
    target=${inc%%/*}
    [ "$target" = "$inc" ] && continue   # same-folder include without a path is not allowed either
    case " ${allowed[$dir]} " in
      *" $target "*) ;;
      *) echo "check-deps: forbidden edge $dir -> $target: $file includes \"$inc\""; bad=1 ;;
    esac
  done < <(grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$dir"/*.[ch] "$dir"/*.cu 2>/dev/null)
done
# Includes must name their folder, so the rule above sees every edge.
while IFS= read -r line; do
  echo "check-deps: include without folder path: $line"; bad=1
done < <(grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^/"]+"' core/*.[ch] text/*.[ch] vision/*.[ch] video/*.[ch] fusion/*.[ch] cli/*.[ch] 2>/dev/null)
if [ $bad -ne 0 ]; then exit 1; fi
echo "check-deps: ok (core -> none; text, vision, video -> core; fusion -> text, vision, core; cuda -> core)"
