// FlashDJL: a standalone probe (not part of the build). Build: nvcc -std=c++17 -O2 -arch=sm_90a -cudart static
//   -o cluster_probe ops/src/test/cuda/cluster_probe.cu; run on a Hopper GPU: one JSON line per cluster size.
// How many thread-block clusters of the _wide decode kernel's shape (256 threads, 143 KB dynamic shared memory, one
// CTA an SM) an H200 holds at once, per cluster size: cudaOccupancyMaxActiveClusters (session 19, for a cluster /
// DSMEM split merge design).
#include <cstdio>
#include <cuda_runtime.h>
__global__ void probe_kernel(int* x) { extern __shared__ int s[]; if (x) x[0] = s[threadIdx.x]; }
int main() {
  const int smem = 146432, threads = 256;
  cudaFuncSetAttribute(probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaFuncSetAttribute(probe_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  for (int cs : {1, 2, 4, 8, 16}) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(cs * 16, 1, 1);
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = cs; at[0].val.clusterDim.y = 1; at[0].val.clusterDim.z = 1;
    cfg.attrs = at; cfg.numAttrs = 1;
    int n = -1;
    cudaError_t e = cudaOccupancyMaxActiveClusters(&n, probe_kernel, &cfg);
    printf("{\"sms\":%d,\"cluster\":%d,\"max_active_clusters\":%d,\"ctas\":%d,\"err\":\"%s\"}\n", prop.multiProcessorCount,
           cs, n, n * cs, cudaGetErrorString(e));
  }
  return 0;
}
