#include "decoder/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::decoder {
namespace {

using Json = nlohmann::json;

absl::Status Missing(const std::string& key, const char* type) {
  return absl::InvalidArgumentError(
      absl::StrCat("config.json: key \"", key, "\" missing or not ", type));
}

absl::Status GetString(const Json& j, const std::string& key, std::string* out) {
  if (!j.contains(key) || !j[key].is_string()) return Missing(key, "a string");
  *out = j[key].get<std::string>();
  return absl::OkStatus();
}

template <typename T>
absl::Status GetInt(const Json& j, const std::string& key, T* out) {
  if (!j.contains(key) || !j[key].is_number_integer()) return Missing(key, "an integer");
  *out = j[key].get<T>();
  return absl::OkStatus();
}

absl::Status GetDouble(const Json& j, const std::string& key, double* out) {
  if (!j.contains(key) || !j[key].is_number()) return Missing(key, "a number");
  *out = j[key].get<double>();
  return absl::OkStatus();
}

absl::Status Rule(bool ok, const std::string& what) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("config.json: ", what));
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text) {
  Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("config.json is not a JSON object");
  }
  ModelConfig c;
  RETURN_IF_ERROR(GetString(j, "name", &c.name));
  RETURN_IF_ERROR(GetString(j, "architecture", &c.architecture));
  RETURN_IF_ERROR(GetInt(j, "vocab_size", &c.vocab_size));
  RETURN_IF_ERROR(GetInt(j, "dim", &c.dim));
  RETURN_IF_ERROR(GetInt(j, "n_layers", &c.n_layers));
  RETURN_IF_ERROR(GetInt(j, "n_heads", &c.n_heads));
  RETURN_IF_ERROR(GetInt(j, "n_kv_heads", &c.n_kv_heads));
  RETURN_IF_ERROR(GetInt(j, "head_dim", &c.head_dim));
  RETURN_IF_ERROR(GetInt(j, "ffn_dim", &c.ffn_dim));
  RETURN_IF_ERROR(GetInt(j, "max_seq_len", &c.max_seq_len));
  RETURN_IF_ERROR(GetDouble(j, "rope_theta", &c.rope_theta));
  RETURN_IF_ERROR(GetString(j, "rope_style", &c.rope_style));
  RETURN_IF_ERROR(GetDouble(j, "norm_eps", &c.norm_eps));
  RETURN_IF_ERROR(GetString(j, "activation", &c.activation));
  if (!j.contains("tie_embeddings") || !j["tie_embeddings"].is_boolean()) {
    return Missing("tie_embeddings", "a boolean");
  }
  c.tie_embeddings = j["tie_embeddings"].get<bool>();
  RETURN_IF_ERROR(GetString(j, "dtype", &c.dtype));
  RETURN_IF_ERROR(GetInt(j, "bos_id", &c.bos_id));
  RETURN_IF_ERROR(GetInt(j, "eos_id", &c.eos_id));
  RETURN_IF_ERROR(GetInt(j, "unk_id", &c.unk_id));
  RETURN_IF_ERROR(GetString(j, "tokenizer", &c.tokenizer));
  RETURN_IF_ERROR(GetString(j, "tokenizer_sha256", &c.tokenizer_sha256));
  RETURN_IF_ERROR(GetString(j, "weights", &c.weights));
  if (j.contains("params")) RETURN_IF_ERROR(GetInt(j, "params", &c.params));
  if (j.contains("train_step")) RETURN_IF_ERROR(GetInt(j, "train_step", &c.train_step));

  RETURN_IF_ERROR(Rule(c.architecture == "llama",
                                 absl::StrCat("architecture \"", c.architecture,
                                              "\" is not supported (only \"llama\")")));
  RETURN_IF_ERROR(Rule(c.vocab_size > 0 && c.dim > 0 && c.n_layers > 0 &&
                                     c.n_heads > 0 && c.n_kv_heads > 0 && c.head_dim > 0 &&
                                     c.ffn_dim > 0 && c.max_seq_len > 0,
                                 "vocab_size, dim, n_layers, n_heads, n_kv_heads, head_dim, "
                                 "ffn_dim and max_seq_len must be positive"));
  RETURN_IF_ERROR(Rule(c.head_dim % 2 == 0, absl::StrCat("head_dim ", c.head_dim,
                                                                   " must be even for RoPE")));
  RETURN_IF_ERROR(Rule(c.n_heads % c.n_kv_heads == 0,
                                 absl::StrCat("n_kv_heads ", c.n_kv_heads,
                                              " does not divide n_heads ", c.n_heads)));
  RETURN_IF_ERROR(Rule(c.rope_theta > 0, "rope_theta must be positive"));
  RETURN_IF_ERROR(Rule(c.norm_eps > 0, "norm_eps must be positive"));
  RETURN_IF_ERROR(Rule(c.rope_style == "half",
                                 absl::StrCat("rope_style \"", c.rope_style,
                                              "\" is not supported (only \"half\")")));
  RETURN_IF_ERROR(Rule(c.activation == "swiglu",
                                 absl::StrCat("activation \"", c.activation,
                                              "\" is not supported (only \"swiglu\")")));
  RETURN_IF_ERROR(Rule(c.tie_embeddings, "untied embeddings are not supported"));
  RETURN_IF_ERROR(Rule(c.dtype == "float32",
                                 absl::StrCat("dtype \"", c.dtype,
                                              "\" is not supported (only \"float32\")")));
  for (const auto& [key, id] : {std::pair<const char*, int>{"bos_id", c.bos_id},
                                {"eos_id", c.eos_id},
                                {"unk_id", c.unk_id}}) {
    RETURN_IF_ERROR(Rule(id >= -1 && id < c.vocab_size,
                                   absl::StrCat(key, " ", id, " is outside the vocabulary of ",
                                                c.vocab_size)));
  }
  RETURN_IF_ERROR(Rule(!c.weights.empty() && !c.tokenizer.empty(),
                                 "weights and tokenizer file names must not be empty"));
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", model_dir, " does not exist"));
  }
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseModelConfig(ss.str());
}

}  // namespace mnemo::decoder
