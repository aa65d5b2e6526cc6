// The run directory: every file a training run leaves, by one name each
// (docs/checkpoint_format.md). `train` writes a run, `launch` watches one,
// `generate` reads one (as `serve` will); all of them find its files here.
//
//   RUN/
//     metrics.jsonl          one JSON object per optimizer step (run/metrics_log.h)
//     events.jsonl           checkpoints, skipped steps, rollbacks, failures, restarts (run/event_log.h)
//     loss.svg               the loss curve, redrawn at each evaluation
//     heartbeat/rank-R.json  each rank's latest heartbeat, while a launcher watches (run/heartbeat.h)
//     faults/                markers of injected faults (core/fault_injection.h), tests only
//     checkpoints/
//       latest               "step_NNNNNNNN\n", the newest committed checkpoint
//       step_NNNNNNNN/       one checkpoint (run/checkpoint_store.h); the files below
#pragma once

#include <cstdint>
#include <string>

namespace sc {

class RunPaths {
 public:
  explicit RunPaths(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string metrics() const { return root_ + "/metrics.jsonl"; }
  std::string events() const { return root_ + "/events.jsonl"; }
  std::string loss_plot() const { return root_ + "/loss.svg"; }
  std::string heartbeats() const { return root_ + "/heartbeat"; }
  std::string checkpoints() const { return root_ + "/checkpoints"; }

 private:
  std::string root_;
};

// The files of one checkpoint directory.
namespace checkpoint_file {
inline constexpr const char* kModel = "model.safetensors";          // weights, Hugging Face names
inline constexpr const char* kConfig = "config.json";               // the model config
inline constexpr const char* kTokenizer = "tokenizer.model";        // SentencePiece model of the data
inline constexpr const char* kTrainerState = "trainer_state.json";  // step, options, data cursor, ...
inline constexpr const char* kManifest = "manifest.json";           // written last: sizes and checksums
// "optimizer-RRRRR-of-NNNNN.safetensors": the AdamW moments of rank R of N.
std::string optimizer_shard(int rank, int world);
// The inverse: true and rank, world when `name` is such a file's name.
bool parse_optimizer_shard(const std::string& name, int* rank, int* world);
}  // namespace checkpoint_file

}  // namespace sc
