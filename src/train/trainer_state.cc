#include "train/trainer_state.h"

#include <cmath>

#include "core/file_util.h"
#include "core/json_reader.h"
#include "run/run_paths.h"

namespace sc {

nlohmann::json TrainerState::to_json() const {
  return {{"step", step},
          {"tokens_seen", tokens_seen},
          {"elapsed_s", elapsed_s},
          {"world_size", world_size},
          {"options", options},
          {"rng", {{"kind", "counter"}, {"seed", seed}}},
          {"data_cursor", data_cursor},
          {"loss_guard", loss_guard}};
}

Result<TrainerState> TrainerState::load(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/" + checkpoint_file::kTrainerState;
  SC_ASSIGN_OR_RETURN(std::string text, read_file(path));
  auto parsed = parse_json(text, path);  // nesting bound: copying a deeper value recurses without end
  if (!parsed.ok()) return Status::corruption("{}", parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::corruption("{}: not a JSON object", path);
  auto require = [&](const char* key, bool ok, const char* expected) -> Status {
    if (!j.contains(key)) return Status::corruption("{}: no '{}'", path, key);
    if (!ok) return Status::corruption("{}: '{}' must be {}", path, key, expected);
    return Status();
  };
  if (!j.contains("world_size") || !j.contains("options") || !j["options"].is_object() ||
      !j["options"].contains("global_batch")) {
    return Status::invalid("{}: written by an older supercluster, before optimizer state was sharded (no "
                           "'world_size' or 'options.global_batch'); this build cannot resume it", path);
  }
  SC_RETURN_IF_ERROR(require("step",
                             j.contains("step") && j["step"].is_number_integer() && j["step"] >= 0 &&
                                 j["step"] <= kMaxSteps,
                             "a non-negative integer, at most 10^12"));
  SC_RETURN_IF_ERROR(require("world_size", j["world_size"].is_number_integer() && j["world_size"] >= 1,
                             "a positive integer"));
  SC_RETURN_IF_ERROR(require("tokens_seen", j.contains("tokens_seen") && j["tokens_seen"].is_number(), "a number"));
  SC_RETURN_IF_ERROR(require("elapsed_s",
                             j.contains("elapsed_s") && j["elapsed_s"].is_number() && j["elapsed_s"] >= 0 &&
                                 j["elapsed_s"] <= 1e12,
                             "a number of seconds in [0, 1e12]"));
  SC_RETURN_IF_ERROR(require("data_cursor", j.contains("data_cursor") && j["data_cursor"].is_object(), "an object"));
  const bool rng_ok = j.contains("rng") && j["rng"].is_object() && j["rng"].contains("kind") && j["rng"]["kind"] == "counter" &&
                      j["rng"].contains("seed") && j["rng"]["seed"].is_number_unsigned();
  SC_RETURN_IF_ERROR(require("rng", rng_ok, "{\"kind\": \"counter\", \"seed\": S}"));
  // The trainer counts every applied step's tokens: anything else would make
  // the resumed run's tokens/s and the metrics' 'tokens' wrong.
  const nlohmann::json& global_batch = j["options"]["global_batch"];
  const nlohmann::json seq_len = j["options"].value("seq_len", nlohmann::json());
  if (global_batch.is_number_integer() && seq_len.is_number_integer()) {
    const double expected = j["step"].get<double>() * global_batch.get<double>() * seq_len.get<double>();
    if (std::abs(j["tokens_seen"].get<double>() - expected) > 1e-9 * expected) {
      return Status::corruption("{}: 'tokens_seen' is {}, not 'step' x global_batch x seq_len = {}", path,
                                j["tokens_seen"].get<double>(), expected);
    }
  }
  TrainerState state;
  state.step = j["step"].get<int64_t>();
  state.tokens_seen = j["tokens_seen"].get<double>();
  state.elapsed_s = j["elapsed_s"].get<double>();
  state.world_size = j["world_size"].get<int64_t>();
  state.options = j["options"];
  state.seed = j["rng"]["seed"].get<uint64_t>();
  state.data_cursor = j["data_cursor"];
  state.loss_guard = j.value("loss_guard", nlohmann::json());
  return state;
}

}  // namespace sc
