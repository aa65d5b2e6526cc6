// A checkpoint's manifest.json (read by resume, `generate` and `launch` to
// decide whether a checkpoint can be used). The checkpoint it describes is
// a real one, committed once by the trainer's own writer (small files,
// optimizer state from two ranks); each input replaces its manifest, so an
// input that names those files right verifies and the comparisons of sizes
// and checksums run too. SC_FUZZ_WRITE_SEED=PATH copies the committed
// manifest to PATH (fuzz/make_corpus.sh makes the seed that way).
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "fuzz_util.h"
#include "run/checkpoint_store.h"

namespace {

std::string committed_checkpoint() {
  const std::string checkpoints = sc::fuzz::scratch_dir() + "/checkpoints";
  std::filesystem::create_directories(checkpoints);
  auto temp = sc::make_checkpoint_temp_dir(checkpoints, 1);
  if (!temp.ok()) std::abort();
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"config.json", "{\"model_type\": \"grok-1\"}\n"},
           {"model.safetensors", "0123456789abcdef"},
           {"optimizer-00000-of-00002.safetensors", "rank 0"},
           {"optimizer-00001-of-00002.safetensors", "rank 1"},
           {"trainer_state.json", "{\"step\": 1}\n"}}) {
    if (!sc::write_file_atomic(*temp + "/" + name, text).ok()) std::abort();
  }
  if (!sc::commit_checkpoint(checkpoints, 1, 0).ok()) std::abort();
  const std::string dir = checkpoints + "/" + sc::checkpoint_dir_name(1);
  if (const char* seed = std::getenv("SC_FUZZ_WRITE_SEED")) {
    std::filesystem::copy_file(dir + "/manifest.json", seed, std::filesystem::copy_options::overwrite_existing);
  }
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    static const std::string dir = committed_checkpoint();
    sc::fuzz::write_scratch("checkpoints/" + sc::checkpoint_dir_name(1) + "/manifest.json",
                            sc::fuzz::as_text(data, size));
    (void)sc::verify_checkpoint(dir);
    std::vector<std::string> skipped;
    (void)sc::find_latest_valid_checkpoint(sc::fuzz::scratch_dir() + "/checkpoints", &skipped);
  });
}
