// A cluster description (`plan --cluster FILE`): GPUs, nodes, fabric, power.
#include "fuzz_util.h"
#include "plan/hardware.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const std::string path = sc::fuzz::write_scratch("cluster.json", sc::fuzz::as_text(data, size));
    (void)sc::plan::resolve_cluster(path);
  });
}
