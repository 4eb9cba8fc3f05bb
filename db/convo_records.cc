// Conversation storage encodings (see convo_records.h).
#include "db/convo_records.h"

#include <atomic>
#include <exception>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "db/keys.h"
#include "nlohmann/json.hpp"

namespace mnemo::db {

absl::Status ValidateMessageRole(absl::string_view role) {
  for (const char* known : kMessageRoles) {
    if (role == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown message role '", role,
                                                 "'; use one of ",
                                                 absl::StrJoin(kMessageRoles, ", ")));
}

namespace convorecords {
namespace {

using Json = nlohmann::json;

}  // namespace

std::string NewMessageId(int64_t now_ms) {
  static std::atomic<uint32_t> counter{0};
  const uint64_t ms = static_cast<uint64_t>(now_ms < 0 ? 0 : now_ms) & 0xFFFFFFFFFFFFull;
  return absl::StrFormat("%s%012x%08x", kMessageIdPrefix, ms, counter.fetch_add(1));
}

bool IsMessageId(absl::string_view id) { return absl::StartsWith(id, kMessageIdPrefix); }

std::string EncodeMessageMetadata(const Message& m) {
  Json doc = m.metadata_json.empty() ? Json::object() : Json::parse(m.metadata_json);
  doc[kAttrMessage] = true;
  doc[kAttrRun] = m.run_id;
  doc[kAttrRole] = m.role;
  doc[kAttrTime] = m.time_ms;
  return doc.dump();
}

absl::StatusOr<Message> MessageFromChunk(const Chunk& chunk) {
  Json doc;
  try {
    doc = Json::parse(chunk.metadata_json.empty() ? std::string("{}") : chunk.metadata_json);
  } catch (const std::exception&) {
    return absl::DataLossError(absl::StrCat("chunk '", chunk.id, "' has malformed metadata"));
  }
  if (!doc.is_object() || !doc.contains(kAttrMessage) || !IsMessageId(chunk.id)) {
    return absl::NotFoundError(absl::StrCat("'", chunk.id, "' is not a message"));
  }
  auto run = doc.find(kAttrRun);
  auto role = doc.find(kAttrRole);
  auto time = doc.find(kAttrTime);
  if (run == doc.end() || !run->is_string() || role == doc.end() || !role->is_string() ||
      time == doc.end() || !time->is_number_integer()) {
    return absl::DataLossError(absl::StrCat("message '", chunk.id, "' lacks its run, role or time"));
  }
  Message m;
  m.id = chunk.id;
  m.content = chunk.text;
  m.run_id = run->get<std::string>();
  m.role = role->get<std::string>();
  m.time_ms = time->get<int64_t>();
  Json user = Json::object();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (!absl::StartsWith(it.key(), "@")) user[it.key()] = it.value();
  }
  m.metadata_json = user.dump();
  return m;
}

std::string RunPrefix(uint32_t nsid, absl::string_view run_id) {
  std::string key = keys::NsPrefix(nsid);
  key.push_back('m');
  keys::AppendU16(&key, static_cast<uint16_t>(run_id.size()));
  key.append(run_id.data(), run_id.size());
  return key;
}

std::string TimeKey(uint32_t nsid, absl::string_view run_id, int64_t time_ms,
                    absl::string_view message_id) {
  std::string key = RunPrefix(nsid, run_id);
  keys::AppendU64(&key, static_cast<uint64_t>(time_ms < 0 ? 0 : time_ms));
  key.append(message_id.data(), message_id.size());
  return key;
}

absl::Status DecodeTimeKey(absl::string_view key, size_t run_prefix_size, int64_t* time_ms,
                           std::string* message_id) {
  if (key.size() < run_prefix_size + 8) return absl::DataLossError("malformed message time key");
  std::optional<uint64_t> ms = keys::ReadU64(key.substr(run_prefix_size));
  if (!ms.has_value()) return absl::DataLossError("malformed message time key");
  *time_ms = static_cast<int64_t>(*ms);
  *message_id = std::string(key.substr(run_prefix_size + 8));
  if (!IsMessageId(*message_id)) return absl::DataLossError("malformed message time key");
  return absl::OkStatus();
}

}  // namespace convorecords
}  // namespace mnemo::db
