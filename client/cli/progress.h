// A one-line progress bar for long client operations, drawn on a stream
// (stderr) with carriage returns.
//
// Not thread-safe: one thread calls Update / Finish.
#ifndef MNEMO_CLIENT_CLI_PROGRESS_H_
#define MNEMO_CLIENT_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace mnemo::cli {

class ProgressBar {
 public:
  // total = 0 means unknown (stdin): no bar, no ETA, just count and rate.
  // `out` is borrowed and must outlive the bar.
  ProgressBar(std::FILE* out, std::string label, uint64_t total);

  // Sets the number of items done; redraws at most every 100 ms.
  void Update(uint64_t done);
  // Draws the final state and ends the line. Idempotent.
  void Finish();

  // What is counted ("items" by default, e.g. "files").
  void SetUnit(std::string unit) { unit_ = std::move(unit); }
  // Text drawn after the bar (e.g. "1200 chunks  85 chunks/s"); redrawn
  // with the next Update.
  void SetNote(std::string note) { note_ = std::move(note); }
  // Prints `line` on a line of its own above the bar (which is redrawn
  // below it), so messages and the bar do not mix.
  void Message(const std::string& line);

  // The line as drawn for `done` items after `elapsed_s` seconds (no
  // carriage return). Exposed for tests.
  std::string Render(uint64_t done, double elapsed_s) const;

 private:
  void Draw(uint64_t done);

  std::FILE* out_;
  std::string label_;
  std::string unit_ = "items";
  std::string note_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  size_t last_width_ = 0;  // to blank out a longer previous line
};

// "1m05s", "42s", "2h03m".
std::string FormatDuration(double seconds);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_PROGRESS_H_
