/* fusion/fusion.h — loom's public session API: a Llama 4 model (text GGUF + optional mmproj), prompts that mix
 * text and images in Meta's chat format, and generation. The CLI is a thin layer over this header.
 *
 *   loom_model *m;
 *   loom_model_open(&m, "model.gguf", "mmproj.gguf", NULL, &err);       // mmproj may be NULL (text only)
 *   loom_session *s;
 *   loom_session_params sp = loom_session_default_params();           // n_ctx 4096, all cores, 16 tiles
 *   loom_session_new(&s, m, &sp, &err);
 *   loom_item items[] = {{.kind = LOOM_ITEM_IMAGE_FILE, .path = "cat.jpg"},
 *                        {.kind = LOOM_ITEM_TEXT, .text = "Describe this image."}};
 *   loom_session_set_chat(s, items, 2, NULL, &err);                   // decodes + encodes the image
 *   loom_gen_params gp = loom_gen_default_params();
 *   loom_session_generate(s, &gp, on_token, user, &stats, &err);      // streams text pieces to on_token
 *   loom_session_free(s); loom_model_close(m);
 *
 * Each distinct image (by a hash of its decoded pixels and the tiling options) is encoded once per session
 * and reused, so captioning the same image with several prompts pays for the ViT once.
 * Sub-modules: fusion/lm.h (the backbone alone, used by benchmarks and tests).
 */
#ifndef LOOM_FUSION_FUSION_H
#define LOOM_FUSION_FUSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/image.h"
#include "fusion/lm.h"
#include "text/text.h"
#include "vision/vision.h"

/* ==== model ==== */

typedef struct loom_model loom_model;

typedef struct loom_model_params {
    bool no_mmap; /* read weights into memory instead of mapping them */
    bool mlock;   /* pin weights in RAM */
} loom_model_params;

/* Opens the text model and, when mmproj_path is non-NULL, the vision projector. A text model without
 * tokenizer keys still opens (only id prompts work then). Free with loom_model_close. */
loom_status      loom_model_open(loom_model **out, const char *model_path, const char *mmproj_path,
                                 const loom_model_params *params, loom_err *err);
void             loom_model_close(loom_model *m);
const loom_lm   *loom_model_lm(const loom_model *m);
const loom_tok  *loom_model_tok(const loom_model *m);   /* NULL when the file has no tokenizer */
bool             loom_model_has_vision(const loom_model *m);

/* ==== session ==== */

typedef struct loom_session loom_session;

typedef struct loom_session_params {
    int64_t                n_ctx;      /* positions for prompt + generation (default 4096) */
    int                    n_threads;  /* <= 0: all cores */
    int                    max_tiles;  /* per image (default 16) */
    loom_img_decode_params decode;     /* image size limits, EXIF handling */
    bool                   keep_tiles; /* keep preprocessed tiles of the prompt's images (for dumps) */
} loom_session_params;

loom_session_params loom_session_default_params(void);
loom_status         loom_session_new(loom_session **out, loom_model *m, const loom_session_params *p, loom_err *err);
void                loom_session_free(loom_session *s);

/* ==== prompt ==== */

typedef enum loom_item_kind {
    LOOM_ITEM_TEXT = 0,     /* text, len (0: strlen) */
    LOOM_ITEM_IMAGE_FILE,   /* path to a JPEG/PNG/WebP file */
    LOOM_ITEM_IMAGE_MEMORY, /* buf, len: an encoded image in memory */
    LOOM_ITEM_IMAGE,        /* image: decoded 8-bit RGB (e.g. a video frame) */
} loom_item_kind;

typedef struct loom_item {
    loom_item_kind    kind;
    const char       *text;
    size_t            len;
    const char       *path;
    const void       *buf;
    const loom_image *image;
} loom_item;

typedef struct loom_prompt_params {
    const char *system;        /* optional system message */
    bool        parse_special; /* allow control tokens typed in the text (default false, as Meta) */
} loom_prompt_params;

/* Replaces the prompt with one user turn of `items` in order (Meta's chat format, LLAMA4.md §4), followed by
 * the assistant header. Images are decoded, tiled and encoded here (errors name the file). */
loom_status loom_session_set_chat(loom_session *s, const loom_item *items, size_t n_items, const loom_prompt_params *pp,
                                  loom_err *err);
/* Replaces the prompt with raw ids, used exactly as given (no BOS). Image tokens are not allowed here. */
loom_status loom_session_set_ids(loom_session *s, const int32_t *ids, size_t n, loom_err *err);
/* Replaces the prompt with plain text (not the chat format): BOS + text. */
loom_status loom_session_set_text(loom_session *s, const char *text, bool parse_special, loom_err *err);

/* The prompt as token ids (valid until the prompt changes). */
const int32_t *loom_session_prompt_ids(const loom_session *s, size_t *n);
/* The image embeddings that replace the prompt's <|patch|> rows, in order: [n_rows, d_model] f32. */
const float   *loom_session_patch_embeddings(const loom_session *s, size_t *n_rows);
/* The preprocessed tiles of the prompt's images, concatenated in order: [n_tiles, 3, 336, 336] f32.
 * NULL unless keep_tiles was set. */
const float   *loom_session_prompt_tiles(const loom_session *s, size_t *n_tiles);

/* ==== generation ==== */

typedef struct loom_gen_params {
    int                 n_predict;     /* tokens to generate at most (default 128; 0 = only evaluate the prompt) */
    loom_sampler_params sampler;
    bool                ignore_eog;    /* keep going past end-of-turn tokens */
    float              *prompt_logits; /* if non-NULL: receives [n_prompt, n_vocab] logits of every prompt row */
} loom_gen_params;

loom_gen_params loom_gen_default_params(void); /* greedy unless sampler.temperature > 0 */

typedef struct loom_gen_stats {
    int64_t n_prompt, n_gen;
    double  t_prompt_s, t_gen_s;
    double  t_encode_s;      /* ViT time spent for this prompt (0 when every image came from the cache) */
    int     n_tiles_encoded; /* tiles run through the ViT for this prompt */
    int     n_images_cached; /* images of this prompt found in the session's cache */
    bool    stopped_eog;     /* generation ended on an end-of-turn token */
} loom_gen_stats;

/* Called for every generated token; piece is complete UTF-8 text (possibly empty while a multi-byte
 * character is incomplete). Return non-zero to stop. */
typedef int (*loom_token_fn)(void *user, int32_t id, const char *piece, size_t len);

/* Evaluates the prompt from an empty cache, then samples up to n_predict tokens. stats may be NULL. */
loom_status loom_session_generate(loom_session *s, const loom_gen_params *gp, loom_token_fn fn, void *user,
                                  loom_gen_stats *stats, loom_err *err);

#endif
