// The Unix-domain socket that hands mnemod's KV arena to same-host clients
// (handshake: mnemo/kv_arena_wire.h). One thread accepts connections,
// checks each peer's uid (SO_PEERCRED: mnemod's own uid, or root), sends
// the hello with a read-only arena descriptor and a new session token, and
// closes the session (releasing its leases) when the connection closes.
#ifndef MNEMO_SERVER_KV_ARENA_SOCKET_H_
#define MNEMO_SERVER_KV_ARENA_SOCKET_H_

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/kv_arena.h"

namespace mnemo::server {

class KvArenaSocket {
 public:
  // Binds `path` (a stale socket file there is replaced; mode 0600) and
  // starts serving. Borrows `arena`, which must outlive this object.
  static absl::StatusOr<std::unique_ptr<KvArenaSocket>> Start(const std::string& path,
                                                             KvArena* arena);
  // Stops the thread, closes every session and removes the socket file.
  ~KvArenaSocket();
  KvArenaSocket(const KvArenaSocket&) = delete;
  KvArenaSocket& operator=(const KvArenaSocket&) = delete;

  const std::string& path() const { return path_; }

 private:
  KvArenaSocket(std::string path, KvArena* arena, int listen_fd, int stop_fd)
      : path_(std::move(path)), arena_(arena), listen_fd_(listen_fd), stop_fd_(stop_fd) {}
  void Serve();
  void Accept();

  const std::string path_;
  KvArena* const arena_;
  const int listen_fd_;
  const int stop_fd_;  // an eventfd that ends Serve()
  std::thread thread_;
  struct Peer {
    int fd;
    std::string token;
  };
  std::vector<Peer> peers_;  // the serving thread's
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_ARENA_SOCKET_H_
