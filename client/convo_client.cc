// The SDK's conversation-log calls (Client::Convo*, mnemo/convo.h): the SDK
// <-> MnemoMemory wire conversions of messages, the ClientImpl methods, and
// the UNIMPLEMENTED defaults for test fakes.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "common/status_macros.h"

namespace mnemo {
namespace {

absl::Status Unimplemented(const char* what) {
  return absl::UnimplementedError(absl::StrCat(what, " is not implemented by this client"));
}

ConvoMessage MessageFromProto(const v1::ConvoMessage& m) {
  ConvoMessage out;
  out.id = m.id();
  out.run_id = m.run_id();
  out.role = m.role();
  out.content = m.content();
  out.time_ms = m.time_ms();
  out.metadata_json = m.metadata_json();
  return out;
}

void SelectionToProto(const ConvoSelection& s, v1::ConvoSelection* out) {
  out->set_run_id(s.run_id);
  out->set_role(s.role);
  if (s.since_ms.has_value()) out->set_since_ms(*s.since_ms);
  if (s.until_ms.has_value()) out->set_until_ms(*s.until_ms);
}

}  // namespace

absl::StatusOr<std::vector<ConvoMessage>> Client::ConvoAppend(
    const std::string&, const std::string&, const std::vector<ConvoMessageInput>&,
    const CallOptions&) {
  return Unimplemented("ConvoAppend");
}
absl::StatusOr<std::vector<ConvoHit>> Client::ConvoSearch(const ConvoSearchRequest&,
                                                          const CallOptions&) {
  return Unimplemented("ConvoSearch");
}
absl::StatusOr<ConvoPage> Client::ConvoList(const ConvoListRequest&, const CallOptions&) {
  return Unimplemented("ConvoList");
}
absl::StatusOr<uint64_t> Client::ConvoDeleteRun(const std::string&, const std::string&,
                                                const CallOptions&) {
  return Unimplemented("ConvoDeleteRun");
}

namespace client_internal {

absl::StatusOr<std::vector<ConvoMessage>> ClientImpl::ConvoAppend(
    const std::string& ns, const std::string& run_id,
    const std::vector<ConvoMessageInput>& messages, const CallOptions& call) {
  v1::AppendMessagesRequest request;
  request.set_namespace_(ns);
  request.set_run_id(run_id);
  for (const ConvoMessageInput& in : messages) {
    v1::ConvoMessageInput* m = request.add_messages();
    m->set_role(in.role);
    m->set_content(in.content);
    if (in.time_ms.has_value()) m->set_time_ms(*in.time_ms);
    m->set_metadata_json(in.metadata_json);
  }
  v1::AppendMessagesResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->AppendMessages(ctx, request, &response);
  }));
  std::vector<ConvoMessage> out;
  for (const v1::ConvoMessage& m : response.messages()) out.push_back(MessageFromProto(m));
  return out;
}

absl::StatusOr<std::vector<ConvoHit>> ClientImpl::ConvoSearch(const ConvoSearchRequest& req,
                                                              const CallOptions& call) {
  if (req.top_k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 1, got ", req.top_k));
  }
  v1::SearchMessagesRequest request;
  request.set_namespace_(req.ns);
  SelectionToProto(req.selection, request.mutable_selection());
  request.set_query(req.query);
  request.set_top_k(static_cast<uint32_t>(req.top_k));
  v1::SearchMessagesResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->SearchMessages(ctx, request, &response);
  }));
  std::vector<ConvoHit> out;
  for (const v1::ConvoHit& h : response.hits()) {
    ConvoHit hit;
    hit.message = MessageFromProto(h.message());
    hit.score = h.score();
    hit.similarity = h.similarity();
    out.push_back(std::move(hit));
  }
  return out;
}

absl::StatusOr<ConvoPage> ClientImpl::ConvoList(const ConvoListRequest& req,
                                                const CallOptions& call) {
  v1::ListMessagesRequest request;
  request.set_namespace_(req.ns);
  SelectionToProto(req.selection, request.mutable_selection());
  request.set_page_size(req.page_size);
  request.set_page_token(req.page_token);
  v1::ListMessagesResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->ListMessages(ctx, request, &response);
  }));
  ConvoPage page;
  for (const v1::ConvoMessage& m : response.messages()) {
    page.messages.push_back(MessageFromProto(m));
  }
  page.next_page_token = response.next_page_token();
  return page;
}

absl::StatusOr<uint64_t> ClientImpl::ConvoDeleteRun(const std::string& ns,
                                                    const std::string& run_id,
                                                    const CallOptions& call) {
  v1::DeleteRunRequest request;
  request.set_namespace_(ns);
  request.set_run_id(run_id);
  v1::DeleteRunResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->DeleteRun(ctx, request, &response);
  }));
  return response.deleted();
}

}  // namespace client_internal
}  // namespace mnemo
