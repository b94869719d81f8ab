// Times oneDNN's backward-weights convolution (3x3, padding 1, bias, batch 32) in f32 or bf16,
// straight on the C API, printing every execution: shows the bf16 kernels' stalls when another
// busy process shares the cores (README, "bf16 (this round)"). Not in CI.
//
//   gcc -O2 bench/bf16_stall.c -o /tmp/bf16_stall -ldnnl
//   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive /tmp/bf16_stall C H K STRIDE SCALE BF16 FTZ [USER_SCRATCHPAD [FILL]]
//   e.g. /tmp/bf16_stall 96 28 32 1 1 1 0     # the U-Net's 96 -> 32 channel convolution at 28 px, bf16
// C input channels, H the square input side, K output channels, SCALE multiplies the incoming
// gradient (1e-36: denormals), BF16 1 for bf16 inputs, FTZ 1 sets flush-to-zero and
// denormals-are-zero, USER_SCRATCHPAD 1 passes our own scratchpad filled with the byte FILL.
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int N=32,C=atoi(argv[1]),H=atoi(argv[2]),K=atoi(argv[3]),S=atoi(argv[4]); float scale=atof(argv[5]); int bf=atoi(argv[6]); int ftz=atoi(argv[7]); int user=argc>8?atoi(argv[8]):0; int fill=argc>9?atoi(argv[9]):0;
  if(ftz){_MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);_MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);}
  int P=(H+2-3)/S+1;
  dnnl_engine_t e; dnnl_engine_create(&e,dnnl_cpu,0); dnnl_stream_t st; dnnl_stream_create(&st,e,dnnl_stream_default_flags);
  dnnl_data_type_t t= bf?dnnl_bf16:dnnl_f32;
  dnnl_memory_desc_t s,w,b,d; dnnl_dims_t sd={N,C,H,H},wd={K,C,3,3},bd={K},dd={N,K,P,P};
  dnnl_memory_desc_init_by_tag(&s,4,sd,t,dnnl_format_tag_any);dnnl_memory_desc_init_by_tag(&w,4,wd,dnnl_f32,dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(&b,1,bd,dnnl_f32,dnnl_a);dnnl_memory_desc_init_by_tag(&d,4,dd,t,dnnl_format_tag_any);
  dnnl_dims_t str={S,S},pl={1,1},pr={1,1}; pr[0]=(P-1)*S+3-H-1; pr[1]=pr[0];
  dnnl_convolution_desc_t fd,bwd; dnnl_convolution_forward_desc_init(&fd,dnnl_forward_training,dnnl_convolution_direct,&s,&w,&b,&d,str,pl,pr);
  dnnl_primitive_desc_t fpd; dnnl_primitive_desc_create(&fpd,&fd,NULL,e,NULL);
  dnnl_convolution_backward_weights_desc_init(&bwd,dnnl_convolution_direct,&s,&w,&b,&d,str,pl,pr);
  dnnl_primitive_attr_t at; dnnl_primitive_attr_create(&at); if(user) dnnl_primitive_attr_set_scratchpad_mode(at,dnnl_scratchpad_mode_user);
  dnnl_primitive_desc_t pd; if(dnnl_primitive_desc_create(&pd,&bwd,at,e,fpd)){printf("fail\n");return 1;}
  const char*impl; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl);
  const dnnl_memory_desc_t *sm=dnnl_primitive_desc_query_md(pd,dnnl_query_src_md,0),*dm=dnnl_primitive_desc_query_md(pd,dnnl_query_diff_dst_md,0),*wm=dnnl_primitive_desc_query_md(pd,dnnl_query_diff_weights_md,0),*bm=&b;
  dnnl_memory_t ms,md,mw,mb; dnnl_memory_create(&ms,sm,e,DNNL_MEMORY_ALLOCATE);dnnl_memory_create(&md,dm,e,DNNL_MEMORY_ALLOCATE);dnnl_memory_create(&mw,wm,e,DNNL_MEMORY_ALLOCATE);dnnl_memory_create(&mb,bm,e,DNNL_MEMORY_ALLOCATE);
  // fill: bf16 as uint16 from float bits
  void*p; size_t n;
  dnnl_memory_get_data_handle(ms,&p); n=dnnl_memory_desc_get_size(sm);
  srand(1);
  if(bf){unsigned short*q=p; for(size_t i=0;i<n/2;i++){float f=((rand()/(float)RAND_MAX)-0.5f); unsigned u; memcpy(&u,&f,4); q[i]=u>>16;}} else {float*q=p; for(size_t i=0;i<n/4;i++) q[i]=(rand()/(float)RAND_MAX)-0.5f;}
  dnnl_memory_get_data_handle(md,&p); n=dnnl_memory_desc_get_size(dm);
  if(bf){unsigned short*q=p; for(size_t i=0;i<n/2;i++){float f=scale*((rand()/(float)RAND_MAX)-0.5f); unsigned u; memcpy(&u,&f,4); q[i]=u>>16;}} else {float*q=p; for(size_t i=0;i<n/4;i++) q[i]=scale*((rand()/(float)RAND_MAX)-0.5f);}
  dnnl_primitive_t prim; dnnl_primitive_create(&prim,pd);
  dnnl_memory_t msp=NULL; const dnnl_memory_desc_t*spm=dnnl_primitive_desc_query_md(pd,dnnl_query_scratchpad_md,0);
  size_t spb=dnnl_memory_desc_get_size(spm); void*spp=NULL; if(user){posix_memalign(&spp,64,spb+64); memset(spp,fill,spb); dnnl_memory_create(&msp,spm,e,spp);}
  printf("scratchpad %zu bytes\n",spb);
  dnnl_exec_arg_t a[5]={{DNNL_ARG_SRC,ms},{DNNL_ARG_DIFF_DST,md},{DNNL_ARG_DIFF_WEIGHTS,mw},{DNNL_ARG_DIFF_BIAS,mb},{DNNL_ARG_SCRATCHPAD,msp}};
  int na=user?5:4;
  double best=1e9; for(int i=0;i<8;i++){double t0=now(); dnnl_primitive_execute(prim,st,na,a); dnnl_stream_wait(st); double dt=now()-t0; if(dt<best)best=dt; printf(" %.1f",dt*1e3);} printf("\n");
  printf("%s C%d H%d K%d S%d scale %g bf%d ftz%d: %.2f ms\n",impl,C,H,K,S,scale,bf,ftz,best*1e3);
  return 0;}
