#!/usr/bin/env bash
# tools/fuzz.sh — builds the libFuzzer targets in tests/fuzz/ with clang (ASan + UBSan + coverage), makes their
# seed corpora and runs each for FUZZ_SECONDS (default 30). Exits non-zero when a target crashes, leaks, times
# out or fails to build; the crashing input is left in build/fuzz/artifacts/ (reproduce with
# `build/fuzz/fuzz_<target> <file>`).
#
#   tools/fuzz.sh                 all targets (make fuzz runs this)
#   tools/fuzz.sh gguf image      some of them
#   FUZZ_SECONDS=600 tools/fuzz.sh tokenizer
#   FUZZ_BUILD_ONLY=1 tools/fuzz.sh
#
# The library is compiled into build/fuzz/ through the Makefile (CONFIG=fuzz, CC=clang), so the normal build
# never needs clang. Corpora grow in build/fuzz/corpus/<target>/ across runs; seeds come from small generated
# files and, where present, $LOOM_SHARED/testdata (copied into build/, never committed).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_CC=${FUZZ_CC:-clang}
LOOM_SHARED=${LOOM_SHARED:-../shared}
OUT=build/fuzz
ALL_TARGETS=(gguf image tokenizer chat video)
TARGETS=("${@:-${ALL_TARGETS[@]}}")

if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
    echo "fuzz: $FUZZ_CC not found (the fuzz targets need clang's libFuzzer: apt-get install clang)" >&2
    exit 1
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' \
    >"$probe/p.c"
if ! "$FUZZ_CC" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
    echo "fuzz: $FUZZ_CC cannot link -fsanitize=fuzzer (libFuzzer missing from this clang)" >&2
    exit 1
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -Wno-error: clang warns about things gcc does not; a new clang warning must not stop fuzzing
LOOM_QUIET=1 make --no-print-directory -j"$(nproc)" CONFIG=fuzz CC="$FUZZ_CC" OPT="-O1" \
    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $SAN -Wno-error -Wno-unknown-pragmas" "$OUT/libloom.a"

pkgs=()
for p in libpcre2-8 jansson libturbojpeg libpng libwebp libavformat libavcodec libavutil libswscale; do
    pkg-config --exists "$p" 2>/dev/null && pkgs+=("$p")
done
LIBS="$(pkg-config --libs "${pkgs[@]}") -lm -pthread"
for t in "${TARGETS[@]}"; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz: no target '$t' (have: ${ALL_TARGETS[*]})" >&2; exit 1; }
    echo "  FUZZCC $OUT/fuzz_$t"
    # shellcheck disable=SC2086
    "$FUZZ_CC" -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unused-parameter -I. -fsanitize=fuzzer $SAN \
        "tests/fuzz/fuzz_$t.c" "$OUT/libloom.a" $LIBS -o "$OUT/fuzz_$t"
done
[ -n "${FUZZ_BUILD_ONLY:-}" ] && exit 0

# ---- seed corpora (rebuilt each run; small) ----
seed() { # seed TARGET NAME OPTION_BYTE_OCTAL [FILE]: the option byte, then FILE's bytes (or stdin)
    local d="$OUT/seeds/$1"
    mkdir -p "$d"
    { printf "\\$3"; if [ -n "${4:-}" ]; then cat "$4"; else cat; fi; } >"$d/$2"
}
rm -rf "$OUT/seeds"
mkdir -p "$OUT/seeds/gguf"
LOOM_FUZZ_WRITE_SEEDS="$OUT/seeds/gguf" "$OUT/fuzz_gguf" >/dev/null 2>&1 || [ ! -x "$OUT/fuzz_gguf" ] ||
    echo "fuzz: could not write GGUF seeds" >&2
img_dir="$LOOM_SHARED/testdata/llama4-tiny/images"
tmp="$probe"
if command -v ffmpeg >/dev/null 2>&1; then
    ff() { ffmpeg -loglevel error -y "$@" </dev/null; }
    # small images: one per decoder path (gray, RGBA, palette, 16-bit, progressive and CMYK-free JPEG, WebP)
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 "$tmp/rgb.png" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -pix_fmt gray "$tmp/gray.png" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -pix_fmt rgba "$tmp/rgba.png" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -pix_fmt pal8 "$tmp/pal.png" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -pix_fmt rgb48be "$tmp/rgb16.png" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 "$tmp/a.jpg" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -pix_fmt gray "$tmp/gray.jpg" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 "$tmp/a.webp" || true
    ff -f lavfi -i testsrc=size=24x16 -frames:v 1 -lossless 1 "$tmp/ll.webp" || true
    # tiny clips, one per common container/codec pair
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 -c:v mpeg4 -g 2 "$tmp/a.mp4" || true
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 -c:v mjpeg "$tmp/a.avi" || true
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 -c:v ffv1 "$tmp/a.mkv" || true
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 -c:v libx264 -bf 2 "$tmp/x264.mp4" || true
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 -c:v mpeg4 -metadata:s:v rotate=90 "$tmp/rot.mov" || true
    ff -f lavfi -i testsrc=size=32x24:rate=4 -t 1 "$tmp/a.gif" || true
fi
i=0
for f in "$tmp"/*.png "$tmp"/*.jpg "$tmp"/*.webp "$img_dir"/*.png "$img_dir"/img1_200x300.jpg; do
    [ -f "$f" ] || continue
    for o in 001 016 103; do seed image "$((i++))" "$o" "$f"; done
done
for f in "$tmp"/*.mp4 "$tmp"/*.avi "$tmp"/*.mkv "$tmp"/*.mov "$tmp"/*.gif; do
    [ -f "$f" ] && seed video "$((i++))" 012 "$f"
done
texts=("Hello, world!" "The quick brown fox jumps over the lazy dog."
       "<|begin_of_text|><|header_start|>user<|header_end|>\n\nHi<|eot|>" "  spaces   and\ttabs\n\n\nnewlines"
       "数字 123456789 über naïve café 😀👍" $'\xff\xfe invalid \xc3 utf8 \xe2\x82' "I'm it's we'll they've don't")
j=0
for s in "${texts[@]}"; do
    for o in 000 001 004 005 010 011; do printf '%b' "$s" | seed tokenizer "$((j++))" "$o"; done
done
if [ -f "$LOOM_SHARED/testdata/tokenizer/llama4_public.jsonl" ]; then
    head -c 2000 "$LOOM_SHARED/testdata/tokenizer/llama4_public.jsonl" | seed tokenizer public 001
fi
# a vocabulary in the input's own format (fuzz_tokenizer.c vocab_from_input): type byte + text, blank, merges
printf '\001a\n\001b\n\001ab\n\003<|x|>\n\na b\n' | seed tokenizer vocab 002
# chat: mode, then per message: role, item count, items (0 len text | 1 h w)
printf '\003\000\001\000\012You terse.\001\002\001\002\002\000\005Hello' | seed chat sys_user 026
printf '\002\001\003\000\003Hi \001\001\001\000\001?\002\001\000\002No' | seed chat image 026
printf '\001\004\001\000\004tool' | seed chat tool 007

# ---- runs ----
status=0
for t in "${TARGETS[@]}"; do
    corpus="$OUT/corpus/$t"
    mkdir -p "$corpus" "$OUT/artifacts" "$OUT/seeds/$t"
    extra=()
    case $t in
    video) extra=(-timeout=30 -max_len=65536) ;;
    gguf) extra=(-timeout=10 -max_len=65536) ;;
    *) extra=(-timeout=10) ;;
    esac
    echo "== fuzz_$t for ${FUZZ_SECONDS}s"
    if ! LOOM_SHARED="$LOOM_SHARED" "$OUT/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" "${extra[@]}" "$corpus" "$OUT/seeds/$t" \
        >"$OUT/fuzz_$t.log" 2>&1; then
        echo "fuzz_$t FAILED: see $OUT/fuzz_$t.log; input in $OUT/artifacts/" >&2
        grep -E "ERROR|SUMMARY|Test unit written" "$OUT/fuzz_$t.log" | head -5 >&2 || true
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$OUT/fuzz_$t.log" | tail -1 || true
    fi
done
[ $status -eq 0 ] && echo "fuzz: all targets ran clean"
exit $status
