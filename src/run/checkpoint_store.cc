#include "run/checkpoint_store.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/json_reader.h"
#include "core/log.h"
#include "run/run_paths.h"

namespace sc {
namespace fs = std::filesystem;

namespace {
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

std::string checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step) {
  return (fs::path(checkpoints_dir) / fmt::format(".{}.tmp", checkpoint_dir_name(step))).string();
}

// The committed step directories, newest first.
std::vector<int64_t> committed_steps(const std::string& checkpoints_dir, std::error_code& ec) {
  std::vector<int64_t> steps;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    auto s = parse_step_name(entry.path().filename().string());
    if (s.ok() && entry.is_directory()) steps.push_back(*s);
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
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
    if (entry.is_regular_file() && entry.path().filename() != checkpoint_file::kManifest) {
      names.push_back(entry.path().filename());
    }
  }
  std::sort(names.begin(), names.end());
  SC_RETURN_IF_ERROR(check_rank_files_complete(dir, names));
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& name : names) {
    SC_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open((fs::path(dir) / name).string()));
    files[name] = {{"bytes", file.size()}, {"xxh3", fmt::format("{:016x}", checksum64(file.data(), file.size()))}};
  }
  nlohmann::json manifest = {{"format_version", kCheckpointFormatVersion}, {"step", step}, {"files", files}};
  return write_file_atomic((fs::path(dir) / checkpoint_file::kManifest).string(), manifest.dump(2) + "\n");
}

// Moves the complete temporary directory into place. The same step written
// again (a resumed run): the old directory goes only after the new one is in.
Status rename_into_place(const fs::path& temp_dir, const fs::path& final_dir, const std::string& checkpoints_dir,
                         int64_t step) {
  std::error_code ec;
  if (fs::exists(final_dir)) {
    const fs::path old_dir = fs::path(checkpoints_dir) / fmt::format(".{}.old", checkpoint_dir_name(step));
    fs::remove_all(old_dir, ec);
    fs::rename(final_dir, old_dir, ec);
    if (ec) return Status::io_error("{}: cannot move aside: {}", final_dir.string(), ec.message());
    fs::rename(temp_dir, final_dir, ec);
    if (ec) return Status::io_error("{}: cannot rename into place: {}", final_dir.string(), ec.message());
    fs::remove_all(old_dir, ec);
    return Status();
  }
  fs::rename(temp_dir, final_dir, ec);
  if (ec) return Status::io_error("{}: cannot rename into place: {}", final_dir.string(), ec.message());
  return Status();
}

void remove_all_but_newest(const std::string& checkpoints_dir, int keep_last, int64_t just_committed) {
  std::error_code ec;
  const std::vector<int64_t> steps = committed_steps(checkpoints_dir, ec);
  for (size_t i = static_cast<size_t>(keep_last); i < steps.size(); ++i) {
    if (steps[i] == just_committed) continue;
    fs::remove_all(fs::path(checkpoints_dir) / checkpoint_dir_name(steps[i]), ec);
  }
}

// What makes a directory one checkpoint rather than a run or checkpoints/.
bool holds_checkpoint_files(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / checkpoint_file::kManifest, ec) ||
         fs::exists(fs::path(dir) / checkpoint_file::kModel, ec);
}

std::string last_component(const std::string& path) {
  fs::path normal = fs::path(path).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();  // "step_00000010/"
  return normal.filename().string();
}

Status check_manifest_version(const JsonReader& manifest) {
  auto version = manifest.integer("format_version", 0);
  if (!version.ok()) return Status::corruption("{}", version.status().message());
  if (*version > kCheckpointFormatVersion) {
    return Status::invalid("{}: checkpoint format {} was written by a newer supercluster; this build reads formats up "
                           "to {}", manifest.source(), *version, kCheckpointFormatVersion);
  }
  return Status();
}
}  // namespace

std::string checkpoint_dir_name(int64_t step) { return fmt::format("step_{:08d}", step); }

Result<std::string> make_checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step) {
  const std::string dir = checkpoint_temp_dir(checkpoints_dir, step);
  std::error_code ec;
  fs::create_directories(dir, ec);  // every writer: whoever comes first makes it
  if (ec) return Status::io_error("{}: cannot create: {}", dir, ec.message());
  return dir;
}

void remove_uncommitted_checkpoints(const std::string& checkpoints_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".step_") && name.ends_with(".tmp")) fs::remove_all(entry.path(), ec);
  }
}

Status commit_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last) {
  const fs::path final_dir = fs::path(checkpoints_dir) / checkpoint_dir_name(step);
  const fs::path temp_dir = checkpoint_temp_dir(checkpoints_dir, step);
  std::error_code ec;
  Status status = write_manifest(temp_dir.string(), step);
  if (status.ok()) status = fsync_directory(temp_dir.string());
  if (!status.ok()) {
    fs::remove_all(temp_dir, ec);
    return status.with_context(fmt::format("writing checkpoint {}", final_dir.string()));
  }
  SC_RETURN_IF_ERROR(rename_into_place(temp_dir, final_dir, checkpoints_dir, step));
  SC_RETURN_IF_ERROR(fsync_directory(checkpoints_dir));
  SC_RETURN_IF_ERROR(
      write_file_atomic((fs::path(checkpoints_dir) / kLatest).string(), checkpoint_dir_name(step) + "\n"));
  if (keep_last > 0) remove_all_but_newest(checkpoints_dir, keep_last, step);
  return Status();
}

Status verify_checkpoint(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / checkpoint_file::kManifest).string();
  auto text = read_file(manifest_path);
  if (!text.ok()) return Status::corruption("{}: no manifest (checkpoint incomplete)", dir);
  auto parsed = parse_json(*text, manifest_path);
  if (!parsed.ok()) return Status::corruption("{}", parsed.status().message());
  auto manifest = JsonReader::of(*parsed, manifest_path);
  if (!manifest.ok()) return Status::corruption("{}", manifest.status().message());
  SC_RETURN_IF_ERROR(check_manifest_version(*manifest));
  auto files = manifest->object("files");
  if (!files.ok()) return Status::corruption("{}", files.status().message());
  std::vector<std::string> listed;
  for (const auto& [name, entry] : files->json().items()) listed.push_back(name);
  SC_RETURN_IF_ERROR(check_rank_files_complete(dir, listed));
  for (const auto& [name, entry] : files->json().items()) {
    const std::string path = (fs::path(dir) / name).string();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return Status::corruption("{}: lists '{}', which is not a file name", manifest_path, text_excerpt(name, 64));
    }
    auto file = MappedFile::open(path);
    if (!file.ok()) return Status::corruption("{}: listed in the manifest but missing", path);
    auto fields = JsonReader::of(entry, fmt::format("{}: '{}'", manifest_path, text_excerpt(name, 64)));
    Result<uint64_t> bytes = fields.ok() ? fields->unsigned_integer("bytes") : Result<uint64_t>(fields.status());
    Result<std::string> xxh3 = bytes.ok() ? fields->string("xxh3", 16) : Result<std::string>(bytes.status());
    if (!xxh3.ok()) return Status::corruption("{}", xxh3.status().message());
    if (file->size() != *bytes) return Status::corruption("{}: {} bytes, manifest says {}", path, file->size(), *bytes);
    if (fmt::format("{:016x}", checksum64(file->data(), file->size())) != *xxh3) {
      return Status::corruption("{}: checksum mismatch (corrupted file)", path);
    }
  }
  return Status();
}

Result<CheckpointInfo> find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                                    std::vector<std::string>* skipped) {
  std::error_code ec;
  const std::vector<int64_t> steps = committed_steps(checkpoints_dir, ec);
  if (ec) return Status::not_found("{}: no checkpoints directory", checkpoints_dir);
  for (int64_t step : steps) {
    const std::string dir = (fs::path(checkpoints_dir) / checkpoint_dir_name(step)).string();
    Status status = verify_checkpoint(dir);
    if (status.ok()) return CheckpointInfo{dir, step};
    if (skipped) skipped->push_back(status.message());
  }
  return Status::not_found("{}: no valid checkpoint", checkpoints_dir);
}

std::vector<int64_t> committed_checkpoint_steps(const std::string& checkpoints_dir) {
  std::error_code ec;
  return committed_steps(checkpoints_dir, ec);
}

Result<CheckpointInfo> resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return Status::not_found("{}: checkpoint directory does not exist", path);
  if (holds_checkpoint_files(path)) {
    SC_RETURN_IF_ERROR(verify_checkpoint(path));
    auto step = parse_step_name(last_component(path));
    return CheckpointInfo{path, step.ok() ? *step : 0};
  }
  const RunPaths run(path);
  const std::string checkpoints = fs::is_directory(run.checkpoints(), ec) ? run.checkpoints() : path;
  std::vector<std::string> skipped;
  auto found = find_latest_valid_checkpoint(checkpoints, &skipped);
  for (const auto& why : skipped) log_warn("skipping checkpoint: {}", why);
  if (!found.ok()) return Status::not_found("{}: holds no valid checkpoint", path);
  return found;
}

bool is_one_checkpoint(const std::string& path) {
  return parse_step_name(last_component(path)).ok() || holds_checkpoint_files(path);
}

}  // namespace sc
