/* cli/commands.h — one entry point per `loom` subcommand. Each returns the process exit status
 * (0 ok, 1 runtime error, 2 usage error) and prints its own errors; only main.c calls exit(). */
#ifndef LOOM_CLI_COMMANDS_H
#define LOOM_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_kernels(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_caption(int argc, char **argv);
int cmd_summarize(int argc, char **argv);
int cmd_synth(int argc, char **argv);

#endif
