// The handshake on mnemod's KV arena socket (README "KV arena"), shared by
// mnemod (server/kv_arena_socket.h) and the SDK (client/kv_arena_client.h).
//
// A client connects to the Unix-domain stream socket; mnemod checks the
// peer's credentials (SO_PEERCRED: the uid mnemod runs as, or root) and
// answers with one KvArenaHello. When status is kKvArenaOk, the message
// carries, as SCM_RIGHTS ancillary data, one read-only descriptor of the
// arena (map it PROT_READ, MAP_SHARED, arena_bytes long). The session (its
// token, for GetKvRequest.arena_session and KvArenaRelease) lives as long as
// the connection: closing it releases every lease it holds. The client
// sends nothing on the socket.
#ifndef MNEMO_KV_ARENA_WIRE_H_
#define MNEMO_KV_ARENA_WIRE_H_

#include <cstdint>

namespace mnemo {

inline constexpr char kKvArenaMagic[8] = {'M', 'N', 'K', 'V', 'A', 'R', 'N', '1'};
inline constexpr uint32_t kKvArenaOk = 0;
inline constexpr uint32_t kKvArenaPeerRefused = 1;  // another uid, not root

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
