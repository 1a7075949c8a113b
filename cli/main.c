/* cli/main.c — the `loom` command: dispatch to a subcommand. The only place that calls exit(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a prompt (plain, chat or token ids)"},
    {"caption", cmd_caption, "caption images (files or directories)"},
    {"summarize", cmd_summarize, "summarize a video clip from sampled frames"},
    {"info", cmd_info, "print a GGUF file's metadata and tensors (--json)"},
    {"quantize", cmd_quantize, "rewrite a GGUF's weight matrices as Q4_K, Q8_0, ... (llama.cpp's rules)"},
    {"bench", cmd_bench, "benchmarks: 'loom bench kernels' for the matmul kernels"},
    {"synth", cmd_synth, "write random-weight Llama 4-shaped GGUFs (for benchmarks and tests)"},
    {"tokenize", cmd_tokenize, "tokenize stdin with a model's vocabulary, print the ids (--jsonl)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: loom <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'loom <command> --help' describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        exit(2);
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        exit(0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) exit(commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "loom: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    exit(2);
}
