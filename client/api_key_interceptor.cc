// ApiKeyInterceptors (client/api_key_interceptor.h).
#include "client/api_key_interceptor.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace mnemo::client_internal {
namespace {

class ApiKeyInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ApiKeyInterceptor(const std::string* header) : header_(header) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* const header_;  // the factory's, which the channel keeps
};

class ApiKeyInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ApiKeyInterceptorFactory(std::string header) : header_(std::move(header)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new ApiKeyInterceptor(&header_);  // gRPC owns it
  }

 private:
  const std::string header_;
};

}  // namespace

absl::Status ValidateApiKey(absl::string_view key) {
  for (char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "api_key holds a character outside printable ASCII (a newline from a file?)");
    }
  }
  return absl::OkStatus();
}

std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ApiKeyInterceptors(const std::string& key) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> out;
  if (!key.empty()) {
    out.push_back(std::make_unique<ApiKeyInterceptorFactory>(absl::StrCat("Bearer ", key)));
  }
  return out;
}

}  // namespace mnemo::client_internal
