// Times the primitives of one DCGAN-28 training step and one ResNet-28 training step (batch 64)
// the way MedSynth's engine runs them, so that two oneDNN versions can be compared on the same
// work: build it once against Debian's oneDNN 2.6 and once against 3.x, run both, compare sums.
// Not in CI.
//
// Every convolution pass is timed with the reorders that bring its inputs in: activations from
// f32 in the layout the previous primitive left them (nChw16c where C is a multiple of 16, else
// nchw), weights from f32 oihw, into whatever the primitive chose with format_tag_any. Modes:
//   f32      f32 everywhere; Winograd where the engine uses it (3x3, stride 1, channels
//            multiples of 16, not transposed), direct if the library has no Winograd kernel
//   bf16     MedSynth's MEDSYNTH_CONV_PRECISION=bf16: src/weights/diff_dst bf16, dst/diff_src/
//            diff_weights f32 (the input reorders round to bf16)
//   fpmath   f32 memory with the attribute fpmath_mode=bf16: the kernel may round inside
// plus batch norm (training forward and backward) and eltwise passes in f32, and, where the
// library takes separate source and destination types, their forward writing bf16.
// Median of 15 runs after 3 warm-ups per primitive; counts per step from DNNL_VERBOSE=1 logs of
// `medsynth bench dcgan --image-size 28 --channels 1` and `bench classifier --arch resnet`.
//
//   gcc -O2 -Wall bench/onednn_versions.c -o /tmp/onednn26 -ldnnl
//   P=/opt/onednn-3.2; gcc -O2 -Wall -I$P/include bench/onednn_versions.c -o /tmp/onednn32 -L$P/lib -Wl,-rpath,$P/lib -ldnnl
//   OMP_NUM_THREADS=2 /tmp/onednn26; OMP_NUM_THREADS=2 /tmp/onednn32   # add -v for each primitive
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t md_t;  // a handle in 3.x
typedef const_dnnl_memory_desc_t cmd_t;
#define BN_FLAGS (dnnl_use_scale | dnnl_use_shift)
#else
typedef dnnl_memory_desc_t *md_t;  // a struct in 2.x: keep it on the heap so both read alike
typedef const dnnl_memory_desc_t *cmd_t;
#define BN_FLAGS dnnl_use_scaleshift
#endif

enum mode { F32, BF16, FPMATH };
static const char *mode_names[] = {"f32", "bf16", "fpmath"};
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int verbose;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static md_t make_md(int ndims, const dnnl_dims_t dims, dnnl_data_type_t type, dnnl_format_tag_t tag) {
    md_t md;
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_create_with_tag(&md, ndims, dims, type, tag);
#else
    md = malloc(sizeof *md);
    dnnl_memory_desc_init_by_tag(md, ndims, dims, type, tag);
#endif
    return md;
}

static const char *impl(dnnl_primitive_desc_t pd) {
    const char *name = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    return name;
}

static dnnl_primitive_attr_t make_attr(enum mode mode) {
    dnnl_primitive_attr_t attr;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);  // as the engine does
    if (mode == FPMATH) dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_bf16);
    return attr;
}

static dnnl_memory_t memory(cmd_t md) {
    dnnl_memory_t m;
    dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE);
    return m;
}

/// Median milliseconds of 15 runs after 3 warm-ups of a primitive with fresh memory for `n`
/// queried arguments (plus its scratchpad).
static double time_pd(dnnl_primitive_desc_t pd, int n, const int *args, const dnnl_query_t *queries) {
    dnnl_exec_arg_t a[8];
    int count = 0;
    for (int i = 0; i < n; i++) a[count++] = (dnnl_exec_arg_t){args[i], memory(dnnl_primitive_desc_query_md(pd, queries[i], 0))};
    a[count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, memory(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0))};
    dnnl_primitive_t p;
    dnnl_primitive_create(&p, pd);
    double times[15];
    for (int i = 0; i < 18; i++) {
        double t0 = now();
        dnnl_primitive_execute(p, stream, count, a);
        dnnl_stream_wait(stream);
        if (i >= 3) times[i - 3] = (now() - t0) * 1e3;
    }
    dnnl_primitive_destroy(p);
    for (int i = 0; i < count; i++) dnnl_memory_destroy(a[i].memory);
    qsort(times, 15, sizeof(double), compare);
    return times[7];
}

/// Time of the reorder from `from` into `to`, zero when they are the same layout and type.
static double reorder_ms(cmd_t from, cmd_t to) {
    if (dnnl_memory_desc_equal(from, to)) return 0;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr = make_attr(F32);
    if (dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr) != dnnl_success) return -1;
    dnnl_primitive_attr_destroy(attr);
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, memory(from)}, {DNNL_ARG_TO, memory(to)}};
    a[2] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, memory(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0))};
    dnnl_primitive_t p;
    dnnl_primitive_create(&p, pd);
    double times[15];
    for (int i = 0; i < 18; i++) {
        double t0 = now();
        dnnl_primitive_execute(p, stream, 3, a);
        dnnl_stream_wait(stream);
        if (i >= 3) times[i - 3] = (now() - t0) * 1e3;
    }
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
    for (int i = 0; i < 3; i++) dnnl_memory_destroy(a[i].memory);
    qsort(times, 15, sizeof(double), compare);
    return times[7];
}

/// A convolution (or transposed convolution) of square images and kernels, with how many times
/// a training step runs each pass.
typedef struct {
    int n, ic, ih, oc, k, stride, pad, transposed;
    int fwd, bwd_data, bwd_weights;
} conv_t;

typedef struct {
    double ms[3];  // pass + input reorders, per mode: fwd, bwd data, bwd weights
    double reorders[3];
    int ref;  // a `ref:` implementation ran
} conv_times;

static int out_size(const conv_t *c) {
    return c->transposed ? (c->ih - 1) * c->stride - 2 * c->pad + c->k : (c->ih + 2 * c->pad - c->k) / c->stride + 1;
}

static dnnl_format_tag_t activation_tag(int channels) {
    return channels % 16 == 0 ? dnnl_aBcd16b : dnnl_abcd;
}

static int winograd(const conv_t *c) {
    return !c->transposed && c->k == 3 && c->stride == 1 && c->pad <= 1 && c->ic % 16 == 0 && c->oc % 16 == 0;
}

/// Creates the three passes' descriptors; returns nonzero if the forward one is not implemented.
static int conv_pds(const conv_t *c, enum mode mode, dnnl_alg_kind_t alg, dnnl_primitive_desc_t pd[3]) {
    int o = out_size(c);
    dnnl_dims_t src_dims = {c->n, c->ic, c->ih, c->ih}, dst_dims = {c->n, c->oc, o, o};
    dnnl_dims_t wei_dims = {c->oc, c->ic, c->k, c->k};
    dnnl_dims_t strides = {c->stride, c->stride}, dilates = {0, 0}, pad_l = {c->pad, c->pad};
    int in = c->transposed ? o : c->ih, out = c->transposed ? c->ih : o;  // the convolution's own view
    int pr = (out - 1) * c->stride + c->k - in - c->pad;
    dnnl_dims_t pad_r = {pr, pr};
    dnnl_data_type_t low = mode == BF16 ? dnnl_bf16 : dnnl_f32;
    md_t s_low = make_md(4, src_dims, low, dnnl_format_tag_any), s_f32 = make_md(4, src_dims, dnnl_f32, dnnl_format_tag_any);
    md_t w_low = make_md(4, wei_dims, low, dnnl_format_tag_any), w_f32 = make_md(4, wei_dims, dnnl_f32, dnnl_format_tag_any);
    md_t d_low = make_md(4, dst_dims, low, dnnl_format_tag_any), d_f32 = make_md(4, dst_dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_primitive_attr_t attr = make_attr(mode);
    dnnl_alg_kind_t a = c->transposed ? dnnl_deconvolution_direct : alg;
    dnnl_status_t st;
    pd[1] = pd[2] = NULL;
#if DNNL_VERSION_MAJOR >= 3
    if (c->transposed) {
        st = dnnl_deconvolution_forward_primitive_desc_create(&pd[0], engine, dnnl_forward_training, a, s_low, w_low, NULL, d_f32, strides, dilates, pad_l, pad_r, attr);
        if (st != dnnl_success) return 1;
        dnnl_deconvolution_backward_data_primitive_desc_create(&pd[1], engine, a, s_f32, w_low, d_low, strides, dilates, pad_l, pad_r, pd[0], attr);
        dnnl_deconvolution_backward_weights_primitive_desc_create(&pd[2], engine, a, s_low, w_f32, NULL, d_low, strides, dilates, pad_l, pad_r, pd[0], attr);
    } else {
        st = dnnl_convolution_forward_primitive_desc_create(&pd[0], engine, dnnl_forward_training, a, s_low, w_low, NULL, d_f32, strides, dilates, pad_l, pad_r, attr);
        if (st != dnnl_success) return 1;
        dnnl_convolution_backward_data_primitive_desc_create(&pd[1], engine, a, s_f32, w_low, d_low, strides, dilates, pad_l, pad_r, pd[0], attr);
        dnnl_convolution_backward_weights_primitive_desc_create(&pd[2], engine, a, s_low, w_f32, NULL, d_low, strides, dilates, pad_l, pad_r, pd[0], attr);
    }
    dnnl_memory_desc_destroy(s_low), dnnl_memory_desc_destroy(s_f32), dnnl_memory_desc_destroy(w_low);
    dnnl_memory_desc_destroy(w_f32), dnnl_memory_desc_destroy(d_low), dnnl_memory_desc_destroy(d_f32);
#else
    dnnl_convolution_desc_t f, bd, bw;
    if (c->transposed) {
        dnnl_dilated_deconvolution_forward_desc_init(&f, dnnl_forward_training, a, s_low, w_low, NULL, d_f32, strides, dilates, pad_l, pad_r);
        dnnl_dilated_deconvolution_backward_data_desc_init(&bd, a, s_f32, w_low, d_low, strides, dilates, pad_l, pad_r);
        dnnl_dilated_deconvolution_backward_weights_desc_init(&bw, a, s_low, w_f32, NULL, d_low, strides, dilates, pad_l, pad_r);
    } else {
        dnnl_dilated_convolution_forward_desc_init(&f, dnnl_forward_training, a, s_low, w_low, NULL, d_f32, strides, dilates, pad_l, pad_r);
        dnnl_dilated_convolution_backward_data_desc_init(&bd, a, s_f32, w_low, d_low, strides, dilates, pad_l, pad_r);
        dnnl_dilated_convolution_backward_weights_desc_init(&bw, a, s_low, w_f32, NULL, d_low, strides, dilates, pad_l, pad_r);
    }
    st = dnnl_primitive_desc_create(&pd[0], &f, attr, engine, NULL);
    if (st != dnnl_success) return 1;
    dnnl_primitive_desc_create(&pd[1], &bd, attr, engine, pd[0]);
    dnnl_primitive_desc_create(&pd[2], &bw, attr, engine, pd[0]);
    free(s_low), free(s_f32), free(w_low), free(w_f32), free(d_low), free(d_f32);
#endif
    dnnl_primitive_attr_destroy(attr);
    return 0;
}

/// Times the three passes of `c` in `mode`, each with the reorders of its f32 inputs.
static conv_times time_conv(const conv_t *c, enum mode mode) {
    conv_times t = {{0, 0, 0}, {0, 0, 0}, 0};
    dnnl_primitive_desc_t pd[3];
    dnnl_alg_kind_t alg = mode == F32 && winograd(c) ? dnnl_convolution_winograd : dnnl_convolution_direct;
    if (conv_pds(c, mode, alg, pd) != 0) {
        if (alg == dnnl_convolution_winograd && conv_pds(c, mode, dnnl_convolution_direct, pd) == 0) {
            if (verbose) printf("    (no Winograd: direct)\n");
        } else {
            printf("    not implemented\n");
            t.ref = 1;
            return t;
        }
    }
    int o = out_size(c);
    dnnl_dims_t src_dims = {c->n, c->ic, c->ih, c->ih}, dst_dims = {c->n, c->oc, o, o}, wei_dims = {c->oc, c->ic, c->k, c->k};
    md_t user_src = make_md(4, src_dims, dnnl_f32, activation_tag(c->ic));
    md_t user_dst = make_md(4, dst_dims, dnnl_f32, activation_tag(c->oc));
    md_t user_wei = make_md(4, wei_dims, dnnl_f32, dnnl_abcd);
    // Pass p: its arguments, which of them are inputs, and the user memory each input comes from.
    static const int args[3][3] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
    };
    static const dnnl_query_t queries[3][3] = {
        {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
        {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
        {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
    };
    cmd_t inputs[3][3] = {{user_src, user_wei, NULL}, {NULL, user_wei, user_dst}, {user_src, NULL, user_dst}};
    const char *pass_names[3] = {"fwd", "bwd_d", "bwd_w"};
    for (int p = 0; p < 3; p++) {
        if (pd[p] == NULL) {
            printf("    %s not implemented\n", pass_names[p]);
            t.ref = 1;
            continue;
        }
        double r = 0;
        for (int i = 0; i < 3; i++)
            if (inputs[p][i]) r += reorder_ms(inputs[p][i], dnnl_primitive_desc_query_md(pd[p], queries[p][i], 0));
        t.reorders[p] = r;
        t.ms[p] = time_pd(pd[p], 3, args[p], queries[p]) + r;
        if (strncmp(impl(pd[p]), "ref", 3) == 0) t.ref = 1;
        if (verbose)
            printf("    %-5s %6.3f ms (reorders %5.3f) %s\n", pass_names[p], t.ms[p], r, impl(pd[p]));
        dnnl_primitive_desc_destroy(pd[p]);
    }
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_destroy(user_src), dnnl_memory_desc_destroy(user_dst), dnnl_memory_desc_destroy(user_wei);
#else
    free(user_src), free(user_dst), free(user_wei);
#endif
    return t;
}

/// Batch norm (training forward + backward, scale and shift) and an eltwise pass (forward
/// training + backward) on an activation in its blocked layout; `low_dst` asks for a bf16
/// destination on the forward passes (3.x only).
typedef struct {
    int n, c, h;
    int bn, eltwise;  // passes per step (forward and backward each)
    dnnl_alg_kind_t alg;
    float alpha;
} act_t;

static double time_act(const act_t *a, int low_dst, double *bn_ms, double *elt_ms) {
    dnnl_dims_t dims = {a->n, a->c, a->h, a->h};
    dnnl_format_tag_t tag = activation_tag(a->c);
    md_t f32 = make_md(4, dims, dnnl_f32, tag), dst = make_md(4, dims, low_dst ? dnnl_bf16 : dnnl_f32, tag);
    dnnl_primitive_attr_t attr = make_attr(F32);
    dnnl_primitive_desc_t f = NULL, b = NULL;
    *bn_ms = *elt_ms = 0;
    dnnl_status_t st;
#if DNNL_VERSION_MAJOR >= 3
    st = dnnl_batch_normalization_forward_primitive_desc_create(&f, engine, dnnl_forward_training, f32, dst, 1e-5f, BN_FLAGS, attr);
#else
    dnnl_batch_normalization_desc_t bnd;
    dnnl_batch_normalization_forward_desc_init(&bnd, dnnl_forward_training, f32, 1e-5f, BN_FLAGS);
    st = low_dst ? dnnl_unimplemented : dnnl_primitive_desc_create(&f, &bnd, attr, engine, NULL);
#endif
    if (a->bn && st == dnnl_success) {
        const int fargs[5] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
#if DNNL_VERSION_MAJOR >= 3
                              DNNL_ARG_SCALE};
#else
                              DNNL_ARG_SCALE_SHIFT};
#endif
        dnnl_exec_arg_t ea[8];  // dnnl_query_exec_arg_md takes the argument as its index
        int n = 0;
        for (int i = 0; i < 5; i++)
            ea[n++] = (dnnl_exec_arg_t){fargs[i], memory(dnnl_primitive_desc_query_md(f, dnnl_query_exec_arg_md, fargs[i]))};
#if DNNL_VERSION_MAJOR >= 3
        ea[n++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, memory(dnnl_primitive_desc_query_md(f, dnnl_query_exec_arg_md, DNNL_ARG_SHIFT))};
#endif
        ea[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, memory(dnnl_primitive_desc_query_md(f, dnnl_query_scratchpad_md, 0))};
        dnnl_primitive_t p;
        dnnl_primitive_create(&p, f);
        double times[15];
        for (int i = 0; i < 18; i++) {
            double t0 = now();
            dnnl_primitive_execute(p, stream, n, ea);
            dnnl_stream_wait(stream);
            if (i >= 3) times[i - 3] = (now() - t0) * 1e3;
        }
        qsort(times, 15, sizeof(double), compare);
        *bn_ms = times[7];
        dnnl_primitive_destroy(p);
        if (verbose) printf("    bn fwd%s %6.3f ms %s\n", low_dst ? " (bf16 dst)" : "", times[7], impl(f));
        if (!low_dst) {  // backward: diff_src, diff_dst, src, mean, variance, scale, diff scale/shift
#if DNNL_VERSION_MAJOR >= 3
            st = dnnl_batch_normalization_backward_primitive_desc_create(&b, engine, dnnl_backward, f32, f32, f32, 1e-5f, BN_FLAGS, f, attr);
#else
            dnnl_batch_normalization_desc_t bbd;
            dnnl_batch_normalization_backward_desc_init(&bbd, dnnl_backward, f32, f32, 1e-5f, BN_FLAGS);
            st = dnnl_primitive_desc_create(&b, &bbd, attr, engine, f);
#endif
            if (st == dnnl_success) {
                const int bargs[] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
#if DNNL_VERSION_MAJOR >= 3
                                     DNNL_ARG_SCALE, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
#else
                                     DNNL_ARG_SCALE_SHIFT, DNNL_ARG_DIFF_SCALE_SHIFT};
#endif
                dnnl_exec_arg_t eb[10];
                int m = 0;
                for (size_t i = 0; i < sizeof bargs / sizeof bargs[0]; i++)
                    eb[m++] = (dnnl_exec_arg_t){bargs[i], memory(dnnl_primitive_desc_query_md(b, dnnl_query_exec_arg_md, bargs[i]))};
                eb[m++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, memory(dnnl_primitive_desc_query_md(b, dnnl_query_scratchpad_md, 0))};
                dnnl_primitive_create(&p, b);
                for (int i = 0; i < 18; i++) {
                    double t0 = now();
                    dnnl_primitive_execute(p, stream, m, eb);
                    dnnl_stream_wait(stream);
                    if (i >= 3) times[i - 3] = (now() - t0) * 1e3;
                }
                qsort(times, 15, sizeof(double), compare);
                *bn_ms += times[7];
                if (verbose) printf("    bn bwd %6.3f ms %s\n", times[7], impl(b));
                dnnl_primitive_destroy(p);
                for (int i = 0; i < m; i++) dnnl_memory_destroy(eb[i].memory);
                dnnl_primitive_desc_destroy(b);
            }
        }
        for (int i = 0; i < n; i++) dnnl_memory_destroy(ea[i].memory);
        dnnl_primitive_desc_destroy(f);
    } else if (a->bn) {
        if (verbose) printf("    bn fwd%s not implemented\n", low_dst ? " (bf16 dst)" : "");
        *bn_ms = -1;
    }
    if (a->eltwise) {
#if DNNL_VERSION_MAJOR >= 3
        st = dnnl_eltwise_forward_primitive_desc_create(&f, engine, dnnl_forward_training, a->alg, f32, dst, a->alpha, 0, attr);
#else
        dnnl_eltwise_desc_t ed;
        dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_training, a->alg, f32, a->alpha, 0);
        st = low_dst ? dnnl_unimplemented : dnnl_primitive_desc_create(&f, &ed, attr, engine, NULL);
#endif
        if (st == dnnl_success) {
            const int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
            const dnnl_query_t q[2] = {dnnl_query_src_md, dnnl_query_dst_md};
            *elt_ms = time_pd(f, 2, args, q);
            if (verbose) printf("    eltwise fwd%s %6.3f ms %s\n", low_dst ? " (bf16 dst)" : "", *elt_ms, impl(f));
            if (!low_dst) {
#if DNNL_VERSION_MAJOR >= 3
                st = dnnl_eltwise_backward_primitive_desc_create(&b, engine, a->alg, f32, f32, f32, a->alpha, 0, f, attr);
#else
                dnnl_eltwise_desc_t ebd;
                dnnl_eltwise_backward_desc_init(&ebd, a->alg, f32, f32, a->alpha, 0);
                st = dnnl_primitive_desc_create(&b, &ebd, attr, engine, f);
#endif
                const int bargs[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_SRC};
                const dnnl_query_t bq[3] = {dnnl_query_diff_src_md, dnnl_query_diff_dst_md, dnnl_query_src_md};
                if (st == dnnl_success) {
                    double ms = time_pd(b, 3, bargs, bq);
                    *elt_ms += ms;
                    if (verbose) printf("    eltwise bwd %6.3f ms %s\n", ms, impl(b));
                    dnnl_primitive_desc_destroy(b);
                }
            }
            dnnl_primitive_desc_destroy(f);
        } else {
            if (verbose) printf("    eltwise fwd%s not implemented\n", low_dst ? " (bf16 dst)" : "");
            *elt_ms = -1;
        }
    }
    dnnl_primitive_attr_destroy(attr);
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_destroy(f32), dnnl_memory_desc_destroy(dst);
#else
    free(f32), free(dst);
#endif
    return 0;
}

// One DCGAN-28 step (batch 64, one channel): G 100 -> 256 (7x7) -> 128 (14x14) -> 1 (28x28),
// D 1 -> 64 (14x14) -> 128 (7x7) -> 1 (1x1); passes per step as DNNL_VERBOSE counts them.
static const conv_t dcgan28[] = {
    {64, 100, 1, 256, 7, 1, 0, 1, 1, 0, 1},
    {64, 256, 7, 128, 4, 2, 1, 1, 1, 1, 1},
    {64, 128, 14, 1, 4, 2, 1, 1, 1, 1, 1},
    {64, 1, 28, 64, 4, 2, 1, 0, 3, 1, 2},
    {64, 64, 14, 128, 4, 2, 1, 0, 3, 3, 2},
    {64, 128, 7, 1, 7, 1, 0, 0, 3, 3, 2},
};
static const act_t dcgan28_act[] = {
    {64, 256, 7, 1, 0, dnnl_eltwise_relu, 0},   // G: batch norm + ReLU (fused in the engine)
    {64, 128, 14, 1, 0, dnnl_eltwise_relu, 0},
    {64, 1, 28, 0, 1, dnnl_eltwise_tanh, 0},    // G's output
    {64, 64, 14, 0, 3, dnnl_eltwise_relu, 0.2f},  // D: leaky ReLU
    {64, 128, 7, 3, 3, dnnl_eltwise_relu, 0.2f},
};
// One ResNet-28 training step (batch 64, 3 channels): stem 3 -> 32, then stages of 32 (28x28),
// 64 (14x14) and 128 (7x7), each widening block with a 1x1 stride-2 shortcut.
static const conv_t resnet28[] = {
    {64, 3, 28, 32, 3, 1, 1, 0, 1, 0, 1},
    {64, 32, 28, 32, 3, 1, 1, 0, 2, 2, 2},
    {64, 32, 28, 64, 3, 2, 1, 0, 1, 1, 1},
    {64, 64, 14, 64, 3, 1, 1, 0, 1, 1, 1},
    {64, 32, 28, 64, 1, 2, 0, 0, 1, 1, 1},
    {64, 64, 14, 128, 3, 2, 1, 0, 1, 1, 1},
    {64, 128, 7, 128, 3, 1, 1, 0, 1, 1, 1},
    {64, 64, 14, 128, 1, 2, 0, 0, 1, 1, 1},
};
static const act_t resnet28_act[] = {
    {64, 32, 28, 3, 0, dnnl_eltwise_relu, 0},
    {64, 64, 14, 3, 0, dnnl_eltwise_relu, 0},
    {64, 128, 7, 3, 0, dnnl_eltwise_relu, 0},
};

static void model(const char *name, const conv_t *convs, int nconv, const act_t *acts, int nact) {
    double sum[3] = {0, 0, 0}, reorders[3] = {0, 0, 0};
    int refs[3] = {0, 0, 0};
    for (int m = 0; m < 3; m++) {
        for (int i = 0; i < nconv; i++) {
            const conv_t *c = &convs[i];
            if (verbose)
                printf("  %s %s %d->%d %dx%d k%d s%d%s\n", mode_names[m], name, c->ic, c->oc, c->ih, c->ih, c->k, c->stride, c->transposed ? " transposed" : "");
            conv_times t = time_conv(c, (enum mode)m);
            sum[m] += c->fwd * t.ms[0] + c->bwd_data * t.ms[1] + c->bwd_weights * t.ms[2];
            reorders[m] += c->fwd * t.reorders[0] + c->bwd_data * t.reorders[1] + c->bwd_weights * t.reorders[2];
            refs[m] += t.ref;
        }
    }
    double bn = 0, elt = 0;
    const char *low[2] = {"not run", "not run"};  // batch norm, eltwise forward with a bf16 dst
    for (int i = 0; i < nact; i++) {
        const act_t *a = &acts[i];
        double b, e;
        if (verbose) printf("  %s activation %dx%dx%d\n", name, a->c, a->h, a->h);
        time_act(a, 0, &b, &e);
        bn += a->bn * b, elt += a->eltwise * e;
        time_act(a, 1, &b, &e);
        if (a->bn) low[0] = b < 0 ? "not implemented" : "implemented";
        if (a->eltwise) low[1] = e < 0 ? "not implemented" : "implemented";
    }
    printf("%s, oneDNN %d.%d, ms per step (convolution passes with their input reorders):\n", name, DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR);
    for (int m = 0; m < 3; m++)
        printf("  convolutions %-6s %7.2f  (of which reorders %5.2f)%s\n", mode_names[m], sum[m], reorders[m], refs[m] ? "  [ref: or missing]" : "");
    printf("  batch norm fwd+bwd %7.2f, eltwise fwd+bwd %7.2f\n", bn, elt);
    printf("  f32 in, bf16 out: batch norm fwd %s, eltwise fwd %s\n", low[0], low[1]);
}

int main(int argc, char **argv) {
    verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    model("DCGAN-28", dcgan28, sizeof dcgan28 / sizeof dcgan28[0], dcgan28_act, sizeof dcgan28_act / sizeof dcgan28_act[0]);
    model("ResNet-28", resnet28, sizeof resnet28 / sizeof resnet28[0], resnet28_act, sizeof resnet28_act / sizeof resnet28_act[0]);
    return 0;
}
