// Memory storage encodings (see memory_records.h).
#include "db/memory_records.h"

#include <exception>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "db/keys.h"
#include "nlohmann/json.hpp"

namespace mnemo::db {
namespace memrecords {
namespace {

using Json = nlohmann::json;

void AppendLp(std::string* out, absl::string_view s) {
  keys::AppendU16(out, static_cast<uint16_t>(s.size()));
  out->append(s.data(), s.size());
}

std::optional<int64_t> OptionalMs(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

}  // namespace

std::string NewMemoryId(int64_t now_ms) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t ms = static_cast<uint64_t>(now_ms < 0 ? 0 : now_ms) & 0xFFFFFFFFFFFFull;
  return absl::StrFormat("%s%012x%08x", kMemoryIdPrefix, ms, static_cast<uint32_t>(rng()));
}

bool IsMemoryId(absl::string_view id) { return absl::StartsWith(id, kMemoryIdPrefix); }

uint64_t TextHash(absl::string_view text) { return Fnv1a(text, kFnv1aStandardBasis); }

std::string HashHex(uint64_t hash) { return absl::StrFormat("%016x", hash); }

std::string EncodeMemoryMetadata(const Memory& m) {
  Json doc = m.metadata_json.empty() ? Json::object() : Json::parse(m.metadata_json);
  doc[kAttrMemory] = true;
  if (!m.scope.user_id.empty()) doc[kAttrUser] = m.scope.user_id;
  if (!m.scope.agent_id.empty()) doc[kAttrAgent] = m.scope.agent_id;
  if (!m.scope.run_id.empty()) doc[kAttrRun] = m.scope.run_id;
  doc[kAttrCreated] = m.created_at_ms;
  doc[kAttrUpdated] = m.updated_at_ms;
  doc[kAttrValid] = m.valid_at_ms;
  if (m.expires_at_ms.has_value()) doc[kAttrExpires] = *m.expires_at_ms;
  if (m.invalid_at_ms.has_value()) doc[kAttrInvalid] = *m.invalid_at_ms;
  doc[kAttrHash] = m.hash;
  return doc.dump();
}

absl::StatusOr<Memory> MemoryFromChunk(const Chunk& chunk) {
  Json doc;
  try {
    doc = Json::parse(chunk.metadata_json.empty() ? std::string("{}") : chunk.metadata_json);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("chunk '", chunk.id, "' has malformed metadata"));
  }
  if (!doc.is_object() || !doc.contains(kAttrMemory) || !IsMemoryId(chunk.id)) {
    return absl::NotFoundError(absl::StrCat("'", chunk.id, "' is not a memory"));
  }
  Memory m;
  m.id = chunk.id;
  m.text = chunk.text;
  auto str = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  m.scope.user_id = str(kAttrUser);
  m.scope.agent_id = str(kAttrAgent);
  m.scope.run_id = str(kAttrRun);
  m.hash = str(kAttrHash);
  std::optional<int64_t> created = OptionalMs(doc, kAttrCreated);
  std::optional<int64_t> updated = OptionalMs(doc, kAttrUpdated);
  std::optional<int64_t> valid = OptionalMs(doc, kAttrValid);
  if (!created || !updated || !valid) {
    return absl::DataLossError(absl::StrCat("memory '", chunk.id, "' lacks its times"));
  }
  m.created_at_ms = *created;
  m.updated_at_ms = *updated;
  m.valid_at_ms = *valid;
  m.expires_at_ms = OptionalMs(doc, kAttrExpires);
  m.invalid_at_ms = OptionalMs(doc, kAttrInvalid);
  Json user = Json::object();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (!absl::StartsWith(it.key(), "@")) user[it.key()] = it.value();
  }
  m.metadata_json = user.dump();
  return m;
}

std::string HashKey(uint32_t nsid, const MemoryScope& scope, uint64_t hash) {
  std::string key = KindPrefix(nsid, 'h');
  AppendLp(&key, scope.user_id);
  AppendLp(&key, scope.agent_id);
  AppendLp(&key, scope.run_id);
  keys::AppendU64(&key, hash);
  return key;
}

std::string EventPrefix(uint32_t nsid, absl::string_view memory_id) {
  std::string key = KindPrefix(nsid, 'e');
  AppendLp(&key, memory_id);
  return key;
}

std::string EventKey(uint32_t nsid, absl::string_view memory_id, uint32_t n) {
  std::string key = EventPrefix(nsid, memory_id);
  keys::AppendU32(&key, n);
  return key;
}

std::string KindPrefix(uint32_t nsid, char kind) {
  std::string key = keys::NsPrefix(nsid);
  key.push_back(kind);
  return key;
}

std::string ExpiryKey(uint32_t nsid, int64_t expires_at_ms, absl::string_view memory_id) {
  std::string key = KindPrefix(nsid, 'x');
  keys::AppendU64(&key, static_cast<uint64_t>(expires_at_ms < 0 ? 0 : expires_at_ms));
  key.append(memory_id.data(), memory_id.size());
  return key;
}

absl::Status DecodeExpiryKey(absl::string_view key, int64_t* expires_at_ms,
                             std::string* memory_id) {
  constexpr size_t kHead = 4 + 1;
  if (key.size() < kHead + 8) return absl::DataLossError("malformed memory expiry key");
  std::optional<uint64_t> ms = keys::ReadU64(key.substr(kHead));
  if (!ms.has_value()) return absl::DataLossError("malformed memory expiry key");
  *expires_at_ms = static_cast<int64_t>(*ms);
  *memory_id = std::string(key.substr(kHead + 8));
  return absl::OkStatus();
}

std::string EncodeEvent(const MemoryEvent& e) {
  Json doc = {{"memory_id", e.memory_id}, {"event", MemoryEventKindName(e.kind)},
              {"old_text", e.old_text},   {"new_text", e.new_text},
              {"time_ms", e.time_ms},     {"actor", e.actor}};
  return doc.dump();
}

absl::StatusOr<MemoryEvent> DecodeEvent(absl::string_view value) {
  try {
    const Json doc = Json::parse(value.begin(), value.end());
    MemoryEvent e;
    e.memory_id = doc.at("memory_id").get<std::string>();
    const std::string kind = doc.at("event").get<std::string>();
    const std::optional<MemoryEventKind> parsed = ParseMemoryEventKind(kind);
    if (!parsed.has_value()) {
      return absl::DataLossError(absl::StrCat("unknown memory event '", kind, "'"));
    }
    e.kind = *parsed;
    e.old_text = doc.at("old_text").get<std::string>();
    e.new_text = doc.at("new_text").get<std::string>();
    e.time_ms = doc.at("time_ms").get<int64_t>();
    e.actor = doc.at("actor").get<std::string>();
    return e;
  } catch (const std::exception& ex) {
    return absl::DataLossError(absl::StrCat("malformed memory event: ", ex.what()));
  }
}

std::string BlockKey(uint32_t nsid, absl::string_view agent_id, absl::string_view label) {
  std::string key = KindPrefix(nsid, 'b');
  AppendLp(&key, agent_id);
  AppendLp(&key, label);
  return key;
}

std::string BlockEventPrefix(uint32_t nsid, absl::string_view agent_id, absl::string_view label) {
  std::string key = KindPrefix(nsid, 'k');
  AppendLp(&key, agent_id);
  AppendLp(&key, label);
  return key;
}

std::string BlockEventKey(uint32_t nsid, absl::string_view agent_id, absl::string_view label,
                          uint32_t n) {
  std::string key = BlockEventPrefix(nsid, agent_id, label);
  keys::AppendU32(&key, n);
  return key;
}

std::string EncodeBlock(const MemoryBlock& b) {
  return Json{{"agent_id", b.agent_id},
              {"label", b.label},
              {"value", b.value},
              {"limit_bytes", b.limit_bytes},
              {"updated_at_ms", b.updated_at_ms}}
      .dump();
}

absl::StatusOr<MemoryBlock> DecodeBlock(absl::string_view value) {
  try {
    const Json doc = Json::parse(value.begin(), value.end());
    MemoryBlock b;
    b.agent_id = doc.at("agent_id").get<std::string>();
    b.label = doc.at("label").get<std::string>();
    b.value = doc.at("value").get<std::string>();
    b.limit_bytes = doc.at("limit_bytes").get<uint32_t>();
    b.updated_at_ms = doc.at("updated_at_ms").get<int64_t>();
    return b;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed memory block: ", e.what()));
  }
}

std::string EncodeBlockEvent(const BlockEvent& e) {
  return Json{{"edit", BlockEditKindName(e.kind)},
              {"old_value", e.old_value},
              {"new_value", e.new_value},
              {"time_ms", e.time_ms},
              {"actor", e.actor}}
      .dump();
}

absl::StatusOr<BlockEvent> DecodeBlockEvent(absl::string_view value) {
  try {
    const Json doc = Json::parse(value.begin(), value.end());
    BlockEvent e;
    const std::string kind = doc.at("edit").get<std::string>();
    const std::optional<BlockEditKind> parsed = ParseBlockEditKind(kind);
    if (!parsed.has_value()) {
      return absl::DataLossError(absl::StrCat("unknown block edit '", kind, "'"));
    }
    e.kind = *parsed;
    e.old_value = doc.at("old_value").get<std::string>();
    e.new_value = doc.at("new_value").get<std::string>();
    e.time_ms = doc.at("time_ms").get<int64_t>();
    e.actor = doc.at("actor").get<std::string>();
    return e;
  } catch (const std::exception& ex) {
    return absl::DataLossError(absl::StrCat("malformed block event: ", ex.what()));
  }
}

}  // namespace memrecords

}  // namespace mnemo::db
