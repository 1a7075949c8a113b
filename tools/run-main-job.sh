#!/usr/bin/env bash
# The README's run command lands here after building. Until the bundled demo model ships, it needs model files:
#   make run MODEL=text.gguf MMPROJ=mmproj.gguf IMAGE=photo.jpg
set -u
LOOM=$1
if [ -z "${MODEL:-}" ]; then
  echo "loom is built: $LOOM"
  echo "The main job needs a Llama 4 GGUF; no demo model is bundled yet. Pass one:"
  echo "  make run MODEL=Llama-4-Scout-17B-16E-Instruct-Q4_K_M.gguf [MMPROJ=mmproj-Llama-4-Scout-17B-16E-Instruct-f16.gguf IMAGE=photo.jpg]"
  echo "Meanwhile 'loom info FILE.gguf' describes any GGUF file."
  exit 0
fi
if [ -n "${MMPROJ:-}" ] && [ -n "${IMAGE:-}" ]; then
  exec "$LOOM" caption "$IMAGE" -m "$MODEL" --mmproj "$MMPROJ"
fi
exec "$LOOM" run -m "$MODEL" -p "${PROMPT:-Tell me about llamas.}" -n "${N:-64}"
