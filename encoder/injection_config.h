// config.json of an injection model directory (see encoder/injection_model.h)
// and the lineage it records: which encoder, decoder and weights the model
// was trained for. The store compares a namespace's lineage with the
// model's field by field (DiffLineage names the first mismatch).
#ifndef MNEMO_ENCODER_INJECTION_CONFIG_H_
#define MNEMO_ENCODER_INJECTION_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::encoder {

struct InjectionLineage {            // compared field by field; a mismatch names the field
  std::string encoder;               // "use-lite"
  std::string encoder_sha256;
  std::string decoder_fingerprint;   // canonical ModelFingerprint string
  std::string decoder_weights_sha256;
  std::string model_sha256;          // of inject.safetensors

  bool operator==(const InjectionLineage&) const = default;
};

// The name of the first field where `a` and `b` differ ("encoder",
// "encoder_sha256", "decoder_fingerprint", "decoder_weights_sha256",
// "model_sha256"), or "" when they are equal.
std::string DiffLineage(const InjectionLineage& a, const InjectionLineage& b);

struct InjectionConfig {
  std::string name;
  int encoder_dim = 0;
  int decoder_dim = 0;
  int memory_tokens = 0;
  int compressor_max_tokens = 0;
  int pq_m = 0;
  int pq_nbits = 0;
  // Beyond the shared contract: the rest of config.json.
  int format = 0;
  std::string decoder;  // "mnemo-ref-4m"
  int compressor_layers = 0;
  int compressor_heads = 0;
  int compressor_ffn = 0;
  float norm_eps = 0.0f;
  std::string tokenizer;     // file name, "tokenizer.model"
  std::string weights;       // file name, "inject.safetensors"
};

// The config and lineage parsed from config.json's text.
struct ParsedInjectionConfig {
  InjectionConfig config;
  InjectionLineage lineage;  // model_sha256 = config.json's weights_sha256
};

// INVALID_ARGUMENT naming the field when the JSON is malformed, a field is
// missing or of the wrong type, format is not 1, a dimension is not
// positive, decoder_dim is not a multiple of compressor_heads or pq_m, a
// sha256 is not 64 lowercase hex digits, or a file name is not a plain name.
absl::StatusOr<ParsedInjectionConfig> ParseInjectionConfig(absl::string_view json);

}  // namespace mnemo::encoder

#endif  // MNEMO_ENCODER_INJECTION_CONFIG_H_
