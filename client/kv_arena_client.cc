// The SDK's KV arena session and its reader (client/kv_arena_client.h).
#include "client/kv_arena_client.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/convert.h"
#include "common/status_macros.h"
#include "mnemo/kv_arena_wire.h"

namespace mnemo::client_internal {
namespace {

// A lease of a session: keeps the mapping alive; dropping it queues the
// release with the session (when it still exists).
class LeaseImpl final : public KvArenaLease {
 public:
  LeaseImpl(const v1::KvArenaLease& lease, std::shared_ptr<const KvArenaMapping> mapping,
            std::function<void(uint64_t)> release)
      : mapping_(std::move(mapping)), release_(std::move(release)) {
    id = lease.id();
    k_offset = lease.k_offset();
    v_offset = lease.v_offset();
    bytes = lease.bytes();
  }
  ~LeaseImpl() override { release_(id); }

 private:
  std::shared_ptr<const KvArenaMapping> mapping_;
  std::function<void(uint64_t)> release_;
};

// Sends the request: its header, then the key.
absl::Status SendRequest(int sock, const std::string& api_key) {
  if (api_key.size() > kKvArenaMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("an API key of ", api_key.size(),
                                                   " bytes is longer than the KV arena takes (",
                                                   kKvArenaMaxKeyBytes, ")"));
  }
  KvArenaRequest header{};
  std::memcpy(header.magic, kKvArenaRequestMagic, sizeof(header.magic));
  header.key_bytes = static_cast<uint32_t>(api_key.size());
  std::string request(reinterpret_cast<const char*>(&header), sizeof(header));
  request += api_key;
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(sock, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // mnemod may have answered and closed already (a refused uid): its
    // hello says why.
    if (n <= 0) return absl::OkStatus();
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Receives the hello and the descriptor it carries (-1 when none).
absl::Status ReceiveHello(int sock, KvArenaHello* hello, int* fd) {
  *fd = -1;
  iovec iov{hello, sizeof(*hello)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
  }
  if (n != static_cast<ssize_t>(sizeof(*hello)) ||
      std::memcmp(hello->magic, kKvArenaMagic, sizeof(kKvArenaMagic)) != 0) {
    if (*fd >= 0) close(*fd);
    return absl::UnavailableError("the KV arena socket sent no valid hello");
  }
  return absl::OkStatus();
}

}  // namespace

KvArenaMapping::~KvArenaMapping() {
  munmap(const_cast<char*>(data_), size_);
}

absl::StatusOr<std::shared_ptr<KvArenaSession>> KvArenaSession::Connect(
    const std::string& socket_path, const std::string& arena_id, const std::string& api_key) {
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::UnavailableError(absl::StrCat("no usable KV arena socket '", socket_path, "'"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  if (connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(sock);
    return absl::UnavailableError(absl::StrCat("cannot connect to the KV arena socket '",
                                               socket_path, "': ", std::strerror(err)));
  }
  if (absl::Status s = SendRequest(sock, api_key); !s.ok()) {
    close(sock);
    return s;
  }
  KvArenaHello hello{};
  int fd = -1;
  if (absl::Status s = ReceiveHello(sock, &hello, &fd); !s.ok()) {
    close(sock);
    return s;
  }
  auto fail = [&](absl::Status status) {
    if (fd >= 0) close(fd);
    close(sock);
    return status;
  };
  if (hello.status == kKvArenaPeerRefused) {
    return fail(absl::PermissionDeniedError("mnemod refused this process's uid on its KV arena"));
  }
  if (hello.status == kKvArenaUnauthenticated) {
    return fail(absl::UnauthenticatedError(
        "mnemod refused the API key on its KV arena socket (missing, unknown or revoked; "
        "ClientOptions::api_key)"));
  }
  if (hello.status == kKvArenaRateLimited) {
    return fail(absl::ResourceExhaustedError(
        "mnemod refused the KV arena session: the API key is over its request rate"));
  }
  if (hello.status != kKvArenaOk || fd < 0) {
    return fail(absl::UnavailableError("the KV arena socket handed over no arena"));
  }
  if (std::string(reinterpret_cast<const char*>(hello.arena_id), sizeof(hello.arena_id)) !=
      arena_id) {
    return fail(absl::FailedPreconditionError(
        "the KV arena socket belongs to another mnemod than this Client's"));
  }
  void* p = mmap(nullptr, hello.arena_bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    return fail(absl::UnavailableError(
        absl::StrCat("cannot map the KV arena: ", std::strerror(errno))));
  }
  close(fd);
  auto mapping = std::make_shared<const KvArenaMapping>(static_cast<const char*>(p),
                                                        hello.arena_bytes);
  std::string token(reinterpret_cast<const char*>(hello.session_token),
                    sizeof(hello.session_token));
  return std::shared_ptr<KvArenaSession>(
      new KvArenaSession(sock, std::move(token), std::move(mapping)));
}

KvArenaSession::~KvArenaSession() { close(fd_); }

bool KvArenaSession::Alive() const {
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) == 0;  // mnemod never writes after the hello
}

std::shared_ptr<const KvArenaLease> KvArenaSession::Adopt(const v1::KvArenaLease& lease) {
  std::weak_ptr<KvArenaSession> self = weak_from_this();
  return std::make_shared<const LeaseImpl>(lease, mapping_, [self](uint64_t id) {
    if (std::shared_ptr<KvArenaSession> s = self.lock()) s->QueueRelease(id);
  });
}

void KvArenaSession::QueueRelease(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  released_.push_back(id);
}

std::vector<uint64_t> KvArenaSession::TakeReleases() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  out.swap(released_);
  return out;
}

absl::StatusOr<std::shared_ptr<KvArenaSession>> KvArenaClient::Session(
    v1::MnemoKv::Stub* stub, std::chrono::system_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (session_ != nullptr && !session_->Alive()) session_.reset();  // mnemod restarted
  if (session_ == nullptr) {
    if (std::chrono::steady_clock::now() < retry_after_) return nullptr;
    v1::KvArenaInfoResponse info;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status rpc = stub->KvArenaInfo(&ctx, v1::KvArenaInfoRequest(), &info);
    if (rpc.error_code() == grpc::StatusCode::UNIMPLEMENTED) info.Clear();  // an older mnemod
    else if (!rpc.ok()) return FromGrpc(rpc);
    absl::StatusOr<std::shared_ptr<KvArenaSession>> made =
        info.socket_path().empty() ? absl::UnavailableError("mnemod runs without a KV arena")
                                   : KvArenaSession::Connect(info.socket_path(), info.arena_id(),
                                                             api_key_);
    if (absl::IsUnauthenticated(made.status()) || absl::IsResourceExhausted(made.status())) {
      return made.status();  // the key's problem: gRPC reads would be refused alike
    }
    if (!made.ok()) {
      // Not on this host (or not for this uid): read over gRPC, ask again later.
      retry_after_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      return nullptr;
    }
    session_ = *std::move(made);
  }
  std::vector<uint64_t> released = session_->TakeReleases();
  if (!released.empty()) {
    v1::KvArenaReleaseRequest request;
    request.set_arena_session(session_->token());
    request.mutable_lease_ids()->Assign(released.begin(), released.end());
    v1::KvArenaReleaseResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    RETURN_IF_ERROR(FromGrpc(stub->KvArenaRelease(&ctx, request, &response)));
  }
  return session_;
}

}  // namespace mnemo::client_internal
