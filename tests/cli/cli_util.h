/* tests/cli/cli_util.h — running the built `loom` binary ($LOOM_BIN, set by `make test-run`) from a test. */
#ifndef LOOM_TESTS_CLI_UTIL_H
#define LOOM_TESTS_CLI_UTIL_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

typedef struct cli_result {
    int   status; /* raw wait status */
    char *out;    /* stdout, loom_malloc'd, NUL-terminated */
    char *err;    /* stderr */
} cli_result;

/* The loom binary, or skip the calling test. */
#define CLI_BIN(var)                                                                                          \
    const char *var = getenv("LOOM_BIN");                                                                     \
    do {                                                                                                      \
        if (!var || !*var || access(var, X_OK) != 0) cr_skip_test("LOOM_BIN not set (run via make test-run)"); \
    } while (0)

static inline char *cli_slurp(const char *path) {
    size_t n = 0;
    char *b = loom_test_read_file(path, &n);
    char *s = loom_malloc(n + 1);
    if (b) memcpy(s, b, n);
    s[b ? n : 0] = 0;
    loom_free(b);
    return s;
}

/* Runs argv (argv[0] = the binary) with stdout and stderr captured. */
static inline cli_result cli_run(char *const argv[]) {
    char out_path[] = "/tmp/loom_cli_out_XXXXXX", err_path[] = "/tmp/loom_cli_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    cli_result r = {0};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    waitpid(pid, &r.status, 0);
    close(fo);
    close(fe);
    r.out = cli_slurp(out_path);
    r.err = cli_slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static inline void cli_result_free(cli_result *r) {
    loom_free(r->out);
    loom_free(r->err);
}

#endif
