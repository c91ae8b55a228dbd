/* bench_engine.h - `hx bench train`, `hx bench infer` and `hx bench eval`: CPU/GPU throughput of the Qwen3 engine. */
#ifndef HX_BENCH_ENGINE_H
#define HX_BENCH_ENGINE_H

int hx_bench_train(int argc, char **argv);
int hx_bench_infer(int argc, char **argv);
int hx_bench_eval(int argc, char **argv);

#endif
