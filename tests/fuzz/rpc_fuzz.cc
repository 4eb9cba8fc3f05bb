// libFuzzer target feeding arbitrary bytes as each RPC's request to the
// in-process services: see rpc_fuzz.h for the input format and the
// property. Built with clang and -fsanitize=fuzzer,address,undefined when
// MNEMO_FUZZ=ON (scripts/fuzz --target rpc); CheckRpcInput is also linked
// into rpc_corpus_test.
#include "tests/fuzz/rpc_fuzz.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mnemo::fuzz {
namespace {

// The request field naming a directory the server writes, per method.
const char* PathField(absl::string_view method_path) {
  if (absl::EndsWith(method_path, "/Checkpoint")) return "target_dir";
  if (absl::EndsWith(method_path, "Backup") || absl::EndsWith(method_path, "/ListBackups")) {
    return "backup_dir";
  }
  return nullptr;
}

// Parses `bytes` as a request of `method`; null when they do not parse.
std::unique_ptr<google::protobuf::Message> Parse(const RpcMethod& method,
                                                 absl::string_view bytes) {
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          method.descriptor->input_type());
  std::unique_ptr<google::protobuf::Message> m(prototype->New());
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return nullptr;
  return m;
}

// Moves the directory a request names into the scratch directory: one of
// four fixed names there, picked by the name given (empty stays empty, so
// that its validation is fuzzed too).
void Sandbox(const RpcFuzzServer& server, const RpcMethod& method, std::string* bytes) {
  const char* field_name = PathField(method.path);
  if (field_name == nullptr) return;
  std::unique_ptr<google::protobuf::Message> m = Parse(method, *bytes);
  if (m == nullptr) return;
  const google::protobuf::FieldDescriptor* field =
      m->GetDescriptor()->FindFieldByName(field_name);
  const std::string given = m->GetReflection()->GetString(*m, field);
  if (given.empty()) return;
  m->GetReflection()->SetString(
      m.get(), field,
      absl::StrCat(server.scratch_dir(), "/", field_name, std::hash<std::string>()(given) % 4));
  *bytes = m->SerializeAsString();
}

}  // namespace

std::string EncodeRpcInput(const RpcRequest& request) {
  const int index = FuzzedRpcMethodIndex(request.method);
  if (index < 0) return "";
  std::string out(1, static_cast<char>(index));
  for (size_t i = 0; i < request.messages.size(); ++i) {
    if (i > 0) out.append(kRpcMessageSeparator.data(), kRpcMessageSeparator.size());
    out += request.messages[i];
  }
  return out;
}

std::string ApplyBaseState(RpcFuzzServer& server) {
  for (const RpcRequest& r : BaseStateRequests()) {
    const RpcOutcome o = server.Call(FuzzedRpcMethodIndex(r.method), r.messages);
    // RESOURCE_EXHAUSTED: a fuzzed SetNamespaceQuota may have limited the
    // namespace that survived a drop; the base state is then partly there.
    if (!o.status.ok() && o.status.error_code() != grpc::StatusCode::ALREADY_EXISTS &&
        o.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return absl::StrCat("base state ", r.method, ": ", o.status.error_code(), " ",
                          o.status.error_message());
    }
  }
  return "";
}

SentRpc SendRpcInput(RpcFuzzServer& server, absl::string_view data) {
  const std::vector<RpcMethod>& methods = FuzzedRpcMethods();
  const size_t index = static_cast<uint8_t>(data[0]) % methods.size();
  const RpcMethod& method = methods[index];
  data.remove_prefix(1);

  std::vector<std::string> messages;
  if (method.descriptor->client_streaming()) {
    for (absl::string_view part : absl::StrSplit(data, kRpcMessageSeparator)) {
      if (messages.size() == kMaxRpcMessages) break;
      messages.emplace_back(part);
    }
  } else {
    messages.emplace_back(data);
  }
  bool all_parse = true;
  for (std::string& m : messages) {
    Sandbox(server, method, &m);
    all_parse = all_parse && Parse(method, m) != nullptr;
  }

  return {&method, all_parse, server.Call(index, messages)};
}

std::string CheckRpcInput(RpcFuzzServer& server, absl::string_view data) {
  if (data.empty()) return "";
  const SentRpc sent = SendRpcInput(server, data);
  const RpcMethod& method = *sent.method;
  const RpcOutcome& outcome = sent.outcome;
  const grpc::StatusCode code = outcome.status.error_code();
  if (code == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat(method.path, ": the call did not end within its deadline");
  }
  if (sent.well_formed && (code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN ||
                    code == grpc::StatusCode::DATA_LOSS)) {
    return absl::StrCat(method.path, " answered a well-formed request with code ", code, ": ",
                        outcome.status.error_message());
  }
  if (code == grpc::StatusCode::OK && absl::EndsWith(method.path, "/DropNamespace")) {
    return ApplyBaseState(server);
  }
  return "";
}

}  // namespace mnemo::fuzz

namespace {

// One server for the whole fuzzing process, replaced every kRestartEvery
// inputs so that the store does not grow without bound (and slow down).
constexpr int kRestartEvery = 5000;
std::unique_ptr<mnemo::fuzz::RpcFuzzServer>* g_server = nullptr;

void StartServer() {
  const char* tmp = std::getenv("TMPDIR");
  auto started = mnemo::fuzz::RpcFuzzServer::Start(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
  if (!started.ok()) {
    std::fprintf(stderr, "rpc_fuzz: %s\n", started.status().ToString().c_str());
    std::abort();
  }
  *g_server = std::move(started).value();
  if (std::string p = mnemo::fuzz::ApplyBaseState(**g_server); !p.empty()) {
    std::fprintf(stderr, "rpc_fuzz: %s\n", p.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_server = new std::unique_ptr<mnemo::fuzz::RpcFuzzServer>();
  StartServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int inputs = 0;
  if (++inputs % kRestartEvery == 0) {
    g_server->reset();
    StartServer();
  }
  const std::string problem = mnemo::fuzz::CheckRpcInput(
      **g_server, absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "rpc_fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
