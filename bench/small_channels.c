// Times convolution passes (forward, backward-data, backward-weights; batch 64) under oneDNN's
// own choice of memory format (`any`) against forced plain NCHW (its GEMM) or NHWC, f32 and bf16,
// median of 15 runs after 3, with the implementation each dispatched to. Default: the layers that
// write or read an image (a DCGAN generator's last transposed convolution, the discriminator's
// first convolution, the U-Net's last convolution), which blocked kernels compute with 16
// padded channels. SHAPES=inner: the DCGAN's and ResNet's inner layers, any against NHWC. Not in CI.
//   gcc -O2 -Wall bench/small_channels.c -o /tmp/small_channels -ldnnl
//   OMP_NUM_THREADS=2 /tmp/small_channels; SHAPES=inner OMP_NUM_THREADS=2 /tmp/small_channels
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static dnnl_memory_t mem(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m; dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE);
    void *p; dnnl_memory_get_data_handle(m, &p); memset(p, 0, dnnl_memory_desc_get_size(md));
    return m;
}
static const char *impl(dnnl_primitive_desc_t pd) { const char *s = "?"; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s); return s; }

// run pd with args built from queries; returns median ms of 15
static double run(dnnl_primitive_desc_t pd, int n, const int *argk, const dnnl_query_t *q) {
    dnnl_exec_arg_t a[8];
    for (int i = 0; i < n; i++) { a[i].arg = argk[i]; a[i].memory = mem(dnnl_primitive_desc_query_md(pd, q[i], 0)); }
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    int c = n;
    if (sp && dnnl_memory_desc_get_size(sp) > 0) { a[c].arg = DNNL_ARG_SCRATCHPAD; a[c].memory = mem(sp); c++; }
    dnnl_primitive_t p; dnnl_primitive_create(&p, pd);
    double t[15];
    for (int i = 0; i < 18; i++) { double t0 = now(); dnnl_primitive_execute(p, stream, c, a); dnnl_stream_wait(stream); if (i >= 3) t[i - 3] = (now() - t0) * 1e3; }
    dnnl_primitive_destroy(p);
    for (int i = 0; i < c; i++) dnnl_memory_destroy(a[i].memory);
    qsort(t, 15, sizeof(double), cmp);
    return t[7];
}

static void md(dnnl_memory_desc_t *d, int64_t a, int64_t b, int64_t c, int64_t e, dnnl_data_type_t t, dnnl_format_tag_t f) {
    dnnl_dims_t dims = {a, b, c, e}; dnnl_memory_desc_init_by_tag(d, 4, dims, t, f);
}

// one geometry: N C H K kernel stride pad transposed
static void shape(int N, int C, int H, int K, int R, int S, int P, int tr, dnnl_data_type_t mt, dnnl_format_tag_t act, const char *label) {
    int O = tr ? (H - 1) * S - 2 * P + R : (H + 2 * P - R) / S + 1;
    dnnl_dims_t st = {S, S}, pl = {P, P}, pr = {P, P};
    if (!tr) { pr[0] = pr[1] = (O - 1) * S + R - H - P; }
    dnnl_memory_desc_t src, srcIn, dst, dstIn, wei, weiF;
    md(&src, N, C, H, H, dnnl_f32, act); md(&srcIn, N, C, H, H, mt, act);
    md(&dst, N, K, O, O, dnnl_f32, act); md(&dstIn, N, K, O, O, mt, act);
    md(&wei, K, C, R, R, mt, dnnl_format_tag_any); md(&weiF, K, C, R, R, dnnl_f32, dnnl_format_tag_any);
    dnnl_primitive_desc_t f = NULL, bd = NULL, bw = NULL;
    double gf = 2.0 * N * (tr ? C * H * H : K * O * O) * (double)(tr ? K : C) * R * R * 1e-9;
    if (tr) {
        dnnl_deconvolution_desc_t d1, d2, d3;
        dnnl_deconvolution_forward_desc_init(&d1, dnnl_forward_training, dnnl_deconvolution_direct, &srcIn, &wei, NULL, &dst, st, pl, pr);
        if (dnnl_primitive_desc_create(&f, &d1, NULL, engine, NULL)) { printf("%s: fwd unimplemented\n", label); return; }
        dnnl_deconvolution_backward_data_desc_init(&d2, dnnl_deconvolution_direct, &src, &wei, &dstIn, st, pl, pr);
        dnnl_primitive_desc_create(&bd, &d2, NULL, engine, f);
        dnnl_deconvolution_backward_weights_desc_init(&d3, dnnl_deconvolution_direct, &srcIn, &weiF, NULL, &dstIn, st, pl, pr);
        dnnl_primitive_desc_create(&bw, &d3, NULL, engine, f);
    } else {
        dnnl_convolution_desc_t d1, d2, d3;
        dnnl_convolution_forward_desc_init(&d1, dnnl_forward_training, dnnl_convolution_direct, &srcIn, &wei, NULL, &dst, st, pl, pr);
        if (dnnl_primitive_desc_create(&f, &d1, NULL, engine, NULL)) { printf("%s: fwd unimplemented\n", label); return; }
        dnnl_convolution_backward_data_desc_init(&d2, dnnl_convolution_direct, &src, &wei, &dstIn, st, pl, pr);
        dnnl_primitive_desc_create(&bd, &d2, NULL, engine, f);
        dnnl_convolution_backward_weights_desc_init(&d3, dnnl_convolution_direct, &srcIn, &weiF, NULL, &dstIn, st, pl, pr);
        dnnl_primitive_desc_create(&bw, &d3, NULL, engine, f);
    }
    int fa[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}; dnnl_query_t fq[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
    int ba[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC}; dnnl_query_t bq[3] = {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md};
    int wa[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}; dnnl_query_t wq[3] = {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md};
    double t1 = run(f, 3, fa, fq), t2 = bd ? run(bd, 3, ba, bq) : -1, t3 = bw ? run(bw, 3, wa, wq) : -1;
    printf("%-44s fwd %6.3f ms (%s)  bwd_d %6.3f (%s)  bwd_w %6.3f (%s)  [%.0f MFLOP]\n", label, t1, impl(f), t2, bd ? impl(bd) : "-", t3, bw ? impl(bw) : "-", gf * 1e3);
}

int main(void) {
    dnnl_engine_create(&engine, dnnl_cpu, 0); dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    struct { const char *n; dnnl_format_tag_t t; } fm[] = {{"any", dnnl_format_tag_any}, {"nchw", dnnl_nchw}, {"nhwc", dnnl_nhwc}};
    struct { const char *n; dnnl_data_type_t t; } ty[] = {{"f32", dnnl_f32}, {"bf16", dnnl_bf16}};
    char label[128];
    const char *only = getenv("SHAPES");
    for (int k = 0; k < 2; k++) for (int j = 0; j < 2; j++) {
        if (only && strcmp(only, "inner") == 0) {
            int j2 = j == 0 ? 0 : 2;
            snprintf(label, sizeof label, "G28 deconv 256->128 %s %s", ty[k].n, fm[j2].n); shape(64, 256, 7, 128, 4, 2, 1, 1, ty[k].t, fm[j2].t, label);
            snprintf(label, sizeof label, "D28 conv 64->128 %s %s", ty[k].n, fm[j2].n); shape(64, 64, 14, 128, 4, 2, 1, 0, ty[k].t, fm[j2].t, label);
            snprintf(label, sizeof label, "R28 conv 32->32 3x3 %s %s", ty[k].n, fm[j2].n); shape(64, 32, 28, 32, 3, 1, 1, 0, ty[k].t, fm[j2].t, label);
            snprintf(label, sizeof label, "R28 conv 32->64 3x3 s2 %s %s", ty[k].n, fm[j2].n); shape(64, 32, 28, 64, 3, 2, 1, 0, ty[k].t, fm[j2].t, label);
            snprintf(label, sizeof label, "R28 conv 64->64 3x3 %s %s", ty[k].n, fm[j2].n); shape(64, 64, 14, 64, 3, 1, 1, 0, ty[k].t, fm[j2].t, label);
            snprintf(label, sizeof label, "R28 conv 128->128 3x3 %s %s", ty[k].n, fm[j2].n); shape(64, 128, 7, 128, 3, 1, 1, 0, ty[k].t, fm[j2].t, label);
            continue;
        }
        snprintf(label, sizeof label, "G28 deconv 128->1 %s %s", ty[k].n, fm[j].n); shape(64, 128, 14, 1, 4, 2, 1, 1, ty[k].t, fm[j].t, label);
        snprintf(label, sizeof label, "D28 conv 1->64 %s %s", ty[k].n, fm[j].n); shape(64, 1, 28, 64, 4, 2, 1, 0, ty[k].t, fm[j].t, label);
        snprintf(label, sizeof label, "G64 deconv 64->3 %s %s", ty[k].n, fm[j].n); shape(64, 64, 32, 3, 4, 2, 1, 1, ty[k].t, fm[j].t, label);
        snprintf(label, sizeof label, "D64 conv 3->64 %s %s", ty[k].n, fm[j].n); shape(64, 3, 64, 64, 4, 2, 1, 0, ty[k].t, fm[j].t, label);
        snprintf(label, sizeof label, "UNet28 out 32->1 3x3 %s %s", ty[k].n, fm[j].n); shape(64, 32, 28, 1, 3, 1, 1, 0, ty[k].t, fm[j].t, label);
        snprintf(label, sizeof label, "UNet64 out 64->3 3x3 %s %s", ty[k].n, fm[j].n); shape(64, 64, 64, 3, 3, 1, 1, 0, ty[k].t, fm[j].t, label);
    }
    return 0;
}
