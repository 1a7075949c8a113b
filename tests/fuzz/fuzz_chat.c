/* tests/fuzz/fuzz_chat.c — libFuzzer target for the Llama 4 chat template (loom_chat_build) and image token
 * runs (loom_chat_image_tokens).
 *
 * The input is a conversation: byte 0 picks the vocabulary and the params, then each message is a role byte,
 * an item count and items, each item a kind byte and a length-prefixed text (an image item's two bytes give the
 * tile grid its callback expands, invalid grids included). A successful build must start with BOS when asked,
 * hold only valid ids and have exactly one image run per image item; a failed one must leave the output ids as
 * they were.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "tests/fuzz/fuzz_vocab.h"
#include "text/text.h"

typedef struct grid {
    int h, w;
} grid;

typedef struct ctx {
    const loom_tok *t;
    size_t          calls;
} ctx;

static loom_status expand(void *user, size_t index, const loom_chat_item *item, loom_tok_ids *out, loom_err *err) {
    ctx        *c = user;
    const grid *g = item->image;
    if (index != c->calls++) abort(); /* images are numbered in order */
    return loom_chat_image_tokens(c->t, g->h, g->w, 1 + (g->h * 7 + g->w) % 20, out, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        loom_log_set_level(LOOM_LOG_NONE);
        once = 1;
    }
    enum { MAX_MSG = 8, MAX_ITEM = 32 };
    static const char *const roles[] = {"system", "user", "assistant", "ipython", "tool", "", "<|eot|>", "a\nb"};
    if (size < 1) return 0;
    const uint8_t *p = data, *end = data + size;
    const uint8_t  mode = *p++;
    const loom_tok *t = (mode & 1) && fuzz_real_vocab() ? fuzz_real_vocab() : fuzz_small_vocab();
    loom_chat_params cp = {.add_bos = mode & 2, .add_generation_prompt = mode & 4, .parse_special = mode & 8};

    loom_chat_msg  msgs[MAX_MSG];
    loom_chat_item items[MAX_MSG][MAX_ITEM];
    grid           grids[MAX_MSG][MAX_ITEM];
    char          *texts[MAX_MSG * MAX_ITEM];
    size_t         n_msgs = 0, n_texts = 0, n_images = 0;
    while (p < end && n_msgs < MAX_MSG) {
        uint8_t r = *p++, k = p < end ? *p++ % (MAX_ITEM + 1) : 0;
        loom_chat_msg *m = &msgs[n_msgs];
        m->role = roles[r % 8];
        m->items = items[n_msgs];
        m->n_items = 0;
        for (uint8_t j = 0; j < k && p < end; j++) {
            loom_chat_item *it = &items[n_msgs][m->n_items++];
            uint8_t         kind = *p++;
            if (kind & 1) {
                grid *g = &grids[n_msgs][m->n_items - 1];
                g->h = p < end ? (int8_t)*p++ % 10 : 1;
                g->w = p < end ? (int8_t)*p++ % 10 : 1;
                *it = (loom_chat_item){LOOM_CHAT_IMAGE, NULL, 0, g};
                n_images++;
            } else {
                size_t len = p < end ? *p++ : 0;
                if (len > (size_t)(end - p)) len = (size_t)(end - p);
                char *s = malloc(len + 1); /* exact size: the item gives its length, no NUL is read */
                memcpy(s, p, len);
                s[len] = 0;
                p += len;
                texts[n_texts++] = s;
                /* len 0 means strlen: make it mean that for texts with an inner NUL too */
                *it = (loom_chat_item){LOOM_CHAT_TEXT, s, kind & 2 ? 0 : len, NULL};
            }
        }
        n_msgs++;
    }

    loom_tok_ids ids = {0};
    loom_err     err = {0};
    if (loom_tok_ids_push(&ids, 7, &err) != LOOM_OK) abort(); /* ids already there must survive a failure */
    ctx         c = {t, 0};
    int         use_cb = (mode & 16) != 0;
    loom_status st = loom_chat_build(t, msgs, n_msgs, (mode & 32) ? NULL : &cp, use_cb ? expand : NULL, &c, &ids, &err);
    if (st != LOOM_OK) {
        if (ids.n != 1 || ids.ids[0] != 7 || !err.msg[0]) abort();
    } else {
        int want_bos = (mode & 32) ? 1 : cp.add_bos;
        if (want_bos && (ids.n < 2 || ids.ids[1] != loom_tok_bos(t))) abort();
        for (size_t i = 1; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= loom_tok_n_vocab(t)) abort();
        if (use_cb && c.calls != n_images) abort();
        size_t n_start = 0, n_image_tok = 0;
        int32_t is = loom_tok_find(t, "<|image_start|>", 0), im = loom_tok_find(t, "<|image|>", 0);
        for (size_t i = 1; i < ids.n; i++) n_start += ids.ids[i] == is, n_image_tok += ids.ids[i] == im;
        if (use_cb && !cp.parse_special && n_start != n_images) abort();
        if (!use_cb && !cp.parse_special && n_image_tok != n_images) abort();
    }
    loom_tok_ids_release(&ids);
    for (size_t i = 0; i < n_texts; i++) free(texts[i]);
    return 0;
}
