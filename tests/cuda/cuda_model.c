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

/*
 * Activation recomputation on the GPU: two copies of a model on dev, one recomputing; the kernels are
 * deterministic (no float atomics, cuBLASLt plans cached per shape), so losses, gradient norms and the weights
 * after the steps must be equal bit for bit. Also: nothing is allocated after the first step (the activation
 * arena is sized by nn_model_prepare, the op scratch grows during step 1 at most), and the peak drops.
 */
static int mc_recompute(k_backend *dev, const nn_config *c, const char *name, int B, int T, int steps)
{
    printf("%s: recomputation, %d steps, B %d T %d on %s\n", name, steps, B, T, dev->name);
    nn_model *m[2] = {mc_model(dev, c, 13, 1), mc_model(dev, c, 13, 1)};
    nn_model_set_recompute(m[1], 1);
    nn_data data;
    mc_data(&data, c->vocab, (size_t)B * T * (steps + 1) + 1, 5);
    nn_sched s = {.kind = NN_SCHED_CONSTANT, .lr = 1e-3, .total = steps};
    nn_trainer tr[2];
    int fails = 0;
    size_t peak[2] = {0, 0}, after1[2] = {0, 0}, base[2];
    double loss[2][8], gn[2][8], lr;
    for (int i = 0; i < 2; i++) {
        base[i] = dev->mem_in_use; /* both models' weights (and model 0's training buffers for model 1) */
        if (nn_model_set_trainable(m[i], NN_ALL_GROUPS) || nn_trainer_init(&tr[i], m[i], &data, B, T, &s, 1)) {
            fprintf(stderr, "trainer: %s\n", hx_last_error());
            exit(1);
        }
        for (int st = 0; st < steps && st < 8; st++) {
            k_mem_reset_peak(dev);
            if (nn_train_step(&tr[i], &loss[i][st], &gn[i][st], &lr)) {
                fprintf(stderr, "%s: %s\n", name, hx_last_error());
                exit(1);
            }
            dev->op->sync(dev);
            if (dev->mem_peak - base[i] > peak[i]) peak[i] = dev->mem_peak - base[i];
            if (st == 0) after1[i] = dev->mem_in_use;
            else if (dev->mem_in_use != after1[i]) {
                printf("  step %d allocated: %zu -> %zu bytes  FAIL\n", st + 1, after1[i], dev->mem_in_use);
                fails++;
            }
        }
    }
    for (int st = 0; st < steps && st < 8; st++)
        if (memcmp(&loss[0][st], &loss[1][st], sizeof(double)) || memcmp(&gn[0][st], &gn[1][st], sizeof(double))) {
            printf("  step %d loss %.9g vs %.9g, grad norm %.9g vs %.9g  FAIL\n", st + 1, loss[0][st], loss[1][st],
                   gn[0][st], gn[1][st]);
            fails++;
        }
    float *p0 = mc_download(m[0], m[0]->p, m[0]->n_floats), *p1 = mc_download(m[1], m[1]->p, m[1]->n_floats);
    int same = !memcmp(p0, p1, m[0]->n_floats * sizeof(float));
    printf("  weights after %d steps bit-identical: %s; training memory (grads, moments, activations, scratch) at "
           "its peak %zu -> %zu bytes (activations %zu -> %zu floats)\n", steps,
           same ? "ok" : "FAIL", peak[0], peak[1], m[0]->act_floats, m[1]->act_floats);
    fails += !same;
    fails += !(m[1]->act_floats < m[0]->act_floats);
    free(p0);
    free(p1);
    for (int i = 0; i < 2; i++) {
        nn_trainer_release(&tr[i]);
        nn_model_free(m[i]);
    }
    free(data.tok);
    return fails;
}

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
    nn_config_qwen3(&h128, 97, 256, 4, 2, 1, 128, 384);
    snprintf(h128.model_type, sizeof h128.model_type, "hx_hybrid");
    h128.mixer[0] = NN_MIX_KDA; h128.mixer[1] = NN_MIX_ATTN; h128.mixer[2] = NN_MIX_GDN; h128.mixer[3] = NN_MIX_KDA;
    h128.conv_size = 4;
    h128.gate_rank = 16;
    snprintf(h128.conv_act, sizeof h128.conv_act, "silu");
    fails += mc_train(cpu, gpu, &h128, "hybrid head_dim 128", 2, 150, 2, &BF16);
    fails += mc_generate(cpu, gpu, &h128, "hybrid head_dim 128", &BF16);
    fails += mc_recompute(gpu, &q128, "qwen3 head_dim 128", 2, 150, 3);
    fails += mc_recompute(gpu, &h128, "hybrid head_dim 128", 2, 150, 3);
    printf("cuda_model: %d failed\n", fails);
    k_backend_free(gpu);
    k_backend_free(cpu);
    return fails != 0;
}
