/* cuda_model.c - whole models on the GPU against the CPU engine: Qwen3 and Hybrid training steps, greedy generation, scoring. */
#include "tests/cuda/model_check.h"

/*
 * The CUDA backend rounds both matmul operands to bf16 (unit roundoff 2^-9 = 2e-3, fp32 accumulation); every
 * other op is fp32. Tolerances, from that:
 *  loss 5e-3      logits carry ~sqrt(2) 2^-9 relative noise of the final matmul plus the layers', the mean
 *                 log-softmax averages it: measured a few 1e-4.
 *  grad 5e-2      normalised error of all gradients: each passes through about 2 L + 2 bf16 products forward and
 *                 back (errors add in quadrature: ~sqrt(12) 3e-3 = 1e-2), 5x margin; a wrong layout or a missed
 *                 accumulation gives errors near 1. The worst single tensor may have 3x that (small norm weights).
 *  weight 1e-2    weights after 2 AdamW steps at lr 1e-3 (relative to the weights, init 0.02): Adam's first steps
 *                 are ~sign(g) lr per element, so elements whose gradient is near zero may move the other way.
 *  score 2e-2    summed log-probabilities of 24-token continuations under the generation models (init range x10:
 *                 logits of magnitude ~10, so bf16 noise of ~1e-2 per logit adds up over the tokens; measured 5e-3).
 *  tie 2e-2       greedy tokens must be equal unless the CPU's logits of the two tokens are within 2e-2 of the
 *                 largest logit (a near-tie that bf16 rounding can flip; then the sequences diverge legitimately).
 */
static const mc_tol BF16 = {.loss = 5e-3, .grad = 5e-2, .weight = 1e-2, .score = 2e-2, .tie = 2e-2};

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* the log shows how far it got if something aborts */
    k_backend *cpu = k_backend_new("cpu", 0), *gpu = k_backend_new("cuda", 0);
    if (!gpu) {
        fprintf(stderr, "cuda_model: %s\n", hx_last_error());
        return 1;
    }
    nn_config q, h;
    mc_cfg_qwen3(&q);
    mc_cfg_hybrid(&h);
    int fails = 0;
    fails += mc_train(cpu, gpu, &q, "qwen3", 2, 40, 2, &BF16);
    fails += mc_train(cpu, gpu, &q, "qwen3 long", 1, 300, 1, &BF16);
    fails += mc_generate(cpu, gpu, &q, "qwen3", &BF16);
    /* head dim 128: attention on the tensor-core path (flash.cu), several 64-row tiles, packed documents */
    nn_config q128;
    nn_config_qwen3(&q128, 131, 256, 2, 4, 2, 128, 384);
    fails += mc_train(cpu, gpu, &q128, "qwen3 head_dim 128", 2, 150, 2, &BF16);
    fails += mc_generate(cpu, gpu, &q128, "qwen3 head_dim 128", &BF16);
    fails += mc_train(cpu, gpu, &h, "hybrid", 2, 70, 2, &BF16);
    fails += mc_train(cpu, gpu, &h, "hybrid long", 1, 200, 1, &BF16);
    fails += mc_generate(cpu, gpu, &h, "hybrid", &BF16);
    /* a hybrid at K = V = 128: the KDA layers take the chunk-parallel kernels (kda_chunk.cu), attention flash */
    nn_config h128;
    mc_cfg_hybrid_shape(&h128, 256, 2, 1, 128, 384, 16);
    fails += mc_train(cpu, gpu, &h128, "hybrid head_dim 128", 2, 150, 2, &BF16);
    fails += mc_generate(cpu, gpu, &h128, "hybrid head_dim 128", &BF16);
    /* the small and tiny scales' head dims, 64 and 32: their KDA layers take the chunk-parallel kernels too */
    nn_config h64, h32;
    mc_cfg_hybrid_shape(&h64, 128, 2, 1, 64, 256, 16);
    fails += mc_train(cpu, gpu, &h64, "hybrid head_dim 64", 2, 150, 2, &BF16);
    mc_cfg_hybrid_shape(&h32, 64, 2, 1, 32, 128, 8);
    fails += mc_train(cpu, gpu, &h32, "hybrid head_dim 32", 2, 100, 2, &BF16);
    fails += mc_recompute(gpu, &q128, "qwen3 head_dim 128", 2, 150, 3);
    fails += mc_recompute(gpu, &h128, "hybrid head_dim 128", 2, 150, 3);
    printf("cuda_model: %d failed\n", fails);
    k_backend_free(gpu);
    k_backend_free(cpu);
    return fails != 0;
}
