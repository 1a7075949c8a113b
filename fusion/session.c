/* fusion/session.c — the early fusion: prompt assembly with image token runs, embedding splice, generation.
 *
 * A prompt is a list of token ids plus, for every <|patch|> id in it, one row of image embeddings
 * (LLAMA4.md §4.4): the rows are consumed in prompt order (image 1's tiles row-major, its thumbnail, image 2,
 * ...). Generation embeds every id, overwrites the <|patch|> rows with the image embeddings, and runs one
 * forward pass over the mixed sequence; image tokens take ordinary sequential positions.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/threadpool.h"
#include "fusion/fusion.h"
#include "vision/vit.h"

#define IMAGE_CACHE_MAX   32
#define IMAGE_CACHE_BYTES ((size_t)512 << 20) /* a 17-tile image is ~50 MB of embeddings at Llama 4 width */
#define PROMPT_SLICE    512

struct loom_model {
    loom_lm  *lm;
    loom_tok *tok;
    loom_vit *vit;
};

/* One encoded image: its grid and embeddings, keyed by a hash of its pixels and the tiling options. */
typedef struct image_entry {
    uint64_t hash;
    size_t   bytes;
    int      grid_h, grid_w, n_tiles;
    float   *embd;  /* [n_tiles * n_tok_out, d_model] */
    uint64_t last_use;
} image_entry;

struct loom_session {
    loom_model         *m;
    loom_session_params p;
    loom_lm_session    *lms;
    loom_pool          *pool;      /* for the ViT (the backbone session owns its own) */
    loom_tok_ids        prompt;
    float              *patch_rows; /* [n_patch_rows, d_model] */
    size_t              n_patch_rows, cap_patch_rows;
    float              *tiles;      /* keep_tiles: [n_tiles, 3, S, S] */
    size_t              n_tiles;
    image_entry         cache[IMAGE_CACHE_MAX];
    uint64_t            use_clock;
    double              t_encode_s;
    int                 n_tiles_encoded, n_images_cached;
    int32_t             patch_id;
};

/* ==== model ==== */

loom_status loom_model_open(loom_model **out, const char *model_path, const char *mmproj_path,
                            const loom_model_params *params, loom_err *err) {
    *out = NULL;
    loom_model *m = loom_calloc(1, sizeof *m);
    if (!m) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    loom_lm_params lp = {0};
    if (params) {
        lp.no_mmap = params->no_mmap;
        lp.mlock = params->mlock;
    }
    loom_status st = loom_lm_open(&m->lm, model_path, &lp, err);
    if (st) goto fail;
    const loom_gguf *g = loom_lm_get_gguf(m->lm);
    if (loom_gguf_find_key(g, "tokenizer.ggml.tokens") >= 0) {
        if ((st = loom_tok_new_from_gguf(&m->tok, g, err))) {
            loom_err_prefix(err, "%s: ", model_path);
            goto fail;
        }
        if (loom_tok_n_vocab(m->tok) > loom_lm_get_hparams(m->lm)->n_vocab) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: tokenizer has %d tokens but the model only %d rows", model_path,
                           loom_tok_n_vocab(m->tok), loom_lm_get_hparams(m->lm)->n_vocab);
            goto fail;
        }
    }
    if (mmproj_path) {
        loom_vit_params vp = {0};
        vp.no_mmap = lp.no_mmap;
        vp.mlock = lp.mlock;
        if ((st = loom_vit_open(&m->vit, mmproj_path, &vp, err))) goto fail;
        int d_proj = loom_vit_get_hparams(m->vit)->d_proj, d_model = loom_lm_get_hparams(m->lm)->d_model;
        if (d_proj != d_model) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s projects images to width %d, but %s has width %d: not a matching pair",
                           mmproj_path, d_proj, model_path, d_model);
            goto fail;
        }
    }
    *out = m;
    return LOOM_OK;
fail:
    loom_model_close(m);
    return st;
}

void loom_model_close(loom_model *m) {
    if (!m) return;
    loom_vit_close(m->vit);
    loom_tok_free(m->tok);
    loom_lm_close(m->lm);
    loom_free(m);
}

const loom_lm *loom_model_lm(const loom_model *m) { return m->lm; }
const loom_tok *loom_model_tok(const loom_model *m) { return m->tok; }
bool loom_model_has_vision(const loom_model *m) { return m->vit != NULL; }

/* ==== session ==== */

loom_session_params loom_session_default_params(void) {
    loom_session_params p = {0};
    p.n_ctx = 4096;
    p.n_threads = 0;
    p.max_tiles = LOOM_IMG_MAX_TILES;
    p.decode = loom_img_decode_default_params();
    return p;
}

loom_status loom_session_new(loom_session **out, loom_model *m, const loom_session_params *p, loom_err *err) {
    *out = NULL;
    loom_session *s = loom_calloc(1, sizeof *s);
    if (!s) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    s->m = m;
    s->p = p ? *p : loom_session_default_params();
    if (s->p.max_tiles < 1 || s->p.max_tiles > LOOM_IMG_MAX_TILES * 4) {
        int bad = s->p.max_tiles;
        loom_session_free(s);
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "--max-tiles %d is out of range [1, %d]", bad, LOOM_IMG_MAX_TILES * 4);
    }
    s->patch_id = m->tok ? loom_tok_find(m->tok, "<|patch|>", 0) : -1;
    loom_status st = loom_lm_session_new(&s->lms, m->lm, s->p.n_ctx, s->p.n_threads, err);
    if (!st && m->vit) st = loom_pool_new(&s->pool, s->p.n_threads, err);
    if (st) {
        loom_session_free(s);
        return st;
    }
    *out = s;
    return LOOM_OK;
}

static void clear_prompt(loom_session *s) {
    s->prompt.n = 0;
    s->n_patch_rows = 0;
    loom_free(s->tiles);
    s->tiles = NULL;
    s->n_tiles = 0;
    s->t_encode_s = 0;
    s->n_tiles_encoded = 0;
    s->n_images_cached = 0;
}

void loom_session_free(loom_session *s) {
    if (!s) return;
    clear_prompt(s);
    loom_tok_ids_release(&s->prompt);
    loom_free(s->patch_rows);
    for (int i = 0; i < IMAGE_CACHE_MAX; i++) loom_free(s->cache[i].embd);
    loom_pool_free(s->pool);
    loom_lm_session_free(s->lms);
    loom_free(s);
}

/* ==== images ==== */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static loom_status push_patch_rows(loom_session *s, const float *rows, size_t n, loom_err *err) {
    size_t d = (size_t)loom_lm_get_hparams(s->m->lm)->d_model;
    if (s->n_patch_rows + n > s->cap_patch_rows) {
        size_t cap = s->cap_patch_rows ? s->cap_patch_rows : 1024;
        while (cap < s->n_patch_rows + n) cap *= 2;
        float *nr = loom_realloc(s->patch_rows, cap * d * sizeof(float));
        if (!nr) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for image embeddings");
        s->patch_rows = nr;
        s->cap_patch_rows = cap;
    }
    memcpy(s->patch_rows + s->n_patch_rows * d, rows, n * d * sizeof(float));
    s->n_patch_rows += n;
    return LOOM_OK;
}

static loom_status keep_tiles(loom_session *s, const loom_img_tiles *t, loom_err *err) {
    size_t tile = (size_t)3 * t->tile_size * t->tile_size;
    float *nt = loom_realloc(s->tiles, (s->n_tiles + (size_t)t->n_tiles) * tile * sizeof(float));
    if (!nt) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory keeping tiles");
    memcpy(nt + s->n_tiles * tile, t->data, (size_t)t->n_tiles * tile * sizeof(float));
    s->tiles = nt;
    s->n_tiles += (size_t)t->n_tiles;
    return LOOM_OK;
}

/* Finds or makes the cache entry of a decoded image: preprocess, encode, remember. */
static loom_status encode_image(loom_session *s, const loom_image *img, image_entry **out, loom_err *err) {
    const loom_vit_hparams *vh = loom_vit_get_hparams(s->m->vit);
    uint64_t h = 0xcbf29ce484222325ULL;
    int meta[4] = {img->w, img->h, img->c, s->p.max_tiles};
    h = fnv1a(h, meta, sizeof meta);
    h = fnv1a(h, img->data, (size_t)img->w * img->h * img->c);
    image_entry *slot = NULL;
    for (int i = 0; i < IMAGE_CACHE_MAX; i++)
        if (s->cache[i].embd && s->cache[i].hash == h) {
            s->cache[i].last_use = ++s->use_clock;
            s->n_images_cached++;
            if (s->p.keep_tiles) break; /* tiles are needed again: preprocess, but skip the ViT */
            *out = &s->cache[i];
            return LOOM_OK;
        }
    loom_img_prep_params pp = loom_img_prep_default_params();
    pp.max_tiles = s->p.max_tiles;
    pp.tile_size = vh->image_size;
    loom_img_tiles *t = NULL;
    loom_status st = loom_img_preprocess(&t, img, &pp, err);
    if (st) return st;
    if (s->p.keep_tiles && (st = keep_tiles(s, t, err))) goto done;
    for (int i = 0; i < IMAGE_CACHE_MAX; i++)
        if (s->cache[i].embd && s->cache[i].hash == h) {
            *out = &s->cache[i];
            goto done;
        }
    /* evict least recently used entries until the new one fits the byte budget and a slot is free (the
     * prompt being built holds copies of its rows, so evicting an entry it used is safe) */
    size_t rows = (size_t)t->n_tiles * vh->n_tok_out, bytes = rows * (size_t)vh->d_proj * sizeof(float);
    for (;;) {
        size_t used = 0;
        image_entry *lru = NULL;
        slot = NULL;
        for (int i = 0; i < IMAGE_CACHE_MAX; i++) {
            if (!s->cache[i].embd) {
                if (!slot) slot = &s->cache[i];
                continue;
            }
            used += s->cache[i].bytes;
            if (!lru || s->cache[i].last_use < lru->last_use) lru = &s->cache[i];
        }
        if (slot && (used + bytes <= IMAGE_CACHE_BYTES || !lru)) break;
        loom_free(lru->embd);
        memset(lru, 0, sizeof *lru);
    }
    slot->embd = loom_malloc(bytes);
    slot->bytes = bytes;
    if (!slot->embd) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for image embeddings");
        goto done;
    }
    /* tile by tile, so a 17-tile image on a real-size ViT shows progress; each tile is already a
     * 577-token batch, so the matmuls lose nothing by it */
    double t0 = loom_time_s();
    loom_progress prog;
    loom_progress_begin(&prog, "encoding image", t->n_tiles);
    size_t tile_px = (size_t)3 * t->tile_size * t->tile_size, tile_rows = (size_t)vh->n_tok_out * vh->d_proj;
    for (int k = 0; k < t->n_tiles && !st; k++) {
        st = loom_vit_encode(s->m->vit, s->pool, slot->embd + k * tile_rows, t->data + k * tile_px, 1, err);
        loom_progress_update(&prog, k + 1);
    }
    if (loom_time_s() - t0 > 1.0) loom_progress_end(&prog);
    s->t_encode_s += loom_time_s() - t0;
    s->n_tiles_encoded += t->n_tiles;
    if (st) {
        loom_free(slot->embd);
        slot->embd = NULL;
        goto done;
    }
    slot->hash = h;
    slot->grid_h = t->h_tiles;
    slot->grid_w = t->w_tiles;
    slot->n_tiles = t->n_tiles;
    slot->last_use = ++s->use_clock;
    *out = slot;
done:
    loom_img_tiles_free(t);
    return st;
}

/* loom_chat_build's image callback: decode the item, encode it, append its token run and embedding rows. */
static loom_status chat_image(void *user, size_t image_index, const loom_chat_item *item, loom_tok_ids *out,
                              loom_err *err) {
    loom_session *s = user;
    const loom_item *it = item->image;
    loom_image *decoded = NULL;
    const loom_image *img = it->image;
    loom_status st = LOOM_OK;
    if (it->kind == LOOM_ITEM_IMAGE_FILE) st = loom_img_decode_file(&decoded, it->path, &s->p.decode, err);
    else if (it->kind == LOOM_ITEM_IMAGE_MEMORY) st = loom_img_decode_memory(&decoded, it->buf, it->len, &s->p.decode, err);
    if (st) return st;
    if (decoded) img = decoded;
    if (!img || img->c != 3) {
        loom_image_free(decoded);
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "image %zu is not an RGB image", image_index + 1);
    }
    image_entry *e = NULL;
    st = encode_image(s, img, &e, err);
    loom_image_free(decoded);
    if (st) {
        if (it->kind == LOOM_ITEM_IMAGE_FILE && !strstr(err->msg, it->path)) loom_err_prefix(err, "%s: ", it->path);
        return st;
    }
    const loom_vit_hparams *vh = loom_vit_get_hparams(s->m->vit);
    if ((st = loom_chat_image_tokens(s->m->tok, e->grid_h, e->grid_w, vh->n_tok_out, out, err))) return st;
    return push_patch_rows(s, e->embd, (size_t)e->n_tiles * vh->n_tok_out, err);
}

/* ==== prompt ==== */

loom_status loom_session_set_chat(loom_session *s, const loom_item *items, size_t n_items, const loom_prompt_params *pp,
                                  loom_err *err) {
    clear_prompt(s);
    if (!s->m->tok) return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "this model file has no tokenizer; use --prompt-ids");
    loom_chat_item *ci = loom_calloc(n_items ? n_items : 1, sizeof *ci);
    if (!ci) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_items; i++) {
        if (items[i].kind == LOOM_ITEM_TEXT) {
            ci[i].kind = LOOM_CHAT_TEXT;
            ci[i].text = items[i].text;
            ci[i].len = items[i].len;
        } else {
            if (!s->m->vit) {
                loom_free(ci);
                return LOOM_FAIL(err, LOOM_ERR_INVALID, "the prompt has an image but no vision projector was loaded (pass --mmproj)");
            }
            if (s->patch_id < 0) {
                loom_free(ci);
                return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "the vocabulary has no <|patch|> token: not a Llama 4 vision model");
            }
            ci[i].kind = LOOM_CHAT_IMAGE;
            ci[i].image = &items[i];
        }
    }
    loom_chat_msg msgs[2];
    size_t n_msgs = 0;
    loom_chat_item sys_item = {LOOM_CHAT_TEXT, pp && pp->system ? pp->system : "", 0, NULL};
    if (pp && pp->system) msgs[n_msgs++] = (loom_chat_msg){"system", &sys_item, 1};
    msgs[n_msgs++] = (loom_chat_msg){"user", ci, n_items};
    loom_chat_params cp = loom_chat_default_params();
    cp.parse_special = pp && pp->parse_special;
    loom_status st = loom_chat_build(s->m->tok, msgs, n_msgs, &cp, chat_image, s, &s->prompt, err);
    loom_free(ci);
    if (st) clear_prompt(s);
    return st;
}

loom_status loom_session_set_ids(loom_session *s, const int32_t *ids, size_t n, loom_err *err) {
    clear_prompt(s);
    int n_vocab = loom_lm_get_hparams(s->m->lm)->n_vocab;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab)
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "prompt id %d (item %zu) is outside the vocabulary [0, %d)", ids[i],
                             i + 1, n_vocab);
        if (ids[i] == s->patch_id)
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "prompt id %d is <|patch|>: image tokens need an image (use caption)", ids[i]);
    }
    return loom_tok_ids_append(&s->prompt, ids, n, err);
}

loom_status loom_session_set_text(loom_session *s, const char *text, bool parse_special, loom_err *err) {
    clear_prompt(s);
    if (!s->m->tok) return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "this model file has no tokenizer; use --prompt-ids");
    unsigned flags = LOOM_TOK_ADD_BOS | (parse_special ? LOOM_TOK_PARSE_SPECIAL : 0);
    loom_status st = loom_tok_encode(s->m->tok, text, strlen(text), flags, &s->prompt, err);
    if (st) return st;
    for (size_t i = 0; i < s->prompt.n; i++)
        if (s->prompt.ids[i] == s->patch_id) {
            clear_prompt(s);
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "the prompt contains <|patch|> but no image");
        }
    return LOOM_OK;
}

const int32_t *loom_session_prompt_ids(const loom_session *s, size_t *n) {
    *n = s->prompt.n;
    return s->prompt.ids;
}

const float *loom_session_patch_embeddings(const loom_session *s, size_t *n_rows) {
    *n_rows = s->n_patch_rows;
    return s->patch_rows;
}

const float *loom_session_prompt_tiles(const loom_session *s, size_t *n_tiles) {
    *n_tiles = s->n_tiles;
    return s->tiles;
}

/* ==== generation ==== */

loom_gen_params loom_gen_default_params(void) {
    loom_gen_params g = {0};
    g.n_predict = 128;
    g.sampler = loom_sampler_default_params();
    g.sampler.temperature = 0.0f;
    return g;
}

loom_status loom_session_generate(loom_session *s, const loom_gen_params *gp, loom_token_fn fn, void *user,
                                  loom_gen_stats *stats, loom_err *err) {
    const loom_lm_hparams *hp = loom_lm_get_hparams(s->m->lm);
    size_t n = s->prompt.n, d = (size_t)hp->d_model, V = (size_t)hp->n_vocab;
    loom_gen_stats st_local = {0};
    loom_gen_stats *stt = stats ? stats : &st_local;
    memset(stt, 0, sizeof *stt);
    stt->t_encode_s = s->t_encode_s;
    stt->n_tiles_encoded = s->n_tiles_encoded;
    stt->n_images_cached = s->n_images_cached;
    if (n == 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "the prompt is empty");
    if ((int64_t)n + (gp->n_predict > 0 ? 1 : 0) > loom_lm_session_n_ctx(s->lms))
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "the prompt has %zu tokens but the context holds %lld; raise -c", n,
                         (long long)loom_lm_session_n_ctx(s->lms));
    loom_status st;
    float *x = loom_malloc(n * d * sizeof(float)), *logits = loom_malloc(V * sizeof(float));
    loom_sampler *smp = NULL;
    loom_tok_stream *stream = NULL;
    if (!x || !logits) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for a %zu-token prompt", n);
        goto done;
    }
    if ((st = loom_lm_embed(s->m->lm, x, s->prompt.ids, (int64_t)n, err))) goto done;
    /* splice: the k-th <|patch|> row of the prompt takes the k-th image embedding row */
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (s->prompt.ids[i] == s->patch_id) {
            if (used < s->n_patch_rows) memcpy(x + i * d, s->patch_rows + used * d, d * sizeof(float));
            used++;
        }
    if (used != s->n_patch_rows) {
        st = LOOM_FAIL(err, LOOM_ERR_INVALID, "the prompt has %zu <|patch|> tokens but %zu image embedding rows", used,
                       s->n_patch_rows);
        goto done;
    }
    if ((st = loom_sampler_new(&smp, &gp->sampler, err))) goto done;
    if (s->m->tok && (st = loom_tok_stream_new(&stream, s->m->tok, 0, err))) goto done;
    loom_lm_session_reset(s->lms);
    double t0 = loom_time_s();
    /* the prompt goes in slices so a long one shows progress (the backbone batches 512 positions anyway) */
    loom_progress prog;
    loom_progress_begin(&prog, "prompt", (int64_t)n);
    for (size_t done_pos = 0; done_pos < n;) {
        size_t m = n - done_pos < PROMPT_SLICE ? n - done_pos : PROMPT_SLICE;
        const float *xs = x + done_pos * d;
        if (gp->prompt_logits)
            st = loom_lm_eval(s->lms, xs, (int64_t)m, gp->prompt_logits + done_pos * V, LOOM_LOGITS_ALL, err);
        else
            st = loom_lm_eval(s->lms, xs, (int64_t)m, done_pos + m == n ? logits : NULL,
                              done_pos + m == n ? LOOM_LOGITS_LAST : LOOM_LOGITS_NONE, err);
        if (st) goto done;
        done_pos += m;
        loom_progress_update(&prog, (int64_t)done_pos);
    }
    if (loom_time_s() - t0 > 1.0) loom_progress_end(&prog);
    if (gp->prompt_logits) memcpy(logits, gp->prompt_logits + (n - 1) * V, V * sizeof(float));
    stt->n_prompt = (int64_t)n;
    stt->t_prompt_s = loom_time_s() - t0;
    for (size_t i = 0; i < n; i++) loom_sampler_accept(smp, s->prompt.ids[i]);
    t0 = loom_time_s();
    for (int k = 0; k < gp->n_predict; k++) {
        int32_t id = loom_sampler_sample(smp, logits, (int32_t)V);
        if (id < 0) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "the model produced no finite logit (NaN weights?)");
            goto done;
        }
        stt->n_gen++;
        bool eog = s->m->tok && loom_tok_is_eog(s->m->tok, id);
        const char *piece = "";
        size_t plen = 0;
        if (eog && !gp->ignore_eog) {
            stt->stopped_eog = true;
            if (fn) fn(user, id, "", 0);
            break;
        }
        if (stream && (st = loom_tok_stream_push(stream, id, &piece, &plen, err))) goto done;
        if (fn && fn(user, id, piece, plen)) break;
        if (k + 1 == gp->n_predict) break;
        if (loom_lm_session_pos(s->lms) >= loom_lm_session_n_ctx(s->lms)) {
            LOOM_WARN("context of %lld positions is full; stopping (raise -c)", (long long)loom_lm_session_n_ctx(s->lms));
            break;
        }
        if ((st = loom_lm_embed(s->m->lm, x, &id, 1, err))) goto done;
        if ((st = loom_lm_eval(s->lms, x, 1, logits, LOOM_LOGITS_LAST, err))) goto done;
    }
    if (stream && fn) {
        const char *rest;
        size_t rlen;
        loom_tok_stream_flush(stream, &rest, &rlen);
        if (rlen) fn(user, -1, rest, rlen);
    }
    stt->t_gen_s = loom_time_s() - t0;
done:
    loom_tok_stream_free(stream);
    loom_sampler_free(smp);
    loom_free(x);
    loom_free(logits);
    return st;
}
