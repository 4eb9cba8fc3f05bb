// ClientImpl's backup calls: CreateBackup, ListBackups, VerifyBackup.
#include "client/client_impl.h"
#include "client/convert.h"
#include "common/status_macros.h"

namespace mnemo::client_internal {

absl::StatusOr<BackupInfo> ClientImpl::CreateBackup(const std::string& backup_dir,
                                                    const CallOptions& call) {
  v1::CreateBackupRequest request;
  request.set_backup_dir(backup_dir);
  v1::CreateBackupResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->CreateBackup(ctx, request, &response);
  }));
  return BackupInfoFromProto(response.backup());
}

absl::StatusOr<std::vector<BackupInfo>> ClientImpl::ListBackups(const std::string& backup_dir,
                                                                const CallOptions& call) {
  v1::ListBackupsRequest request;
  request.set_backup_dir(backup_dir);
  v1::ListBackupsResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->ListBackups(ctx, request, &response);
  }));
  std::vector<BackupInfo> out;
  for (const v1::BackupInfo& b : response.backups()) out.push_back(BackupInfoFromProto(b));
  return out;
}

absl::StatusOr<std::vector<uint32_t>> ClientImpl::VerifyBackup(const std::string& backup_dir,
                                                               uint32_t id,
                                                               const CallOptions& call) {
  v1::VerifyBackupRequest request;
  request.set_backup_dir(backup_dir);
  request.set_id(id);
  v1::VerifyBackupResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->VerifyBackup(ctx, request, &response);
  }));
  return std::vector<uint32_t>(response.verified().begin(), response.verified().end());
}

}  // namespace mnemo::client_internal
