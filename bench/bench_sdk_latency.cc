// Search latency through the C++ SDK, the baseline of the Python client's
// benchmark (bench/bench_python_client.py runs both against one mnemod):
// reads queries from JSON Lines (the "vector" field, as the upsert format
// has it; with --memory-agent the "text" field), sends them one Search (or
// MemorySearch in the scope --memory-agent / --memory-users) each, and
// prints per-call latency percentiles as one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/percentile.h"
#include "bench_must.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"

namespace {

using mnemo::bench::Percentile;

// The `field` of each line of `path` (at most `limit`).
template <typename T>
std::vector<T> ReadField(const std::string& path, const char* field, int limit) {
  std::ifstream in(path);
  if (!in) mnemo::bench::Die("open " + path, absl::NotFoundError("cannot open"));
  std::vector<T> out;
  std::string line;
  while (std::getline(in, line) && static_cast<int>(out.size()) < limit) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (!j.contains(field)) continue;
    out.push_back(j[field].get<T>());
  }
  if (out.empty()) mnemo::bench::Die(path, absl::InvalidArgumentError(std::string("no ") + field));
  return out;
}

// Per-call microseconds of `call(i)` over `n` queries, `rounds` times,
// after `warmup` untimed calls.
template <typename Call>
std::vector<double> Time(size_t n, int rounds, int warmup, Call call) {
  for (int i = 0; i < warmup; ++i) call(i % n);
  std::vector<double> us;
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      call(i);
      const auto t1 = std::chrono::steady_clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"C++ SDK search latency (baseline of bench/bench_python_client.py)"};
  std::string server, ns, queries_path, filter, memory_agent;
  int k = 10, limit = 1000, rounds = 3, warmup = 50, memory_users = 0;
  app.add_option("--server", server, "mnemod address")->required();
  app.add_option("--ns", ns, "namespace")->required();
  app.add_option("--queries", queries_path, "JSON Lines with a \"vector\" (or \"text\") field")
      ->required();
  app.add_option("--k", k, "hits per query");
  app.add_option("--limit", limit, "queries read");
  app.add_option("--rounds", rounds, "passes over the queries");
  app.add_option("--warmup", warmup, "untimed calls first");
  app.add_option("--filter", filter, "metadata filter (JSON syntax)");
  app.add_option("--memory-agent", memory_agent,
                 "MemorySearch of the texts in this agent's scope instead of Search");
  app.add_option("--memory-users", memory_users,
                 "with --memory-agent: query i also scoped to user<i mod N>");
  CLI11_PARSE(app, argc, argv);

  auto client = mnemo::bench::Must(mnemo::Client::Connect(server), "connect");
  std::vector<double> us;
  if (!memory_agent.empty()) {
    const auto texts = ReadField<std::string>(queries_path, "text", limit);
    mnemo::MemorySearchRequest req;
    req.ns = ns;
    req.top_k = k;
    req.filter_json = filter;
    req.scope.agent_id = memory_agent;
    us = Time(texts.size(), rounds, warmup, [&](size_t i) {
      req.query = texts[i];
      if (memory_users > 0) req.scope.user_id = "user" + std::to_string(i % memory_users);
      auto hits = mnemo::bench::Must(client->MemorySearch(req), "memory search");
      if (hits.empty()) mnemo::bench::Die("memory search", absl::InternalError("empty result"));
    });
  } else {
    const auto vectors = ReadField<std::vector<float>>(queries_path, "vector", limit);
    mnemo::SearchRequest req;
    req.ns = ns;
    req.k = k;
    req.dim = static_cast<uint32_t>(vectors[0].size());
    req.filter_json = filter;
    us = Time(vectors.size(), rounds, warmup, [&](size_t i) {
      req.queries = vectors[i];
      auto hits = mnemo::bench::Must(client->Search(req), "search");
      if (hits.size() != 1 || hits[0].empty()) {
        mnemo::bench::Die("search", absl::InternalError("empty result"));
      }
    });
  }
  nlohmann::json out = {{"calls", us.size()},
                        {"p50_us", Percentile(us, 0.50)},
                        {"p99_us", Percentile(us, 0.99)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
