#include "encoder/sentence_encoder.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::encoder {
namespace {

namespace fs = std::filesystem;

// Weight names in model.json (TF variable and folded-constant names).
constexpr absl::string_view kKona = "module_apply_default/Encoder_en/KonaTransformer/";
constexpr absl::string_view kKernels = "module/Encoder_en/KonaTransformer/";

// --- Weights of a TF.js graph model ------------------------------------------

struct Tensor {
  std::vector<int64_t> shape;
  std::string dtype;         // "float32" or "int32"
  std::vector<float> f32;    // when dtype == float32
  std::vector<int32_t> i32;  // when dtype == int32
  size_t size() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof())
    return absl::DataLossError(absl::StrCat("cannot read ", path.string()));
  return buffer.str();
}

// Reads every weight listed in model.json's weightsManifest. Each group's
// shards are concatenated in order and its weights laid out back to back.
absl::StatusOr<absl::flat_hash_map<std::string, Tensor>> LoadWeights(const fs::path& dir) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(dir / "model.json"));
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError("model.json is not a JSON object");
  }
  auto manifest = json.find("weightsManifest");
  if (manifest == json.end() || !manifest->is_array()) {
    return absl::DataLossError("model.json has no weightsManifest list");
  }
  absl::flat_hash_map<std::string, Tensor> weights;
  for (const nlohmann::json& group : *manifest) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
        !group.contains("weights") || !group["weights"].is_array()) {
      return absl::DataLossError("model.json: malformed weightsManifest group");
    }
    std::string blob;
    for (const nlohmann::json& path : group["paths"]) {
      if (!path.is_string()) return absl::DataLossError("model.json: shard path is not a string");
      const std::string name = path.get<std::string>();
      if (name.empty() || name.find("..") != std::string::npos || name.front() == '/') {
        return absl::DataLossError(absl::StrCat("model.json: unsafe shard path ", name));
      }
      ASSIGN_OR_RETURN(const std::string shard, ReadFile(dir / name));
      blob += shard;
    }
    size_t offset = 0;
    for (const nlohmann::json& spec : group["weights"]) {
      if (!spec.is_object() || !spec.contains("name") || !spec["name"].is_string() ||
          !spec.contains("shape") || !spec["shape"].is_array() || !spec.contains("dtype") ||
          !spec["dtype"].is_string()) {
        return absl::DataLossError("model.json: malformed weight entry");
      }
      const std::string name = spec["name"].get<std::string>();
      if (spec.contains("quantization")) {
        return absl::DataLossError(absl::StrCat("weight ", name, " is quantized (unsupported)"));
      }
      Tensor tensor;
      tensor.dtype = spec["dtype"].get<std::string>();
      for (const nlohmann::json& d : spec["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (1 << 30)) {
          return absl::DataLossError(absl::StrCat("weight ", name, " has a bad shape"));
        }
        tensor.shape.push_back(d.get<int64_t>());
      }
      const size_t count = tensor.size();
      if (tensor.dtype != "float32" && tensor.dtype != "int32") {
        return absl::DataLossError(
            absl::StrCat("weight ", name, " has unsupported dtype ", tensor.dtype));
      }
      const size_t bytes = count * 4;
      if (offset + bytes > blob.size()) {
        return absl::DataLossError(
            absl::StrCat("weight shards end before weight ", name, " (", blob.size(), " bytes)"));
      }
      if (tensor.dtype == "float32") {
        tensor.f32.resize(count);
        std::memcpy(tensor.f32.data(), blob.data() + offset, bytes);
      } else {
        tensor.i32.resize(count);
        std::memcpy(tensor.i32.data(), blob.data() + offset, bytes);
      }
      offset += bytes;
      weights[name] = std::move(tensor);
    }
  }
  return weights;
}

// Looks weights up by name, checking dtype and shape.
class WeightReader {
 public:
  explicit WeightReader(absl::flat_hash_map<std::string, Tensor> weights)
      : weights_(std::move(weights)) {}

  bool Has(const std::string& name) const { return weights_.contains(name); }

  // A float32 weight of exactly `shape` (moved out of the store).
  absl::StatusOr<std::vector<float>> Floats(const std::string& name,
                                            const std::vector<int64_t>& shape) {
    ASSIGN_OR_RETURN(Tensor * tensor, Find(name, "float32"));
    if (tensor->shape != shape) {
      return absl::DataLossError(absl::StrCat("weight ", name, " has shape [",
                                              absl::StrJoin(tensor->shape, ","), "], want [",
                                              absl::StrJoin(shape, ","), "]"));
    }
    return std::move(tensor->f32);
  }

  // Shape of a weight, for the sizes that the network takes from it.
  absl::StatusOr<std::vector<int64_t>> Shape(const std::string& name, size_t rank) {
    auto it = weights_.find(name);
    if (it == weights_.end()) return absl::DataLossError(absl::StrCat("missing weight ", name));
    if (it->second.shape.size() != rank) {
      return absl::DataLossError(
          absl::StrCat("weight ", name, " has rank ", it->second.shape.size(), ", want ", rank));
    }
    return it->second.shape;
  }

  absl::StatusOr<float> FloatScalar(const std::string& name) {
    ASSIGN_OR_RETURN(Tensor * tensor, Find(name, "float32"));
    if (tensor->size() != 1) return absl::DataLossError(absl::StrCat(name, " is not a scalar"));
    return tensor->f32[0];
  }

  absl::StatusOr<int> IntScalar(const std::string& name) {
    ASSIGN_OR_RETURN(Tensor * tensor, Find(name, "int32"));
    if (tensor->size() != 1) return absl::DataLossError(absl::StrCat(name, " is not a scalar"));
    return tensor->i32[0];
  }

 private:
  absl::StatusOr<Tensor*> Find(const std::string& name, absl::string_view dtype) {
    auto it = weights_.find(name);
    if (it == weights_.end()) return absl::DataLossError(absl::StrCat("missing weight ", name));
    if (it->second.dtype != dtype) {
      return absl::DataLossError(
          absl::StrCat("weight ", name, " is ", it->second.dtype, ", want ", dtype));
    }
    return &it->second;
  }

  absl::flat_hash_map<std::string, Tensor> weights_;
};

// --- Network pieces -----------------------------------------------------------

// Rows at or above this count are worth an OpenMP team for the elementwise
// passes; a handful of tokens is cheaper on the calling thread.
constexpr int kParallelRows = 64;

// A pass is split over the OpenMP team in groups of whole texts of at least
// this many tokens (smaller groups make inefficient matrix products), about
// kGroupsPerThread groups per thread.
constexpr int kMinGroupTokens = 256;
constexpr int kGroupsPerThread = 2;

// y = x W + b, W row-major [in, out].
struct Dense {
  int in = 0;
  int out = 0;
  std::vector<float> w;
  std::vector<float> b;

  // y[n, out] += x[n, in] W (bias not added: callers fold it into the
  // initial value of y, together with whatever else is summed there).
  void Accumulate(const float* x, int n, float* y) const {
    if (n == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, out, in, 1.0f, x, in, w.data(), out,
                1.0f, y, out);
  }

  // y[n, out] = x[n, in] W + b.
  void Apply(const float* x, int n, float* y) const {
#pragma omp parallel for if (n >= kParallelRows)
    for (int r = 0; r < n; ++r)
      std::memcpy(y + static_cast<size_t>(r) * out, b.data(), out * sizeof(float));
    Accumulate(x, n, y);
  }
};

struct LayerNorm {
  std::vector<float> scale;  // gamma
  std::vector<float> bias;   // beta

  // Normalizes each row of x[n, d] over its d features into y.
  void Apply(const float* x, int n, float epsilon, float* y) const {
    const int d = static_cast<int>(scale.size());
    const float* gamma = scale.data();
    const float* beta = bias.data();
#pragma omp parallel for if (n >= kParallelRows)
    for (int r = 0; r < n; ++r) {
      const float* row = x + static_cast<size_t>(r) * d;
      float* out = y + static_cast<size_t>(r) * d;
      float mean = 0.0f;
#pragma omp simd reduction(+ : mean)
      for (int i = 0; i < d; ++i) mean += row[i];
      mean /= static_cast<float>(d);
      float variance = 0.0f;
#pragma omp simd reduction(+ : variance)
      for (int i = 0; i < d; ++i) variance += (row[i] - mean) * (row[i] - mean);
      variance /= static_cast<float>(d);
      const float inv = 1.0f / std::sqrt(variance + epsilon);
#pragma omp simd
      for (int i = 0; i < d; ++i) out[i] = gamma[i] * inv * (row[i] - mean) + beta[i];
    }
  }
};

// One pre-norm transformer layer (tensor2tensor "layer_prepostprocess").
struct TransformerLayer {
  int d_in = 0;     // width of the layer input
  int d_attn = 0;   // width of q, k and v
  int d_model = 0;  // width of the layer output
  int heads = 0;
  int head_dim = 0;
  float query_scale = 0.0f;  // applied to q before q k^T (1/sqrt(head_dim))
  LayerNorm attention_norm;
  Dense qkv;     // d_in -> 3 * d_attn, [q | k | v]
  Dense output;  // d_attn -> d_model
  bool project_residual = false;
  Dense residual;  // d_in -> d_model when the widths differ
  LayerNorm ffn_norm;
  Dense ffn_in;   // d_model -> hidden, relu
  Dense ffn_out;  // hidden -> d_model
};

absl::StatusOr<Dense> LoadDense(WeightReader& reader, const std::string& kernel,
                                const std::string& bias, bool conv_kernel) {
  Dense dense;
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, reader.Shape(kernel, conv_kernel ? 4 : 2));
  if (conv_kernel && (shape[0] != 1 || shape[1] != 1)) {
    return absl::DataLossError(absl::StrCat(kernel, " is not a 1x1 convolution"));
  }
  dense.in = static_cast<int>(shape[shape.size() - 2]);
  dense.out = static_cast<int>(shape[shape.size() - 1]);
  ASSIGN_OR_RETURN(dense.w, reader.Floats(kernel, shape));
  ASSIGN_OR_RETURN(dense.b, reader.Floats(bias, {dense.out}));
  return dense;
}

absl::StatusOr<LayerNorm> LoadLayerNorm(WeightReader& reader, const std::string& prefix, int d) {
  LayerNorm norm;
  ASSIGN_OR_RETURN(
      norm.scale,
      reader.Floats(absl::StrCat(prefix, "layer_norm_scale/ConcatPartitions/concat"), {d}));
  ASSIGN_OR_RETURN(
      norm.bias,
      reader.Floats(absl::StrCat(prefix, "layer_norm_bias/ConcatPartitions/concat"), {d}));
  return norm;
}

absl::StatusOr<TransformerLayer> LoadLayer(WeightReader& reader, int index) {
  const std::string layer = absl::StrCat("Encode/Layer_", index, "/TransformerLayer/");
  const std::string stack =
      absl::StrCat(kKona, "Encode/TransformerStack/Layer_", index, "/TransformerLayer/");
  const std::string vars = absl::StrCat(kKona, layer);
  TransformerLayer t;
  ASSIGN_OR_RETURN(t.qkv,
                   LoadDense(reader,
                             absl::StrCat(kKernels, layer,
                                          "MultiheadAttention/qkv_transform_single/kernel/part_0"),
                             absl::StrCat(vars,
                                          "MultiheadAttention/qkv_transform_single/bias/"
                                          "ConcatPartitions/concat"),
                             /*conv_kernel=*/true));
  ASSIGN_OR_RETURN(
      t.output,
      LoadDense(
          reader,
          absl::StrCat(kKernels, layer, "MultiheadAttention/output_transform_single/kernel/part_0"),
          absl::StrCat(vars,
                       "MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat"),
          /*conv_kernel=*/true));
  t.d_in = t.qkv.in;
  if (t.qkv.out % 3 != 0) return absl::DataLossError("qkv width is not a multiple of 3");
  t.d_attn = t.qkv.out / 3;
  t.d_model = t.output.out;
  if (t.output.in != t.d_attn) return absl::DataLossError("attention output width mismatch");
  ASSIGN_OR_RETURN(
      t.head_dim,
      reader.IntScalar(absl::StrCat(
          stack, "MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/3")));
  if (t.head_dim <= 0 || t.d_attn % t.head_dim != 0) {
    return absl::DataLossError(
        absl::StrCat("head size ", t.head_dim, " does not divide ", t.d_attn));
  }
  t.heads = t.d_attn / t.head_dim;
  ASSIGN_OR_RETURN(t.query_scale,
                   reader.FloatScalar(absl::StrCat(stack, "MultiheadAttention/mul/y")));
  ASSIGN_OR_RETURN(
      t.attention_norm,
      LoadLayerNorm(reader, absl::StrCat(vars, "layer_prepostprocess/layer_norm/"), t.d_in));
  if (t.d_in != t.d_model) {
    t.project_residual = true;
    ASSIGN_OR_RETURN(t.residual,
                     LoadDense(reader, absl::StrCat(vars, "dense/kernel/ConcatPartitions/concat"),
                               absl::StrCat(vars, "dense/bias/ConcatPartitions/concat"),
                               /*conv_kernel=*/false));
    if (t.residual.in != t.d_in || t.residual.out != t.d_model) {
      return absl::DataLossError("residual projection shape mismatch");
    }
  }
  ASSIGN_OR_RETURN(
      t.ffn_norm,
      LoadLayerNorm(reader, absl::StrCat(vars, "FFN/layer_prepostprocess/layer_norm/"), t.d_model));
  ASSIGN_OR_RETURN(t.ffn_in, LoadDense(reader, absl::StrCat(stack, "FFN/conv1/Tensordot/Reshape_1"),
                                       absl::StrCat(vars, "FFN/conv1/bias/ConcatPartitions/concat"),
                                       /*conv_kernel=*/false));
  ASSIGN_OR_RETURN(t.ffn_out,
                   LoadDense(reader, absl::StrCat(stack, "FFN/conv2/Tensordot/Reshape_1"),
                             absl::StrCat(vars, "FFN/conv2/bias/ConcatPartitions/concat"),
                             /*conv_kernel=*/false));
  if (t.ffn_in.in != t.d_model || t.ffn_out.in != t.ffn_in.out || t.ffn_out.out != t.d_model) {
    return absl::DataLossError("feed-forward shape mismatch");
  }
  return t;
}

// Attention of one head of one text, fused: scores = scale * q k^T (one
// sgemm), a row-wise softmax in place, then o = P v (one sgemm). q, k and v
// are `len` rows with stride `ld`; o has stride `ldo`; `scores` holds
// len * len floats.
void AttendOneHead(const float* q, const float* k, const float* v, int ld, int len, int head_dim,
                   float scale, float* scores, float* o, int ldo) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, head_dim, scale, q, ld, k, ld,
              0.0f, scores, len);
  for (int r = 0; r < len; ++r) {
    float* row = scores + static_cast<size_t>(r) * len;
    float max = row[0];
    for (int c = 1; c < len; ++c) max = std::max(max, row[c]);
    float sum = 0.0f;
    for (int c = 0; c < len; ++c) {
      row[c] = std::exp(row[c] - max);
      sum += row[c];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int c = 0; c < len; ++c) row[c] *= inv;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, head_dim, len, 1.0f, scores, len, v,
              ld, 0.0f, o, ldo);
}

}  // namespace

// Activations of one pass. Buffers only grow, so a workspace that is reused
// (see Model::AcquireWorkspace) costs no allocation, page fault or zeroing.
struct SentenceEncoder::Workspace {
  std::vector<float> x;         // [n, width]: layer input, then layer output
  std::vector<float> normed;    // [n, d_in or d_model]: layer-normed rows
  std::vector<float> qkv;       // [n, 3 * d_attn]
  std::vector<float> attended;  // [n, d_attn]: attention output per head, side by side
  std::vector<float> y;         // [n, d_model]: after the attention block
  std::vector<float> hidden;    // [n, ffn width]: relu(ffn_in)
  std::vector<float> scores;    // per OpenMP thread: max_tokens^2 attention scores
  std::vector<int> token_ids;   // [n]: embedding row of each token
  std::vector<int> positions;   // [n]: position of each token in its text
  std::vector<std::pair<int, int>> heads;  // (text, head) pairs of a layer

  // Grows `v` to at least `size` elements, keeping capacity.
  template <typename T>
  static T* Reserve(std::vector<T>& v, size_t size) {
    if (v.size() < size) v.resize(size);
    return v.data();
  }
};

struct SentenceEncoder::Model {
  SentenceEncoderOptions options;
  std::unique_ptr<Tokenizer> tokenizer;
  int vocab_rows = 0;
  int embed_dim = 0;
  std::vector<float> embeddings;      // [vocab_rows, embed_dim]
  std::vector<float> inv_timescales;  // [embed_dim / 2]: sin/cos frequencies
  // [max_tokens, embed_dim]: row p = [sin(p * f), cos(p * f)], the timing
  // signal, computed once at load with the same float arithmetic as the
  // graph.
  std::vector<float> timing;
  int max_tokens = 0;  // tokens kept per text
  float layer_norm_epsilon = 0.0f;
  std::vector<TransformerLayer> layers;
  Dense head;               // tanh layer on the pooled state
  float l2_epsilon = 0.0f;  // floor on the squared norm before normalizing

  // Idle workspaces kept for the next call; at most kIdleWorkspaces, so the
  // threads of two concurrent callers (a pipelined server) reuse theirs
  // while the memory kept is bounded.
  static constexpr size_t kIdleWorkspaces = 4;
  mutable absl::Mutex workspace_mu;
  // Held by a pass that runs on an OpenMP team: concurrent callers (a
  // server encoding several requests) take turns per pass instead of
  // running several teams on the same cores, which measured 1.6x slower
  // on 2 cores than one team at a time. Small passes do not take it.
  mutable absl::Mutex team_mu;
  mutable std::vector<std::unique_ptr<Workspace>> idle_workspaces ABSL_GUARDED_BY(workspace_mu);

  std::unique_ptr<Workspace> AcquireWorkspace() const {
    absl::MutexLock lock(&workspace_mu);
    if (idle_workspaces.empty()) return std::make_unique<Workspace>();
    std::unique_ptr<Workspace> ws = std::move(idle_workspaces.back());
    idle_workspaces.pop_back();
    return ws;
  }
  void ReleaseWorkspace(std::unique_ptr<Workspace> ws) const {
    absl::MutexLock lock(&workspace_mu);
    if (idle_workspaces.size() < kIdleWorkspaces) idle_workspaces.push_back(std::move(ws));
  }

  // Runs texts whose ids are `ids` (each already clipped) and writes one
  // output row per text into `out` (when set), and the final state of each
  // token of text i into token_states[i] (when set).
  void Run(absl::Span<const std::vector<int>> ids, Workspace& ws, float* out,
           std::vector<float>* token_states) const;

  // Run over one pass: split into groups of whole texts with about equal
  // token counts, run by an OpenMP team, one group per thread at a time
  // (each with its own workspace; OpenBLAS is single-threaded inside the
  // team). A small pass runs on the calling thread, OpenBLAS threading its
  // products. Same outputs either way: texts never interact.
  void RunPass(absl::Span<const std::vector<int>> ids, float* out,
               std::vector<float>* token_states) const;

  // Splits `texts` into passes of at most options.max_tokens_per_pass
  // tokens (a longer text runs alone) and calls run(first_text, ids).
  template <typename PassFn>
  absl::Status ForEachPass(absl::Span<const std::string> texts, PassFn run) const;
};

template <typename PassFn>
absl::Status SentenceEncoder::Model::ForEachPass(absl::Span<const std::string> texts,
                                                 PassFn run) const {
  std::vector<std::vector<int>> pass;
  size_t pass_first = 0;
  int pass_tokens = 0;
  for (const std::string& text : texts) {
    ASSIGN_OR_RETURN(std::vector<int> ids, tokenizer->EncodePrefix(text, max_tokens));
    for (int id : ids) {
      if (id < 0 || id >= vocab_rows) {
        return absl::InternalError(absl::StrCat("token id ", id, " outside the embedding table"));
      }
    }
    if (!pass.empty() && pass_tokens + static_cast<int>(ids.size()) > options.max_tokens_per_pass) {
      run(pass_first, pass);
      pass_first += pass.size();
      pass.clear();
      pass_tokens = 0;
    }
    pass_tokens += static_cast<int>(ids.size());
    pass.push_back(std::move(ids));
  }
  if (!pass.empty()) run(pass_first, pass);
  return absl::OkStatus();
}

// All texts of a pass are packed back to back (no padding): every
// projection is one sgemm over all their tokens, threaded by OpenBLAS.
// Attention runs per (text, head) pair, the pairs spread over an OpenMP
// team (OpenBLAS runs single-threaded inside it); the elementwise passes
// (embedding, layer norms, bias, relu, residuals) are OpenMP loops over
// rows. Biases and residuals are folded into the initial value of the
// sgemm output (beta = 1), so no pass of their own reads the activations.
void SentenceEncoder::Model::RunPass(absl::Span<const std::vector<int>> ids, float* out,
                                     std::vector<float>* token_states) const {
  int total = 0;
  for (const std::vector<int>& text : ids) total += static_cast<int>(text.size());
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || ids.size() < 2 || total < 2 * kMinGroupTokens) {
    std::unique_ptr<Workspace> ws = AcquireWorkspace();
    Run(ids, *ws, out, token_states);
    ReleaseWorkspace(std::move(ws));
    return;
  }
  // About kGroupsPerThread groups per thread, so a thread slowed down by
  // the rest of the machine leaves its later groups to the others.
  const int target = std::max(kMinGroupTokens, (total + threads * kGroupsPerThread - 1) /
                                                   (threads * kGroupsPerThread));
  std::vector<size_t> bounds = {0};
  int tokens = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    tokens += static_cast<int>(ids[t].size());
    if (tokens >= target && t + 1 < ids.size()) {
      bounds.push_back(t + 1);
      tokens = 0;
    }
  }
  bounds.push_back(ids.size());
  const int groups = static_cast<int>(bounds.size()) - 1;
  const int width = head.out;
  absl::MutexLock team_lock(&team_mu);
#pragma omp parallel num_threads(std::min(threads, groups))
  {
    std::unique_ptr<Workspace> ws = AcquireWorkspace();
#pragma omp for schedule(dynamic, 1)
    for (int g = 0; g < groups; ++g) {
      const size_t begin = bounds[g];
      const size_t count = bounds[g + 1] - begin;
      Run(ids.subspan(begin, count), *ws,
          out == nullptr ? nullptr : out + begin * static_cast<size_t>(width),
          token_states == nullptr ? nullptr : token_states + begin);
    }
    ReleaseWorkspace(std::move(ws));
  }
}

void SentenceEncoder::Model::Run(absl::Span<const std::vector<int>> ids, Workspace& ws,
                                 float* out, std::vector<float>* token_states) const {
  const int texts = static_cast<int>(ids.size());
  std::vector<int> start(texts + 1, 0);
  for (int t = 0; t < texts; ++t) start[t + 1] = start[t] + static_cast<int>(ids[t].size());
  const int n = start[texts];
  const size_t rows = static_cast<size_t>(n);

  // x = 2 * E[id] + [sin(p * f), cos(p * f)] (see the header).
  int width = embed_dim;
  size_t max_width = static_cast<size_t>(embed_dim);
  for (const TransformerLayer& layer : layers) {
    max_width = std::max<size_t>(max_width, std::max(layer.d_model, layer.d_in));
  }
  float* x = Workspace::Reserve(ws.x, rows * max_width);
  int* token_ids = Workspace::Reserve(ws.token_ids, rows);
  int* positions = Workspace::Reserve(ws.positions, rows);
  for (int t = 0; t < texts; ++t) {
    for (size_t p = 0; p < ids[t].size(); ++p) {
      token_ids[start[t] + p] = ids[t][p];
      positions[start[t] + p] = static_cast<int>(p);
    }
  }
#pragma omp parallel for if (n >= kParallelRows)
  for (int r = 0; r < n; ++r) {
    float* row = x + static_cast<size_t>(r) * width;
    const float* e = embeddings.data() + static_cast<size_t>(token_ids[r]) * embed_dim;
    const float* signal = timing.data() + static_cast<size_t>(positions[r]) * embed_dim;
#pragma omp simd
    for (int i = 0; i < embed_dim; ++i) row[i] = 2.0f * e[i] + signal[i];
  }

  int longest = 0;
  for (int t = 0; t < texts; ++t) longest = std::max(longest, start[t + 1] - start[t]);

  for (const TransformerLayer& layer : layers) {
    // Attention block.
    float* normed = Workspace::Reserve(ws.normed, rows * max_width);
    layer.attention_norm.Apply(x, n, layer_norm_epsilon, normed);
    float* qkv = Workspace::Reserve(ws.qkv, rows * 3 * layer.d_attn);
    layer.qkv.Apply(normed, n, qkv);
    float* attended = Workspace::Reserve(ws.attended, rows * layer.d_attn);
    const int ld = 3 * layer.d_attn;
    ws.heads.clear();
    for (int t = 0; t < texts; ++t) {
      if (start[t + 1] == start[t]) continue;
      for (int h = 0; h < layer.heads; ++h) ws.heads.emplace_back(t, h);
    }
    const int pairs = static_cast<int>(ws.heads.size());
    const size_t scores_per_thread = static_cast<size_t>(longest) * longest;
#pragma omp parallel if (pairs > 1 && n >= kParallelRows)
    {
#pragma omp single
      Workspace::Reserve(ws.scores, scores_per_thread * omp_get_num_threads());
      float* scores = ws.scores.data() + scores_per_thread * omp_get_thread_num();
#pragma omp for schedule(dynamic)
      for (int i = 0; i < pairs; ++i) {
        const auto [t, h] = ws.heads[i];
        const float* q = qkv + static_cast<size_t>(start[t]) * ld + h * layer.head_dim;
        AttendOneHead(q, q + layer.d_attn, q + 2 * layer.d_attn, ld, start[t + 1] - start[t],
                      layer.head_dim, layer.query_scale, scores,
                      attended + static_cast<size_t>(start[t]) * layer.d_attn + h * layer.head_dim,
                      layer.d_attn);
      }
    }

    // y = x' + Wo attended + bo, with x' = Wr x + br when the widths differ.
    float* y = Workspace::Reserve(ws.y, rows * layer.d_model);
    const int dm = layer.d_model;
    const float* bo = layer.output.b.data();
    const float* br = layer.project_residual ? layer.residual.b.data() : nullptr;
#pragma omp parallel for if (n >= kParallelRows)
    for (int r = 0; r < n; ++r) {
      float* row = y + static_cast<size_t>(r) * dm;
      if (br != nullptr) {
#pragma omp simd
        for (int i = 0; i < dm; ++i) row[i] = bo[i] + br[i];
      } else {
        const float* in = x + static_cast<size_t>(r) * dm;
#pragma omp simd
        for (int i = 0; i < dm; ++i) row[i] = in[i] + bo[i];
      }
    }
    if (layer.project_residual) layer.residual.Accumulate(x, n, y);
    layer.output.Accumulate(attended, n, y);

    // Feed-forward block: x = y + W2 relu(W1 LN(y) + b1) + b2.
    layer.ffn_norm.Apply(y, n, layer_norm_epsilon, normed);
    const int hidden_width = layer.ffn_in.out;
    float* hidden = Workspace::Reserve(ws.hidden, rows * hidden_width);
    layer.ffn_in.Apply(normed, n, hidden);
    const float* b2 = layer.ffn_out.b.data();
#pragma omp parallel for if (n >= kParallelRows)
    for (int r = 0; r < n; ++r) {
      float* h = hidden + static_cast<size_t>(r) * hidden_width;
#pragma omp simd
      for (int i = 0; i < hidden_width; ++i) h[i] = std::max(h[i], 0.0f);
      float* row = x + static_cast<size_t>(r) * dm;
      const float* in = y + static_cast<size_t>(r) * dm;
#pragma omp simd
      for (int i = 0; i < dm; ++i) row[i] = in[i] + b2[i];
    }
    layer.ffn_out.Accumulate(hidden, n, x);
    width = dm;
  }

  if (token_states != nullptr) {
    for (int t = 0; t < texts; ++t) {
      token_states[t].assign(x + static_cast<size_t>(start[t]) * width,
                                x + static_cast<size_t>(start[t + 1]) * width);
    }
  }
  if (out == nullptr) return;

  // Mean over each text's tokens; a text without tokens pools to zeros.
  std::vector<float> pooled(static_cast<size_t>(texts) * width, 0.0f);
  for (int t = 0; t < texts; ++t) {
    float* row = pooled.data() + static_cast<size_t>(t) * width;
    for (int p = start[t]; p < start[t + 1]; ++p) {
      const float* token = x + static_cast<size_t>(p) * width;
      for (int i = 0; i < width; ++i) row[i] += token[i];
    }
    const float inv = 1.0f / static_cast<float>(std::max(start[t + 1] - start[t], 1));
    for (int i = 0; i < width; ++i) row[i] *= inv;
  }
  head.Apply(pooled.data(), texts, out);
  for (int t = 0; t < texts; ++t) {
    float* row = out + static_cast<size_t>(t) * head.out;
    float sum = 0.0f;
    for (int i = 0; i < head.out; ++i) {
      row[i] = std::tanh(row[i]);
      sum += row[i] * row[i];
    }
    const float inv = 1.0f / std::sqrt(std::max(sum, l2_epsilon));
    for (int i = 0; i < head.out; ++i) row[i] *= inv;
  }
}

SentenceEncoder::SentenceEncoder(std::unique_ptr<Model> model) : model_(std::move(model)) {}
SentenceEncoder::~SentenceEncoder() = default;

int SentenceEncoder::dim() const { return model_->head.out; }
int SentenceEncoder::state_dim() const { return model_->layers.back().d_model; }
int SentenceEncoder::max_tokens() const { return model_->max_tokens; }
const Tokenizer& SentenceEncoder::tokenizer() const { return *model_->tokenizer; }

absl::StatusOr<std::unique_ptr<SentenceEncoder>> SentenceEncoder::Load(
    const std::string& model_dir, const SentenceEncoderOptions& options) {
  if (options.max_tokens_per_pass < 1) {
    return absl::InvalidArgumentError("max_tokens_per_pass must be at least 1");
  }
  const fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("encoder model directory not found: ", model_dir));
  }
  auto model = std::make_unique<Model>();
  model->options = options;
  ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::LoadVocabJson((dir / "vocab.json").string()));
  ASSIGN_OR_RETURN(auto weights, LoadWeights(dir));
  WeightReader reader(std::move(weights));

  ASSIGN_OR_RETURN(std::vector<int64_t> embedding_shape, reader.Shape("module/Embeddings_en", 2));
  model->vocab_rows = static_cast<int>(embedding_shape[0]);
  model->embed_dim = static_cast<int>(embedding_shape[1]);
  if (model->vocab_rows < model->tokenizer->vocab_size() || model->embed_dim % 2 != 0) {
    return absl::DataLossError(absl::StrCat("embedding table [", model->vocab_rows, ",",
                                            model->embed_dim, "] does not fit a vocabulary of ",
                                            model->tokenizer->vocab_size()));
  }
  ASSIGN_OR_RETURN(model->embeddings, reader.Floats("module/Embeddings_en", embedding_shape));
  ASSIGN_OR_RETURN(
      model->inv_timescales,
      reader.Floats(
          absl::StrCat(kKona,
                       "Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1"),
          {1, model->embed_dim / 2}));
  ASSIGN_OR_RETURN(model->max_tokens,
                   reader.IntScalar(absl::StrCat(kKona, "ClipToMaxLength/Less/y")));
  if (model->max_tokens < 1) return absl::DataLossError("token limit must be positive");
  {
    const int half = model->embed_dim / 2;
    model->timing.resize(static_cast<size_t>(model->max_tokens) * model->embed_dim);
    for (int p = 0; p < model->max_tokens; ++p) {
      float* row = model->timing.data() + static_cast<size_t>(p) * model->embed_dim;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * model->inv_timescales[i];
        row[i] = std::sin(angle);
        row[half + i] = std::cos(angle);
      }
    }
  }
  ASSIGN_OR_RETURN(
      model->layer_norm_epsilon,
      reader.FloatScalar(absl::StrCat(kKona,
                                      "Encode/TransformerStack/Layer_1/TransformerLayer/FFN/"
                                      "layer_prepostprocess/layer_norm/Cast/x")));
  for (int index = 0;; ++index) {
    if (!reader.Has(absl::StrCat(
            kKernels, "Encode/Layer_", index,
            "/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0"))) {
      break;
    }
    ASSIGN_OR_RETURN(TransformerLayer layer, LoadLayer(reader, index));
    const int expected_in = model->layers.empty() ? model->embed_dim : model->layers.back().d_model;
    if (layer.d_in != expected_in) {
      return absl::DataLossError(absl::StrCat("layer ", index, " takes width ", layer.d_in,
                                              ", previous gives ", expected_in));
    }
    model->layers.push_back(std::move(layer));
  }
  if (model->layers.empty()) return absl::DataLossError("model.json has no transformer layer");
  ASSIGN_OR_RETURN(model->head,
                   LoadDense(reader, "module/Encoder_en/hidden_layers/tanh_layer_0/weights",
                             "module/Encoder_en/hidden_layers/tanh_layer_0/bias",
                             /*conv_kernel=*/false));
  if (model->head.in != model->layers.back().d_model) {
    return absl::DataLossError("output layer width mismatch");
  }
  ASSIGN_OR_RETURN(
      model->l2_epsilon,
      reader.FloatScalar("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y"));
  return std::unique_ptr<SentenceEncoder>(new SentenceEncoder(std::move(model)));
}

absl::StatusOr<std::vector<float>> SentenceEncoder::Encode(
    absl::Span<const std::string> texts) const {
  std::vector<float> out(texts.size() * static_cast<size_t>(dim()));
  RETURN_IF_ERROR(
      model_->ForEachPass(texts, [&](size_t first, const std::vector<std::vector<int>>& ids) {
        model_->RunPass(ids, out.data() + first * static_cast<size_t>(dim()), nullptr);
      }));
  return out;
}

absl::StatusOr<EncodedTexts> SentenceEncoder::EncodeWithTokens(
    absl::Span<const std::string> texts) const {
  EncodedTexts out;
  out.embeddings.resize(texts.size() * static_cast<size_t>(dim()));
  out.tokens.resize(texts.size());
  std::vector<std::vector<float>> states;
  RETURN_IF_ERROR(
      model_->ForEachPass(texts, [&](size_t first, const std::vector<std::vector<int>>& ids) {
        states.assign(ids.size(), {});
        model_->RunPass(ids, out.embeddings.data() + first * static_cast<size_t>(dim()),
                        states.data());
        for (size_t i = 0; i < ids.size(); ++i) {
          out.tokens[first + i].ids = ids[i];
          out.tokens[first + i].states = std::move(states[i]);
        }
      }));
  return out;
}

absl::StatusOr<std::vector<TokenStates>> SentenceEncoder::EncodeTokens(
    absl::Span<const std::string> texts) const {
  std::vector<TokenStates> out(texts.size());
  std::vector<std::vector<float>> states;
  RETURN_IF_ERROR(
      model_->ForEachPass(texts, [&](size_t first, const std::vector<std::vector<int>>& ids) {
        states.assign(ids.size(), {});
        model_->RunPass(ids, nullptr, states.data());
        for (size_t i = 0; i < ids.size(); ++i) {
          out[first + i].ids = ids[i];
          out[first + i].states = std::move(states[i]);
        }
      }));
  return out;
}

}  // namespace mnemo::encoder
