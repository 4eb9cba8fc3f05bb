// The memory-injection calls of mnemo::Client over the mnemo.v1.MnemoInject
// stub, and the UNIMPLEMENTED defaults test fakes inherit.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "client/convert.h"
#include "client/inject_convert.h"
#include "common/status_macros.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"

namespace mnemo {
namespace client_internal {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return bytes.str();
}

// The files of an injection model directory: config.json and the weights
// and tokenizer files it names (plain names inside the directory).
absl::StatusOr<std::map<std::string, std::string>> ReadModelDir(const std::string& dir) {
  std::map<std::string, std::string> files;
  const std::filesystem::path root(dir);
  ASSIGN_OR_RETURN(files["config.json"], ReadWholeFile(root / "config.json"));
  const nlohmann::json config = nlohmann::json::parse(files["config.json"], nullptr, false);
  if (!config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat((root / "config.json").string(), " is not a JSON object"));
  }
  for (const char* key : {"weights", "tokenizer"}) {
    auto it = config.find(key);
    if (it == config.end() || !it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          (root / "config.json").string(), " has no string field \"", key, "\""));
    }
    const std::string name = it->get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          (root / "config.json").string(), " field \"", key, "\" must name a file in ", dir));
    }
    ASSIGN_OR_RETURN(files[name], ReadWholeFile(root / name));
  }
  return files;
}

}  // namespace

absl::StatusOr<InjectionInfo> ClientImpl::RegisterInjectionModel(const std::string& ns,
                                                                 const std::string& dir,
                                                                 bool exact,
                                                                 const CallOptions& call) {
  ASSIGN_OR_RETURN(auto files, ReadModelDir(dir));
  v1::RegisterInjectionModelRequest request;
  request.set_namespace_(ns);
  request.set_exact(exact);
  for (auto& [name, bytes] : files) (*request.mutable_files())[name] = std::move(bytes);
  v1::RegisterInjectionModelResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return inject_stub_->RegisterInjectionModel(ctx, request, &response);
  }));
  InjectionInfo info = InjectionInfoFromProto(response.info());
  info.backfilled_chunks = response.backfilled_chunks();
  return info;
}

absl::StatusOr<InjectionInfo> ClientImpl::GetInjectionModel(const std::string& ns,
                                                            const CallOptions& call) {
  v1::GetInjectionModelRequest request;
  request.set_namespace_(ns);
  v1::GetInjectionModelResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return inject_stub_->GetInjectionModel(ctx, request, &response);
  }));
  return InjectionInfoFromProto(response.info());
}

absl::StatusOr<RecallResult> ClientImpl::Recall(const RecallRequest& request,
                                                const CallOptions& call) {
  ASSIGN_OR_RETURN(v1::RecallRequest wire, RecallRequestToProto(request));
  v1::RecallResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return inject_stub_->Recall(ctx, wire, &response);
  }));
  return RecallResultFromProto(response);
}

}  // namespace client_internal

// Defaults for implementations that predate the injection calls (test fakes).
absl::StatusOr<InjectionInfo> Client::RegisterInjectionModel(const std::string&,
                                                             const std::string&, bool,
                                                             const CallOptions&) {
  return absl::UnimplementedError("this Client does not implement RegisterInjectionModel");
}
absl::StatusOr<InjectionInfo> Client::GetInjectionModel(const std::string&, const CallOptions&) {
  return absl::UnimplementedError("this Client does not implement GetInjectionModel");
}
absl::StatusOr<RecallResult> Client::Recall(const RecallRequest&, const CallOptions&) {
  return absl::UnimplementedError("this Client does not implement Recall");
}

}  // namespace mnemo
