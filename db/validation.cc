// Checks of caller input (see validation.h).
#include "db/validation.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::db {

absl::Status ValidateId(absl::string_view id, absl::string_view kind, const Limits& limits) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " id is empty"));
  if (id.size() > limits.max_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " id of ", id.size(),
                                                   " bytes exceeds the limit of ",
                                                   limits.max_id_bytes));
  }
  return absl::OkStatus();
}

// Checks size and JSON-object shape of a metadata field; fills `attrs`.
absl::Status ValidateMetadata(absl::string_view json, absl::string_view what,
                              const Limits& limits, index::Attributes* attrs) {
  if (json.size() > limits.max_metadata_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("metadata of ", what, " is ", json.size(),
                                                     " bytes; the limit is ",
                                                     limits.max_metadata_bytes));
  }
  auto parsed = index::ParseAttributes(json);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata of ", what, ": ", parsed.status().message()));
  }
  if (attrs != nullptr) *attrs = *std::move(parsed);
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view text, absl::string_view what, const Limits& limits) {
  if (text.size() > limits.max_text_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("text of ", what, " is ", text.size(),
                                                     " bytes; the limit is ",
                                                     limits.max_text_bytes));
  }
  return absl::OkStatus();
}

// Checks the id lists of a Get or Delete: at most max_write_batch ids in
// all (RESOURCE_EXHAUSTED), each a valid id (INVALID_ARGUMENT).
absl::Status ValidateIdLists(absl::string_view verb, absl::Span<const std::string> chunk_ids,
                             absl::Span<const std::string> document_ids,
                             const Limits& limits) {
  if (chunk_ids.size() + document_ids.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat(verb, " carries ", chunk_ids.size() + document_ids.size(),
                     " ids; the limit is ", limits.max_write_batch));
  }
  for (const std::string& id : chunk_ids) RETURN_IF_ERROR(ValidateId(id, "chunk", limits));
  for (const std::string& id : document_ids) RETURN_IF_ERROR(ValidateId(id, "document", limits));
  return absl::OkStatus();
}

absl::Status ValidateKvIds(absl::string_view verb, absl::Span<const std::string> ids,
                           const Limits& limits) {
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(verb, " names no chunk"));
  if (ids.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(verb, " names ", ids.size(),
                                                     " chunks; the limit is ",
                                                     limits.max_write_batch));
  }
  for (const std::string& id : ids) RETURN_IF_ERROR(ValidateId(id, "chunk id", limits));
  return absl::OkStatus();
}

// The one place StoreOptions are checked.
absl::Status ValidateStoreOptions(const StoreOptions& options) {
  const Limits& l = options.limits;
  // Membership keys length-prefix document ids with 16 bits.
  if (l.max_id_bytes < 1 || l.max_id_bytes > 0xFFFF) {
    return absl::InvalidArgumentError("limits.max_id_bytes must be in 1..65535");
  }
  if (l.max_k < 1 || l.max_k > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("limits.max_k must be in 1..INT_MAX");
  }
  if (l.max_query_batch < 1 || l.max_write_batch < 1 || l.max_dim < 1 || l.max_namespaces < 1) {
    return absl::InvalidArgumentError(
        "limits.max_query_batch, max_write_batch, max_dim and max_namespaces must be >= 1");
  }
  constexpr uint64_t kDayMs = 24ull * 3600 * 1000;
  if (options.kv_expiry_interval_ms > kDayMs || options.kv_recency_flush_ms > kDayMs) {
    return absl::InvalidArgumentError(
        "kv_expiry_interval_ms and kv_recency_flush_ms must be at most one day (0 = off)");
  }
  return absl::OkStatus();
}

// True when `text` holds nothing but whitespace.
bool IsBlank(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::string> NormalizeUserMetadata(absl::string_view json, absl::string_view what,
                                                  const Limits& limits) {
  if (json.empty()) return std::string("{}");
  RETURN_IF_ERROR(ValidateMetadata(json, what, limits, nullptr));
  const nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end());
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (absl::StartsWith(it.key(), "@")) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has metadata key '", it.key(), "'; keys starting with '@' are reserved"));
    }
  }
  return doc.dump();
}

}  // namespace mnemo::db
