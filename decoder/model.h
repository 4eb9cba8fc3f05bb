// The reference llama-style decoder: weights, KV cache and the CPU forward
// pass (OpenBLAS). Implements exactly decoder/train/model.py: pre-norm
// RMSNorm, RoPE "rotate half" through attention/rope.h (dimension i rotates
// with i + head_dim/2, inv_freq_i = theta^(-2i/head_dim), angles in
// float64), grouped-query attention through attention/partial.h, SwiGLU,
// tied output projection.
//
// Nothing here depends on the tokenizer (SentencePiece) or protobuf, so a
// process linking gRPC may use it.
#ifndef MNEMO_DECODER_MODEL_H_
#define MNEMO_DECODER_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "attention/partial.h"
#include "attention/rope.h"
#include "decoder/config.h"
#include "decoder/fingerprint.h"
#include "decoder/safetensors.h"

namespace mnemo::decoder {

// Borrowed views into the weights file; nn.Linear layout [out, in].
struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  const float* wq = nullptr;         // [n_heads * head_dim, dim]
  const float* wk = nullptr;         // [n_kv_heads * head_dim, dim]
  const float* wv = nullptr;         // [n_kv_heads * head_dim, dim]
  const float* wo = nullptr;         // [dim, n_heads * head_dim]
  const float* ffn_norm = nullptr;   // [dim]
  const float* w1 = nullptr;         // [ffn_dim, dim] gate
  const float* w3 = nullptr;         // [ffn_dim, dim] up
  const float* w2 = nullptr;         // [dim, ffn_dim] down
};

// A loaded model. Immutable; share one between threads and sessions.
class Model {
 public:
  // Loads <dir>/config.json and the weights it names. NOT_FOUND when the
  // directory or a file is missing; INVALID_ARGUMENT / DATA_LOSS naming the
  // file and tensor for a bad config, a missing tensor or a wrong shape.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir);
  // The same from an already parsed config and weights file.
  static absl::StatusOr<std::unique_ptr<Model>> FromParts(
      ModelConfig config, std::unique_ptr<SafetensorsFile> weights, std::string dir = "");

  const ModelConfig& config() const { return config_; }
  const ModelFingerprint& fingerprint() const { return fingerprint_; }
  const std::string& dir() const { return dir_; }
  const float* embeddings() const { return embeddings_; }  // [vocab, dim]
  const float* final_norm() const { return final_norm_; }  // [dim]
  const LayerWeights& layer(int i) const { return layers_[i]; }
  // Parameters in the weights (elements), and the float32 bytes one decode
  // step reads (every weight once: the tied embedding is the output layer).
  int64_t num_params() const { return num_params_; }
  int64_t weight_bytes() const { return num_params_ * static_cast<int64_t>(sizeof(float)); }
  attention::AttentionShape attention_shape() const;

 private:
  Model() = default;
  ModelConfig config_;
  ModelFingerprint fingerprint_;
  std::string dir_;
  std::unique_ptr<SafetensorsFile> weights_;
  const float* embeddings_ = nullptr;
  const float* final_norm_ = nullptr;
  std::vector<LayerWeights> layers_;
  int64_t num_params_ = 0;
};

// K/V of `n_tokens` consecutive positions of every layer, computed outside
// this cache (a stored chunk, fetched and rotated for where it goes: see
// decoder/chunk_kv.h), in the cache's head-major layout. Borrowed views.
struct PositionedKv {
  // Position of token 0: the keys are rotated for [first_position,
  // first_position + n_tokens), and must be appended exactly there.
  int first_position = 0;
  int n_tokens = 0;
  // Per layer, [n_kv_heads, n_tokens, head_dim]: keys AFTER RoPE.
  std::vector<absl::Span<const float>> keys;
  // Per layer, [n_kv_heads, n_tokens, head_dim].
  std::vector<absl::Span<const float>> values;
};

// Per-layer K (after RoPE) and V of one sequence. Slot i of the cache holds
// position first_position() + i, slots [0, length()) are filled; the first
// position is 0 unless ResetAt moved it (a context that starts at an
// arbitrary position, e.g. a chunk encoded on its own where it will be
// placed). Layout per layer: [n_kv_heads, capacity, head_dim], so one KV
// head's keys are contiguous (what a per-(layer, KV head) key index
// stores). Not thread-safe.
class KvCache {
 public:
  KvCache(const ModelConfig& config, int capacity);

  int length() const { return length_; }
  int capacity() const { return capacity_; }
  int first_position() const { return first_position_; }
  // The position the next appended token takes.
  int next_position() const { return first_position_ + length_; }
  // Forgets slots >= n (n <= length()); positions of the rest unchanged.
  void Truncate(int n);
  // Forgets every slot; the next token goes to position 0.
  void Clear() {
    length_ = 0;
    first_position_ = 0;
  }
  // Forgets every slot; the next token goes to position `first_position`
  // and later ones follow it, as if the sequence started there (RoPE at
  // the absolute positions, causal attention among the cache's own
  // tokens). INVALID_ARGUMENT (cache unchanged) for a negative position or
  // one where the capacity's last position would exceed INT32_MAX.
  [[nodiscard]] absl::Status ResetAt(int first_position);
  // Appends `kv` at slots [length(), + kv.n_tokens), positions
  // [next_position(), + kv.n_tokens). INVALID_ARGUMENT when
  // kv.first_position != next_position(), n_tokens <= 0, the number of
  // layers or a span's size does not match [n_kv_heads, n_tokens, head_dim],
  // or a value is not finite; OUT_OF_RANGE when the cache has no room. The
  // cache is unchanged on error.
  [[nodiscard]] absl::Status AppendKv(const PositionedKv& kv);

  float* keys(int layer) { return k_[layer].data(); }
  float* values(int layer) { return v_[layer].data(); }
  // Keys and values of slots [begin, end) of `layer`; the block's
  // first_position is the absolute position of slot `begin`.
  attention::KeyValueBlock View(int layer, int begin, int end) const;

 private:
  friend class CpuForward;
  int n_kv_heads_ = 0;
  int head_dim_ = 0;
  int capacity_ = 0;
  int length_ = 0;
  int first_position_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

// INVALID_ARGUMENT unless `kv` fits a cache of `config` (layer count, span
// sizes [n_kv_heads, n_tokens, head_dim], n_tokens > 0, first_position >=
// 0, finite values). Position and room are the cache's to check.
[[nodiscard]] absl::Status ValidatePositionedKv(const ModelConfig& config,
                                                const PositionedKv& kv);

// Optional captures of one forward call, per layer, for the tokens of the
// call (T of them). Each vector is filled only when its flag is set.
struct ForwardTrace {
  bool want_q = false;
  bool want_kv = false;
  std::vector<std::vector<float>> q;           // [n_heads, T, head_dim], after RoPE
  std::vector<std::vector<float>> k_pre_rope;  // [n_kv_heads, T, head_dim]
  std::vector<std::vector<float>> k;           // [n_kv_heads, T, head_dim], after RoPE
  std::vector<std::vector<float>> v;           // [n_kv_heads, T, head_dim]
};

// Attention over keys the KV cache does not hold, merged into every layer's
// attention by log-sum-exp: the decoder side of retrieval attention
// (decoder/remote_attention.h), where the keys of stored chunks that sit
// before the cache's positions live in mnemo.
class ExternalAttention {
 public:
  virtual ~ExternalAttention() = default;
  // The partial attention of the forward's queries of `layer` over the
  // external keys: `q_pre_rope` and `q_post_rope` [n_tokens, n_heads,
  // head_dim] at positions [first_position, + n_tokens). `result` gets
  // [n_tokens, n_heads] partials (attention/partial.h); an error fails the
  // forward.
  virtual absl::Status Attend(int layer, const float* q_pre_rope, const float* q_post_rope,
                              int n_tokens, int first_position,
                              attention::PartialResult* result) = 0;
};

// Input rows of a forward call that take the place of token embeddings
// (memory injection: an xRAG vector or memory tokens in the decoder's input
// space, decoder/injection_prompt.h): positions [first, first + n) of the
// call run on `rows` ([n, dim] floats) instead of their tokens' embeddings.
struct InputRows {
  int first = 0;                  // index of the row's position within the call
  absl::Span<const float> rows;   // n * dim floats, borrowed
};

enum class LogitsMode {
  kNone,  // no logits (prefill of a context only)
  kLast,  // logits of the last token: [vocab]
  kAll,   // logits of every token: [T, vocab]
};

// The CPU forward pass with its scratch buffers. One per thread.
class CpuForward {
 public:
  explicit CpuForward(const Model& model) : model_(model) {}

  // Runs `tokens` at positions [cache->next_position(), +T), appends their
  // K/V to the cache and writes logits per `mode`. Prefill (T > 1, projections by
  // sgemm) and decode (T == 1, by sgemv) are this one call; a prefix may be
  // fed in pieces and gives the same result as feeding it at once (up to
  // float rounding of the log-sum-exp merge). INVALID_ARGUMENT for no
  // tokens or an id outside the vocabulary, OUT_OF_RANGE when the cache
  // has no room; the cache is unchanged on error.
  // With `external`, every layer's attention also covers its keys (merged
  // by log-sum-exp with the cache's).
  absl::Status Forward(absl::Span<const int32_t> tokens, KvCache* cache, LogitsMode mode,
                       std::vector<float>* logits, ForwardTrace* trace = nullptr,
                       ExternalAttention* external = nullptr);
  // The same with some positions taking given input rows instead of their
  // tokens' embeddings (the ids there are ignored). INVALID_ARGUMENT (cache
  // unchanged) for a span whose size is not a positive multiple of dim,
  // one outside [0, T), overlapping spans, or a non-finite value.
  absl::Status Forward(absl::Span<const int32_t> tokens, absl::Span<const InputRows> injected,
                       KvCache* cache, LogitsMode mode, std::vector<float>* logits,
                       ForwardTrace* trace = nullptr, ExternalAttention* external = nullptr);

 private:
  const Model& model_;
  std::vector<float> x_, h_, q_, q_pre_, k_, v_, att_, ff1_, ff3_;
  std::vector<double> cos_, sin_;
};

// RoPE lives in attention/rope.h; these names stay usable from decoder code.
using attention::ApplyRope;
using attention::RopeTables;

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_MODEL_H_
