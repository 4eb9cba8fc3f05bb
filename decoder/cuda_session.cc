// The GPU session: adapts kernels::LlamaGpu (which reports UNAVAILABLE when
// CUDA was not compiled in or no device is usable) to DecodeSession.
#include "decoder/cuda_session.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/llama_gpu.h"

namespace mnemo::decoder::internal {
namespace {

class CudaSession final : public DecodeSession {
 public:
  CudaSession(const Model& model, std::unique_ptr<kernels::LlamaGpu> gpu, int capacity)
      : model_(model), gpu_(std::move(gpu)), capacity_(capacity) {}

  absl::Status Append(absl::Span<const int32_t> tokens, LogitsMode mode,
                      std::vector<float>* logits) override {
    if (tokens.empty()) return absl::InvalidArgumentError("no tokens to run");
    const int vocab = model_.config().vocab_size;
    for (int32_t id : tokens) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary of ", vocab));
      }
    }
    return gpu_->Forward(tokens.data(), static_cast<int>(tokens.size()),
                         mode == LogitsMode::kAll, mode == LogitsMode::kNone ? nullptr : logits);
  }
  absl::Status AppendKv(const PositionedKv& kv) override {
    if (absl::Status s = ValidatePositionedKv(model_.config(), kv); !s.ok()) return s;
    if (kv.first_position != next_position()) {
      return absl::InvalidArgumentError(
          absl::StrCat("KV rotated for first position ", kv.first_position,
                       " cannot be appended at the session's next position ", next_position()));
    }
    std::vector<const float*> keys, values;
    for (size_t l = 0; l < kv.keys.size(); ++l) {
      keys.push_back(kv.keys[l].data());
      values.push_back(kv.values[l].data());
    }
    return gpu_->AppendKv(keys, values, kv.n_tokens);
  }
  int length() const override { return gpu_->length(); }
  int capacity() const override { return capacity_; }
  int next_position() const override { return gpu_->first_position() + gpu_->length(); }
  void Reset() override { gpu_->Reset(); }
  absl::Status ResetAt(int first_position) override { return gpu_->ResetAt(first_position); }
  Device device() const override { return Device::kCuda; }
  absl::Status SetExternalAttention(ExternalAttention* external) override {
    if (external == nullptr) return absl::OkStatus();
    return absl::UnimplementedError(
        "the GPU session has no external attention yet (retrieval attention runs on --device cpu)");
  }

 private:
  const Model& model_;
  std::unique_ptr<kernels::LlamaGpu> gpu_;
  int capacity_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DecodeSession>> NewCudaSession(const Model& model, int capacity) {
  const ModelConfig& c = model.config();
  kernels::LlamaGpuConfig g;
  g.vocab_size = c.vocab_size;
  g.dim = c.dim;
  g.n_layers = c.n_layers;
  g.n_heads = c.n_heads;
  g.n_kv_heads = c.n_kv_heads;
  g.head_dim = c.head_dim;
  g.ffn_dim = c.ffn_dim;
  g.rope_theta = c.rope_theta;
  g.norm_eps = static_cast<float>(c.norm_eps);
  g.capacity = capacity;
  kernels::LlamaGpuWeights w;
  w.embeddings = model.embeddings();
  w.final_norm = model.final_norm();
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& s = model.layer(l);
    w.layers.push_back({s.attn_norm, s.wq, s.wk, s.wv, s.wo, s.ffn_norm, s.w1, s.w3, s.w2});
  }
  absl::StatusOr<std::unique_ptr<kernels::LlamaGpu>> gpu = kernels::LlamaGpu::Create(g, w);
  if (!gpu.ok()) return gpu.status();
  return std::make_unique<CudaSession>(model, *std::move(gpu), capacity);
}

}  // namespace mnemo::decoder::internal
