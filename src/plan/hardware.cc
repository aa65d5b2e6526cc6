#include "plan/hardware.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/json_reader.h"
#include "plan/input_ranges.h"

namespace sc::plan {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Datasheet figures (docs/plan.md cites each datasheet). NVLink is per GPU
// and per direction: half the "bidirectional" figure NVIDIA quotes.
// gemm_efficiency (S. Bekman, ml-engineering, compute/accelerator and its
// benchmarks page): H100/H200 sustained 698.6 of 989 (MSMF of H200, the same
// GH100 die at the same 700 W, all 8 GPUs busy); B200 1426.4 of 2250 (MSMF,
// all 8 busy); A100: no sustained figure published, burst MAMF 267.9 of 312.
// Attention: FlashAttention-2 (Dao 2023) reaches 50-70% of A100 peak
// forward+backward (0.55) and about 35% of H100's; FlashAttention-3 (Shah et
// al. 2024) 50-75% of H100's (0.6); B200: FA3-class kernels assumed at 0.5.
const std::vector<GpuSpec>& catalog() {
  static const std::vector<GpuSpec> gpus = {
      {"a100-40gb", 312e12, 0, 40 * kGiB, 1.555e12, 300e9, 400, 108, 0.859, 0.55, 0},
      {"a100-80gb", 312e12, 0, 80 * kGiB, 2.039e12, 300e9, 400, 108, 0.859, 0.55, 0},
      {"h100-sxm", 989e12, 1979e12, 80 * kGiB, 3.35e12, 450e9, 700, 132, 0.706, 0.35, 0.6},
      {"h200", 989e12, 1979e12, 141e9, 4.8e12, 450e9, 700, 132, 0.706, 0.35, 0.6},
      {"b200", 2250e12, 4500e12, 180e9, 8e12, 900e9, 1000, 148, 0.634, 0.35, 0.5},
  };
  return gpus;
}

struct CauseShare {
  const char* name;
  const char* component;
  double percent;  // of the 419 unexpected interruptions
};

// The Llama 3 Herd of Models (2024), Table 5. "other" is what the table's
// rounded rows do not cover, so the shares sum to 100%.
const CauseShare kLlama3Causes[] = {
    {"faulty GPU", "gpu", 30.1},
    {"GPU HBM3 memory", "gpu", 17.2},
    {"software bug", "gpu", 12.9},
    {"network switch/cable", "gpu", 8.4},
    {"host maintenance", "node", 7.6},
    {"GPU SRAM memory", "gpu", 4.5},
    {"GPU system processor", "gpu", 4.1},
    {"NIC", "gpu", 2.9},
    {"NCCL watchdog timeout", "gpu", 1.7},
    {"silent data corruption", "gpu", 1.4},
    {"GPU thermal interface/sensor", "gpu", 1.4},
    {"SSD", "node", 0.7},
    {"power supply", "node", 0.5},
    {"server chassis", "node", 0.5},
    {"IO expansion board", "node", 0.5},
    {"dependency", "node", 0.5},
    {"CPU", "node", 0.5},
    {"system memory", "node", 0.5},
};

ClusterSpec base_h100(const std::string& name, int64_t gpus) {
  ClusterSpec c;
  c.name = name;
  c.gpu = catalog()[2];
  c.num_gpus = gpus;
  c.gpus_per_node = 8;
  // DGX H100: 10.2 kW maximum for the node, 8 x 700 W of it GPUs.
  c.node_power_beyond_gpus_w = 10200 - 8 * 700;
  c.failures = llama3_failure_rates();
  return c;
}

}  // namespace

double ClusterSpec::slowest_gpu_factor(int64_t gpus) const {
  if (gpus <= 1 || gpu_speed_variation <= 0) return 1;
  // Speeds spread normally; Sinha et al. measured the range over thousands
  // of GPUs, about 7 standard deviations. The expected slowest of n is
  // z(n) deviations below the median (Blom's approximation of the normal
  // order statistic; inverse normal by Abramowitz & Stegun 26.2.23).
  const double sigma = gpu_speed_variation / 7;
  const double n = static_cast<double>(gpus);
  const double q = 1 - (n - 0.375) / (n + 0.25);  // lower-tail probability
  const double t = std::sqrt(-2 * std::log(q));
  const double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                           (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  return std::max(0.5, 1 - sigma * z);
}

nlohmann::json ClusterSpec::to_json() const {
  nlohmann::json failures_json = nlohmann::json::array();
  for (const auto& f : failures)
    failures_json.push_back({{"name", f.name}, {"component", f.component}, {"rate_per_hour", f.rate_per_hour}});
  return {{"name", name},
          {"gpu", gpu.name},
          {"num_gpus", num_gpus},
          {"gpus_per_node", gpus_per_node},
          {"gpus_per_rack", gpus_per_rack},
          {"scale_out_gbps", scale_out_bytes_per_s * 8 / 1e9},
          {"scale_out_efficiency", scale_out_efficiency},
          {"nvlink_efficiency", nvlink_efficiency},
          {"fabric_tiers", fabric_tiers},
          {"pod_gpus", pod_gpus},
          {"oversubscription", oversubscription},
          {"hop_latency_us", hop_latency_s * 1e6},
          {"node_power_beyond_gpus_w", node_power_beyond_gpus_w},
          {"network_storage_power_fraction", network_storage_power_fraction},
          {"cooling", cooling},
          {"pue", pue},
          {"gpu_hour_usd", gpu_hour_usd},
          {"storage_write_gbps", storage_write_bytes_per_s * 8 / 1e9},
          {"restart_s", restart_s},
          {"gpu_speed_variation", gpu_speed_variation},
          {"failures", failures_json}};
}

Result<GpuSpec> gpu_by_name(const std::string& name) {
  for (const auto& g : catalog())
    if (g.name == name) return g;
  std::string known;
  for (const auto& g : catalog()) known += (known.empty() ? "" : ", ") + g.name;
  return Status::not_found("unknown GPU {} (catalog: {})", quote_input(name), known);
}

std::vector<std::string> gpu_names() {
  std::vector<std::string> names;
  for (const auto& g : catalog()) names.push_back(g.name);
  return names;
}

std::vector<FailureCause> llama3_failure_rates() {
  // 54 days on 16,384 GPUs in 2,048 nodes of 8.
  const double interruptions = 419, hours = 54 * 24.0, gpus = 16384, nodes = 2048;
  double covered = 0;
  std::vector<FailureCause> causes;
  for (const auto& c : kLlama3Causes) {
    const double units = std::string(c.component) == "gpu" ? gpus : nodes;
    causes.push_back({c.name, c.component, interruptions * c.percent / 100 / (hours * units)});
    covered += c.percent;
  }
  if (covered < 100) causes.push_back({"other", "gpu", interruptions * (100 - covered) / 100 / (hours * gpus)});
  return causes;
}

std::vector<std::string> cluster_preset_names() {
  return {"colossus-100k", "oracle-24k", "selene-a100", "llama3-h100", "dgx-h100"};
}

Result<ClusterSpec> cluster_preset(const std::string& name) {
  if (name == "colossus-100k") {
    // 100,000 liquid-cooled H100 SXM, 8 per node, 64 per rack, one 400 Gb/s
    // Spectrum-X (RoCE) NIC per GPU, 3-tier non-blocking fabric.
    ClusterSpec c = base_h100(name, 100000);
    c.gpus_per_rack = 64;
    c.fabric_tiers = 3;
    c.pod_gpus = 0;  // one non-blocking fabric
    c.cooling = "liquid";
    c.pue = 1.15;
    c.gpu_hour_usd = 2.0;
    return c;
  }
  if (name == "oracle-24k") {
    // 24,000 rented H100 (OCI BM.GPU.H100.8: 8 GPUs, 8 x 400 Gb/s RoCE v2
    // per node), air-cooled data halls; OCI's list price $10 per GPU-hour.
    ClusterSpec c = base_h100(name, 24000);
    c.gpus_per_rack = 32;
    c.cooling = "air";
    c.pue = 1.4;
    c.gpu_hour_usd = 10.0;
    return c;
  }
  if (name == "llama3-h100") {
    // Meta's 24k-GPU RoCE cluster (Llama 3 paper, section 3.3.1): Grand Teton
    // nodes of 8 H100 at 700 W, 400 Gb/s per GPU, 3-layer Clos; pods of 3,072
    // GPUs with full bisection, 1:7 oversubscribed above them; Tectonic
    // storage sustaining 2 TB/s.
    ClusterSpec c = base_h100(name, 24576);
    c.gpus_per_rack = 16;
    c.pod_gpus = 3072;
    c.oversubscription = 7;
    c.cooling = "air";
    c.pue = 1.4;
    c.storage_write_bytes_per_s = 2e12;
    return c;
  }
  if (name == "dgx-h100") {
    // NVIDIA's DGX SuperPOD H100 reference architecture, on which its
    // published NeMo benchmarks run: DGX H100 nodes (8 SXM GPUs on NVSwitch,
    // 10.2 kW), 8 x 400 Gb/s NDR InfiniBand per node on a rail-optimized,
    // non-blocking 3-tier fat tree, 4 nodes per air-cooled rack.
    ClusterSpec c = base_h100(name, 2048);
    c.gpus_per_rack = 32;
    c.fabric_tiers = 3;
    c.cooling = "air";
    c.pue = 1.4;
    return c;
  }
  if (name == "selene-a100") {
    // NVIDIA Selene as used by Narayanan et al. 2021: DGX A100 nodes of 8
    // A100 80 GB on NVSwitch, 8 x 200 Gb/s HDR InfiniBand per node,
    // 3-level non-blocking fat tree; DGX A100 is rated 6.5 kW.
    ClusterSpec c;
    c.name = name;
    c.gpu = catalog()[1];
    c.num_gpus = 4480;
    c.gpus_per_node = 8;
    c.gpus_per_rack = 32;
    c.scale_out_bytes_per_s = 25e9;
    // nccl-tests on 8 x A100 SXM over NVSwitch measure 200-208 GB/s of
    // all-reduce bus bandwidth (NVIDIA/nccl-tests issues 149 and 178).
    c.nvlink_efficiency = 0.7;
    c.fabric_tiers = 3;
    c.node_power_beyond_gpus_w = 6500 - 8 * 400;
    c.cooling = "air";
    c.pue = 1.4;
    c.gpu_hour_usd = 1.2;
    c.storage_write_bytes_per_s = 1e12;
    c.failures = llama3_failure_rates();
    return c;
  }
  std::string known;
  for (const auto& n : cluster_preset_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::not_found("unknown cluster preset {} (presets: {}; or a .json file)", quote_input(name), known);
}

Result<ClusterSpec> cluster_from_json(const nlohmann::json& json, const std::string& source) {
  SC_ASSIGN_OR_RETURN(JsonReader r, JsonReader::of(json, source));
  static const char* kKnown[] = {"name", "base", "gpu", "num_gpus", "gpus_per_node", "gpus_per_rack",
                                 "scale_out_gbps", "scale_out_efficiency", "nvlink_efficiency", "fabric_tiers",
                                 "pod_gpus", "oversubscription", "hop_latency_us", "node_power_beyond_gpus_w",
                                 "network_storage_power_fraction", "cooling", "pue", "gpu_hour_usd",
                                 "storage_write_gbps", "restart_s", "gpu_speed_variation", "failures"};
  for (const auto& [key, value] : json.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return Status::invalid("{}: {} is not a cluster field (see docs/plan.md)", source, quote_input(key));
  }
  ClusterSpec c;
  if (r.has("base")) {
    SC_ASSIGN_OR_RETURN(std::string base_name, r.string("base", kMaxNameBytes));
    auto base = cluster_preset(base_name);
    if (!base.ok()) return base.status().with_context(source + ": 'base'");
    c = *base;
  } else if (!r.has("gpu")) {
    return Status::invalid("{}: 'gpu' is required (or 'base', a preset)", source);
  } else {
    c.failures = llama3_failure_rates();
  }
  SC_ASSIGN_OR_RETURN(c.name, r.string_or("name", c.name.empty() ? source : c.name, kMaxNameBytes));
  if (r.has("gpu")) {
    SC_ASSIGN_OR_RETURN(std::string gpu_name, r.string("gpu", kMaxNameBytes));
    auto gpu = gpu_by_name(gpu_name);
    if (!gpu.ok()) return gpu.status().with_context(source + ": 'gpu'");
    c.gpu = *gpu;
  }
  auto integer = [&](const char* key, IntegerRange range, int64_t* out) -> Status {
    SC_ASSIGN_OR_RETURN(*out, r.integer_or(key, *out, range.min, range.max));
    return Status();
  };
  // `scale` turns the file's unit into the field's (Gb/s into bytes/s, us into s).
  auto number = [&](const char* key, NumberRange range, double scale, double* out) -> Status {
    if (!r.has(key)) return Status();
    SC_ASSIGN_OR_RETURN(const double value, r.number(key, range.min, range.max));
    *out = value * scale;
    return Status();
  };
  if (r.has("base")) {
    SC_RETURN_IF_ERROR(integer("num_gpus", kGpusRange, &c.num_gpus));
  } else {  // no default to fall back on
    SC_ASSIGN_OR_RETURN(c.num_gpus, r.integer("num_gpus", kGpusRange.min, kGpusRange.max));
  }
  SC_RETURN_IF_ERROR(integer("gpus_per_node", kGpusPerNodeRange, &c.gpus_per_node));
  SC_RETURN_IF_ERROR(integer("gpus_per_rack", kGpusPerRackRange, &c.gpus_per_rack));
  SC_RETURN_IF_ERROR(integer("fabric_tiers", kFabricTiersRange, &c.fabric_tiers));
  SC_RETURN_IF_ERROR(integer("pod_gpus", kPodGpusRange, &c.pod_gpus));
  SC_RETURN_IF_ERROR(number("scale_out_gbps", kScaleOutGbpsRange, 1e9 / 8, &c.scale_out_bytes_per_s));
  SC_RETURN_IF_ERROR(number("scale_out_efficiency", kLinkEfficiencyRange, 1, &c.scale_out_efficiency));
  SC_RETURN_IF_ERROR(number("nvlink_efficiency", kLinkEfficiencyRange, 1, &c.nvlink_efficiency));
  SC_RETURN_IF_ERROR(number("oversubscription", kOversubscriptionRange, 1, &c.oversubscription));
  SC_RETURN_IF_ERROR(number("hop_latency_us", kHopLatencyUsRange, 1e-6, &c.hop_latency_s));
  SC_RETURN_IF_ERROR(number("node_power_beyond_gpus_w", kNodePowerBeyondGpusWRange, 1, &c.node_power_beyond_gpus_w));
  SC_RETURN_IF_ERROR(number("network_storage_power_fraction", kNetworkStoragePowerFractionRange, 1,
                            &c.network_storage_power_fraction));
  SC_RETURN_IF_ERROR(number("pue", kPueRange, 1, &c.pue));
  SC_RETURN_IF_ERROR(number("gpu_hour_usd", kGpuHourUsdRange, 1, &c.gpu_hour_usd));
  SC_RETURN_IF_ERROR(number("storage_write_gbps", kStorageWriteGbpsRange, 1e9 / 8, &c.storage_write_bytes_per_s));
  SC_RETURN_IF_ERROR(number("restart_s", kRestartSRange, 1, &c.restart_s));
  SC_RETURN_IF_ERROR(number("gpu_speed_variation", kGpuSpeedVariationRange, 1, &c.gpu_speed_variation));
  SC_ASSIGN_OR_RETURN(c.cooling, r.string_or("cooling", c.cooling, kMaxNameBytes));
  if (c.cooling != "liquid" && c.cooling != "air")
    return Status::invalid("{}: 'cooling' must be \"liquid\" or \"air\" (got {})", source, quote_input(c.cooling));
  if (r.has("failures")) {
    SC_ASSIGN_OR_RETURN(const nlohmann::json* failures, r.array("failures"));
    if (failures->size() > kMaxFailureCauses)
      return Status::invalid("{}: 'failures' must have at most {} causes (got {})", source, kMaxFailureCauses,
                             failures->size());
    c.failures.clear();
    for (size_t i = 0; i < failures->size(); ++i) {
      SC_ASSIGN_OR_RETURN(JsonReader cause, JsonReader::of((*failures)[i], fmt::format("{}: 'failures[{}]'", source, i)));
      FailureCause f;
      SC_ASSIGN_OR_RETURN(f.name, cause.string("name", kMaxNameBytes));
      SC_ASSIGN_OR_RETURN(f.component, cause.string_or("component", "gpu", kMaxNameBytes));
      if (f.component != "gpu" && f.component != "node")
        return Status::invalid("{}: 'component' must be \"gpu\" or \"node\" (got {})", cause.source(),
                               quote_input(f.component));
      SC_ASSIGN_OR_RETURN(f.rate_per_hour,
                          cause.number("rate_per_hour", kFailureRatePerHourRange.min, kFailureRatePerHourRange.max));
      c.failures.push_back(std::move(f));
    }
  }
  return c;
}

namespace {

// The file's text, at most kMaxClusterFileBytes of it: a cluster file is
// small, and /dev/zero never ends.
Result<std::string> read_cluster_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("{}: cannot open the cluster file", quote_input(path, 256));
  std::string text(kMaxClusterFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Status::io_error("{}: cannot read the cluster file", quote_input(path, 256));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxClusterFileBytes)
    return Status::invalid("{}: a cluster file must be at most {} bytes", quote_input(path, 256), kMaxClusterFileBytes);
  return text;
}

}  // namespace

Result<ClusterSpec> resolve_cluster(const std::string& preset_or_path) {
  for (const auto& n : cluster_preset_names())
    if (n == preset_or_path) return cluster_preset(n);
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(preset_or_path, error);
  if (status.type() == fs::file_type::not_found) return cluster_preset(preset_or_path);  // the unknown-preset error
  if (error)
    return Status::invalid("--cluster {} is neither a preset nor a readable file ({})", quote_input(preset_or_path, 256),
                           error.message());
  if (status.type() == fs::file_type::directory)
    return Status::invalid("--cluster {} is a directory, not a cluster file", quote_input(preset_or_path, 256));
  SC_ASSIGN_OR_RETURN(const std::string text, read_cluster_file(preset_or_path));
  SC_ASSIGN_OR_RETURN(const nlohmann::json json, parse_json(text, preset_or_path));
  return cluster_from_json(json, preset_or_path);
}

}  // namespace sc::plan
