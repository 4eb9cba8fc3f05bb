// Keys and values of the chunk KV caches (see kv_records.h).
#include "db/kv_records.h"

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "db/keys.h"
#include "db/le_bytes.h"
#include "nlohmann/json.hpp"

namespace mnemo::db::kvrecords {
namespace {

constexpr char kFormat = 0x01;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt KV ", what));
}

}  // namespace

std::string BlockPrefix(uint32_t nsid, int64_t internal_id) {
  std::string out = keys::NsPrefix(nsid);
  out.push_back('b');
  keys::AppendU64(&out, static_cast<uint64_t>(internal_id));
  return out;
}

std::string BlockPrefixEnd(uint32_t nsid, int64_t internal_id) {
  return keys::PrefixEnd(BlockPrefix(nsid, internal_id));
}

std::string BlockKey(uint32_t nsid, int64_t internal_id, uint32_t layer) {
  std::string out = BlockPrefix(nsid, internal_id);
  keys::AppendU16(&out, static_cast<uint16_t>(layer));
  return out;
}

std::string KeyIndexKey(uint32_t nsid, int64_t internal_id, uint32_t layer) {
  std::string out = keys::NsPrefix(nsid);
  out.push_back('k');
  keys::AppendU64(&out, static_cast<uint64_t>(internal_id));
  keys::AppendU16(&out, static_cast<uint16_t>(layer));
  return out;
}

std::string ChunkKeyPrefix(uint32_t nsid) {
  std::string out = keys::NsPrefix(nsid);
  out.push_back('c');
  return out;
}

std::string ChunkKey(uint32_t nsid, int64_t internal_id) {
  std::string out = ChunkKeyPrefix(nsid);
  keys::AppendU64(&out, static_cast<uint64_t>(internal_id));
  return out;
}

std::optional<int64_t> ChunkKeyId(absl::string_view key) {
  if (key.size() != 4 + 1 + 8 || key[4] != 'c') return std::nullopt;
  auto id = keys::ReadU64(key.substr(5));
  if (!id.has_value()) return std::nullopt;
  return static_cast<int64_t>(*id);
}

std::string ConfigKey(uint32_t nsid) {
  std::string out = kKvConfigPrefix;
  keys::AppendU32(&out, nsid);
  return out;
}

std::string RecencyKeyPrefix(uint32_t nsid) {
  std::string out = keys::NsPrefix(nsid);
  out.push_back('r');
  return out;
}

std::string RecencyKey(uint32_t nsid, int64_t internal_id) {
  std::string out = RecencyKeyPrefix(nsid);
  keys::AppendU64(&out, static_cast<uint64_t>(internal_id));
  return out;
}

std::optional<int64_t> RecencyKeyId(absl::string_view key) {
  if (key.size() != 4 + 1 + 8 || key[4] != 'r') return std::nullopt;
  auto id = keys::ReadU64(key.substr(5));
  if (!id.has_value()) return std::nullopt;
  return static_cast<int64_t>(*id);
}

std::string EncodeRecency(uint64_t stamp) {
  std::string out(1, kFormat);
  PutLe(&out, stamp);
  return out;
}

absl::StatusOr<uint64_t> DecodeRecency(absl::string_view value) {
  LeReader in(value);
  uint8_t format = 0;
  uint64_t stamp = 0;
  if (!in.Get(&format) || format != kFormat) return Corrupt("recency stamp: bad format");
  if (!in.Get(&stamp) || in.left() != 0) return Corrupt("recency stamp: bad size");
  return stamp;
}

std::string EncodeChunkRecord(const KvChunkRecord& r) {
  std::string out(1, kFormat);
  PutLe(&out, r.fingerprint_hash);
  PutLe(&out, r.n_layers);
  PutLe(&out, r.stored_bytes);
  PutLe(&out, r.fp16_bytes);
  PutLe(&out, r.created_ms);
  PutLe(&out, r.expires_ms);
  PutLe(&out, static_cast<uint8_t>(r.pinned ? 1 : 0));
  PutLe(&out, r.key_error_sum);
  PutLe(&out, r.value_error_sum);
  PutLe(&out, static_cast<uint32_t>(r.tokens.size()));
  for (int32_t t : r.tokens) PutLe(&out, t);
  PutLe(&out, r.index_bytes);
  return out;
}

absl::StatusOr<KvChunkRecord> DecodeChunkRecord(absl::string_view value) {
  LeReader in(value);
  uint8_t format = 0, pinned = 0;
  uint32_t ntokens = 0;
  KvChunkRecord r;
  if (!in.Get(&format) || format != kFormat) return Corrupt("chunk record: bad format");
  if (!in.Get(&r.fingerprint_hash) || !in.Get(&r.n_layers) || !in.Get(&r.stored_bytes) ||
      !in.Get(&r.fp16_bytes) || !in.Get(&r.created_ms) || !in.Get(&r.expires_ms) ||
      !in.Get(&pinned) || !in.Get(&r.key_error_sum) || !in.Get(&r.value_error_sum) ||
      !in.Get(&ntokens)) {
    return Corrupt("chunk record: truncated");
  }
  if (pinned > 1) return Corrupt("chunk record: bad pin flag");
  r.pinned = pinned == 1;
  const size_t token_bytes = static_cast<size_t>(ntokens) * sizeof(int32_t);
  const size_t rest = in.rest().size();
  if (rest != token_bytes && rest != token_bytes + sizeof(uint64_t)) {
    return Corrupt("chunk record: token count does not match its size");
  }
  r.tokens.resize(ntokens);
  if (ntokens > 0) std::memcpy(r.tokens.data(), in.rest().data(), token_bytes);
  if (rest > token_bytes) {
    std::memcpy(&r.index_bytes, in.rest().data() + token_bytes, sizeof(uint64_t));
    if (r.index_bytes > r.stored_bytes) return Corrupt("chunk record: index larger than the KV");
  }
  return r;
}

std::string EncodeBlock(uint64_t fingerprint_hash, absl::string_view k, absl::string_view v) {
  std::string out;
  out.reserve(1 + 8 + 4 + k.size() + v.size());
  out.push_back(kFormat);
  PutLe(&out, fingerprint_hash);
  PutLe(&out, static_cast<uint32_t>(k.size()));
  out.append(k.data(), k.size());
  out.append(v.data(), v.size());
  return out;
}

absl::StatusOr<BlockView> DecodeBlock(absl::string_view value) {
  LeReader in(value);
  uint8_t format = 0;
  uint32_t k_size = 0;
  BlockView b;
  if (!in.Get(&format) || format != kFormat) return Corrupt("block: bad format");
  if (!in.Get(&b.fingerprint_hash) || !in.Get(&k_size) || !in.Bytes(k_size, &b.k)) {
    return Corrupt("block: truncated");
  }
  b.v = in.rest();
  if (b.v.empty()) return Corrupt("block: no values");
  return b;
}

std::string EncodeConfig(const KvConfig& c) {
  nlohmann::json j;
  j["model"] = c.model.Canonical();
  j["codec"] = std::string(KvCodecName(c.codec.kind));
  j["entropy"] = c.codec.entropy;
  j["zstd_level"] = c.codec.zstd_level;
  j["group_size"] = c.codec.group_size;
  j["capacity_bytes"] = c.capacity_bytes;
  j["eviction_policy"] = c.eviction_policy;
  j["default_ttl_seconds"] = c.default_ttl_seconds;
  j["key_index_keys_per_cluster"] = c.key_index_keys_per_cluster;
  return j.dump();
}

absl::StatusOr<KvConfig> DecodeConfig(absl::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value.begin(), value.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object()) return Corrupt("config: not a JSON object");
  KvConfig c;
  try {
    auto model = ParseFingerprint(j.at("model").get<std::string>());
    if (!model.ok()) return Corrupt(absl::StrCat("config: ", model.status().message()));
    c.model = *std::move(model);
    auto codec = ParseKvCodec(j.at("codec").get<std::string>());
    if (!codec.ok()) return Corrupt(absl::StrCat("config: ", codec.status().message()));
    c.codec.kind = *codec;
    c.codec.entropy = j.at("entropy").get<bool>();
    c.codec.zstd_level = j.at("zstd_level").get<int>();
    c.codec.group_size = j.at("group_size").get<uint32_t>();
    c.capacity_bytes = j.at("capacity_bytes").get<uint64_t>();
    c.eviction_policy = j.at("eviction_policy").get<std::string>();
    c.default_ttl_seconds = j.at("default_ttl_seconds").get<int64_t>();
    // Absent in configs written before key indexes: the default.
    if (j.contains("key_index_keys_per_cluster")) {
      c.key_index_keys_per_cluster = j.at("key_index_keys_per_cluster").get<uint32_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(absl::StrCat("config: ", e.what()));
  }
  return c;
}

uint64_t TokenHash(absl::Span<const int32_t> tokens) {
  uint64_t h = kFnv1aStoredBasis;
  for (int32_t t : tokens) {
    const auto u = static_cast<uint32_t>(t);
    for (int b = 0; b < 4; ++b) h = Fnv1aStep(h, static_cast<uint8_t>(u >> (8 * b)));
  }
  return h;
}

}  // namespace mnemo::db::kvrecords
