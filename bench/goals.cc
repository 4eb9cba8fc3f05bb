// Issue 11's goal lines.
#include "bench/goals.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace mnemo::bench {
namespace {

const IngestResult* FindIngest(const CaseResult& c, const std::string& backend) {
  for (const auto& in : c.ingests) {
    if (in.backend == backend && in.error.empty()) return &in;
  }
  return nullptr;
}

const ModeResult* FindMode(const CaseResult& c, const std::string& mode, int ef, size_t batch = 0) {
  for (const auto& m : c.modes) {
    if (m.mode == mode && m.ef == ef && m.error.empty() && (batch == 0 || m.batch == batch) &&
        m.clients == 1) {
      return &m;
    }
  }
  return nullptr;
}

std::string Fmt(double v) { return absl::StrFormat("%.4g", v); }

// A target as written in the issue: 1.0, 0.8, 0.95.
std::string FormatTarget(double v) {
  const std::string one = absl::StrFormat("%.1f", v);
  return std::stod(one) == v ? one : absl::StrFormat("%.2f", v);
}

}  // namespace

std::vector<Goal> ComputeGoals(const std::vector<CaseResult>& cases,
                               std::vector<std::string>* skipped) {
  std::vector<std::string> datasets;
  for (const auto& c : cases) {
    if (std::find(datasets.begin(), datasets.end(), c.dataset) == datasets.end()) {
      datasets.push_back(c.dataset);
    }
  }
  std::vector<Goal> goals;
  for (const std::string& dataset : datasets) {
    const std::string key = DatasetKey(dataset);
    const CaseResult* graph = nullptr;
    const CaseResult* flat = nullptr;
    for (const auto& c : cases) {
      if (c.dataset != dataset) continue;
      if (c.graph && graph == nullptr) graph = &c;
      if (!c.graph && c.index == "Flat" && flat == nullptr) flat = &c;
    }

    // Served batched search vs hnswlib at equal recall.
    int served_clients = 0;
    if (graph != nullptr) {
      for (const auto& m : graph->modes) {
        if (m.mode == "grpc" && m.error.empty())
          served_clients = std::max(served_clients, m.clients);
      }
    }
    for (double recall : {0.90, 0.95}) {
      const std::string name = absl::StrFormat("served_vs_hnswlib_at_%.2f_%s", recall, key);
      if (graph == nullptr || served_clients == 0 || FindIngest(*graph, "hnswlib") == nullptr) {
        skipped->push_back(absl::StrCat(name, ": needs the HNSW case with grpc and hnswlib"));
        continue;
      }
      Goal g{name, 0, 1.0, ""};
      std::string served_how;
      std::string peer_how;
      const auto served = QpsAtRecall(Curve(*graph, "grpc", served_clients), recall, &served_how);
      const auto peer = QpsAtRecall(Curve(*graph, "hnswlib", 1), recall, &peer_how);
      if (served && peer && *peer > 0) {
        g.measured = *served / *peer;
        g.note = absl::StrFormat("at recall@10 %.2f: ", recall);
        absl::StrAppend(&g.note, "grpc x", served_clients, " ", Fmt(*served), " q/s, ", served_how,
                        " / hnswlib ", Fmt(*peer), " q/s, ", peer_how);
      } else {
        std::vector<std::string> missing;
        if (!served) missing.push_back(absl::StrCat("grpc x", served_clients));
        if (!peer) missing.push_back("hnswlib");
        g.note = absl::StrCat(absl::StrJoin(missing, " and "), " never reached recall@10 ",
                              absl::StrFormat("%.2f", recall), " in the sweep: measured 0");
      }
      goals.push_back(g);
    }

    // Build rate: mnemo upsert ingest vs hnswlib's parallel build.
    {
      const std::string name = absl::StrCat("build_vs_hnswlib_", key);
      const IngestResult* peer = graph ? FindIngest(*graph, "hnswlib") : nullptr;
      const IngestResult* mnemo = nullptr;
      if (graph != nullptr) {
        const IngestResult* grpc = FindIngest(*graph, "grpc");
        mnemo = grpc != nullptr && !grpc->stats.reused ? grpc : FindIngest(*graph, "mnemo-store");
      }
      if (peer == nullptr || mnemo == nullptr || peer->stats.load_seconds <= 0 ||
          mnemo->stats.load_seconds <= 0) {
        skipped->push_back(
            absl::StrCat(name, ": needs the HNSW case with hnswlib and a mnemo ingest"));
      } else {
        const double n = static_cast<double>(graph->num_base);
        const double mnemo_rate = n / mnemo->stats.load_seconds;
        const double peer_rate = n / peer->stats.load_seconds;
        std::string note =
            absl::StrCat(mnemo->backend, " upsert ", Fmt(mnemo_rate), " vectors/s (",
                         mnemo->stats.factory, ") / hnswlib ", Fmt(peer_rate), " vectors/s");
        const std::string same_params = MnemoGraphFactory(graph->hnsw_m, graph->ef_construction);
        if (mnemo->stats.factory != same_params) {
          absl::StrAppend(&note, "; NOT at the same graph parameters: the engine did not take ",
                          same_params);
        }
        goals.push_back({name, mnemo_rate / peer_rate, 0.8, note});
      }
    }

    // Recall at the engine's default ef.
    {
      const std::string name = absl::StrCat("recall_at_default_ef_", key);
      const ModeResult* m = graph ? FindMode(*graph, "mnemo-store", 0) : nullptr;
      if (m == nullptr && graph != nullptr) m = FindMode(*graph, "grpc", 0);
      if (m == nullptr) {
        skipped->push_back(absl::StrCat(name, ": needs the HNSW case with a mnemo engine"));
      } else {
        goals.push_back({name, m->recall, 0.95,
                         absl::StrCat(m->mode, " with no ef passed, ", Fmt(m->qps), " q/s")});
      }
    }

    // Exact search vs sgemm + top-k.
    {
      const std::string name = absl::StrCat("flat_vs_sgemm_", key);
      const ModeResult* sgemm = nullptr;
      const ModeResult* mnemo = nullptr;
      if (flat != nullptr) {
        // The batched modes: the largest batch run.
        size_t batch = 0;
        for (const auto& m : flat->modes) batch = std::max(batch, m.batch);
        sgemm = FindMode(*flat, "sgemm", 0, batch);
        mnemo = FindMode(*flat, "mnemo-store", 0, batch);
      }
      if (sgemm == nullptr || mnemo == nullptr || sgemm->qps <= 0) {
        skipped->push_back(absl::StrCat(name, ": needs the Flat case with sgemm and mnemo-store"));
      } else {
        goals.push_back({name, mnemo->qps / sgemm->qps, 1.0,
                         absl::StrCat("mnemo-store ", Fmt(mnemo->qps), " q/s / sgemm + top-k ",
                                      Fmt(sgemm->qps), " q/s, batch ", mnemo->batch)});
      }
    }
  }
  return goals;
}

void PrintGoals(const std::vector<Goal>& goals, const std::vector<std::string>& skipped) {
  std::printf(
      "\n# goals (issue 11): goal <name> <measured> <target>; holds when measured >= "
      "target\n");
  for (const Goal& g : goals) std::printf("#   %s: %s\n", g.name.c_str(), g.note.c_str());
  for (const std::string& s : skipped) std::printf("#   not measured: %s\n", s.c_str());
  for (const Goal& g : goals) {
    std::printf("goal %s %.3f %s\n", g.name.c_str(), g.measured, FormatTarget(g.target).c_str());
  }
  std::fflush(stdout);
}

nlohmann::json GoalsJson(const std::vector<Goal>& goals) {
  nlohmann::json j = nlohmann::json::array();
  for (const Goal& g : goals) {
    j.push_back({{"name", g.name},
                 {"measured", g.measured},
                 {"target", g.target},
                 {"holds", g.measured >= g.target},
                 {"note", g.note}});
  }
  return j;
}

}  // namespace mnemo::bench
