#include <oneapi/dnnl/dnnl.h>
#include <malloc.h>
