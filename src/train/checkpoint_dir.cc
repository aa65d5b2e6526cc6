#include "train/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/log.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
constexpr const char* kManifest = "manifest.json";
constexpr const char* kLatest = "latest";

Result<int64_t> parse_step_name(const std::string& name) {
  if (!name.starts_with("step_") || name.size() != 13) return Status::invalid("{}: not a step directory", name);
  int64_t step = 0;
  for (char c : name.substr(5)) {
    if (c < '0' || c > '9') return Status::invalid("{}: not a step directory", name);
    step = step * 10 + (c - '0');
  }
  return step;
}

// Files written one per data-parallel rank ("optimizer-00001-of-00004...")
// come as a complete set or the checkpoint is incomplete.
Status check_rank_files_complete(const std::string& dir, const std::vector<std::string>& names) {
  std::map<std::string, std::set<int>> ranks_of;  // "optimizer-*-of-00004.safetensors" -> ranks present
  std::map<std::string, int> world_of;
  for (const std::string& name : names) {
    int rank = 0, world = 0;
    char prefix[64] = {};
    if (std::sscanf(name.c_str(), "%63[^-]-%5d-of-%5d", prefix, &rank, &world) == 3 && world > 0) {
      const std::string family = fmt::format("{}-*-of-{:05d}", prefix, world);
      ranks_of[family].insert(rank);
      world_of[family] = world;
    }
  }
  for (const auto& [family, ranks] : ranks_of) {
    if (static_cast<int>(ranks.size()) != world_of[family]) {
      return Status::corruption("{}: {} of the {} files {} are present (a rank's part is missing)", dir, ranks.size(),
                                world_of[family], family);
    }
  }
  return Status();
}

Status write_manifest(const std::string& dir, int64_t step) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().filename() != kManifest) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  SC_RETURN_IF_ERROR(check_rank_files_complete(dir, names));
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& name : names) {
    SC_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open((fs::path(dir) / name).string()));
    files[name] = {{"bytes", file.size()}, {"xxh3", fmt::format("{:016x}", checksum64(file.data(), file.size()))}};
  }
  nlohmann::json manifest = {{"format_version", 1}, {"step", step}, {"files", files}};
  return write_file_atomic((fs::path(dir) / kManifest).string(), manifest.dump(2) + "\n");
}
}  // namespace

std::string checkpoint_dir_name(int64_t step) { return fmt::format("step_{:08d}", step); }

std::string checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step) {
  return (fs::path(checkpoints_dir) / fmt::format(".{}.tmp", checkpoint_dir_name(step))).string();
}

Result<std::string> begin_checkpoint(const std::string& checkpoints_dir, int64_t step) {
  SC_RETURN_IF_ERROR(ensure_writable_directory(checkpoints_dir));
  const std::string temp_dir = checkpoint_temp_dir(checkpoints_dir, step);
  std::error_code ec;
  fs::remove_all(temp_dir, ec);  // left by an earlier crash
  fs::create_directories(temp_dir, ec);
  if (ec) return Status::io_error("{}: cannot create: {}", temp_dir, ec.message());
  return temp_dir;
}

Status finish_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last) {
  const fs::path final_dir = fs::path(checkpoints_dir) / checkpoint_dir_name(step);
  const fs::path temp_dir = checkpoint_temp_dir(checkpoints_dir, step);
  std::error_code ec;
  Status status = write_manifest(temp_dir.string(), step);
  if (status.ok()) status = fsync_directory(temp_dir.string());
  if (!status.ok()) {
    fs::remove_all(temp_dir, ec);
    return status.with_context(fmt::format("writing checkpoint {}", final_dir.string()));
  }
  // Same step written again (a resumed run): the old directory goes only
  // after the new one is complete.
  if (fs::exists(final_dir)) {
    const fs::path old_dir = fs::path(checkpoints_dir) / fmt::format(".{}.old", checkpoint_dir_name(step));
    fs::remove_all(old_dir, ec);
    fs::rename(final_dir, old_dir, ec);
    if (ec) return Status::io_error("{}: cannot move aside: {}", final_dir.string(), ec.message());
    fs::rename(temp_dir, final_dir, ec);
    if (ec) return Status::io_error("{}: cannot rename into place: {}", final_dir.string(), ec.message());
    fs::remove_all(old_dir, ec);
  } else {
    fs::rename(temp_dir, final_dir, ec);
    if (ec) return Status::io_error("{}: cannot rename into place: {}", final_dir.string(), ec.message());
  }
  SC_RETURN_IF_ERROR(fsync_directory(checkpoints_dir));
  SC_RETURN_IF_ERROR(
      write_file_atomic((fs::path(checkpoints_dir) / kLatest).string(), checkpoint_dir_name(step) + "\n"));
  if (keep_last > 0) {
    std::vector<int64_t> steps;
    for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
      auto s = parse_step_name(entry.path().filename().string());
      if (s.ok() && entry.is_directory()) steps.push_back(*s);
    }
    std::sort(steps.rbegin(), steps.rend());
    for (size_t i = static_cast<size_t>(keep_last); i < steps.size(); ++i) {
      if (steps[i] == step) continue;
      fs::remove_all(fs::path(checkpoints_dir) / checkpoint_dir_name(steps[i]), ec);
    }
  }
  return Status();
}

Status commit_checkpoint(const std::string& checkpoints_dir, int64_t step,
                         const std::function<Status(const std::string& dir)>& write_files, int keep_last) {
  SC_ASSIGN_OR_RETURN(std::string temp_dir, begin_checkpoint(checkpoints_dir, step));
  Status status = write_files(temp_dir);
  if (!status.ok()) {
    std::error_code ec;
    fs::remove_all(temp_dir, ec);
    return status.with_context(
        fmt::format("writing checkpoint {}", (fs::path(checkpoints_dir) / checkpoint_dir_name(step)).string()));
  }
  return finish_checkpoint(checkpoints_dir, step, keep_last);
}

Status verify_checkpoint(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / kManifest).string();
  auto text = read_file(manifest_path);
  if (!text.ok()) return Status::corruption("{}: no manifest (checkpoint incomplete)", dir);
  nlohmann::json manifest = nlohmann::json::parse(*text, nullptr, false);
  if (manifest.is_discarded() || !manifest.contains("files") || !manifest["files"].is_object()) {
    return Status::corruption("{}: manifest is not valid JSON with a 'files' object", manifest_path);
  }
  std::vector<std::string> listed;
  for (const auto& [name, entry] : manifest["files"].items()) listed.push_back(name);
  SC_RETURN_IF_ERROR(check_rank_files_complete(dir, listed));
  for (const auto& [name, entry] : manifest["files"].items()) {
    const std::string path = (fs::path(dir) / name).string();
    auto file = MappedFile::open(path);
    if (!file.ok()) return Status::corruption("{}: listed in the manifest but missing", path);
    if (!entry.contains("bytes") || !entry.contains("xxh3")) {
      return Status::corruption("{}: manifest entry for {} lacks bytes or xxh3", manifest_path, name);
    }
    if (file->size() != entry["bytes"].get<uint64_t>()) {
      return Status::corruption("{}: {} bytes, manifest says {}", path, file->size(), entry["bytes"].get<uint64_t>());
    }
    if (fmt::format("{:016x}", checksum64(file->data(), file->size())) != entry["xxh3"].get<std::string>()) {
      return Status::corruption("{}: checksum mismatch (corrupted file)", path);
    }
  }
  return Status();
}

Result<CheckpointInfo> find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                                    std::vector<std::string>* skipped) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    auto s = parse_step_name(entry.path().filename().string());
    if (s.ok() && entry.is_directory()) steps.push_back(*s);
  }
  if (ec) return Status::not_found("{}: no checkpoints directory", checkpoints_dir);
  std::sort(steps.rbegin(), steps.rend());
  for (int64_t step : steps) {
    const std::string dir = (fs::path(checkpoints_dir) / checkpoint_dir_name(step)).string();
    Status status = verify_checkpoint(dir);
    if (status.ok()) return CheckpointInfo{dir, step};
    if (skipped) skipped->push_back(status.message());
  }
  return Status::not_found("{}: no valid checkpoint", checkpoints_dir);
}

}  // namespace sc
