// Host side of the GPU decoder: device weights and KV cache, cuBLAS GEMMs,
// the launch sequence of one forward call.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/attention.h"
#include "kernels/attention_launch.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"
#include "kernels/llama_gpu.h"

namespace mnemo::kernels {
namespace {

using internal::DeviceArray;

absl::Status CublasStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  if (s == CUBLAS_STATUS_ALLOC_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat("cuBLAS out of memory in ", what));
  }
  return absl::InternalError(absl::StrCat("cuBLAS error ", static_cast<int>(s), " in ", what));
}

#define MNEMO_CUBLAS_OK(expr)                                 \
  do {                                                        \
    absl::Status mnemo_cublas_ok_ = CublasStatus(expr, #expr); \
    if (!mnemo_cublas_ok_.ok()) return mnemo_cublas_ok_;      \
  } while (0)

#define RETURN_GEMM(expr)          \
  do {                             \
    absl::Status g_ = (expr);      \
    if (!g_.ok()) return g_;       \
  } while (0)

struct DeviceLayer {
  DeviceArray<float> attn_norm, wq, wk, wv, wo, ffn_norm, w1, w3, w2;
};

class LlamaGpuImpl final : public LlamaGpu {
 public:
  explicit LlamaGpuImpl(const LlamaGpuConfig& c) : c_(c) {}
  ~LlamaGpuImpl() override {
    if (blas_ != nullptr) cublasDestroy(blas_);
  }

  absl::Status Init(const LlamaGpuWeights& w) {
    MNEMO_CUDA_OK(cudaSetDevice(0));
    MNEMO_CUDA_OK(stream_.Create());
    MNEMO_CUBLAS_OK(cublasCreate(&blas_));
    MNEMO_CUBLAS_OK(cublasSetStream(blas_, stream_.get()));
    // Plain fp32 (no TF32): the parity tolerance with the CPU is 1e-3.
    MNEMO_CUBLAS_OK(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH));
    const size_t D = c_.dim, Q = size_t{1} * c_.n_heads * c_.head_dim,
                 KV = size_t{1} * c_.n_kv_heads * c_.head_dim, F = c_.ffn_dim;
    auto upload = [&](DeviceArray<float>* d, const float* h, size_t n) -> absl::Status {
      if (h == nullptr) return absl::InvalidArgumentError("null weight pointer");
      MNEMO_CUDA_OK(d->Allocate(n));
      MNEMO_CUDA_OK(d->CopyFrom(h, n, stream_.get()));
      return absl::OkStatus();
    };
#define MNEMO_UPLOAD(d, h, n)                  \
  do {                                         \
    absl::Status s_ = upload(d, h, n);         \
    if (!s_.ok()) return s_;                   \
  } while (0)
    MNEMO_UPLOAD(&emb_, w.embeddings, size_t{1} * c_.vocab_size * D);
    MNEMO_UPLOAD(&final_norm_, w.final_norm, D);
    layers_.resize(c_.n_layers);
    for (int l = 0; l < c_.n_layers; ++l) {
      const LlamaGpuLayer& h = w.layers[l];
      DeviceLayer& d = layers_[l];
      MNEMO_UPLOAD(&d.attn_norm, h.attn_norm, D);
      MNEMO_UPLOAD(&d.wq, h.wq, Q * D);
      MNEMO_UPLOAD(&d.wk, h.wk, KV * D);
      MNEMO_UPLOAD(&d.wv, h.wv, KV * D);
      MNEMO_UPLOAD(&d.wo, h.wo, D * Q);
      MNEMO_UPLOAD(&d.ffn_norm, h.ffn_norm, D);
      MNEMO_UPLOAD(&d.w1, h.w1, F * D);
      MNEMO_UPLOAD(&d.w3, h.w3, F * D);
      MNEMO_UPLOAD(&d.w2, h.w2, D * F);
    }
#undef MNEMO_UPLOAD
    const size_t half = c_.head_dim / 2;
    MNEMO_CUDA_OK(cos_.Allocate(half * c_.capacity));
    MNEMO_CUDA_OK(sin_.Allocate(half * c_.capacity));
    if (absl::Status s = UploadRopeTables(); !s.ok()) return s;
    k_cache_.resize(c_.n_layers);
    v_cache_.resize(c_.n_layers);
    for (int l = 0; l < c_.n_layers; ++l) {
      MNEMO_CUDA_OK(k_cache_[l].Allocate(KV * c_.capacity));
      MNEMO_CUDA_OK(v_cache_[l].Allocate(KV * c_.capacity));
    }
    MNEMO_CUDA_OK(cudaStreamSynchronize(stream_.get()));
    return absl::OkStatus();
  }

  absl::Status Forward(const int32_t* tokens, int n, bool all_logits,
                       std::vector<float>* logits) override {
    if (n <= 0) return absl::InvalidArgumentError("no tokens to run");
    if (length_ + n > c_.capacity) {
      return absl::OutOfRangeError(absl::StrCat("KV cache full: ", length_, " + ", n,
                                                " tokens exceed its capacity of ", c_.capacity));
    }
    absl::Status s = EnsureScratch(n);
    if (!s.ok()) return s;
    if (table_first_position_ != first_position_) {
      s = UploadRopeTables();
      if (!s.ok()) return s;
    }
    cudaStream_t st = stream_.get();
    const int D = c_.dim, H = c_.n_heads, KVH = c_.n_kv_heads, hd = c_.head_dim, F = c_.ffn_dim;
    const int QD = H * hd, KVD = KVH * hd;
    // Slot index of the first token. Row r of the RoPE tables is position
    // first_position_ + r, and the causal mask needs only relative
    // positions, so slots serve as positions below.
    const int pos0 = length_;
    MNEMO_CUDA_OK(tokens_.CopyFrom(tokens, n, st));
    MNEMO_CUDA_OK(internal::LaunchEmbed(tokens_.get(), n, emb_.get(), D, x_.get(), st));
    for (int l = 0; l < c_.n_layers; ++l) {
      const DeviceLayer& w = layers_[l];
      MNEMO_CUDA_OK(internal::LaunchRmsNorm(x_.get(), n, D, w.attn_norm.get(), c_.norm_eps,
                                            h_.get(), st));
      RETURN_GEMM(Gemm(h_.get(), n, D, w.wq.get(), QD, q_.get(), 0.0f));
      RETURN_GEMM(Gemm(h_.get(), n, D, w.wk.get(), KVD, k_.get(), 0.0f));
      RETURN_GEMM(Gemm(h_.get(), n, D, w.wv.get(), KVD, v_.get(), 0.0f));
      MNEMO_CUDA_OK(internal::LaunchRope(q_.get(), n, H, hd, cos_.get(), sin_.get(), pos0, st));
      MNEMO_CUDA_OK(internal::LaunchRope(k_.get(), n, KVH, hd, cos_.get(), sin_.get(), pos0, st));
      MNEMO_CUDA_OK(internal::LaunchAppendKv(k_.get(), v_.get(), n, KVH, hd, c_.capacity, pos0,
                                             k_cache_[l].get(), v_cache_[l].get(), st));
      internal::PartialAttentionParams p;
      p.n_heads = H;
      p.n_kv_heads = KVH;
      p.head_dim = hd;
      p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
      p.queries = q_.get();
      p.n_queries = n;
      p.query_first_position = pos0;
      p.keys = k_cache_[l].get();
      p.values = v_cache_[l].get();
      p.n_keys = pos0 + n;
      p.head_stride = c_.capacity;
      p.causal = true;
      p.out = att_.get();
      MNEMO_CUDA_OK(internal::LaunchPartialAttention(p, st));
      RETURN_GEMM(Gemm(att_.get(), n, QD, w.wo.get(), D, x_.get(), 1.0f));
      MNEMO_CUDA_OK(internal::LaunchRmsNorm(x_.get(), n, D, w.ffn_norm.get(), c_.norm_eps,
                                            h_.get(), st));
      RETURN_GEMM(Gemm(h_.get(), n, D, w.w1.get(), F, ff1_.get(), 0.0f));
      RETURN_GEMM(Gemm(h_.get(), n, D, w.w3.get(), F, ff3_.get(), 0.0f));
      MNEMO_CUDA_OK(internal::LaunchSwiGlu(ff1_.get(), ff3_.get(), int64_t{n} * F, st));
      RETURN_GEMM(Gemm(ff1_.get(), n, F, w.w2.get(), D, x_.get(), 1.0f));
    }
    length_ = pos0 + n;
    if (logits != nullptr) {
      const int first = all_logits ? 0 : n - 1;
      const int rows = n - first;
      MNEMO_CUDA_OK(internal::LaunchRmsNorm(x_.get() + size_t{1} * first * D, rows, D,
                                            final_norm_.get(), c_.norm_eps, h_.get(), st));
      RETURN_GEMM(Gemm(h_.get(), rows, D, emb_.get(), c_.vocab_size, logits_.get(), 0.0f));
      logits->resize(size_t{1} * rows * c_.vocab_size);
      MNEMO_CUDA_OK(logits_.CopyTo(logits->data(), logits->size(), st));
    }
    MNEMO_CUDA_OK(cudaStreamSynchronize(st));
    return absl::OkStatus();
  }

  absl::Status AppendKv(const std::vector<const float*>& keys,
                        const std::vector<const float*>& values, int n) override {
    if (n <= 0) return absl::InvalidArgumentError("no KV positions to append");
    if (static_cast<int>(keys.size()) != c_.n_layers ||
        static_cast<int>(values.size()) != c_.n_layers) {
      return absl::InvalidArgumentError("KV to append must have one key and value array per layer");
    }
    if (n > c_.capacity - length_) {
      return absl::OutOfRangeError(absl::StrCat("KV cache full: ", length_, " + ", n,
                                                " tokens exceed its capacity of ", c_.capacity));
    }
    cudaStream_t st = stream_.get();
    const size_t run = size_t{1} * n * c_.head_dim;
    for (int l = 0; l < c_.n_layers; ++l) {
      for (int g = 0; g < c_.n_kv_heads; ++g) {
        const size_t dst = (size_t{1} * g * c_.capacity + length_) * c_.head_dim;
        MNEMO_CUDA_OK(k_cache_[l].CopyFrom(keys[l] + g * run, run, st, dst));
        MNEMO_CUDA_OK(v_cache_[l].CopyFrom(values[l] + g * run, run, st, dst));
      }
    }
    // The host arrays are borrowed: done with them before returning.
    MNEMO_CUDA_OK(cudaStreamSynchronize(st));
    length_ += n;
    return absl::OkStatus();
  }

  int length() const override { return length_; }
  int first_position() const override { return first_position_; }
  void Reset() override {
    length_ = 0;
    first_position_ = 0;
  }
  absl::Status ResetAt(int first_position) override {
    if (first_position < 0 || first_position > std::numeric_limits<int32_t>::max() - c_.capacity) {
      return absl::InvalidArgumentError(
          absl::StrCat("first position ", first_position, " must be in [0, INT32_MAX - capacity ",
                       c_.capacity, "]"));
    }
    length_ = 0;
    first_position_ = first_position;
    return absl::OkStatus();
  }

 private:
  // RoPE tables for positions [first_position_, +capacity): angles and
  // cos/sin in float64, cast to float32 (as the reference does).
  absl::Status UploadRopeTables() {
    table_first_position_ = -1;  // stale until the copy has completed
    const int half = c_.head_dim / 2;
    std::vector<float> cs(size_t{1} * c_.capacity * half), sn(cs.size());
    for (int i = 0; i < half; ++i) {
      const double inv = std::pow(c_.rope_theta, -static_cast<double>(i) * 2.0 / c_.head_dim);
      for (int p = 0; p < c_.capacity; ++p) {
        const double angle = static_cast<double>(int64_t{first_position_} + p) * inv;
        cs[size_t{1} * p * half + i] = static_cast<float>(std::cos(angle));
        sn[size_t{1} * p * half + i] = static_cast<float>(std::sin(angle));
      }
    }
    MNEMO_CUDA_OK(cos_.CopyFrom(cs.data(), cs.size(), stream_.get()));
    MNEMO_CUDA_OK(sin_.CopyFrom(sn.data(), sn.size(), stream_.get()));
    MNEMO_CUDA_OK(cudaStreamSynchronize(stream_.get()));
    table_first_position_ = first_position_;
    return absl::OkStatus();
  }

  // y[n, out] = x[n, in] @ w[out, in]^T + beta * y (row-major), as the
  // column-major product y^T = w^T(op T) x^T.
  absl::Status Gemm(const float* x, int n, int in, const float* w, int out, float* y,
                    float beta) {
    const float alpha = 1.0f;
    MNEMO_CUBLAS_OK(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w, in, x, in,
                                &beta, y, out));
    return absl::OkStatus();
  }

  absl::Status EnsureScratch(int n) {
    if (n <= scratch_tokens_) return absl::OkStatus();
    const size_t t = n;
    MNEMO_CUDA_OK(tokens_.Allocate(t));
    MNEMO_CUDA_OK(x_.Allocate(t * c_.dim));
    MNEMO_CUDA_OK(h_.Allocate(t * c_.dim));
    MNEMO_CUDA_OK(q_.Allocate(t * c_.n_heads * c_.head_dim));
    MNEMO_CUDA_OK(att_.Allocate(t * c_.n_heads * c_.head_dim));
    MNEMO_CUDA_OK(k_.Allocate(t * c_.n_kv_heads * c_.head_dim));
    MNEMO_CUDA_OK(v_.Allocate(t * c_.n_kv_heads * c_.head_dim));
    MNEMO_CUDA_OK(ff1_.Allocate(t * c_.ffn_dim));
    MNEMO_CUDA_OK(ff3_.Allocate(t * c_.ffn_dim));
    MNEMO_CUDA_OK(logits_.Allocate(t * c_.vocab_size));
    scratch_tokens_ = n;
    return absl::OkStatus();
  }

  LlamaGpuConfig c_;
  internal::CudaStream stream_;
  cublasHandle_t blas_ = nullptr;
  DeviceArray<float> emb_, final_norm_, cos_, sin_;
  std::vector<DeviceLayer> layers_;
  std::vector<DeviceArray<float>> k_cache_, v_cache_;  // [n_kv_heads, capacity, head_dim]
  DeviceArray<int32_t> tokens_;
  DeviceArray<float> x_, h_, q_, k_, v_, att_, ff1_, ff3_, logits_;
  int scratch_tokens_ = 0;
  int length_ = 0;
  int first_position_ = 0;        // position of cache slot 0
  int table_first_position_ = -1;  // position of row 0 of cos_/sin_; -1: not built
};

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaGpu>> LlamaGpu::Create(const LlamaGpuConfig& c,
                                                           const LlamaGpuWeights& w) {
  if (c.vocab_size <= 0 || c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0 || c.head_dim <= 0 ||
      c.head_dim % 2 != 0 || c.head_dim > kMaxAttentionHeadDim || c.ffn_dim <= 0 ||
      c.capacity <= 0 || static_cast<int>(w.layers.size()) != c.n_layers) {
    return absl::InvalidArgumentError("invalid GPU decoder configuration");
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  auto impl = std::make_unique<LlamaGpuImpl>(c);
  if (absl::Status s = impl->Init(w); !s.ok()) return s;
  return impl;
}

}  // namespace mnemo::kernels
