// Conversation logs in the C++ SDK (the MnemoMemory service's conversation
// calls, mnemo.v1): the types of the Client::Convo* calls (client.h). Per
// (namespace, run) the messages of an agent run in time order, each with a
// role ("user", "assistant", "system", "tool"), its content, a time (the
// server's when not given) and JSON metadata; searched by text within a
// time range and paged through with page tokens.
#ifndef MNEMO_CLIENT_CONVO_H_
#define MNEMO_CLIENT_CONVO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

struct ConvoMessage {
  std::string id;  // "msg_...", made by the server; ids sort in append order
  std::string run_id;
  std::string role;
  std::string content;
  int64_t time_ms = 0;        // Unix ms
  std::string metadata_json;  // a JSON object
};

struct ConvoMessageInput {
  std::string role;     // user | assistant | system | tool
  std::string content;  // non-blank
  std::optional<int64_t> time_ms;  // unset: the server's time
  std::string metadata_json;       // a JSON object or empty
};

// Which messages a search or list reads; the time range is inclusive.
struct ConvoSelection {
  std::string run_id;  // required by ConvoList; "" = every run (ConvoSearch)
  std::string role;    // "" = every role
  std::optional<int64_t> since_ms;
  std::optional<int64_t> until_ms;
};

struct ConvoSearchRequest {
  std::string ns;
  ConvoSelection selection;
  std::string query;
  int top_k = 10;
};

struct ConvoHit {
  ConvoMessage message;
  float score = 0;       // fused dense + BM25 relevance in [0, 1]
  float similarity = 0;  // cosine similarity to the query
};

struct ConvoListRequest {
  std::string ns;
  ConvoSelection selection;
  uint32_t page_size = 100;  // 1..1000
  std::string page_token;    // from the previous page of the same selection
};

struct ConvoPage {
  std::vector<ConvoMessage> messages;  // time order
  std::string next_page_token;         // empty on the last page
};

}  // namespace mnemo

#endif  // MNEMO_CLIENT_CONVO_H_
