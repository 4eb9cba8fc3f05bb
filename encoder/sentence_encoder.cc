#include "encoder/sentence_encoder.h"

#include <cblas.h>

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

// y = x W + b, W row-major [in, out].
struct Dense {
  int in = 0;
  int out = 0;
  std::vector<float> w;
  std::vector<float> b;

  // y[n, out] = x[n, in] W + b.
  void Apply(const float* x, int n, float* y) const {
    for (int r = 0; r < n; ++r)
      std::memcpy(y + static_cast<size_t>(r) * out, b.data(), out * sizeof(float));
    if (n == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, out, in, 1.0f, x, in, w.data(), out,
                1.0f, y, out);
  }
};

struct LayerNorm {
  std::vector<float> scale;  // gamma
  std::vector<float> bias;   // beta

  // Normalizes each row of x[n, d] over its d features into y.
  void Apply(const float* x, int n, float epsilon, float* y) const {
    const size_t d = scale.size();
    for (int r = 0; r < n; ++r) {
      const float* row = x + r * d;
      float* out = y + r * d;
      float mean = 0.0f;
      for (size_t i = 0; i < d; ++i) mean += row[i];
      mean /= static_cast<float>(d);
      float variance = 0.0f;
      for (size_t i = 0; i < d; ++i) variance += (row[i] - mean) * (row[i] - mean);
      variance /= static_cast<float>(d);
      const float inv = 1.0f / std::sqrt(variance + epsilon);
      for (size_t i = 0; i < d; ++i) out[i] = scale[i] * inv * (row[i] - mean) + bias[i];
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

// Row-wise softmax of s[rows, cols] in place.
void Softmax(float* s, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    float* row = s + static_cast<size_t>(r) * cols;
    const float max = *std::max_element(row, row + cols);
    float sum = 0.0f;
    for (int c = 0; c < cols; ++c) {
      row[c] = std::exp(row[c] - max);
      sum += row[c];
    }
    const float inv = 1.0f / sum;
    for (int c = 0; c < cols; ++c) row[c] *= inv;
  }
}

}  // namespace

struct SentenceEncoder::Model {
  SentenceEncoderOptions options;
  std::unique_ptr<Tokenizer> tokenizer;
  int vocab_rows = 0;
  int embed_dim = 0;
  std::vector<float> embeddings;      // [vocab_rows, embed_dim]
  std::vector<float> inv_timescales;  // [embed_dim / 2]: sin/cos frequencies
  int max_tokens = 0;                 // tokens kept per text
  float layer_norm_epsilon = 0.0f;
  std::vector<TransformerLayer> layers;
  Dense head;               // tanh layer on the pooled state
  float l2_epsilon = 0.0f;  // floor on the squared norm before normalizing

  // Runs texts whose ids are `ids` (each already clipped) and writes one
  // output row per text into `out`, or, when `token_states` is set, the
  // final state of each token into (*token_states)[i] instead.
  void Run(const std::vector<std::vector<int>>& ids, float* out,
           std::vector<std::vector<float>>* token_states) const;

  // Splits `texts` into passes of at most options.max_tokens_per_pass
  // tokens (a longer text runs alone) and calls run(first_text, ids).
  template <typename RunPass>
  absl::Status ForEachPass(absl::Span<const std::string> texts, RunPass run) const;
};

template <typename RunPass>
absl::Status SentenceEncoder::Model::ForEachPass(absl::Span<const std::string> texts,
                                                 RunPass run) const {
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

void SentenceEncoder::Model::Run(const std::vector<std::vector<int>>& ids, float* out,
                                 std::vector<std::vector<float>>* token_states) const {
  const int texts = static_cast<int>(ids.size());
  std::vector<int> start(texts + 1, 0);
  for (int t = 0; t < texts; ++t) start[t + 1] = start[t] + static_cast<int>(ids[t].size());
  const int n = start[texts];

  // x = 2 * E[id] + [sin(p * f), cos(p * f)] (see the header).
  int width = embed_dim;
  std::vector<float> x(static_cast<size_t>(n) * width);
  const int half = embed_dim / 2;
  for (int t = 0; t < texts; ++t) {
    for (size_t p = 0; p < ids[t].size(); ++p) {
      float* row = x.data() + static_cast<size_t>(start[t] + p) * width;
      const float* e = embeddings.data() + static_cast<size_t>(ids[t][p]) * embed_dim;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * inv_timescales[i];
        row[i] = 2.0f * e[i] + std::sin(angle);
        row[half + i] = 2.0f * e[half + i] + std::cos(angle);
      }
    }
  }

  std::vector<float> normed, qkv, attended, y, hidden, scores;
  for (const TransformerLayer& layer : layers) {
    // Attention block.
    normed.resize(static_cast<size_t>(n) * layer.d_in);
    layer.attention_norm.Apply(x.data(), n, layer_norm_epsilon, normed.data());
    qkv.resize(static_cast<size_t>(n) * 3 * layer.d_attn);
    layer.qkv.Apply(normed.data(), n, qkv.data());
    attended.resize(static_cast<size_t>(n) * layer.d_attn);
    const int ld = 3 * layer.d_attn;
    for (int t = 0; t < texts; ++t) {
      const int len = start[t + 1] - start[t];
      if (len == 0) continue;
      scores.resize(static_cast<size_t>(len) * len);
      for (int h = 0; h < layer.heads; ++h) {
        const float* q = qkv.data() + static_cast<size_t>(start[t]) * ld + h * layer.head_dim;
        const float* k = q + layer.d_attn;
        const float* v = q + 2 * layer.d_attn;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, layer.head_dim,
                    layer.query_scale, q, ld, k, ld, 0.0f, scores.data(), len);
        Softmax(scores.data(), len, len);
        float* o =
            attended.data() + static_cast<size_t>(start[t]) * layer.d_attn + h * layer.head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, layer.head_dim, len, 1.0f,
                    scores.data(), len, v, ld, 0.0f, o, layer.d_attn);
      }
    }
    y.resize(static_cast<size_t>(n) * layer.d_model);
    layer.output.Apply(attended.data(), n, y.data());
    if (layer.project_residual) {
      std::vector<float> residual(static_cast<size_t>(n) * layer.d_model);
      layer.residual.Apply(x.data(), n, residual.data());
      for (size_t i = 0; i < y.size(); ++i) y[i] += residual[i];
    } else {
      for (size_t i = 0; i < y.size(); ++i) y[i] += x[i];
    }

    // Feed-forward block.
    normed.resize(static_cast<size_t>(n) * layer.d_model);
    layer.ffn_norm.Apply(y.data(), n, layer_norm_epsilon, normed.data());
    hidden.resize(static_cast<size_t>(n) * layer.ffn_in.out);
    layer.ffn_in.Apply(normed.data(), n, hidden.data());
    for (float& h : hidden) h = std::max(h, 0.0f);
    x.resize(static_cast<size_t>(n) * layer.d_model);
    layer.ffn_out.Apply(hidden.data(), n, x.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    width = layer.d_model;
  }

  if (token_states != nullptr) {
    token_states->resize(texts);
    for (int t = 0; t < texts; ++t) {
      (*token_states)[t].assign(x.data() + static_cast<size_t>(start[t]) * width,
                                x.data() + static_cast<size_t>(start[t + 1]) * width);
    }
    return;
  }

  // Mean over each text's tokens; a text without tokens pools to zeros.
  std::vector<float> pooled(static_cast<size_t>(texts) * width, 0.0f);
  for (int t = 0; t < texts; ++t) {
    float* row = pooled.data() + static_cast<size_t>(t) * width;
    for (int p = start[t]; p < start[t + 1]; ++p) {
      const float* token = x.data() + static_cast<size_t>(p) * width;
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
        model_->Run(ids, out.data() + first * static_cast<size_t>(dim()), nullptr);
      }));
  return out;
}

absl::StatusOr<std::vector<TokenStates>> SentenceEncoder::EncodeTokens(
    absl::Span<const std::string> texts) const {
  std::vector<TokenStates> out(texts.size());
  std::vector<std::vector<float>> states;
  RETURN_IF_ERROR(
      model_->ForEachPass(texts, [&](size_t first, const std::vector<std::vector<int>>& ids) {
        model_->Run(ids, nullptr, &states);
        for (size_t i = 0; i < ids.size(); ++i) {
          out[first + i].ids = ids[i];
          out[first + i].states = std::move(states[i]);
        }
      }));
  return out;
}

}  // namespace mnemo::encoder
