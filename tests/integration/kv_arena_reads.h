// Test helpers of the KV arena tests (sdk_kv_arena_test, kv_arena_auth_test):
// a raw read through the SDK's arena session, the bytes of a put's tensor
// to compare a lease with, and a raw GetKv request under a session token.
#ifndef MNEMO_TESTS_INTEGRATION_KV_ARENA_READS_H_
#define MNEMO_TESTS_INTEGRATION_KV_ARENA_READS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/convert.h"
#include "mnemo/client.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::testing {

// The little-endian bytes of `x`, as a raw fp32 read returns them.
inline std::string_view BytesOf(const std::vector<float>& x) {
  return std::string_view(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
}

// Reads `ids` of `ns` raw (fp32 bytes) through the Client's arena session,
// every block of the stream.
inline absl::StatusOr<std::vector<KvBlock>> ReadThroughArena(Client* client,
                                                             const std::string& ns,
                                                             const ModelFingerprint& model,
                                                             std::vector<std::string> ids) {
  KvGetRequest get;
  get.chunk_ids = std::move(ids);
  get.model = model;
  get.shared_memory = true;
  get.raw = true;
  auto reader = client->OpenKvReader(ns, get);
  if (!reader.ok()) return reader.status();
  std::vector<KvBlock> blocks;
  while (true) {
    KvBlock block;
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    if (!more.ok()) return more.status();
    if (!*more) break;
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// A raw GetKv request (fp32) of `ids` under an arena session token, for
// calls past the SDK: to another key's session, a closed or forged one.
inline v1::GetKvRequest RawArenaGetKv(const std::string& ns, const std::string& token,
                                      const ModelFingerprint& model,
                                      const std::vector<std::string>& ids) {
  v1::GetKvRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : ids) request.add_chunk_ids(id);
  client_internal::FingerprintToProto(model, request.mutable_model());
  request.set_dtype(v1::KV_DTYPE_FP32);
  request.set_arena_session(token);
  return request;
}

}  // namespace mnemo::testing

#endif  // MNEMO_TESTS_INTEGRATION_KV_ARENA_READS_H_
