// The mnemo.v1.Mnemo gRPC service (namespaces, documents, chunks, search,
// operations): a thin, final adapter over db::Store. KV caches are
// server/kv_service.h's. Also FinishUnary / LogRpcFailure, which both
// services end their calls with.
//
// Each method converts the request to domain types (server/convert.h), calls
// the store, converts the result back and maps the status in one place
// (server/status_mapping.h). Limits (k, batch sizes, id and metadata sizes)
// are the store's; the message size limit is gRPC's (set on the builder).
//
// Handlers run on gRPC's callback threads and call the store synchronously;
// the store is thread-safe, so calls proceed concurrently.
#ifndef MNEMO_SERVER_SERVICE_H_
#define MNEMO_SERVER_SERVICE_H_

#include <string>

#include "db/store.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "server/authorizer.h"

namespace mnemo::server {

class MnemoService final : public v1::Mnemo::CallbackService {
 public:
  // Borrows `store`, which must outlive the service (and the server it is
  // registered with). `version` is reported by Stats. `auth` (borrowed;
  // null = Authorizer::Off()) checks every call: see each method's role in
  // proto/mnemo/v1/auth.proto.
  MnemoService(db::Store* store, std::string version, Authorizer* auth = nullptr);

  grpc::ServerUnaryReactor* CreateNamespace(grpc::CallbackServerContext* ctx,
                                            const v1::CreateNamespaceRequest* request,
                                            v1::CreateNamespaceResponse* response) override;
  grpc::ServerUnaryReactor* GetNamespace(grpc::CallbackServerContext* ctx,
                                         const v1::GetNamespaceRequest* request,
                                         v1::GetNamespaceResponse* response) override;
  grpc::ServerUnaryReactor* ListNamespaces(grpc::CallbackServerContext* ctx,
                                           const v1::ListNamespacesRequest* request,
                                           v1::ListNamespacesResponse* response) override;
  grpc::ServerUnaryReactor* DropNamespace(grpc::CallbackServerContext* ctx,
                                          const v1::DropNamespaceRequest* request,
                                          v1::DropNamespaceResponse* response) override;
  // server/quota_rpc.cc
  grpc::ServerUnaryReactor* SetNamespaceQuota(grpc::CallbackServerContext* ctx,
                                              const v1::SetNamespaceQuotaRequest* request,
                                              v1::SetNamespaceQuotaResponse* response) override;
  grpc::ServerUnaryReactor* Upsert(grpc::CallbackServerContext* ctx,
                                   const v1::UpsertRequest* request,
                                   v1::UpsertResponse* response) override;
  // Commits every message as one Store::Upsert as it arrives; the first
  // failure ends the stream with its status (earlier messages stay).
  grpc::ServerReadReactor<v1::UpsertRequest>* UpsertStream(
      grpc::CallbackServerContext* ctx, v1::UpsertResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DeleteRequest* request,
                                   v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const v1::SearchRequest* request,
                                   v1::SearchResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;
  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* ctx,
                                       const v1::CheckpointRequest* request,
                                       v1::CheckpointResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const v1::CompactRequest* request,
                                    v1::CompactResponse* response) override;
  // Backups (server/backup_rpc.cc, db/backup.cc).
  grpc::ServerUnaryReactor* CreateBackup(grpc::CallbackServerContext* ctx,
                                         const v1::CreateBackupRequest* request,
                                         v1::CreateBackupResponse* response) override;
  grpc::ServerUnaryReactor* ListBackups(grpc::CallbackServerContext* ctx,
                                        const v1::ListBackupsRequest* request,
                                        v1::ListBackupsResponse* response) override;
  grpc::ServerUnaryReactor* VerifyBackup(grpc::CallbackServerContext* ctx,
                                         const v1::VerifyBackupRequest* request,
                                         v1::VerifyBackupResponse* response) override;

 private:
  db::Store* const store_;
  const std::string version_;
  Authorizer& auth_;
};

// Logs a failed call at debug level (bad input is the client's problem, not
// an operator's).
void LogRpcFailure(absl::string_view method, const absl::Status& status, const std::string& peer);
// Finishes a unary call with `status` (logged when it is an error).
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* ctx, absl::string_view method,
                                      const absl::Status& status);
// Null when `status` is OK; otherwise FinishUnary(ctx, method, status). The
// authorization check at the top of a handler:
//   if (auto* r = Refuse(ctx, "Get", auth_.Check(*ctx, ns, Role::kRead))) return r;
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, absl::string_view method,
                                 const absl::Status& status);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_SERVICE_H_
