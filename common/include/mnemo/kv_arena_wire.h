// The handshake on mnemod's KV arena socket (README "KV arena"), shared by
// mnemod (server/kv_arena_socket.h) and the SDK (client/kv_arena_client.h).
//
// A client connects to the Unix-domain stream socket and sends one
// KvArenaRequest followed by key_bytes bytes of its API key (the key its
// gRPC calls carry; none when it has none). mnemod checks the peer's
// credentials (SO_PEERCRED: the uid mnemod runs as, or root) and, with
// authentication on (mnemod --admin-key-file), the key (the rules of every
// gRPC call: a missing, unknown or revoked key is refused), then answers
// with one KvArenaHello. With authentication off mnemod does not wait for
// the request (it answers at once and ignores it).
//
// When status is kKvArenaOk, the hello carries, as SCM_RIGHTS ancillary
// data, one read-only descriptor of the arena (map it PROT_READ,
// MAP_SHARED, arena_bytes long). The session (its token, for
// GetKvRequest.arena_session and KvArenaRelease) belongs to the key of the
// request: only calls carrying that key may use it. It lives as long as
// the connection (closing it releases every lease it holds), or until the
// key is revoked (mnemod then releases its leases and closes the
// connection). After the request the client sends nothing more.
#ifndef MNEMO_KV_ARENA_WIRE_H_
#define MNEMO_KV_ARENA_WIRE_H_

#include <cstdint>

namespace mnemo {

inline constexpr char kKvArenaMagic[8] = {'M', 'N', 'K', 'V', 'A', 'R', 'N', '1'};
inline constexpr char kKvArenaRequestMagic[8] = {'M', 'N', 'K', 'V', 'R', 'E', 'Q', '1'};
inline constexpr uint32_t kKvArenaOk = 0;
inline constexpr uint32_t kKvArenaPeerRefused = 1;      // another uid, not root
inline constexpr uint32_t kKvArenaUnauthenticated = 2;  // no key, or unknown or revoked
inline constexpr uint32_t kKvArenaBadRequest = 3;       // a malformed or late request
inline constexpr uint32_t kKvArenaRateLimited = 4;      // the key is over its request rate

// The longest key a request may carry.
inline constexpr uint32_t kKvArenaMaxKeyBytes = 4096;
// How long mnemod waits for a whole request after accepting a connection.
inline constexpr int kKvArenaRequestTimeoutMs = 5000;

struct KvArenaRequest {
  char magic[8];
  uint32_t key_bytes;  // the key's bytes follow this header
  uint32_t reserved;
};

struct KvArenaHello {
  char magic[8];
  uint32_t status;
  uint32_t reserved;
  uint64_t arena_bytes;
  unsigned char arena_id[16];
  unsigned char session_token[16];
};

}  // namespace mnemo

#endif  // MNEMO_KV_ARENA_WIRE_H_
