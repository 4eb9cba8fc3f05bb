// Search latency through the C++ SDK, the baseline of the Python client's
// benchmark (bench/bench_python_client.py runs both against one mnemod):
// reads query vectors (the "vector" field of JSON Lines, as the upsert
// format has it), sends them one Search each, and prints per-call latency
// percentiles as one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench_must.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"

namespace {

std::vector<std::vector<float>> ReadVectors(const std::string& path, int limit) {
  std::ifstream in(path);
  if (!in) mnemo::bench::Die("open " + path, absl::NotFoundError("cannot open"));
  std::vector<std::vector<float>> out;
  std::string line;
  while (std::getline(in, line) && static_cast<int>(out.size()) < limit) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (!j.contains("vector")) continue;
    out.push_back(j["vector"].get<std::vector<float>>());
  }
  if (out.empty()) mnemo::bench::Die(path, absl::InvalidArgumentError("no vectors"));
  return out;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"C++ SDK search latency (baseline of bench/bench_python_client.py)"};
  std::string server, ns, queries_path, filter;
  int k = 10, limit = 1000, rounds = 3, warmup = 50;
  app.add_option("--server", server, "mnemod address")->required();
  app.add_option("--ns", ns, "namespace")->required();
  app.add_option("--queries", queries_path, "JSON Lines with a \"vector\" field")->required();
  app.add_option("--k", k, "hits per query");
  app.add_option("--limit", limit, "queries read");
  app.add_option("--rounds", rounds, "passes over the queries");
  app.add_option("--warmup", warmup, "untimed calls first");
  app.add_option("--filter", filter, "metadata filter (JSON syntax)");
  CLI11_PARSE(app, argc, argv);

  const auto vectors = ReadVectors(queries_path, limit);
  auto client = mnemo::bench::Must(mnemo::Client::Connect(server), "connect");
  mnemo::SearchRequest req;
  req.ns = ns;
  req.k = k;
  req.dim = static_cast<uint32_t>(vectors[0].size());
  req.filter_json = filter;
  for (int i = 0; i < warmup; ++i) {
    req.queries = vectors[i % vectors.size()];
    mnemo::bench::Must(client->Search(req), "search");
  }
  std::vector<double> us;
  for (int r = 0; r < rounds; ++r) {
    for (const auto& v : vectors) {
      req.queries = v;
      const auto t0 = std::chrono::steady_clock::now();
      auto hits = mnemo::bench::Must(client->Search(req), "search");
      const auto t1 = std::chrono::steady_clock::now();
      if (hits.size() != 1 || hits[0].empty()) mnemo::bench::Die("search", absl::InternalError("empty result"));
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  nlohmann::json out = {{"calls", us.size()},
                        {"p50_us", Percentile(us, 0.50)},
                        {"p99_us", Percentile(us, 0.99)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
