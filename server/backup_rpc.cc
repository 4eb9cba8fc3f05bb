// MnemoService's backup calls: CreateBackup, ListBackups, VerifyBackup over
// db::Store's BackupEngine (db/backup.cc); restoring is mnemod
// --restore-from, before a store is open.
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/logging.h"
#include "server/service.h"

namespace mnemo::server {

grpc::ServerUnaryReactor* MnemoService::CreateBackup(grpc::CallbackServerContext* ctx,
                                                     const v1::CreateBackupRequest* request,
                                                     v1::CreateBackupResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Caller caller, auth_.Authenticate(*ctx));
    RETURN_IF_ERROR(Authorizer::Permit(caller, kEveryNamespace, Role::kAdmin));
    ASSIGN_OR_RETURN(db::BackupInfo info, store_->CreateBackup(request->backup_dir()));
    BackupInfoToProto(info, response->mutable_backup());
    LogEvent(spdlog::level::info, "backup created",
             {{"backup_dir", request->backup_dir()},
              {"id", info.id},
              {"files", info.files},
              {"bytes", info.size_bytes},
              {"sequence", info.sequence},
              {"by", caller.key_id}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "CreateBackup", status);
}

grpc::ServerUnaryReactor* MnemoService::ListBackups(grpc::CallbackServerContext* ctx,
                                                    const v1::ListBackupsRequest* request,
                                                    v1::ListBackupsResponse* response) {
  if (auto* r = Refuse(ctx, "ListBackups", auth_.Check(*ctx, kEveryNamespace, Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<db::BackupInfo> infos, store_->ListBackups(request->backup_dir()));
    for (const db::BackupInfo& info : infos) BackupInfoToProto(info, response->add_backups());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "ListBackups", status);
}

grpc::ServerUnaryReactor* MnemoService::VerifyBackup(grpc::CallbackServerContext* ctx,
                                                     const v1::VerifyBackupRequest* request,
                                                     v1::VerifyBackupResponse* response) {
  if (auto* r = Refuse(ctx, "VerifyBackup", auth_.Check(*ctx, kEveryNamespace, Role::kAdmin))) {
    return r;
  }
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<uint32_t> ids,
                     store_->VerifyBackup(request->backup_dir(), request->id()));
    for (uint32_t id : ids) response->add_verified(id);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "VerifyBackup", status);
}

}  // namespace mnemo::server
