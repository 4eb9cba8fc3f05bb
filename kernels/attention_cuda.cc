// Host side of the CUDA partial attention: checks, buffers, copies.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "kernels/attention.h"
#include "kernels/attention_launch.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"

namespace mnemo::kernels {

using internal::DeviceArray;

absl::Status PartialAttention(const PartialAttentionArgs& a) {
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0) {
    return absl::InvalidArgumentError("n_kv_heads must be positive and divide n_heads");
  }
  if (a.head_dim <= 0 || a.head_dim > kMaxAttentionHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim must be in [1, ", kMaxAttentionHeadDim, "], got ", a.head_dim));
  }
  if (!(a.scale > 0.0f) || !std::isfinite(a.scale)) {
    return absl::InvalidArgumentError("scale must be finite and positive");
  }
  if (a.n_queries < 0 || a.n_keys < 0 || (a.n_keys > 0 && a.head_stride < a.n_keys)) {
    return absl::InvalidArgumentError("bad query or key count");
  }
  if ((a.n_queries > 0 && (a.queries == nullptr || a.out == nullptr || a.lse == nullptr ||
                           a.max == nullptr)) ||
      (a.n_keys > 0 && (a.keys == nullptr || a.values == nullptr))) {
    return absl::InvalidArgumentError("null buffer");
  }
  if (a.n_queries == 0) return absl::OkStatus();
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  const size_t nq = static_cast<size_t>(a.n_queries) * a.n_heads;
  const size_t kv = a.n_keys > 0 ? static_cast<size_t>(a.n_kv_heads) * a.head_stride * a.head_dim
                                 : 0;
  DeviceArray<float> q, k, v, out, lse, max;
  DeviceArray<int32_t> pos;
  MNEMO_CUDA_OK(q.Allocate(nq * a.head_dim));
  MNEMO_CUDA_OK(k.Allocate(kv));
  MNEMO_CUDA_OK(v.Allocate(kv));
  MNEMO_CUDA_OK(out.Allocate(nq * a.head_dim));
  MNEMO_CUDA_OK(lse.Allocate(nq));
  MNEMO_CUDA_OK(max.Allocate(nq));
  MNEMO_CUDA_OK(q.CopyFrom(a.queries, nq * a.head_dim, stream.get()));
  if (kv > 0) {
    MNEMO_CUDA_OK(k.CopyFrom(a.keys, kv, stream.get()));
    MNEMO_CUDA_OK(v.CopyFrom(a.values, kv, stream.get()));
  }
  internal::PartialAttentionParams p;
  p.n_heads = a.n_heads;
  p.n_kv_heads = a.n_kv_heads;
  p.head_dim = a.head_dim;
  p.scale = a.scale;
  p.queries = q.get();
  p.n_queries = a.n_queries;
  p.query_first_position = a.query_first_position;
  p.keys = k.get();
  p.values = v.get();
  p.n_keys = a.n_keys;
  p.head_stride = a.head_stride;
  p.key_first_position = a.key_first_position;
  if (a.key_positions != nullptr && a.n_keys > 0) {
    MNEMO_CUDA_OK(pos.Allocate(a.n_keys));
    MNEMO_CUDA_OK(pos.CopyFrom(a.key_positions, a.n_keys, stream.get()));
    p.key_positions = pos.get();
  }
  p.causal = a.causal;
  p.out = out.get();
  p.lse = lse.get();
  p.max = max.get();
  MNEMO_CUDA_OK(internal::LaunchPartialAttention(p, stream.get()));
  MNEMO_CUDA_OK(out.CopyTo(a.out, nq * a.head_dim, stream.get()));
  MNEMO_CUDA_OK(lse.CopyTo(a.lse, nq, stream.get()));
  MNEMO_CUDA_OK(max.CopyTo(a.max, nq, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

absl::Status MergePartialAttention(int rows, int head_dim, float* a_out, float* a_lse,
                                   float* a_max, const float* b_out, const float* b_lse,
                                   const float* b_max) {
  if (rows < 0 || head_dim <= 0) return absl::InvalidArgumentError("bad merge sizes");
  if (rows == 0) return absl::OkStatus();
  if (!a_out || !a_lse || !a_max || !b_out || !b_lse || !b_max) {
    return absl::InvalidArgumentError("null buffer");
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  const size_t n = static_cast<size_t>(rows) * head_dim;
  DeviceArray<float> ao, al, am, bo, bl, bm;
  for (auto* d : {&ao, &bo}) MNEMO_CUDA_OK(d->Allocate(n));
  for (auto* d : {&al, &am, &bl, &bm}) MNEMO_CUDA_OK(d->Allocate(rows));
  MNEMO_CUDA_OK(ao.CopyFrom(a_out, n, stream.get()));
  MNEMO_CUDA_OK(bo.CopyFrom(b_out, n, stream.get()));
  MNEMO_CUDA_OK(al.CopyFrom(a_lse, rows, stream.get()));
  MNEMO_CUDA_OK(am.CopyFrom(a_max, rows, stream.get()));
  MNEMO_CUDA_OK(bl.CopyFrom(b_lse, rows, stream.get()));
  MNEMO_CUDA_OK(bm.CopyFrom(b_max, rows, stream.get()));
  MNEMO_CUDA_OK(internal::LaunchMergePartial(rows, head_dim, ao.get(), al.get(), am.get(),
                                             bo.get(), bl.get(), bm.get(), stream.get()));
  MNEMO_CUDA_OK(ao.CopyTo(a_out, n, stream.get()));
  MNEMO_CUDA_OK(al.CopyTo(a_lse, rows, stream.get()));
  MNEMO_CUDA_OK(am.CopyTo(a_max, rows, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
