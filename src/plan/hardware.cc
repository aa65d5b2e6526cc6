#include "plan/hardware.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

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

Status json_error(const std::string& source, const std::string& field, const std::string& what) {
  return Status::invalid("{}: '{}' {}", source, field, what);
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
  return Status::not_found("unknown GPU '{}' (catalog: {})", name, known);
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
  return Status::not_found("unknown cluster preset '{}' (presets: {}; or a .json file)", name, known);
}

Result<ClusterSpec> cluster_from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) return Status::invalid("{}: a cluster must be a JSON object", source);
  ClusterSpec c;
  if (json.contains("base")) {
    if (!json["base"].is_string()) return json_error(source, "base", "must be a preset name");
    auto base = cluster_preset(json["base"].get<std::string>());
    if (!base.ok()) return base.status().with_context(source + ": 'base'");
    c = *base;
  } else if (!json.contains("gpu")) {
    return json_error(source, "gpu", "is required (or 'base', a preset)");
  } else {
    c.failures = llama3_failure_rates();
  }
  c.name = json.value("name", c.name.empty() ? source : c.name);
  if (json.contains("gpu")) {
    if (!json["gpu"].is_string()) return json_error(source, "gpu", "must be a GPU name");
    auto gpu = gpu_by_name(json["gpu"].get<std::string>());
    if (!gpu.ok()) return gpu.status().with_context(source + ": 'gpu'");
    c.gpu = *gpu;
  }
  static const char* kKnown[] = {"name", "base", "gpu", "num_gpus", "gpus_per_node", "gpus_per_rack",
                                 "scale_out_gbps", "scale_out_efficiency", "nvlink_efficiency", "fabric_tiers",
                                 "pod_gpus", "oversubscription", "hop_latency_us", "node_power_beyond_gpus_w",
                                 "network_storage_power_fraction", "cooling", "pue", "gpu_hour_usd",
                                 "storage_write_gbps", "restart_s", "gpu_speed_variation", "failures"};
  for (const auto& [key, value] : json.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return json_error(source, key, "is not a cluster field (see docs/plan.md)");
  }
  auto integer = [&](const char* key, int64_t* out) -> Status {
    if (!json.contains(key)) return Status();
    const auto& v = json[key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
      return json_error(source, key, fmt::format("must be a positive integer (got {})", v.dump()));
    *out = v.get<int64_t>();
    return Status();
  };
  auto number = [&](const char* key, double* out, double scale, bool allow_zero) -> Status {
    if (!json.contains(key)) return Status();
    const auto& v = json[key];
    if (!v.is_number() || v.get<double>() < 0 || (!allow_zero && v.get<double>() == 0))
      return json_error(source, key,
                        fmt::format("must be a {} number (got {})", allow_zero ? "non-negative" : "positive", v.dump()));
    *out = v.get<double>() * scale;
    return Status();
  };
  SC_RETURN_IF_ERROR(integer("num_gpus", &c.num_gpus));
  SC_RETURN_IF_ERROR(integer("gpus_per_node", &c.gpus_per_node));
  SC_RETURN_IF_ERROR(integer("gpus_per_rack", &c.gpus_per_rack));
  SC_RETURN_IF_ERROR(integer("fabric_tiers", &c.fabric_tiers));
  if (json.contains("pod_gpus")) {
    if (!json["pod_gpus"].is_number_integer() || json["pod_gpus"].get<int64_t>() < 0)
      return json_error(source, "pod_gpus", "must be a non-negative integer (0: one non-blocking fabric)");
    c.pod_gpus = json["pod_gpus"].get<int64_t>();
  }
  SC_RETURN_IF_ERROR(number("scale_out_gbps", &c.scale_out_bytes_per_s, 1e9 / 8, false));
  SC_RETURN_IF_ERROR(number("scale_out_efficiency", &c.scale_out_efficiency, 1, false));
  SC_RETURN_IF_ERROR(number("nvlink_efficiency", &c.nvlink_efficiency, 1, false));
  SC_RETURN_IF_ERROR(number("oversubscription", &c.oversubscription, 1, false));
  SC_RETURN_IF_ERROR(number("hop_latency_us", &c.hop_latency_s, 1e-6, true));
  SC_RETURN_IF_ERROR(number("node_power_beyond_gpus_w", &c.node_power_beyond_gpus_w, 1, true));
  SC_RETURN_IF_ERROR(number("network_storage_power_fraction", &c.network_storage_power_fraction, 1, true));
  SC_RETURN_IF_ERROR(number("pue", &c.pue, 1, false));
  SC_RETURN_IF_ERROR(number("gpu_hour_usd", &c.gpu_hour_usd, 1, true));
  SC_RETURN_IF_ERROR(number("storage_write_gbps", &c.storage_write_bytes_per_s, 1e9 / 8, false));
  SC_RETURN_IF_ERROR(number("restart_s", &c.restart_s, 1, true));
  SC_RETURN_IF_ERROR(number("gpu_speed_variation", &c.gpu_speed_variation, 1, true));
  if (c.gpu_speed_variation >= 1) return json_error(source, "gpu_speed_variation", "must be below 1 (a fraction)");
  if (c.scale_out_efficiency > 1) return json_error(source, "scale_out_efficiency", "must be at most 1");
  if (c.nvlink_efficiency > 1) return json_error(source, "nvlink_efficiency", "must be at most 1");
  if (c.pue < 1) return json_error(source, "pue", fmt::format("must be at least 1 (got {})", c.pue));
  if (json.contains("cooling")) {
    const auto& v = json["cooling"];
    if (!v.is_string() || (v != "liquid" && v != "air")) return json_error(source, "cooling", "must be \"liquid\" or \"air\"");
    c.cooling = v.get<std::string>();
  }
  if (json.contains("failures")) {
    const auto& f = json["failures"];
    if (!f.is_array()) return json_error(source, "failures", "must be an array of {name, component, rate_per_hour}");
    c.failures.clear();
    for (size_t i = 0; i < f.size(); ++i) {
      const std::string field = fmt::format("failures[{}]", i);
      const auto& e = f[i];
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
        return json_error(source, field, "needs a string 'name'");
      const std::string component = e.value("component", std::string("gpu"));
      if (component != "gpu" && component != "node")
        return json_error(source, field + ".component", "must be \"gpu\" or \"node\"");
      if (!e.contains("rate_per_hour") || !e["rate_per_hour"].is_number() || e["rate_per_hour"].get<double>() < 0)
        return json_error(source, field + ".rate_per_hour", "must be a non-negative number");
      c.failures.push_back({e["name"].get<std::string>(), component, e["rate_per_hour"].get<double>()});
    }
  }
  if (c.num_gpus <= 0) return json_error(source, "num_gpus", "is required and must be positive");
  return c;
}

Result<ClusterSpec> resolve_cluster(const std::string& preset_or_path) {
  for (const auto& n : cluster_preset_names())
    if (n == preset_or_path) return cluster_preset(n);
  if (!std::filesystem::exists(preset_or_path)) return cluster_preset(preset_or_path);  // the unknown-preset error
  std::ifstream in(preset_or_path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Status::invalid("{}: not valid JSON", preset_or_path);
  return cluster_from_json(json, preset_or_path);
}

}  // namespace sc::plan
