// ClientImpl: mnemo::Client over the generated stubs of both services
// (mnemo.v1.Mnemo and mnemo.v1.MnemoKv) on one channel. Its core methods are
// in client.cc, its KV methods in kv_client.cc; both convert with
// client/convert.h and run every unary call through Call (deadline and
// retries). Internal to the client library.
#ifndef MNEMO_CLIENT_CLIENT_IMPL_H_
#define MNEMO_CLIENT_CLIENT_IMPL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/convert.h"
#include "client/kv_arena_client.h"
#include "mnemo/client.h"
#include "mnemo/v1/auth.grpc.pb.h"
#include "mnemo/v1/inject.grpc.pb.h"
#include "mnemo/v1/memory.grpc.pb.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo::client_internal {

using Clock = std::chrono::system_clock;

class ClientImpl final : public Client {
 public:
  ClientImpl(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);

  // Core (client.cc).
  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config,
                                                const CallOptions& call) override;
  absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name,
                                             const CallOptions& call) override;
  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions& call) override;
  absl::Status DropNamespace(const std::string& name, const CallOptions& call) override;
  absl::StatusOr<NamespaceInfo> SetNamespaceQuota(const std::string& name,
                                                  const QuotaChange& change,
                                                  const CallOptions& call) override;
  absl::StatusOr<UpsertResult> Upsert(const std::string& ns, const std::vector<Document>& documents,
                                      const std::vector<Chunk>& chunks,
                                      const CallOptions& call) override;
  absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(const std::string& ns,
                                                             const CallOptions& call) override;
  absl::StatusOr<GetResult> Get(const std::string& ns, const std::vector<std::string>& chunk_ids,
                                const std::vector<std::string>& document_ids, bool include_vectors,
                                const CallOptions& call) override;
  absl::StatusOr<DeleteResult> Delete(const std::string& ns,
                                      const std::vector<std::string>& chunk_ids,
                                      const std::vector<std::string>& document_ids,
                                      const CallOptions& call) override;
  absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest& request,
                                                       const CallOptions& call) override;
  absl::StatusOr<StatsResult> Stats(const std::string& ns, const CallOptions& call) override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir,
                                      const CallOptions& call) override;
  absl::Status Compact(const std::string& ns, const CallOptions& call) override;
  absl::StatusOr<BackupInfo> CreateBackup(const std::string& backup_dir,
                                          const CallOptions& call) override;
  absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& backup_dir,
                                                      const CallOptions& call) override;
  absl::StatusOr<std::vector<uint32_t>> VerifyBackup(const std::string& backup_dir, uint32_t id,
                                                     const CallOptions& call) override;
  absl::Status HealthCheck(const CallOptions& call) override;

  // KV caches (kv_client.cc).
  absl::StatusOr<KvStats> RegisterKvModel(const std::string& ns, const KvConfig& config,
                                          const CallOptions& call) override;
  absl::StatusOr<std::unique_ptr<KvWriter>> OpenKvWriter(const std::string& ns,
                                                         const KvPutHeader& header,
                                                         const CallOptions& call) override;
  absl::StatusOr<KvPutResult> PutKv(const std::string& ns, const KvPut& put,
                                    const CallOptions& call) override;
  absl::StatusOr<std::unique_ptr<KvReader>> OpenKvReader(const std::string& ns,
                                                         const KvGetRequest& request,
                                                         const CallOptions& call) override;
  absl::StatusOr<std::vector<KvBlock>> GetKv(const std::string& ns, const KvGetRequest& request,
                                             const CallOptions& call) override;
  absl::StatusOr<std::vector<uint32_t>> ExistsKv(const std::string& ns,
                                                 const std::vector<std::string>& chunk_ids,
                                                 const ModelFingerprint& model,
                                                 const CallOptions& call) override;
  absl::StatusOr<uint64_t> DeleteKv(const std::string& ns,
                                    const std::vector<std::string>& chunk_ids,
                                    const CallOptions& call) override;
  absl::StatusOr<std::unique_ptr<AttendStream>> OpenAttend(const std::string& ns,
                                                           const ModelFingerprint& model,
                                                           const std::vector<AttendChunk>& chunks,
                                                           const CallOptions& call) override;
  absl::StatusOr<KvPrefixMatch> LookupPrefix(const std::string& ns, const ModelFingerprint& model,
                                             const std::vector<int32_t>& tokens,
                                             const CallOptions& call) override;
  absl::StatusOr<uint64_t> SetKvRetention(const std::string& ns,
                                          const std::vector<std::string>& chunk_ids,
                                          std::optional<bool> pin,
                                          std::optional<int64_t> ttl_seconds,
                                          const CallOptions& call) override;
  absl::StatusOr<KvStats> GetKvStats(const std::string& ns, const CallOptions& call) override;

  // Memory injection (inject_client.cc).
  absl::StatusOr<InjectionInfo> RegisterInjectionModel(const std::string& ns,
                                                       const std::string& dir, bool exact,
                                                       const CallOptions& call) override;
  absl::StatusOr<InjectionInfo> GetInjectionModel(const std::string& ns,
                                                  const CallOptions& call) override;
  absl::StatusOr<RecallResult> Recall(const RecallRequest& request,
                                      const CallOptions& call) override;
  // Agent memories (memory_client.cc).
  absl::StatusOr<std::vector<MemoryAddResult>> MemoryAdd(const std::string& ns,
                                                         const std::vector<MemoryInput>& memories,
                                                         const MemoryAddOptions& options,
                                                         const CallOptions& call) override;
  absl::StatusOr<std::vector<MemoryHit>> MemorySearch(const MemorySearchRequest& request,
                                                      const CallOptions& call) override;
  absl::StatusOr<Memory> MemoryGet(const std::string& ns, const std::string& id,
                                   const CallOptions& call) override;
  absl::StatusOr<MemoryPage> MemoryList(const MemoryListRequest& request,
                                        const CallOptions& call) override;
  absl::StatusOr<Memory> MemoryUpdate(const std::string& ns, const std::string& id,
                                      const MemoryChanges& changes,
                                      const CallOptions& call) override;
  absl::Status MemoryDelete(const std::string& ns, const std::string& id,
                            const std::string& actor, const CallOptions& call) override;
  absl::StatusOr<uint64_t> MemoryDeleteAll(const std::string& ns, const MemoryScope& scope,
                                           const std::string& actor,
                                           const CallOptions& call) override;
  absl::StatusOr<std::vector<MemoryEvent>> MemoryHistory(const std::string& ns,
                                                         const std::string& id,
                                                         const CallOptions& call) override;
  absl::StatusOr<uint64_t> MemoryReset(const std::string& ns, const CallOptions& call) override;
  absl::StatusOr<MemoryBlock> BlockGet(const std::string& ns, const std::string& agent_id,
                                       const std::string& label, const CallOptions& call) override;
  absl::StatusOr<MemoryBlock> BlockEdit(const std::string& ns, const std::string& agent_id,
                                        const std::string& label, const BlockChange& change,
                                        const CallOptions& call) override;
  absl::StatusOr<std::vector<BlockEvent>> BlockHistory(const std::string& ns,
                                                       const std::string& agent_id,
                                                       const std::string& label,
                                                       const CallOptions& call) override;
  // API keys (auth_client.cc).
  absl::StatusOr<CreatedApiKey> CreateApiKey(const NewApiKey& key,
                                             const CallOptions& call) override;
  absl::StatusOr<std::vector<ApiKeyInfo>> ListApiKeys(const std::string& ns,
                                                      const CallOptions& call) override;
  absl::Status RevokeApiKey(const std::string& id, const CallOptions& call) override;
  // Conversation logs (convo_client.cc).
  absl::StatusOr<std::vector<ConvoMessage>> ConvoAppend(
      const std::string& ns, const std::string& run_id,
      const std::vector<ConvoMessageInput>& messages, const CallOptions& call) override;
  absl::StatusOr<std::vector<ConvoHit>> ConvoSearch(const ConvoSearchRequest& request,
                                                    const CallOptions& call) override;
  absl::StatusOr<ConvoPage> ConvoList(const ConvoListRequest& request,
                                      const CallOptions& call) override;
  absl::StatusOr<uint64_t> ConvoDeleteRun(const std::string& ns, const std::string& run_id,
                                          const CallOptions& call) override;

 private:
  Clock::time_point Deadline(const CallOptions& call) const {
    return Clock::now() + call.timeout.value_or(options_.default_timeout);
  }

  // Runs `attempt` (one RPC on a fresh context) until it succeeds, fails
  // with a code other than UNAVAILABLE, runs out of attempts, or the next
  // backoff would cross the call's deadline. All attempts share one deadline.
  template <typename Attempt>
  absl::Status Call(const CallOptions& call, Attempt attempt) {
    const Clock::time_point deadline = Deadline(call);
    std::chrono::milliseconds backoff = options_.initial_backoff;
    const int attempts = std::max(1, options_.max_attempts);
    for (int i = 1;; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      grpc::Status status = attempt(&ctx);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE || i >= attempts ||
          Clock::now() + backoff >= deadline) {
        return FromGrpc(status);
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Mnemo::Stub> stub_;
  std::unique_ptr<v1::MnemoKv::Stub> kv_stub_;
  std::unique_ptr<v1::MnemoInject::Stub> inject_stub_;
  std::unique_ptr<v1::MnemoMemory::Stub> memory_stub_;
  std::unique_ptr<v1::MnemoAuth::Stub> auth_stub_;
  grpc::GenericStub generic_stub_;
  const ClientOptions options_;
  KvArenaClient arena_{options_.api_key};  // the KV arena session of shared_memory reads
};

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_CLIENT_IMPL_H_
