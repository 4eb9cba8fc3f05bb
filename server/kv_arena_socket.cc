// The KV arena's Unix-domain socket (server/kv_arena_socket.h).
#include "server/kv_arena_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "mnemo/kv_arena_wire.h"
#include "server/logging.h"

namespace mnemo::server {
namespace {

// Sends the hello, with `fd` attached when it is >= 0.
bool SendHello(int sock, const KvArenaHello& hello, int fd) {
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
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(hello));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvArenaSocket>> KvArenaSocket::Start(const std::string& path,
                                                                   KvArena* arena) {
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
  if (stop < 0) {
    close(fd);
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  std::unique_ptr<KvArenaSocket> s(new KvArenaSocket(path, arena, fd, stop));
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  return s;
}

KvArenaSocket::~KvArenaSocket() {
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
    LogEvent(spdlog::level::err, "cannot stop the KV arena socket thread", {});
  }
  if (thread_.joinable()) thread_.join();
  for (const Peer& p : peers_) {
    arena_->CloseSession(p.token);
    close(p.fd);
  }
  close(listen_fd_);
  close(stop_fd_);
  unlink(path_.c_str());
}

void KvArenaSocket::Accept() {
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return;
  ucred cred{};
  socklen_t len = sizeof(cred);
  KvArenaHello hello{};
  std::memcpy(hello.magic, kKvArenaMagic, sizeof(hello.magic));
  hello.arena_bytes = arena_->size();
  std::memcpy(hello.arena_id, arena_->id().data(), sizeof(hello.arena_id));
  const bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                     (cred.uid == geteuid() || cred.uid == 0);
  if (!known) {
    hello.status = kKvArenaPeerRefused;
    SendHello(fd, hello, -1);
    close(fd);
    LogEvent(spdlog::level::warn, "KV arena socket refused a peer of another uid",
             {{"uid", static_cast<int64_t>(cred.uid)}, {"pid", static_cast<int64_t>(cred.pid)}});
    return;
  }
  const std::string token = arena_->OpenSession();
  hello.status = kKvArenaOk;
  std::memcpy(hello.session_token, token.data(), sizeof(hello.session_token));
  if (!SendHello(fd, hello, arena_->read_only_fd())) {
    arena_->CloseSession(token);
    close(fd);
    return;
  }
  peers_.push_back(Peer{fd, token});
}

void KvArenaSocket::Serve() {
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Peer& p : peers_) fds.push_back({p.fd, POLLIN | POLLRDHUP, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      LogEvent(spdlog::level::err, "KV arena socket poll failed",
               {{"error", std::string(std::strerror(errno))}});
      return;
    }
    if (fds[0].revents != 0) return;
    // Peers: any event is the end of the session (clients send nothing).
    std::vector<Peer> open;
    for (size_t i = 0; i < peers_.size(); ++i) {
      if (fds[i + 2].revents == 0) {
        open.push_back(peers_[i]);
        continue;
      }
      arena_->CloseSession(peers_[i].token);
      close(peers_[i].fd);
    }
    peers_.swap(open);
    if (fds[1].revents & POLLIN) Accept();
  }
}

}  // namespace mnemo::server
