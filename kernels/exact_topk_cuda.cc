// Host side of the CUDA exact top-k: argument checks, device buffers,
// copies, and the single place where cudaError_t becomes absl::Status.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/exact_topk.h"
#include "kernels/exact_topk_launch.h"

namespace mnemo::kernels {
namespace {

using internal::ExactTopKParams;

absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error in ", what, ": ",
                                          cudaGetErrorName(err), " (",
                                          cudaGetErrorString(err), ")"));
}

#define MNEMO_CUDA_RETURN_IF_ERROR(expr)                     \
  do {                                                       \
    absl::Status mnemo_cuda_status_ = CudaStatus(expr, #expr); \
    if (!mnemo_cuda_status_.ok()) return mnemo_cuda_status_; \
  } while (0)

// Owns one device allocation; freed on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  cudaError_t Allocate(size_t bytes) {
    return cudaMalloc(&ptr_, std::max<size_t>(bytes, 1));
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Owns a stream; destroyed on scope exit.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaError_t Create() {
    return cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Queries per launch, bounding the scratch buffer.
constexpr size_t kQueryChunk = 4096;
// Enough blocks to fill an H100 (132 SMs) a couple of times over.
constexpr int64_t kTargetBlocks = 528;
// Splits shorter than this waste a block on setup.
constexpr int64_t kMinSplitRows = 2048;

}  // namespace

absl::Status CudaDeviceAvailable() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    return absl::UnavailableError(absl::StrCat(
        "no usable CUDA device: ", cudaGetErrorName(err), " (",
        cudaGetErrorString(err), ")"));
  }
  if (count == 0) return absl::UnavailableError("no CUDA device present");
  return absl::OkStatus();
}

absl::Status ExactTopK(const ExactTopKArgs& args) {
  if (args.k < 1 || args.k > kMaxExactTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, ", kMaxExactTopK, "], got ", args.k));
  }
  if (args.dim == 0 ||
      args.dim > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("dim out of range");
  }
  if (args.nq == 0) return absl::OkStatus();
  if (args.queries == nullptr || args.out_ids == nullptr ||
      args.out_scores == nullptr || (args.nb > 0 && args.base == nullptr)) {
    return absl::InvalidArgumentError("null buffer");
  }
  const absl::Status available = CudaDeviceAvailable();
  if (!available.ok()) return available;

  const size_t k = static_cast<size_t>(args.k);
  if (args.nb == 0) {
    const float pad = args.score == ExactScore::kL2
                          ? std::numeric_limits<float>::infinity()
                          : -std::numeric_limits<float>::infinity();
    std::fill_n(args.out_ids, args.nq * k, -1);
    std::fill_n(args.out_scores, args.nq * k, pad);
    return absl::OkStatus();
  }

  const int padded_k = internal::PaddedK(args.k);
  MNEMO_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  Stream stream;
  MNEMO_CUDA_RETURN_IF_ERROR(stream.Create());

  const size_t nb = args.nb;
  const size_t dim = args.dim;
  DeviceBuffer base;
  MNEMO_CUDA_RETURN_IF_ERROR(base.Allocate(nb * dim * sizeof(float)));
  MNEMO_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(base.as<float>(), args.base,
                                             nb * dim * sizeof(float),
                                             cudaMemcpyHostToDevice,
                                             stream.get()));

  const size_t chunk = std::min(args.nq, kQueryChunk);
  const int64_t max_splits =
      std::max<int64_t>(1, static_cast<int64_t>(nb) / kMinSplitRows);
  const int64_t wanted_splits = (kTargetBlocks + static_cast<int64_t>(chunk) -
                                 1) / static_cast<int64_t>(chunk);
  const int num_splits =
      static_cast<int>(std::clamp<int64_t>(wanted_splits, 1, max_splits));
  const int64_t split_len =
      (static_cast<int64_t>(nb) + num_splits - 1) / num_splits;

  DeviceBuffer queries, part_keys, part_ids, out_ids, out_scores;
  const size_t part = chunk * num_splits * padded_k;
  MNEMO_CUDA_RETURN_IF_ERROR(queries.Allocate(chunk * dim * sizeof(float)));
  MNEMO_CUDA_RETURN_IF_ERROR(part_keys.Allocate(part * sizeof(float)));
  MNEMO_CUDA_RETURN_IF_ERROR(part_ids.Allocate(part * sizeof(int64_t)));
  MNEMO_CUDA_RETURN_IF_ERROR(out_ids.Allocate(chunk * k * sizeof(int64_t)));
  MNEMO_CUDA_RETURN_IF_ERROR(out_scores.Allocate(chunk * k * sizeof(float)));

  for (size_t q0 = 0; q0 < args.nq; q0 += chunk) {
    const size_t nq = std::min(chunk, args.nq - q0);
    MNEMO_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        queries.as<float>(), args.queries + q0 * dim, nq * dim * sizeof(float),
        cudaMemcpyHostToDevice, stream.get()));
    ExactTopKParams params;
    params.base = base.as<float>();
    params.queries = queries.as<float>();
    params.nb = static_cast<int64_t>(nb);
    params.nq = static_cast<int64_t>(nq);
    params.dim = static_cast<int>(dim);
    params.l2 = args.score == ExactScore::kL2;
    params.k = args.k;
    params.num_splits = num_splits;
    params.split_len = split_len;
    params.part_keys = part_keys.as<float>();
    params.part_ids = part_ids.as<int64_t>();
    params.out_ids = out_ids.as<int64_t>();
    params.out_scores = out_scores.as<float>();
    MNEMO_CUDA_RETURN_IF_ERROR(
        internal::LaunchExactTopK(params, stream.get()));
    MNEMO_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        args.out_ids + q0 * k, out_ids.as<int64_t>(),
        nq * k * sizeof(int64_t), cudaMemcpyDeviceToHost, stream.get()));
    MNEMO_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
        args.out_scores + q0 * k, out_scores.as<float>(),
        nq * k * sizeof(float), cudaMemcpyDeviceToHost, stream.get()));
    MNEMO_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream.get()));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
