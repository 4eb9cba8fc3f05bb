// ParseInjectionConfig and DiffLineage (injection_config.h).
#include "encoder/injection_config.h"

#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::encoder {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("injection model config.json: \"", field, "\" ", why));
}

absl::StatusOr<std::string> GetString(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return Bad(field, "is missing");
  if (!it->is_string()) return Bad(field, "must be a string");
  std::string value = it->get<std::string>();
  if (value.empty()) return Bad(field, "must not be empty");
  return value;
}

absl::StatusOr<int> GetPositiveInt(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return Bad(field, "is missing");
  if (!it->is_number_integer()) return Bad(field, "must be an integer");
  const int64_t value = it->get<int64_t>();
  if (value < 1 || value > (1 << 20)) {
    return Bad(field, absl::StrCat("must be in [1, 2^20], got ", value));
  }
  return static_cast<int>(value);
}

bool IsSha256Hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A file name inside the model directory: no separator, not "." or "..".
bool IsPlainFileName(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\\') == std::string::npos && s.find('\0') == std::string::npos;
}

}  // namespace

std::string DiffLineage(const InjectionLineage& a, const InjectionLineage& b) {
  if (a.encoder != b.encoder) return "encoder";
  if (a.encoder_sha256 != b.encoder_sha256) return "encoder_sha256";
  if (a.decoder_fingerprint != b.decoder_fingerprint) return "decoder_fingerprint";
  if (a.decoder_weights_sha256 != b.decoder_weights_sha256) return "decoder_weights_sha256";
  if (a.model_sha256 != b.model_sha256) return "model_sha256";
  return "";
}

absl::StatusOr<ParsedInjectionConfig> ParseInjectionConfig(absl::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("injection model config.json is not a JSON object");
  }
  ParsedInjectionConfig out;
  InjectionConfig& c = out.config;
  InjectionLineage& l = out.lineage;
  ASSIGN_OR_RETURN(c.format, GetPositiveInt(j, "format"));
  if (c.format != 1) return Bad("format", absl::StrCat("must be 1, got ", c.format));
  ASSIGN_OR_RETURN(c.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(l.encoder, GetString(j, "encoder"));
  ASSIGN_OR_RETURN(c.encoder_dim, GetPositiveInt(j, "encoder_dim"));
  ASSIGN_OR_RETURN(l.encoder_sha256, GetString(j, "encoder_sha256"));
  ASSIGN_OR_RETURN(c.decoder, GetString(j, "decoder"));
  ASSIGN_OR_RETURN(c.decoder_dim, GetPositiveInt(j, "decoder_dim"));
  ASSIGN_OR_RETURN(l.decoder_fingerprint, GetString(j, "decoder_fingerprint"));
  ASSIGN_OR_RETURN(l.decoder_weights_sha256, GetString(j, "decoder_weights_sha256"));
  ASSIGN_OR_RETURN(c.tokenizer, GetString(j, "tokenizer"));
  ASSIGN_OR_RETURN(c.memory_tokens, GetPositiveInt(j, "memory_tokens"));
  ASSIGN_OR_RETURN(c.compressor_layers, GetPositiveInt(j, "compressor_layers"));
  ASSIGN_OR_RETURN(c.compressor_heads, GetPositiveInt(j, "compressor_heads"));
  ASSIGN_OR_RETURN(c.compressor_ffn, GetPositiveInt(j, "compressor_ffn"));
  ASSIGN_OR_RETURN(c.compressor_max_tokens, GetPositiveInt(j, "compressor_max_tokens"));
  ASSIGN_OR_RETURN(c.pq_m, GetPositiveInt(j, "pq_m"));
  ASSIGN_OR_RETURN(c.pq_nbits, GetPositiveInt(j, "pq_nbits"));
  ASSIGN_OR_RETURN(c.weights, GetString(j, "weights"));
  ASSIGN_OR_RETURN(l.model_sha256, GetString(j, "weights_sha256"));

  auto eps = j.find("norm_eps");
  if (eps == j.end()) return Bad("norm_eps", "is missing");
  if (!eps->is_number()) return Bad("norm_eps", "must be a number");
  const double eps_value = eps->get<double>();
  if (!(eps_value > 0.0 && eps_value < 1.0)) {
    return Bad("norm_eps", absl::StrCat("must be in (0, 1), got ", eps_value));
  }
  c.norm_eps = static_cast<float>(eps_value);

  for (const auto& [field, value] : std::initializer_list<std::pair<const char*, const std::string*>>{
           {"encoder_sha256", &l.encoder_sha256},
           {"decoder_weights_sha256", &l.decoder_weights_sha256},
           {"weights_sha256", &l.model_sha256}}) {
    if (!IsSha256Hex(*value)) return Bad(field, "must be 64 lowercase hex digits");
  }
  if (!IsPlainFileName(c.tokenizer)) return Bad("tokenizer", "must be a plain file name");
  if (!IsPlainFileName(c.weights)) return Bad("weights", "must be a plain file name");
  if (c.decoder_dim % c.compressor_heads != 0) {
    return Bad("compressor_heads", absl::StrCat("must divide decoder_dim ", c.decoder_dim));
  }
  if (c.decoder_dim % c.pq_m != 0) {
    return Bad("pq_m", absl::StrCat("must divide decoder_dim ", c.decoder_dim));
  }
  if (c.pq_nbits > 16) return Bad("pq_nbits", absl::StrCat("must be <= 16, got ", c.pq_nbits));
  return out;
}

}  // namespace mnemo::encoder
