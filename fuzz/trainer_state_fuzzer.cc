// A checkpoint's trainer_state.json (step, tokens seen, options, data
// cursor, loss guard), read on every resume.
#include "fuzz_util.h"
#include "train/trainer_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    sc::fuzz::write_scratch("step_00000001/trainer_state.json", sc::fuzz::as_text(data, size));
    sc::Result<sc::TrainerState> state = sc::TrainerState::load(sc::fuzz::scratch_dir() + "/step_00000001");
    if (state.ok()) (void)state->to_json().dump();
  });
}
