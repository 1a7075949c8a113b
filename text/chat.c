/* text/chat.c — the Llama 4 prompt format as token ids (LLAMA4.md §4.2, §4.3, §11).
 *
 * Follows Meta's ChatFormat.encode_dialog_prompt rather than rendering the Jinja template to a string and
 * tokenizing it: every piece of text (the role name, "\n\n", each text item) is tokenized on its own, control
 * tokens are inserted as ids, and message text is never searched for special-token texts unless the caller
 * asks (so "<|eot|>" typed by a user stays plain text). Images are not known here: an image item calls back
 * into the caller (fusion/), which appends the image's token run — usually loom_chat_image_tokens's.
 *
 *   <|begin_of_text|>
 *   <|header_start|>system<|header_end|>\n\n{trimmed system text}<|eot|>        (when given)
 *   <|header_start|>user<|header_end|>\n\n{items, concatenated}<|eot|>
 *   <|header_start|>assistant<|header_end|>\n\n                                  (generation prompt)
 */
#include <string.h>

#include "core/alloc.h"
#include "text/text_int.h"

loom_chat_params loom_chat_default_params(void) {
    return (loom_chat_params){.add_bos = true, .add_generation_prompt = true, .parse_special = false};
}

static loom_status need(const loom_tok *t, int32_t id, const char *name, loom_err *err) {
    (void)t;
    if (id < 0) return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "chat template: the vocabulary has no %s token", name);
    return LOOM_OK;
}

static int is_trim_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static loom_status header(const loom_tok *t, const char *role, loom_tok_ids *out, loom_err *err) {
    loom_status st;
    /* Meta writes tool results under the role name "ipython" */
    if (!strcmp(role, "tool")) role = "ipython";
    if ((st = loom_tok_ids_push(out, t->chat.header_start, err)) ||
        (st = loom_tok_encode(t, role, strlen(role), 0, out, err)) ||
        (st = loom_tok_ids_push(out, t->chat.header_end, err)) || (st = loom_tok_encode(t, "\n\n", 2, 0, out, err)))
        return st;
    return LOOM_OK;
}

loom_status loom_chat_build(const loom_tok *t, const loom_chat_msg *msgs, size_t n_msgs, const loom_chat_params *params,
                            loom_chat_image_fn image_fn, void *user, loom_tok_ids *out, loom_err *err) {
    if (!t || !out || (!msgs && n_msgs)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_chat_build: NULL argument");
    loom_chat_params p = params ? *params : loom_chat_default_params();
    loom_status st;
    if ((st = need(t, t->chat.header_start, "<|header_start|>", err)) ||
        (st = need(t, t->chat.header_end, "<|header_end|>", err)) || (st = need(t, t->chat.eot, "<|eot|>", err)))
        return st;
    size_t n0 = out->n, n_image = 0;
    unsigned tflags = p.parse_special ? LOOM_TOK_PARSE_SPECIAL : 0;

    if (p.add_bos) {
        if (t->bos < 0) {
            st = LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "chat template: the vocabulary has no BOS token");
            goto fail;
        }
        if ((st = loom_tok_ids_push(out, t->bos, err))) goto fail;
    }
    for (size_t m = 0; m < n_msgs; m++) {
        const loom_chat_msg *msg = &msgs[m];
        if (!msg->role || (!msg->items && msg->n_items)) {
            st = LOOM_FAIL(err, LOOM_ERR_INVALID, "chat message %zu: no role or NULL items", m);
            goto fail;
        }
        int is_system = !strcmp(msg->role, "system");
        if ((st = header(t, msg->role, out, err))) goto fail;
        for (size_t k = 0; k < msg->n_items; k++) {
            const loom_chat_item *it = &msg->items[k];
            if (it->kind == LOOM_CHAT_IMAGE) {
                if (image_fn) st = image_fn(user, n_image, it, out, err);
                else if ((st = need(t, t->chat.image, "<|image|>", err)) == LOOM_OK)
                    st = loom_tok_ids_push(out, t->chat.image, err);
                n_image++;
                if (st) goto fail;
                continue;
            }
            if (it->kind != LOOM_CHAT_TEXT || (!it->text && it->len)) {
                st = LOOM_FAIL(err, LOOM_ERR_INVALID, "chat message %zu item %zu: bad kind or NULL text", m, k);
                goto fail;
            }
            const char *s = it->text ? it->text : "";
            size_t len = it->len ? it->len : strlen(s);
            if (is_system) { /* the HF template trims the system prompt (Jinja |trim) */
                while (len && is_trim_space(s[0])) s++, len--;
                while (len && is_trim_space(s[len - 1])) len--;
            }
            if ((st = loom_tok_encode(t, s, len, tflags, out, err))) goto fail;
        }
        if ((st = loom_tok_ids_push(out, t->chat.eot, err))) goto fail;
    }
    if (p.add_generation_prompt && (st = header(t, "assistant", out, err))) goto fail;
    return LOOM_OK;
fail:
    out->n = n0;
    return st;
}

/* ==== one image's token run ==== */

size_t loom_chat_image_n_tokens(int grid_h, int grid_w, int n_patch) {
    if (grid_h < 1 || grid_w < 1 || (size_t)grid_h * (size_t)grid_w > LOOM_CHAT_MAX_TILES || n_patch < 1 ||
        n_patch > 4096)
        return 0;
    size_t h = (size_t)grid_h, w = (size_t)grid_w, np = (size_t)n_patch;
    if (h * w == 1) return 1 + 1 + np + 1;
    /* start + tiles + x separators + y separators + <|image|> + thumbnail + end */
    return 1 + h * w * np + h * (w - 1) + h + 1 + np + 1;
}

static void fill(int32_t *dst, int32_t id, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = id;
}

loom_status loom_chat_image_tokens(const loom_tok *t, int grid_h, int grid_w, int n_patch, loom_tok_ids *out,
                                   loom_err *err) {
    if (!t || !out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_chat_image_tokens: NULL argument");
    size_t total = loom_chat_image_n_tokens(grid_h, grid_w, n_patch);
    if (!total)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "image tokens: grid %dx%d with %d patches per tile (1..%d tiles, "
                         "1..4096 patches)", grid_h, grid_w, n_patch, LOOM_CHAT_MAX_TILES);
    loom_status st;
    const tok_chat_ids *c = &t->chat;
    if ((st = need(t, c->image_start, "<|image_start|>", err)) || (st = need(t, c->image_end, "<|image_end|>", err)) ||
        (st = need(t, c->image, "<|image|>", err)) || (st = need(t, c->patch, "<|patch|>", err)))
        return st;
    int multi = grid_h * grid_w > 1;
    if (multi && ((st = need(t, c->tile_x_sep, "<|tile_x_separator|>", err)) ||
                  (st = need(t, c->tile_y_sep, "<|tile_y_separator|>", err))))
        return st;
    /* grow to the final size first (one failure point), then fill in place */
    size_t n0 = out->n;
    for (size_t i = 0; i < total; i++)
        if ((st = loom_tok_ids_push(out, 0, err))) {
            out->n = n0;
            return st;
        }
    int32_t *d = out->ids + n0;
    size_t np = (size_t)n_patch;
    *d++ = c->image_start;
    if (multi) {
        for (int ty = 0; ty < grid_h; ty++) {
            for (int tx = 0; tx < grid_w; tx++) {
                fill(d, c->patch, np);
                d += np;
                if (tx < grid_w - 1) *d++ = c->tile_x_sep;
            }
            *d++ = c->tile_y_sep; /* after every row, the last one included (Meta's _encode_image) */
        }
    }
    *d++ = c->image; /* single tile: the tile itself follows; several: the global thumbnail follows */
    fill(d, c->patch, np);
    d += np;
    *d++ = c->image_end;
    LOOM_ASSERT(d == out->ids + out->n);
    return LOOM_OK;
}
