// The range of every number the planner takes from a flag or a cluster file
// (docs/plan.md, "Input ranges"): finite, physically sensible, and small
// enough that every product the cost model forms of them fits in 64 bits.
// A flag and the cluster-file field of the same quantity share one range;
// flags are parsed here from their text, so a value is never clamped or
// wrapped on its way in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc::plan {

struct IntegerRange {
  int64_t min, max;
};
struct NumberRange {
  double min, max;
};

// The cluster.
inline constexpr IntegerRange kGpusRange{1, 10'000'000};          // num_gpus, --gpus, each --sweep size
inline constexpr IntegerRange kGpusPerNodeRange{1, 576};          // an NVLink domain (NVL576 is the largest announced)
inline constexpr IntegerRange kGpusPerRackRange{1, 1024};
inline constexpr IntegerRange kFabricTiersRange{1, 8};
inline constexpr IntegerRange kPodGpusRange{0, 10'000'000};       // 0: one non-blocking fabric
inline constexpr NumberRange kScaleOutGbpsRange{1, 10'000};       // per GPU, one direction
inline constexpr NumberRange kLinkEfficiencyRange{0.01, 1};       // scale_out_efficiency, nvlink_efficiency
inline constexpr NumberRange kOversubscriptionRange{1, 100};
inline constexpr NumberRange kHopLatencyUsRange{0, 1000};
inline constexpr NumberRange kNodePowerBeyondGpusWRange{0, 500'000};
inline constexpr NumberRange kNetworkStoragePowerFractionRange{0, 1};
inline constexpr NumberRange kPueRange{1, 3};
inline constexpr NumberRange kGpuHourUsdRange{0, 1000};           // gpu_hour_usd, --gpu-hour-usd
inline constexpr NumberRange kStorageWriteGbpsRange{1, 1'000'000};
inline constexpr NumberRange kRestartSRange{0, 86'400};
inline constexpr NumberRange kGpuSpeedVariationRange{0, 0.5};
inline constexpr NumberRange kFailureRatePerHourRange{0, 1};      // per GPU or node: an MTBF of at least an hour
inline constexpr size_t kMaxFailureCauses = 1000;
inline constexpr size_t kMaxNameBytes = 256;                      // a cluster's or failure cause's name
inline constexpr size_t kMaxClusterFileBytes = 1 << 20;

// The layout.
inline constexpr IntegerRange kParallelDegreeRange{1, 10'000'000};  // --tp --pp --dp --ep --cp
inline constexpr IntegerRange kVirtualStagesRange{1, 1024};         // --vp
inline constexpr IntegerRange kMicroBatchRange{1, 65'536};
inline constexpr IntegerRange kZeroRange{0, 3};

// The run.
inline constexpr IntegerRange kSeqLenRange{1, int64_t{1} << 24};
inline constexpr IntegerRange kGlobalBatchTokensRange{1, int64_t{1} << 30};
inline constexpr NumberRange kTrainTokensRange{1, 1e15};
inline constexpr size_t kMaxSweepSizes = 64;

// A flag's text as a decimal integer, or a finite number, in `range`. The
// error is one line: "--gpus must be an integer in [1, 10000000] (got '1e12')".
Result<int64_t> parse_integer_flag(std::string_view flag, std::string_view text, IntegerRange range);
Result<double> parse_number_flag(std::string_view flag, std::string_view text, NumberRange range);

// The same checks of a value already parsed; `what` names the flag or field.
Status check_integer(std::string_view what, int64_t value, IntegerRange range);
Status check_number(std::string_view what, double value, NumberRange range);

// Input as an error message may show it: in single quotes, at most
// `max_chars` characters (then "..."), control characters as '?'.
std::string quote_input(std::string_view text, size_t max_chars = 64);

}  // namespace sc::plan
