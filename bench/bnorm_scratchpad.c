// Checks that a batch-norm primitive created with 1 OpenMP thread (as Sources/Kernels'
// BatchNormPrimitives are, see `OpenMP` in DNNL.swift) writes nothing past the scratchpad it booked
// when executed with 2: a larger write would land past the shared scratchpad on the heap. Each
// booking is followed by 4 MiB of canary bytes, checked after the run; forward training and
// backward, plain / nChw16c / NHWC, with and without the fused ReLU. Exits 1 if any canary moved.
// Run when oneDNN changes (session 13, oneDNN 2.6: nothing written past any booking). Not in CI.
//   gcc -O1 -Wall -fopenmp bench/bnorm_scratchpad.c -o /tmp/bnorm_scratchpad -ldnnl
//   OMP_NUM_THREADS=2 /tmp/bnorm_scratchpad
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CHECK(x) do { dnnl_status_t s = (x); if (s) { printf("fail %s: %d\n", #x, s); exit(1);} } while (0)
static dnnl_engine_t eng; static dnnl_stream_t st;
static dnnl_memory_t mem(const dnnl_memory_desc_t *md, void *p) { dnnl_memory_t m; CHECK(dnnl_memory_create(&m, md, eng, p)); return m; }
static void *aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) { printf("out of memory (%zu bytes)\n", bytes); exit(1); }
    return p;
}
static void *fill(size_t bytes, float v) {
    float *p = aligned(bytes + 64);
    for (size_t i = 0; i < bytes / 4; i++) p[i] = v * ((i % 7) + 1) * 0.1f;
    return p;
}
static const size_t CANARY = 4 << 20;
static int probe(dnnl_primitive_desc_t pd, int nargs, dnnl_exec_arg_t *args, const char *what) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t booked = smd ? dnnl_memory_desc_get_size(smd) : 0;
    unsigned char *buf = aligned(booked + CANARY);
    memset(buf, 0xAB, booked + CANARY);
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_t p; CHECK(dnnl_primitive_create(&p, pd));
    dnnl_memory_t sm = booked ? mem(smd, buf) : NULL;
    args[nargs].arg = DNNL_ARG_SCRATCHPAD; args[nargs].memory = sm;
    omp_set_num_threads(2);
    CHECK(dnnl_primitive_execute(p, st, booked ? nargs + 1 : nargs, args)); CHECK(dnnl_stream_wait(st));
    size_t bad = 0, last = 0;
    for (size_t i = booked; i < booked + CANARY; i++) if (buf[i] != 0xAB) { bad++; last = i - booked; }
    printf("%-28s %-22s booked %8zu B, written past it: %zu B (up to +%zu)\n", what, impl, booked, bad, bad ? last + 1 : 0);
    omp_set_num_threads(1);
    return bad != 0;
}
int main(void) {
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0)); CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    dnnl_primitive_attr_t attr; CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    int shapes[][4] = {{64, 256, 7, 7}, {64, 128, 14, 14}, {64, 64, 28, 28}, {64, 16, 28, 28}, {8, 32, 32, 32}, {64, 512, 4, 4}, {3, 24, 5, 5}};
    dnnl_format_tag_t tags[] = {dnnl_nchw, dnnl_nChw16c, dnnl_nhwc};
    const char *tagn[] = {"nchw", "nChw16c", "nhwc"};
    int any = 0;
    for (int relu = 0; relu < 2; relu++)
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int ti = 0; ti < 3; ti++) {
        omp_set_num_threads(1);
        dnnl_dims_t d = {shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3]};
        dnnl_memory_desc_t md; CHECK(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, tags[ti]));
        dnnl_dims_t cd = {shapes[si][1]}; dnnl_memory_desc_t cmd; CHECK(dnnl_memory_desc_init_by_tag(&cmd, 1, cd, dnnl_f32, dnnl_a));
        unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
        dnnl_batch_normalization_desc_t fd; CHECK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &md, 1e-5f, flags));
        dnnl_primitive_desc_t fpd; CHECK(dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL));
        dnnl_batch_normalization_desc_t bd; CHECK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &md, &md, 1e-5f, flags));
        dnnl_primitive_desc_t bpd; CHECK(dnnl_primitive_desc_create(&bpd, &bd, attr, eng, fpd));
        size_t bytes = dnnl_memory_desc_get_size(&md); int C = shapes[si][1];
        void *x = fill(bytes, 1), *y = fill(bytes, 0), *dy = fill(bytes, 2), *dx = fill(bytes, 0);
        void *sc = fill(C * 4, 1), *sh = fill(C * 4, 0), *mean = fill(C * 4, 0), *var = fill(C * 4, 0), *dsc = fill(C * 4, 0), *dsh = fill(C * 4, 0);
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
        size_t wb = wmd ? dnnl_memory_desc_get_size(wmd) : 0; void *ws = fill(wb ? wb : 64, 0);
        char what[64];
        dnnl_exec_arg_t fa[9] = {{DNNL_ARG_SRC, mem(&md, x)}, {DNNL_ARG_DST, mem(&md, y)}, {DNNL_ARG_SCALE, mem(&cmd, sc)},
            {DNNL_ARG_SHIFT, mem(&cmd, sh)}, {DNNL_ARG_MEAN, mem(&cmd, mean)}, {DNNL_ARG_VARIANCE, mem(&cmd, var)}};
        int fn = 6; if (wb) { fa[fn].arg = DNNL_ARG_WORKSPACE; fa[fn].memory = mem(wmd, ws); fn++; }
        snprintf(what, sizeof what, "fwd %s %dx%dx%dx%d%s", tagn[ti], (int)d[0], C, (int)d[2], (int)d[3], relu ? " relu" : "");
        any |= probe(fpd, fn, fa, what);
        omp_set_num_threads(1);
        dnnl_exec_arg_t ba[12] = {{DNNL_ARG_SRC, mem(&md, x)}, {DNNL_ARG_DIFF_DST, mem(&md, dy)}, {DNNL_ARG_DIFF_SRC, mem(&md, dx)},
            {DNNL_ARG_SCALE, mem(&cmd, sc)}, {DNNL_ARG_MEAN, mem(&cmd, mean)}, {DNNL_ARG_VARIANCE, mem(&cmd, var)},
            {DNNL_ARG_DIFF_SCALE, mem(&cmd, dsc)}, {DNNL_ARG_DIFF_SHIFT, mem(&cmd, dsh)}, {DNNL_ARG_SHIFT, mem(&cmd, sh)}};
        int bn = 9; if (wb) { ba[bn].arg = DNNL_ARG_WORKSPACE; ba[bn].memory = mem(wmd, ws); bn++; }
        snprintf(what, sizeof what, "bwd %s %dx%dx%dx%d%s", tagn[ti], (int)d[0], C, (int)d[2], (int)d[3], relu ? " relu" : "");
        any |= probe(bpd, bn, ba, what);
    }
    printf(any ? "OVERFLOW SEEN\n" : "no overflow\n");
    return any;
}
