// Keys and values of memory injection (see injection_records.h).
#include "db/injection_records.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "db/keys.h"
#include "db/le_bytes.h"

namespace mnemo::db::injection {
namespace {

constexpr uint8_t kFormat = 1;
constexpr uint8_t kFlagExact = 1;

absl::Status Truncated(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("injection ", what, " record is truncated"));
}

void PutFloats(std::string* out, absl::Span<const float> v) {
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

bool GetFloats(LeReader* r, size_t n, std::vector<float>* out) {
  absl::string_view bytes;
  if (!r->Bytes(n * sizeof(float), &bytes)) return false;
  out->resize(n);
  if (n > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
  return true;
}

}  // namespace

std::string ModelKey(uint32_t nsid) {
  std::string key = kModelPrefix;
  keys::AppendU32(&key, nsid);
  return key;
}

std::string EncodeModel(const ModelRecord& record) {
  std::string out;
  PutLe<uint8_t>(&out, kFormat);
  PutLe<uint8_t>(&out, record.exact ? 1 : 0);
  PutLe<int64_t>(&out, record.registered_unix_ms);
  PutLe<uint32_t>(&out, static_cast<uint32_t>(record.files.size()));
  for (const auto& [name, bytes] : record.files) {
    PutLe<uint32_t>(&out, static_cast<uint32_t>(name.size()));
    out += name;
    PutLe<uint64_t>(&out, bytes.size());
    out += bytes;
  }
  return out;
}

absl::StatusOr<ModelRecord> DecodeModel(absl::string_view value) {
  LeReader r(value);
  uint8_t format = 0, exact = 0;
  uint32_t nfiles = 0;
  ModelRecord record;
  if (!r.Get(&format) || !r.Get(&exact) || !r.Get(&record.registered_unix_ms) ||
      !r.Get(&nfiles)) {
    return Truncated("model");
  }
  if (format != kFormat) {
    return absl::DataLossError(absl::StrCat("injection model record has format ", format));
  }
  record.exact = exact != 0;
  for (uint32_t i = 0; i < nfiles; ++i) {
    uint32_t name_len = 0;
    uint64_t size = 0;
    absl::string_view name, bytes;
    if (!r.Get(&name_len) || !r.Bytes(name_len, &name) || !r.Get(&size) ||
        size > r.left() || !r.Bytes(size, &bytes)) {
      return Truncated("model");
    }
    record.files[std::string(name)] = std::string(bytes);
  }
  if (r.left() != 0) return absl::DataLossError("injection model record has trailing bytes");
  return record;
}

std::string ModelTag(absl::string_view model_sha256) {
  std::string tag(model_sha256.substr(0, kTagSize));
  tag.resize(kTagSize, '0');
  return tag;
}

std::string EncodeChunk(absl::string_view tag, uint32_t memory_tokens,
                        absl::Span<const float> xrag, absl::Span<const uint8_t> codes,
                        absl::Span<const float> exact) {
  std::string out;
  PutLe<uint8_t>(&out, kFormat);
  PutLe<uint8_t>(&out, exact.empty() ? 0 : kFlagExact);
  std::string t(tag);
  t.resize(kTagSize, '0');
  out += t;
  PutLe<uint32_t>(&out, static_cast<uint32_t>(xrag.size()));
  PutLe<uint32_t>(&out, memory_tokens);
  PutLe<uint32_t>(&out, memory_tokens == 0 ? 0 : static_cast<uint32_t>(codes.size() / memory_tokens));
  PutFloats(&out, xrag);
  out.append(reinterpret_cast<const char*>(codes.data()), codes.size());
  PutFloats(&out, exact);
  return out;
}

absl::StatusOr<ChunkRecord> DecodeChunk(absl::string_view value) {
  LeReader r(value);
  uint8_t format = 0, flags = 0;
  ChunkRecord rec;
  absl::string_view tag;
  if (!r.Get(&format) || !r.Get(&flags) || !r.Bytes(kTagSize, &tag) ||
      !r.Get(&rec.decoder_dim) || !r.Get(&rec.memory_tokens) || !r.Get(&rec.code_size)) {
    return Truncated("chunk");
  }
  if (format != kFormat) {
    return absl::DataLossError(absl::StrCat("injection chunk record has format ", format));
  }
  rec.tag = std::string(tag);
  const uint64_t dim = rec.decoder_dim, m = rec.memory_tokens;
  // Sizes are checked against what is left before anything is allocated.
  const uint64_t need = dim * 4 + m * rec.code_size + ((flags & kFlagExact) ? m * dim * 4 : 0);
  if (dim == 0 || m == 0 || rec.code_size == 0 || need != r.left()) {
    return absl::DataLossError(absl::StrCat(
        "injection chunk record of [", m, " x ", dim, "] with ", rec.code_size,
        "-byte codes holds ", r.left(), " payload bytes, expected ", need));
  }
  absl::string_view codes;
  if (!GetFloats(&r, dim, &rec.xrag) || !r.Bytes(m * rec.code_size, &codes)) {
    return Truncated("chunk");
  }
  rec.codes.assign(codes.begin(), codes.end());
  if ((flags & kFlagExact) && !GetFloats(&r, m * dim, &rec.exact)) return Truncated("chunk");
  return rec;
}

}  // namespace mnemo::db::injection
