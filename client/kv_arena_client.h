// The SDK's end of mnemod's KV arena (README "KV arena"): one session per
// Client, made on the first KvGetRequest::shared_memory read: KvArenaInfo
// says where the arena socket is; connecting to it with the Client's API
// key gets a read-only arena descriptor (mapped once, read-only) and a
// session token owned by that key (mnemo/kv_arena_wire.h). Reads naming the token are answered with leases,
// read in place from the mapping. Internal to the client library.
#ifndef MNEMO_CLIENT_KV_ARENA_CLIENT_H_
#define MNEMO_CLIENT_KV_ARENA_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "mnemo/client.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo::client_internal {

// The arena mapped read-only; unmapped when the last user lets go.
class KvArenaMapping {
 public:
  KvArenaMapping(const char* data, uint64_t size) : data_(data), size_(size) {}
  ~KvArenaMapping();
  KvArenaMapping(const KvArenaMapping&) = delete;
  KvArenaMapping& operator=(const KvArenaMapping&) = delete;
  std::string_view bytes() const { return std::string_view(data_, size_); }

 private:
  const char* const data_;
  const uint64_t size_;
};

// One connection to the arena socket. Thread-safe.
class KvArenaSession : public std::enable_shared_from_this<KvArenaSession> {
 public:
  // Connects to `socket_path`, presents `api_key` (empty: none) and maps
  // the arena it hands over. UNAVAILABLE when there is no such socket here
  // (another host), PERMISSION_DENIED when mnemod refuses this process's
  // uid, UNAUTHENTICATED when it refuses the key (missing, unknown or
  // revoked), RESOURCE_EXHAUSTED when the key is over its request rate,
  // FAILED_PRECONDITION when the arena is not `arena_id` (another mnemod's).
  static absl::StatusOr<std::shared_ptr<KvArenaSession>> Connect(const std::string& socket_path,
                                                                 const std::string& arena_id,
                                                                 const std::string& api_key);
  ~KvArenaSession();  // closes the connection: mnemod releases every lease
  KvArenaSession(const KvArenaSession&) = delete;
  KvArenaSession& operator=(const KvArenaSession&) = delete;

  // False once mnemod closed the connection (it stopped or restarted).
  bool Alive() const;
  const std::string& token() const { return token_; }
  const std::shared_ptr<const KvArenaMapping>& mapping() const { return mapping_; }

  // The lease of a block of this session; dropping its last copy queues
  // its release.
  std::shared_ptr<const KvArenaLease> Adopt(const v1::KvArenaLease& lease);
  // Lease ids dropped since the last call.
  std::vector<uint64_t> TakeReleases();

 private:
  KvArenaSession(int fd, std::string token, std::shared_ptr<const KvArenaMapping> mapping)
      : fd_(fd), token_(std::move(token)), mapping_(std::move(mapping)) {}
  void QueueRelease(uint64_t id);

  const int fd_;
  const std::string token_;
  const std::shared_ptr<const KvArenaMapping> mapping_;
  std::mutex mu_;
  std::vector<uint64_t> released_;
};

// A Client's arena: the live session, reconnected after mnemod restarts.
class KvArenaClient {
 public:
  // `api_key`: the key the Client's calls carry (ClientOptions::api_key).
  explicit KvArenaClient(std::string api_key) : api_key_(std::move(api_key)) {}

  // The session to read through, connecting when there is none or it
  // died (mnemod restarted, or the key was revoked); null when mnemod
  // offers no arena or is not reachable through it (another host, another
  // uid): then reads go over gRPC. mnemod refusing the key is an error
  // (UNAUTHENTICATED, RESOURCE_EXHAUSTED). Queued lease releases are sent
  // first (KvArenaRelease).
  absl::StatusOr<std::shared_ptr<KvArenaSession>> Session(
      v1::MnemoKv::Stub* stub, std::chrono::system_clock::time_point deadline);

 private:
  const std::string api_key_;
  std::mutex mu_;
  std::shared_ptr<KvArenaSession> session_;
  // After finding no usable arena, when to ask again.
  std::chrono::steady_clock::time_point retry_after_{};
};

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_KV_ARENA_CLIENT_H_
