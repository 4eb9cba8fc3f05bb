// mnemo-embed: the built-in sentence encoder (USE-lite) over a file of texts,
// writing their embeddings as a NumPy .npy file (float32, [n, 512], C order).
//
//   mnemo-embed --model .assets/use-lite --input texts.jsonl --output emb.npy
//
// Input: JSON Lines with a "text" string field per line (--format jsonl), or
// one text per line (--format lines); --format auto (the default) reads
// JSON Lines when the input's name ends in .jsonl, lines otherwise. "-" reads
// standard input. Texts are encoded in batches of --batch; progress goes to
// stderr. Used by scripts/train_inject to embed the training chunks and
// queries of the injection model.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "encoder/sentence_encoder.h"
#include "nlohmann/json.hpp"

namespace {

using mnemo::encoder::SentenceEncoder;

absl::StatusOr<std::vector<std::string>> ReadTexts(std::istream& in, bool jsonl,
                                                   const std::string& name) {
  std::vector<std::string> texts;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!jsonl) {
      texts.push_back(line);
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": not a JSON object"));
    }
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": no \"text\" string field"));
    }
    texts.push_back(it->get<std::string>());
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(name, ": read error"));
  return texts;
}

// NumPy format 1.0: magic, version, little-endian header length, a Python
// dict literal padded with spaces to a multiple of 64 bytes ending in '\n'.
std::string NpyHeader(size_t rows, size_t cols) {
  std::string dict = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows,
                                  ", ", cols, "), }");
  const size_t prefix = 10;  // magic (6) + version (2) + header length (2)
  size_t total = prefix + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(dict.size());
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  return out + dict;
}

absl::Status Run(const std::string& model_dir, const std::string& input,
                 const std::string& output, const std::string& format, int batch) {
  bool jsonl = format == "jsonl";
  if (format == "auto") {
    jsonl = input.size() >= 6 && input.compare(input.size() - 6, 6, ".jsonl") == 0;
  }
  absl::StatusOr<std::vector<std::string>> texts;
  if (input == "-") {
    texts = ReadTexts(std::cin, jsonl, "stdin");
  } else {
    std::ifstream in(input);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", input));
    texts = ReadTexts(in, jsonl, input);
  }
  if (!texts.ok()) return texts.status();

  absl::StatusOr<std::unique_ptr<SentenceEncoder>> enc = SentenceEncoder::Load(model_dir);
  if (!enc.ok()) return enc.status();
  const size_t dim = static_cast<size_t>((*enc)->dim());

  const std::string tmp = output + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
  const std::string header = NpyHeader(texts->size(), dim);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  const size_t n = texts->size();
  for (size_t start = 0; start < n; start += static_cast<size_t>(batch)) {
    const size_t end = std::min(n, start + static_cast<size_t>(batch));
    absl::Span<const std::string> part(texts->data() + start, end - start);
    absl::StatusOr<std::vector<float>> emb = (*enc)->Encode(part);
    if (!emb.ok()) return emb.status();
    // Little-endian hosts only (the header says '<f4').
    out.write(reinterpret_cast<const char*>(emb->data()),
              static_cast<std::streamsize>(emb->size() * sizeof(float)));
    std::cerr << "\rmnemo-embed: " << end << "/" << n << std::flush;
  }
  std::cerr << "\n";
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("write failed: ", tmp));
  if (std::rename(tmp.c_str(), output.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot rename ", tmp, " to ", output));
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mnemo-embed: embed texts with the built-in USE-lite sentence encoder and write a\n"
      "float32 .npy [n, 512] (one unit-norm row per text, in input order)"};
  std::string model_dir = ".assets/use-lite", input, output, format = "auto";
  int batch = 256;
  app.add_option("--model", model_dir, "USE-lite directory (model.json, shards, vocab.json)")
      ->capture_default_str();
  app.add_option("--input", input, "Texts: JSON Lines with a \"text\" field, or one per line; - = stdin")
      ->required();
  app.add_option("--output", output, "Output .npy file")->required();
  app.add_option("--format", format, "auto (jsonl if the input ends in .jsonl), jsonl or lines")
      ->check(CLI::IsMember({"auto", "jsonl", "lines"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "Texts per Encode call")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  absl::Status s = Run(model_dir, input, output, format, batch);
  if (!s.ok()) {
    std::cerr << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return 1;
  }
  return 0;
}
