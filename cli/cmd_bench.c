/* cli/cmd_bench.c — `loom bench`: dispatches to the benchmark families. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "kernels")) return cmd_bench_kernels(argc - 1, argv + 1);
    fprintf(stderr, "usage: loom bench kernels [options]   (matrix-vector throughput per weight type)\n");
    return 2;
}
