// Times oneDNN's direct and Winograd convolution algorithms (and `auto`, oneDNN's own choice)
// on the classifiers' convolution shapes: forward (training), backward-data and
// backward-weights, median of 15 runs after 3 warm-ups, with the implementation each one
// dispatched to and its rate in direct-equivalent GFLOP/s. Not in CI.
//
//   gcc -O2 -Wall bench/conv_algorithms.c -o /tmp/conv_algorithms -ldnnl
//   OMP_NUM_THREADS=2 /tmp/conv_algorithms                   # the ResNet's shapes at 28 px
//   OMP_NUM_THREADS=2 /tmp/conv_algorithms 32 16 28 32 3 1   # one shape: N C H(=W) K kernel stride
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(call)                                                           \
    do {                                                                      \
        dnnl_status_t status_ = (call);                                       \
        if (status_ != dnnl_success) {                                        \
            fprintf(stderr, "error %d in %s\n", (int)status_, #call);         \
            return -1;                                                        \
        }                                                                     \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static dnnl_memory_t memory(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE);
    return m;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/// Median milliseconds of 15 executions after 3 warm-ups.
static double median_ms(dnnl_primitive_desc_t pd, int count, dnnl_exec_arg_t *args) {
    dnnl_primitive_t p;
    dnnl_primitive_create(&p, pd);
    double times[15];
    for (int i = 0; i < 18; i++) {
        double t0 = now();
        dnnl_primitive_execute(p, stream, count, args);
        dnnl_stream_wait(stream);
        if (i >= 3) times[i - 3] = (now() - t0) * 1e3;
    }
    dnnl_primitive_destroy(p);
    qsort(times, 15, sizeof(double), compare);
    return times[7];
}

static const char *implementation(dnnl_primitive_desc_t pd) {
    const char *name = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    return name;
}

/// Binds fresh memory in the layouts the primitive chose for three queries and times it.
static double time_pd(dnnl_primitive_desc_t pd, const int args[3], const dnnl_query_t queries[3]) {
    dnnl_exec_arg_t a[3];
    for (int i = 0; i < 3; i++) a[i] = (dnnl_exec_arg_t){args[i], memory(dnnl_primitive_desc_query_md(pd, queries[i], 0))};
    double ms = median_ms(pd, 3, a);
    for (int i = 0; i < 3; i++) dnnl_memory_destroy(a[i].memory);
    return ms;
}

static int run(int n, int c, int h, int k, int r, int stride, dnnl_alg_kind_t alg, const char *label) {
    int pad = r == 3 ? 1 : 0, p = (h + 2 * pad - r) / stride + 1;
    dnnl_dims_t src_dims = {n, c, h, h}, weight_dims = {k, c, r, r}, dst_dims = {n, k, p, p};
    dnnl_dims_t strides = {stride, stride}, pad_l = {pad, pad};
    dnnl_dims_t pad_r = {(p - 1) * stride + r - h - pad, (p - 1) * stride + r - h - pad};
    dnnl_memory_desc_t s, w, d;
    dnnl_memory_desc_init_by_tag(&s, 4, src_dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&w, 4, weight_dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&d, 4, dst_dims, dnnl_f32, dnnl_format_tag_any);
    double gflop = 2.0 * n * k * p * p * c * r * r * 1e-9;

    dnnl_convolution_desc_t fwd_desc, bwd_data_desc, bwd_weights_desc;
    CHECK(dnnl_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, alg, &s, &w, NULL, &d, strides, pad_l, pad_r));
    CHECK(dnnl_convolution_backward_data_desc_init(&bwd_data_desc, alg, &s, &w, &d, strides, pad_l, pad_r));
    CHECK(dnnl_convolution_backward_weights_desc_init(&bwd_weights_desc, alg, &s, &w, NULL, &d, strides, pad_l, pad_r));
    dnnl_primitive_desc_t fwd, bwd_data, bwd_weights;
    printf("%-6s N%d C%d %dx%d K%d k%d s%d:", label, n, c, h, h, k, r, stride);
    if (dnnl_primitive_desc_create(&fwd, &fwd_desc, NULL, engine, NULL) != dnnl_success) {
        printf(" not implemented\n");
        return 0;
    }
    const int fwd_args[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    const dnnl_query_t fwd_q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
    double ms = time_pd(fwd, fwd_args, fwd_q);
    printf(" fwd %.2f ms (%s, %.0f GF/s)", ms, implementation(fwd), gflop / ms * 1e3);
    if (dnnl_primitive_desc_create(&bwd_data, &bwd_data_desc, NULL, engine, fwd) == dnnl_success) {
        const int args[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST};
        const dnnl_query_t q[3] = {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md};
        ms = time_pd(bwd_data, args, q);
        printf(", bwd data %.2f (%s, %.0f)", ms, implementation(bwd_data), gflop / ms * 1e3);
    }
    if (dnnl_primitive_desc_create(&bwd_weights, &bwd_weights_desc, NULL, engine, fwd) == dnnl_success) {
        const int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST};
        const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md};
        ms = time_pd(bwd_weights, args, q);
        printf(", bwd weights %.2f (%s, %.0f)", ms, implementation(bwd_weights), gflop / ms * 1e3);
    }
    printf("\n");
    return 0;
}

static void shape(int n, int c, int h, int k, int r, int stride) {
    run(n, c, h, k, r, stride, dnnl_convolution_direct, "direct");
    run(n, c, h, k, r, stride, dnnl_convolution_winograd, "wino");
    run(n, c, h, k, r, stride, dnnl_convolution_auto, "auto");
}

int main(int argc, char **argv) {
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (argc == 7) {
        shape(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
        return 0;
    }
    // The ResNet at 28x28x3, batch 64: stem, stage 1, stage 2 (3x3 stride 2 and 1x1 shortcut), stage 3.
    const int shapes[][6] = {
        {64, 3, 28, 32, 3, 1}, {64, 32, 28, 32, 3, 1}, {64, 32, 28, 64, 3, 2}, {64, 64, 14, 64, 3, 1},
        {64, 32, 28, 64, 1, 2}, {64, 64, 14, 128, 3, 2}, {64, 128, 7, 128, 3, 1}, {64, 64, 14, 128, 1, 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        shape(s[0], s[1], s[2], s[3], s[4], s[5]);
    }
    return 0;
}
