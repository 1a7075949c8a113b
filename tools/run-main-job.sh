#!/usr/bin/env bash
# The README's run command lands here after building.
#   make run MODEL=text.gguf MMPROJ=mmproj.gguf IMAGE=photo.jpg   caption an image
#   make run MODEL=text.gguf [PROMPT="..."] [N=64]                 generate text
# Without MODEL, and with the reference data present ($LOOM_SHARED, default ../shared), it runs the whole image
# pipeline on the tiny random-weight Llama 4 reference model, so a fresh machine shows the job end to end.
set -u
LOOM=$1
SHARED=${LOOM_SHARED:-../shared}
TINY=$SHARED/testdata/llama4-tiny
if [ -z "${MODEL:-}" ]; then
  if [ -f "$TINY/models/scout-like.gguf" ]; then
    echo "== loom caption on the tiny reference model (random weights: the text is noise; the pipeline is real)"
    echo "   pass MODEL=... MMPROJ=... IMAGE=... to caption with a real Llama 4 GGUF"
    "$LOOM" caption "$TINY/images/img3_480x640.png" "$TINY/images/img5_1000x700.jpg" -m "$TINY/models/scout-like.gguf" \
      --mmproj "$TINY/models/mmproj-tiny-llama4.gguf" --temp 0 -n 16 --json
    exit $?
  fi
  echo "loom is built: $LOOM"
  echo "The main job needs a Llama 4 GGUF; no model is bundled. Pass one:"
  echo "  make run MODEL=Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf MMPROJ=mmproj-Llama-4-Scout-17B-16E-Instruct-f16.gguf IMAGE=photo.jpg"
  exit 0
fi
if [ -n "${MMPROJ:-}" ] && [ -n "${IMAGE:-}" ]; then
  exec "$LOOM" caption "$IMAGE" -m "$MODEL" --mmproj "$MMPROJ"
fi
exec "$LOOM" run -m "$MODEL" --chat -p "${PROMPT:-Tell me about llamas.}" -n "${N:-64}"
