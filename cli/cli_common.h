/* cli/cli_common.h — option parsing and output helpers shared by the `loom` subcommands. */
#ifndef LOOM_CLI_COMMON_H
#define LOOM_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fusion/fusion.h"

/* Options every generating command accepts (model, context, sampling, threads, output). */
typedef struct cli_gen_opts {
    const char *model, *mmproj;
    int64_t     n_ctx;
    int         n_predict;
    int         n_threads;
    float       temp, top_p, min_p, repeat_penalty;
    int         top_k, repeat_last_n;
    uint64_t    seed;
    bool        seed_set;
    bool        no_mmap, mlock;
    bool        print_ids;
    bool        json;
    bool        quiet;
    bool        ignore_eos;
    const char *system;
    bool        parse_special;
} cli_gen_opts;

void cli_gen_opts_init(cli_gen_opts *o);
/* Tries argv[*i] as a shared option: 1 consumed (advancing *i past its value), 0 not a shared option,
 * -1 bad value (message printed). */
int  cli_parse_gen_opt(cli_gen_opts *o, const char *cmd, int argc, char **argv, int *i);
void cli_gen_opts_help(FILE *f);
void cli_sampler_from_opts(const cli_gen_opts *o, loom_sampler_params *sp);

bool cli_parse_int(const char *s, long long lo, long long hi, long long *out);
bool cli_parse_float(const char *s, double lo, double hi, double *out);

/* Writes n items of `size` bytes; prints an error naming the file on failure. */
bool cli_write_file(const char *cmd, const char *path, const void *data, size_t size, size_t n);

/* Prints "loom CMD: msg" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON string of text that may hold invalid UTF-8 (a model can emit any bytes): invalid sequences become
 * U+FFFD, so the output stays valid JSON. Returns a new reference. */
struct json_t;
struct json_t *cli_json_text(const char *text, size_t len);

/* Collects generated text (and ids) and optionally streams it to stdout: the loom_token_fn of the commands.
 * Start from {0} plus the flags; free with cli_sink_release. */
typedef struct cli_sink {
    bool           print_ids;     /* stream ids instead of text */
    bool           stream;        /* write to stdout as tokens arrive (false: collect only, e.g. for --json) */
    bool           one_line;      /* newlines in streamed text become spaces (one caption per line) */
    char          *text;          /* everything generated, NUL-terminated */
    size_t         len, cap;
    struct json_t *ids;           /* JSON array of the generated ids, created on first use */
} cli_sink;
int  cli_sink_token(void *user, int32_t id, const char *piece, size_t len);
void cli_sink_release(cli_sink *k);

/* The --dump-prompt-ids / --dump-tiles / --dump-embeddings files of the session's current prompt (NULL paths
 * are skipped). false after printing an error. */
bool cli_dump_prompt(const char *cmd, const loom_session *s, const loom_model *m, const char *ids_path,
                     const char *tiles_path, const char *embd_path);

/* Generation parameters from the shared options. */
loom_gen_params cli_gen_params(const cli_gen_opts *o);

/* Timings like llama.cpp's perf summary, on stderr. */
void cli_print_timings(const loom_gen_stats *st);

#endif
