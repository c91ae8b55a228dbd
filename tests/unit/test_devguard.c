/* test_devguard.c - the engine never touches device memory from the host: training, generation and scoring on the guard device equal the CPU bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/cuda/model_check.h"

/*
 * The "guard" device (kernels/cpu/guard.c) runs the CPU ops on memory that is PROT_NONE outside ops: an engine
 * path that reads a device pointer on the host (harmless on the CPU, garbage or a crash on a GPU) faults here
 * with a backtrace. Same ops, same thread count: every comparison must be exact.
 */
static const mc_tol EXACT = {0, 0, 0, 0, 0};

static void test_guard_faults(void **state)
{
    (void)state;
    pid_t pid = fork();
    if (pid == 0) {
        k_backend *g = k_backend_new("guard", 1);
        float *p = g->op->alloc(g, 64 * sizeof(float)), h = 0;
        g->op->upload(g, p, &h, sizeof h); /* through the table: fine */
        freopen("/dev/null", "w", stderr);
        volatile float x = p[3];           /* on the host: must fault */
        (void)x;
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 70);
}

static void run(void (*fn)(k_backend *, k_backend *))
{
    k_backend *cpu = k_backend_new("cpu", 2), *g = k_backend_new("guard", 2);
    assert_non_null(g);
    fn(cpu, g);
    k_backend_free(g);
    k_backend_free(cpu);
}

static void qwen3(k_backend *cpu, k_backend *g)
{
    nn_config c;
    mc_cfg_qwen3(&c);
    assert_int_equal(mc_train(cpu, g, &c, "qwen3", 2, 40, 2, &EXACT), 0);
    assert_int_equal(mc_generate(cpu, g, &c, "qwen3", &EXACT), 0);
}

static void hybrid(k_backend *cpu, k_backend *g)
{
    nn_config c;
    mc_cfg_hybrid(&c);
    assert_int_equal(mc_train(cpu, g, &c, "hybrid", 2, 70, 2, &EXACT), 0);
    assert_int_equal(mc_generate(cpu, g, &c, "hybrid", &EXACT), 0);
}

static void test_guard_qwen3(void **state) { (void)state; run(qwen3); }
static void test_guard_hybrid(void **state) { (void)state; run(hybrid); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_faults),
        cmocka_unit_test(test_guard_qwen3),
        cmocka_unit_test(test_guard_hybrid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
