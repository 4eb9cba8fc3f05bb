// The model directory's config.json (written by decoder/train/export.py).
#ifndef MNEMO_DECODER_CONFIG_H_
#define MNEMO_DECODER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace mnemo::decoder {

struct ModelConfig {
  std::string name;
  std::string architecture;  // "llama" is the only one supported
  int vocab_size = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // divides n_heads (grouped-query attention)
  int head_dim = 0;    // n_heads * head_dim need not equal dim
  int ffn_dim = 0;
  int max_seq_len = 0;  // longest context the model was trained for
  double rope_theta = 0;
  std::string rope_style;  // "half": dim i rotates with i + head_dim / 2
  double norm_eps = 0;
  std::string activation;  // "swiglu"
  bool tie_embeddings = true;
  std::string dtype;  // of the stored weights: "float32"
  int bos_id = -1;
  int eos_id = -1;
  int unk_id = -1;
  std::string tokenizer;         // file name inside the model directory
  std::string tokenizer_sha256;  // hex digest of that file
  std::string weights;           // file name of the safetensors weights
  int64_t params = 0;
  int64_t train_step = 0;
};

// Parses and validates config.json text. INVALID_ARGUMENT naming the first
// missing or wrong-typed key, or the rule broken: positive sizes, head_dim
// even, n_kv_heads dividing n_heads, architecture "llama", rope_style
// "half", activation "swiglu", tie_embeddings true, dtype "float32",
// rope_theta and norm_eps positive, special ids inside the vocabulary
// (-1 means absent).
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text);

// Reads <dir>/config.json. NOT_FOUND when the directory or file is missing.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_CONFIG_H_
