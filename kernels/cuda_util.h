// Internal: the one place CUDA / cuBLAS errors become absl::Status, and an
// owning device buffer. Included only by the CUDA host files of kernels/.
#ifndef MNEMO_KERNELS_CUDA_UTIL_H_
#define MNEMO_KERNELS_CUDA_UTIL_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo::kernels::internal {

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error in ", what, ": ", cudaGetErrorName(err),
                                          " (", cudaGetErrorString(err), ")"));
}

#define MNEMO_CUDA_OK(expr)                                                        \
  do {                                                                             \
    absl::Status mnemo_cuda_ok_ = ::mnemo::kernels::internal::CudaStatus(expr, #expr); \
    if (!mnemo_cuda_ok_.ok()) return mnemo_cuda_ok_;                               \
  } while (0)

// Owns one device allocation of n elements of T; freed on destruction.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), n_(o.n_) {}
  ~DeviceArray() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  cudaError_t Allocate(size_t n) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = n;
    return cudaMalloc(reinterpret_cast<void**>(&ptr_), std::max<size_t>(n, 1) * sizeof(T));
  }
  cudaError_t CopyFrom(const T* host, size_t n, cudaStream_t s, size_t offset = 0) {
    return cudaMemcpyAsync(ptr_ + offset, host, n * sizeof(T), cudaMemcpyHostToDevice, s);
  }
  cudaError_t CopyTo(T* host, size_t n, cudaStream_t s, size_t offset = 0) const {
    return cudaMemcpyAsync(host, ptr_ + offset, n * sizeof(T), cudaMemcpyDeviceToHost, s);
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// Owns a non-blocking stream.
class CudaStream {
 public:
  CudaStream() = default;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream() {
    if (s_ != nullptr) cudaStreamDestroy(s_);
  }
  cudaError_t Create() { return cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking); }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_CUDA_UTIL_H_
