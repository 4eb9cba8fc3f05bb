// The key layout of mnemo's RocksDB column families (see keys.h).
#include "db/keys.h"

#include "absl/strings/str_cat.h"

namespace mnemo::db::keys {

void AppendU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::optional<uint32_t> ReadU32(absl::string_view in) {
  if (in.size() < 4) return std::nullopt;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::optional<uint64_t> ReadU64(absl::string_view in) {
  if (in.size() < 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string NsPrefix(uint32_t nsid) {
  std::string out;
  AppendU32(&out, nsid);
  return out;
}

std::string NsEnd(uint32_t nsid) { return NsPrefix(nsid + 1); }

std::string NsConfigKey(absl::string_view name) {
  return absl::StrCat(kNsConfigPrefix, name);
}

std::string NsCountersKey(uint32_t nsid) {
  std::string out = kNsCountersPrefix;
  AppendU32(&out, nsid);
  return out;
}

std::string MultiVecCodecKey(uint32_t nsid) {
  std::string out = kMultiVecCodecPrefix;
  AppendU32(&out, nsid);
  return out;
}

std::string NsQuotaKey(uint32_t nsid) {
  std::string out = kNsQuotaPrefix;
  AppendU32(&out, nsid);
  return out;
}

std::string DocKeyPrefix(uint32_t nsid) {
  std::string out = NsPrefix(nsid);
  out.push_back('d');
  return out;
}

std::string DocKey(uint32_t nsid, absl::string_view doc_id) {
  std::string out = DocKeyPrefix(nsid);
  out.append(doc_id.data(), doc_id.size());
  return out;
}

std::string MembershipPrefix(uint32_t nsid, absl::string_view doc_id) {
  std::string out = NsPrefix(nsid);
  out.push_back('m');
  AppendU16(&out, static_cast<uint16_t>(doc_id.size()));
  out.append(doc_id.data(), doc_id.size());
  return out;
}

std::string MembershipKey(uint32_t nsid, absl::string_view doc_id,
                          absl::string_view chunk_id) {
  std::string out = MembershipPrefix(nsid, doc_id);
  out.append(chunk_id.data(), chunk_id.size());
  return out;
}

std::string IdMapKey(uint32_t nsid, absl::string_view chunk_id) {
  std::string out = NsPrefix(nsid);
  out.push_back('c');
  out.append(chunk_id.data(), chunk_id.size());
  return out;
}

std::string RowKey(uint32_t nsid, int64_t internal_id) {
  std::string out = NsPrefix(nsid);
  AppendU64(&out, static_cast<uint64_t>(internal_id));
  return out;
}

std::string LogKey(uint32_t nsid, uint64_t seq) {
  std::string out = NsPrefix(nsid);
  AppendU64(&out, seq);
  return out;
}

std::optional<uint64_t> RowKeyId(absl::string_view key) {
  if (key.size() != 12) return std::nullopt;
  return ReadU64(key.substr(4));
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto last = static_cast<uint8_t>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

}  // namespace mnemo::db::keys
