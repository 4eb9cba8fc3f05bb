// Parser of the JSONL record format of `mnemo upsert` (see jsonl.h).
#include "client/cli/jsonl.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;

// Reads an id field that may be a string or an integer.
absl::StatusOr<std::string> IdField(const json& obj, const char* key, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("missing \"", key, "\""));
    return std::string();
  }
  if (it->is_string()) {
    std::string value = it->get<std::string>();
    if (required && value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" is empty"));
    }
    return value;
  }
  if (it->is_number_integer()) return it->dump();
  return absl::InvalidArgumentError(
      absl::StrCat("\"", key, "\" must be a string or an integer, got ", it->type_name()));
}

absl::StatusOr<std::string> TextField(const json& obj) {
  auto it = obj.find("text");
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"text\" must be a string, got ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> MetadataField(const json& obj) {
  auto it = obj.find("metadata");
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"metadata\" must be an object, got ", it->type_name()));
  }
  return it->dump();
}

absl::StatusOr<std::vector<float>> VectorFromJson(const json& value) {
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vector must be an array of numbers, got ", value.type_name()));
  }
  if (value.empty()) return absl::InvalidArgumentError("vector is empty");
  std::vector<float> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const json& x = value[i];
    if (!x.is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat("vector[", i, "] is not a number (", x.type_name(), ")"));
    }
    double d = x.get<double>();
    if (!std::isfinite(d)) {
      return absl::InvalidArgumentError(absl::StrCat("vector[", i, "] is not finite"));
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

}  // namespace

bool IsBlankLine(absl::string_view line) {
  return absl::StripAsciiWhitespace(line).empty();
}

absl::StatusOr<std::vector<float>> ParseVectorJson(absl::string_view text) {
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("vector is not valid JSON");
  return VectorFromJson(value);
}

absl::StatusOr<Record> ParseRecordLine(absl::string_view line, uint32_t expected_dim) {
  json obj = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, got ", obj.type_name()));
  }

  std::string type = "chunk";
  if (auto it = obj.find("type"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return absl::InvalidArgumentError("\"type\" must be a string");
    type = it->get<std::string>();
  }

  absl::StatusOr<std::string> id = IdField(obj, "id", /*required=*/true);
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> text = TextField(obj);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> metadata = MetadataField(obj);
  if (!metadata.ok()) return metadata.status();

  if (type == "document") {
    Document doc;
    doc.id = *std::move(id);
    doc.text = *std::move(text);
    doc.metadata_json = *std::move(metadata);
    return doc;
  }
  if (type != "chunk") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown \"type\" \"", type, "\" (expected chunk or document)"));
  }

  Chunk chunk;
  chunk.id = *std::move(id);
  chunk.text = *std::move(text);
  chunk.metadata_json = *std::move(metadata);
  absl::StatusOr<std::string> document_id = IdField(obj, "document_id", /*required=*/false);
  if (!document_id.ok()) return document_id.status();
  chunk.document_id = *std::move(document_id);

  // A chunk without a vector is passed on as is: whether that is allowed
  // (e.g. embedded by the server) is the server's decision.
  auto vec = obj.find("vector");
  if (vec == obj.end() || vec->is_null()) return chunk;
  absl::StatusOr<std::vector<float>> vector = VectorFromJson(*vec);
  if (!vector.ok()) return vector.status();
  if (expected_dim > 0 && vector->size() != expected_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vector has ", vector->size(), " dimensions, the namespace has ", expected_dim));
  }
  chunk.vector = *std::move(vector);
  return chunk;
}

}  // namespace mnemo::cli
