// A model directory as the mnemo-decode commands load it: the weights
// (decoder/model.h) and the SentencePiece tokenizer, checked against the
// config's tokenizer_sha256, plus the file hashes a model is identified by.
#ifndef MNEMO_DECODER_MODEL_DIR_H_
#define MNEMO_DECODER_MODEL_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "decoder/model.h"
#include "decoder/tokenizer.h"

namespace mnemo::decoder {

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Lower-case hex SHA-256 of the file at `path` (what sha256sum prints).
// NOT_FOUND when it cannot be opened, DATA_LOSS when a read fails.
absl::StatusOr<std::string> FileSha256Hex(const std::string& path);

// Model::Load(dir) and the tokenizer config.json names. FAILED_PRECONDITION
// when the tokenizer's sha256 or vocabulary size differs from the config's.
absl::StatusOr<LoadedModel> LoadModelDir(const std::string& dir);

// Hex SHA-256 of the model's weights file (the lineage an injection model
// is checked against).
absl::StatusOr<std::string> WeightsSha256(const Model& model);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_MODEL_DIR_H_
