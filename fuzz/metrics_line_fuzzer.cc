// RUN/metrics.jsonl, read back by a resumed trainer (its loss history) and
// by `launch` (training time kept, for goodput); a crash can tear its last
// line, and people edit it.
#include "fuzz_util.h"
#include "run/metrics_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sc::fuzz::run_guarded([&] {
    const std::string path = sc::fuzz::write_scratch("metrics.jsonl", sc::fuzz::as_text(data, size));
    for (const sc::MetricsRecord& record : sc::read_metrics(path)) (void)record.line.size();
    sc::Status status;
    (void)sc::MetricsLog(path).keep_through_step(5, /*rewrite=*/false, &status);
  });
}
