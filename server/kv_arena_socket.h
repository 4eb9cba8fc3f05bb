// The Unix-domain socket that hands mnemod's KV arena to same-host clients
// (handshake: mnemo/kv_arena_wire.h). One thread accepts connections,
// checks each peer's uid (SO_PEERCRED: mnemod's own uid, or root) and, with
// authentication on, the API key of its request (server/authorizer.h: the
// rules of every call), sends the hello with a read-only arena descriptor
// and a new session token owned by that key, and closes the session
// (releasing its leases) when the connection closes or the key is revoked.
#ifndef MNEMO_SERVER_KV_ARENA_SOCKET_H_
#define MNEMO_SERVER_KV_ARENA_SOCKET_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/authorizer.h"
#include "server/kv_arena.h"

namespace mnemo::server {

class KvArenaSocket {
 public:
  // Binds `path` (a stale socket file there is replaced; mode 0600) and
  // starts serving. Borrows `arena` and `auth` (null: authentication off),
  // which must outlive this object; with authentication on, becomes its
  // revocation listener (a revoked key's sessions are closed).
  static absl::StatusOr<std::unique_ptr<KvArenaSocket>> Start(const std::string& path,
                                                             KvArena* arena,
                                                             Authorizer* auth = nullptr);
  // Stops the thread, closes every session and removes the socket file.
  ~KvArenaSocket();
  KvArenaSocket(const KvArenaSocket&) = delete;
  KvArenaSocket& operator=(const KvArenaSocket&) = delete;

  const std::string& path() const { return path_; }

  // Closes every session of `key_id` now (their leases released) and has
  // the serving thread close their connections. Thread-safe.
  void CloseSessionsOf(const std::string& key_id);

 private:
  struct Peer {
    int fd = -1;
    std::string token;    // empty while the request is awaited
    std::string request;  // its bytes so far
    std::chrono::steady_clock::time_point deadline;  // for the whole request
  };

  KvArenaSocket(std::string path, KvArena* arena, Authorizer* auth, int listen_fd, int stop_fd,
                int wake_fd)
      : path_(std::move(path)),
        arena_(arena),
        auth_(auth),
        listen_fd_(listen_fd),
        stop_fd_(stop_fd),
        wake_fd_(wake_fd) {}
  void Serve();
  void Accept();
  // Reads what `peer` sent; false when its connection is to be closed.
  bool Receive(Peer& peer);
  // The request of `peer` is whole: authenticates it and answers; false
  // when the connection is to be closed (refused).
  bool Answer(Peer& peer);
  // The hello of `status`; with a session `token` (and the arena's
  // descriptor) when status is kKvArenaOk.
  bool SendHello(int fd, uint32_t status, const std::string& token);
  void Drop(const Peer& peer);

  const std::string path_;
  KvArena* const arena_;
  Authorizer* const auth_;  // null: authentication off
  const int listen_fd_;
  const int stop_fd_;  // an eventfd that ends Serve()
  const int wake_fd_;  // an eventfd: sessions were closed (a key revoked)
  std::thread thread_;
  std::vector<Peer> peers_;  // the serving thread's
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_ARENA_SOCKET_H_
