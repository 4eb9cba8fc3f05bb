// Encodings of stored values and index snapshot files (see records.h).
#include "db/records.h"

#include "common/half.h"

#include <bit>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/checksum_frame.h"
#include "common/varint.h"
#include "db/keys.h"
#include "nlohmann/json.hpp"

namespace mnemo::db::records {
namespace {

static_assert(std::endian::native == std::endian::little,
              "vector and snapshot encodings assume a little-endian host");

constexpr char kRecordFormat = 1;
constexpr char kChunkFormatWithSource = 2;
constexpr char kSnapshotMagic[8] = {'M', 'N', 'E', 'M', 'O', 'I', 'D', 'X'};
constexpr uint32_t kSnapshotFormat = 1;

void AppendField(std::string* out, absl::string_view field) {
  PutVarint(out, field.size());
  out->append(field.data(), field.size());
}

// Reads length-prefixed fields from a value, tracking the position.
class FieldReader {
 public:
  explicit FieldReader(absl::string_view in) : in_(in) {}

  bool ReadField(std::string* out) {
    uint64_t len = 0;
    if (!GetVarint(&in_, &len) || len > in_.size()) return false;
    out->assign(in_.data(), len);
    in_.remove_prefix(len);
    return true;
  }
  bool ReadVarint(uint64_t* out) { return GetVarint(&in_, out); }
  bool AtEnd() const { return in_.empty(); }

 private:
  absl::string_view in_;  // what is left
};

template <typename T>
void AppendLe(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

template <typename T>
T ReadLe(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string EncodeDocument(absl::string_view text, absl::string_view metadata_json) {
  std::string out(1, kRecordFormat);
  AppendField(&out, text);
  AppendField(&out, metadata_json);
  return out;
}

absl::Status DecodeDocument(absl::string_view value, Document* doc) {
  if (value.empty() || value[0] != kRecordFormat) {
    return absl::DataLossError("document record: unknown format");
  }
  FieldReader r(value.substr(1));
  if (!r.ReadField(&doc->text) || !r.ReadField(&doc->metadata_json) || !r.AtEnd()) {
    return absl::DataLossError("document record: truncated or malformed");
  }
  return absl::OkStatus();
}

std::string EncodeChunk(absl::string_view chunk_id, absl::string_view document_id,
                        absl::string_view text, absl::string_view metadata_json,
                        uint64_t source_begin, uint64_t source_end) {
  const bool has_source = source_begin != 0 || source_end != 0;
  std::string out(1, has_source ? kChunkFormatWithSource : kRecordFormat);
  AppendField(&out, chunk_id);
  AppendField(&out, document_id);
  AppendField(&out, text);
  AppendField(&out, metadata_json);
  if (has_source) {
    PutVarint(&out, source_begin);
    PutVarint(&out, source_end);
  }
  return out;
}

absl::Status DecodeChunk(absl::string_view value, Chunk* chunk) {
  if (value.empty() || (value[0] != kRecordFormat && value[0] != kChunkFormatWithSource)) {
    return absl::DataLossError("chunk record: unknown format");
  }
  const bool has_source = value[0] == kChunkFormatWithSource;
  FieldReader r(value.substr(1));
  if (!r.ReadField(&chunk->id) || !r.ReadField(&chunk->document_id) ||
      !r.ReadField(&chunk->text) || !r.ReadField(&chunk->metadata_json)) {
    return absl::DataLossError("chunk record: truncated or malformed");
  }
  chunk->source_begin = 0;
  chunk->source_end = 0;
  if (has_source && (!r.ReadVarint(&chunk->source_begin) || !r.ReadVarint(&chunk->source_end))) {
    return absl::DataLossError("chunk record: truncated source range");
  }
  if (!r.AtEnd()) return absl::DataLossError("chunk record: truncated or malformed");
  return absl::OkStatus();
}

std::string EncodeNamespace(const StoredNamespace& ns) {
  nlohmann::json j;
  j["name"] = ns.config.name;
  j["dim"] = ns.config.dim;
  j["metric"] = std::string(index::MetricName(ns.config.metric));
  j["index_factory"] = ns.config.index_factory;
  j["train_threshold"] = ns.config.train_threshold;
  j["description"] = ns.config.description;
  if (!ns.config.encoder.empty()) {
    j["encoder"] = ns.config.encoder;
    j["chunk_max_tokens"] = ns.config.chunk_max_tokens;
    j["chunk_overlap_tokens"] = ns.config.chunk_overlap_tokens.value_or(0);
    j["late_interaction"] = ns.config.late_interaction.value_or(false);
    j["late_interaction_nbits"] = ns.config.late_interaction_nbits;
    j["late_interaction_train_tokens"] = ns.config.late_interaction_train_tokens;
  }
  j["nsid"] = ns.nsid;
  j["created_unix_ms"] = ns.created_unix_ms;
  return j.dump();
}

absl::StatusOr<StoredNamespace> DecodeNamespace(absl::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value.begin(), value.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("namespace config: not a JSON object");
  StoredNamespace ns;
  try {
    ns.config.name = j.at("name").get<std::string>();
    ns.config.dim = j.at("dim").get<uint32_t>();
    auto metric = index::ParseMetric(j.at("metric").get<std::string>());
    if (!metric.ok()) {
      return absl::DataLossError(
          absl::StrCat("namespace config: ", metric.status().message()));
    }
    ns.config.metric = *metric;
    ns.config.index_factory = j.at("index_factory").get<std::string>();
    ns.config.train_threshold = j.at("train_threshold").get<uint64_t>();
    ns.config.description = j.value("description", std::string());
    ns.config.encoder = j.value("encoder", std::string());
    if (!ns.config.encoder.empty()) {
      ns.config.chunk_max_tokens = j.at("chunk_max_tokens").get<uint32_t>();
      ns.config.chunk_overlap_tokens = j.at("chunk_overlap_tokens").get<uint32_t>();
    }
    // Configs written before late interaction existed have it off.
    ns.config.late_interaction = j.value("late_interaction", false);
    ns.config.late_interaction_nbits = j.value("late_interaction_nbits", uint32_t{0});
    ns.config.late_interaction_train_tokens =
        j.value("late_interaction_train_tokens", uint64_t{0});
    ns.nsid = j.at("nsid").get<uint32_t>();
    ns.created_unix_ms = j.value("created_unix_ms", int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("namespace config: ", e.what()));
  }
  return ns;
}

std::string EncodeCounters(const NamespaceCounters& c) {
  std::string out;
  keys::AppendU64(&out, c.next_internal_id);
  keys::AppendU64(&out, c.next_log_seq);
  return out;
}

absl::StatusOr<NamespaceCounters> DecodeCounters(absl::string_view value) {
  if (value.size() != 16) return absl::DataLossError("namespace counters: bad size");
  NamespaceCounters c;
  c.next_internal_id = *keys::ReadU64(value);
  c.next_log_seq = *keys::ReadU64(value.substr(8));
  return c;
}

std::string EncodeVector(absl::Span<const float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

absl::Status DecodeVector(absl::string_view value, uint32_t dim, std::vector<float>* out) {
  if (value.size() != static_cast<size_t>(dim) * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("dense vector: ", value.size(),
                                            " bytes, expected ", dim * sizeof(float)));
  }
  size_t old = out->size();
  out->resize(old + dim);
  std::memcpy(out->data() + old, value.data(), value.size());
  return absl::OkStatus();
}

uint16_t FloatToHalf(float f) { return ::mnemo::FloatToHalf(f); }

float HalfToFloat(uint16_t h) { return ::mnemo::HalfToFloat(h); }

namespace {
constexpr uint8_t kMultiVecRaw = 0x01;
constexpr uint8_t kMultiVecCoded = 0x02;
}  // namespace

std::string EncodeMultiVecRaw(absl::Span<const float> tokens, uint32_t dim) {
  const uint32_t n = dim == 0 ? 0 : static_cast<uint32_t>(tokens.size() / dim);
  std::string out(1, static_cast<char>(kMultiVecRaw));
  AppendLe<uint32_t>(&out, n);
  out.reserve(out.size() + tokens.size() * 2);
  for (float f : tokens) AppendLe<uint16_t>(&out, FloatToHalf(f));
  return out;
}

std::string EncodeMultiVecCoded(absl::Span<const uint32_t> centroids,
                                absl::Span<const uint8_t> residuals) {
  std::string out(1, static_cast<char>(kMultiVecCoded));
  AppendLe<uint32_t>(&out, static_cast<uint32_t>(centroids.size()));
  out.reserve(out.size() + centroids.size() * 4 + residuals.size());
  for (uint32_t c : centroids) AppendLe<uint32_t>(&out, c);
  out.append(reinterpret_cast<const char*>(residuals.data()), residuals.size());
  return out;
}

absl::Status DecodeMultiVec(absl::string_view value, uint32_t dim, size_t code_size,
                            MultiVecRecord* out) {
  if (value.size() < 5) return absl::DataLossError("multivec record: truncated");
  const uint8_t format = static_cast<uint8_t>(value[0]);
  const uint32_t n = ReadLe<uint32_t>(value.data() + 1);
  const absl::string_view body = value.substr(5);
  if (n == 0) return absl::DataLossError("multivec record: no tokens");
  *out = MultiVecRecord();
  out->ntokens = n;
  if (format == kMultiVecRaw) {
    if (dim == 0 || body.size() != uint64_t{n} * dim * 2) {
      return absl::DataLossError("multivec record: raw size mismatch");
    }
    out->raw.resize(size_t{n} * dim);
    for (size_t i = 0; i < out->raw.size(); ++i) {
      out->raw[i] = HalfToFloat(ReadLe<uint16_t>(body.data() + 2 * i));
    }
    return absl::OkStatus();
  }
  if (format == kMultiVecCoded) {
    if (code_size == 0) {
      return absl::DataLossError("multivec record: encoded tokens but no codec is stored");
    }
    if (body.size() != uint64_t{n} * (4 + code_size)) {
      return absl::DataLossError("multivec record: encoded size mismatch");
    }
    out->encoded = true;
    out->centroids.resize(n);
    for (uint32_t i = 0; i < n; ++i) out->centroids[i] = ReadLe<uint32_t>(body.data() + 4 * i);
    out->residuals.assign(body.begin() + size_t{n} * 4, body.end());
    return absl::OkStatus();
  }
  return absl::DataLossError("multivec record: unknown format");
}

std::string EncodeSnapshot(uint32_t nsid, uint64_t log_seq,
                           absl::Span<const uint8_t> payload) {
  std::string out(kSnapshotMagic, sizeof(kSnapshotMagic));
  AppendLe<uint32_t>(&out, kSnapshotFormat);
  AppendLe<uint32_t>(&out, nsid);
  AppendLe<uint64_t>(&out, log_seq);
  AppendLe<uint64_t>(&out, payload.size());
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  AppendChecksumTrailer(&out);
  return out;
}

absl::StatusOr<SnapshotFile> DecodeSnapshot(absl::string_view bytes) {
  constexpr size_t kHeader = 8 + 4 + 4 + 8 + 8;
  if (bytes.size() < kHeader + kChecksumTrailerBytes ||
      std::memcmp(bytes.data(), kSnapshotMagic, sizeof(kSnapshotMagic)) != 0) {
    return absl::DataLossError("index snapshot: bad magic or truncated");
  }
  const char* p = bytes.data();
  if (ReadLe<uint32_t>(p + 8) != kSnapshotFormat) {
    return absl::DataLossError("index snapshot: unknown format version");
  }
  SnapshotFile file;
  file.nsid = ReadLe<uint32_t>(p + 12);
  file.log_seq = ReadLe<uint64_t>(p + 16);
  uint64_t size = ReadLe<uint64_t>(p + 24);
  if (size != bytes.size() - kHeader - kChecksumTrailerBytes) {
    return absl::DataLossError("index snapshot: payload size mismatch");
  }
  if (!StripChecksumTrailer(bytes).has_value()) {
    return absl::DataLossError("index snapshot: checksum mismatch");
  }
  file.payload.assign(reinterpret_cast<const uint8_t*>(p + kHeader),
                      reinterpret_cast<const uint8_t*>(p + kHeader + size));
  return file;
}

}  // namespace mnemo::db::records
