// The KV arena's Unix-domain socket (server/kv_arena_socket.h).
#include "server/kv_arena_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "mnemo/kv_arena_wire.h"
#include "server/logging.h"

namespace mnemo::server {
namespace {

using Clock = std::chrono::steady_clock;

// Sends `hello`, with `fd` attached when it is >= 0.
bool SendMessage(int sock, const KvArenaHello& hello, int fd) {
  iovec iov{const_cast<KvArenaHello*>(&hello), sizeof(hello)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(sizeof(hello));
}

// The bytes a request still needs: its header, then its key. 0 once whole;
// -1 when the header is malformed.
int64_t Missing(const std::string& request) {
  if (request.size() < sizeof(KvArenaRequest)) {
    return static_cast<int64_t>(sizeof(KvArenaRequest) - request.size());
  }
  KvArenaRequest header;
  std::memcpy(&header, request.data(), sizeof(header));
  if (std::memcmp(header.magic, kKvArenaRequestMagic, sizeof(header.magic)) != 0 ||
      header.key_bytes > kKvArenaMaxKeyBytes) {
    return -1;
  }
  return static_cast<int64_t>(sizeof(header) + header.key_bytes) -
         static_cast<int64_t>(request.size());
}

void Wake(int eventfd) {
  const uint64_t one = 1;
  if (write(eventfd, &one, sizeof(one)) != sizeof(one)) {
    LogEvent(spdlog::level::err, "cannot wake the KV arena socket thread",
             {{"error", std::string(std::strerror(errno))}});
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvArenaSocket>> KvArenaSocket::Start(const std::string& path,
                                                                   KvArena* arena,
                                                                   Authorizer* auth) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV arena socket path must hold 1..", sizeof(addr.sun_path) - 1, " bytes: '", path, "'"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  const mode_t old_mask = umask(0177);
  const int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old_mask);
  if (bound != 0 || listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot serve the KV arena socket '", path, "': ", std::strerror(err)));
  }
  const int stop = eventfd(0, EFD_CLOEXEC);
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0 || wake < 0) {
    const int err = errno;
    if (stop >= 0) close(stop);
    if (wake >= 0) close(wake);
    close(fd);
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(err)));
  }
  if (auth != nullptr && !auth->enabled()) auth = nullptr;
  std::unique_ptr<KvArenaSocket> s(new KvArenaSocket(path, arena, auth, fd, stop, wake));
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  if (auth != nullptr) {
    auth->SetRevocationListener([p = s.get()](const std::string& key_id) {
      p->CloseSessionsOf(key_id);
    });
  }
  return s;
}

KvArenaSocket::~KvArenaSocket() {
  if (auth_ != nullptr) auth_->SetRevocationListener(nullptr);  // waits for a call in progress
  Wake(stop_fd_);
  if (thread_.joinable()) thread_.join();
  for (const Peer& p : peers_) Drop(p);
  close(listen_fd_);
  close(stop_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void KvArenaSocket::CloseSessionsOf(const std::string& key_id) {
  const size_t closed = arena_->CloseSessionsOf(key_id);
  if (closed == 0) return;
  LogEvent(spdlog::level::info, "KV arena sessions of a revoked key closed",
           {{"key_id", key_id}, {"sessions", static_cast<int64_t>(closed)}});
  Wake(wake_fd_);
}

void KvArenaSocket::Drop(const Peer& peer) {
  if (!peer.token.empty()) arena_->CloseSession(peer.token);
  close(peer.fd);
}

bool KvArenaSocket::SendHello(int fd, uint32_t status, const std::string& token) {
  KvArenaHello hello{};
  std::memcpy(hello.magic, kKvArenaMagic, sizeof(hello.magic));
  hello.status = status;
  hello.arena_bytes = arena_->size();
  std::memcpy(hello.arena_id, arena_->id().data(), sizeof(hello.arena_id));
  if (status != kKvArenaOk) return SendMessage(fd, hello, -1);
  std::memcpy(hello.session_token, token.data(), sizeof(hello.session_token));
  return SendMessage(fd, hello, arena_->read_only_fd());
}

void KvArenaSocket::Accept() {
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  ucred cred{};
  socklen_t len = sizeof(cred);
  const bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                     (cred.uid == geteuid() || cred.uid == 0);
  if (!known) {
    SendHello(fd, kKvArenaPeerRefused, "");
    close(fd);
    LogEvent(spdlog::level::warn, "KV arena socket refused a peer of another uid",
             {{"uid", static_cast<int64_t>(cred.uid)}, {"pid", static_cast<int64_t>(cred.pid)}});
    return;
  }
  Peer peer;
  peer.fd = fd;
  if (auth_ != nullptr) {
    // The hello waits for the request's key.
    peer.deadline = Clock::now() + std::chrono::milliseconds(kKvArenaRequestTimeoutMs);
    peers_.push_back(std::move(peer));
    return;
  }
  // Authentication off: answered at once, the request (if any) ignored.
  peer.token = arena_->OpenSession();
  if (!SendHello(fd, kKvArenaOk, peer.token)) {
    Drop(peer);
    return;
  }
  peers_.push_back(std::move(peer));
}

bool KvArenaSocket::Receive(Peer& peer) {
  char buffer[512];
  while (true) {
    size_t want = sizeof(buffer);
    if (peer.token.empty()) {
      const int64_t missing = Missing(peer.request);
      if (missing <= 0) break;
      want = std::min<size_t>(want, static_cast<size_t>(missing));
    }
    const ssize_t n = recv(peer.fd, buffer, want, MSG_DONTWAIT);
    if (n == 0) return false;  // closed
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    // Once the session is open, whatever comes is ignored.
    if (peer.token.empty()) peer.request.append(buffer, static_cast<size_t>(n));
  }
  return Answer(peer);
}

bool KvArenaSocket::Answer(Peer& peer) {
  if (Missing(peer.request) < 0) {
    SendHello(peer.fd, kKvArenaBadRequest, "");
    LogEvent(spdlog::level::warn, "KV arena socket got a malformed request", {});
    return false;
  }
  const absl::string_view key = absl::string_view(peer.request).substr(sizeof(KvArenaRequest));
  absl::StatusOr<Caller> caller = auth_->AuthenticateKey(key);
  if (caller.ok()) {
    peer.token = arena_->OpenSession(caller->key_id);
    // A key revoked since it was verified: its revocation may have closed
    // its sessions before this one opened.
    if (caller->key_id != kAdminKeyId && !auth_->keys()->Find(caller->key_id).has_value()) {
      arena_->CloseSession(peer.token);
      peer.token.clear();
      caller = absl::UnauthenticatedError("unknown or revoked API key");
    }
  }
  if (!caller.ok()) {
    SendHello(peer.fd, absl::IsResourceExhausted(caller.status()) ? kKvArenaRateLimited
                                                                  : kKvArenaUnauthenticated,
              "");
    LogEvent(spdlog::level::warn, "KV arena socket refused a key",
             {{"error", std::string(caller.status().message())}});
    return false;
  }
  peer.request.clear();
  if (!SendHello(peer.fd, kKvArenaOk, peer.token)) return false;
  return true;
}

void KvArenaSocket::Serve() {
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    int timeout_ms = -1;
    const Clock::time_point now = Clock::now();
    for (const Peer& p : peers_) {
      fds.push_back({p.fd, POLLIN | POLLRDHUP, 0});
      if (p.token.empty()) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(p.deadline - now).count();
        const int ms = static_cast<int>(std::max<int64_t>(0, left));
        timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
      }
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      LogEvent(spdlog::level::err, "KV arena socket poll failed",
               {{"error", std::string(std::strerror(errno))}});
      return;
    }
    if (fds[0].revents != 0) return;
    bool woken = false;
    if (fds[1].revents & POLLIN) {
      uint64_t count = 0;
      woken = read(wake_fd_, &count, sizeof(count)) == sizeof(count);
    }
    std::vector<Peer> open;
    for (size_t i = 0; i < peers_.size(); ++i) {
      Peer& p = peers_[i];
      const short events = fds[i + 3].revents;
      bool keep = true;
      if (events & (POLLERR | POLLHUP | POLLNVAL)) {
        keep = false;
      } else if (events & (POLLIN | POLLRDHUP)) {
        keep = Receive(p);
      }
      if (keep && p.token.empty() && Clock::now() >= p.deadline) {
        SendHello(p.fd, kKvArenaBadRequest, "");  // no whole request in time
        keep = false;
      }
      // A session closed by its key's revocation.
      if (keep && woken && !p.token.empty() && !arena_->HasSession(p.token)) keep = false;
      if (keep) {
        open.push_back(std::move(p));
      } else {
        Drop(p);
      }
    }
    peers_.swap(open);
    if (fds[2].revents & POLLIN) Accept();
  }
}

}  // namespace mnemo::server
