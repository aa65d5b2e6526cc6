#include "train/optimizer_shards.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/json_reader.h"
#include "model/safetensors.h"
#include "run/run_paths.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

struct ShardFile {
  std::string path;
  int rank = 0, world = 0;
};

Result<std::vector<OwnedSegment>> read_segments(const SafetensorsFile& file, size_t moments) {
  SC_ASSIGN_OR_RETURN(std::string text, file.metadata_value("segments"));
  auto parsed = parse_json(text, file.path() + ": metadata 'segments'");
  if (!parsed.ok()) return Status::corruption("{}", parsed.status().message());
  const nlohmann::json& j = *parsed;
  std::vector<OwnedSegment> segments;
  if (!j.is_array()) return Status::corruption("{}: metadata 'segments' is not a JSON array", file.path());
  for (const nlohmann::json& s : j) {
    if (!s.is_array() || s.size() != 3 || !s[0].is_number_unsigned() || !s[1].is_number_unsigned() ||
        !s[2].is_number_unsigned()) {
      return Status::corruption("{}: metadata 'segments' entry {} is not [begin, end, local]", file.path(),
                                describe_json(s));
    }
    const OwnedSegment segment{s[0].get<size_t>(), s[1].get<size_t>(), s[2].get<size_t>()};
    if (segment.end < segment.begin || segment.end - segment.begin > moments ||
        segment.local > moments - (segment.end - segment.begin)) {
      return Status::corruption("{}: segment [{}, {}, {}] lies outside its {} moments", file.path(), segment.begin,
                                segment.end, segment.local, moments);
    }
    segments.push_back(segment);
  }
  return segments;
}

}  // namespace

Status save_optimizer_shard(const std::string& dir, int rank, int world, const std::vector<OwnedSegment>& owned,
                            std::span<const float> m, std::span<const float> v, size_t num_floats, int64_t step) {
  if (m.size() != v.size()) return Status::invalid("optimizer shard: {} first moments, {} second", m.size(), v.size());
  nlohmann::json segments = nlohmann::json::array();
  for (const OwnedSegment& s : owned) {
    if (s.local + (s.end - s.begin) > m.size()) {
      return Status::invalid("optimizer shard: segment [{}, {}) at {} lies outside {} moments", s.begin, s.end, s.local,
                             m.size());
    }
    if (s.begin < num_floats) segments.push_back({s.begin, std::min(s.end, num_floats), s.local});
  }
  const std::vector<int64_t> shape = {static_cast<int64_t>(m.size())};
  const std::vector<TensorToWrite> moments = {{"adamw.m", DType::kF32, shape, m.data()},
                                              {"adamw.v", DType::kF32, shape, v.data()}};
  return write_safetensors(fs::path(dir) / checkpoint_file::optimizer_shard(rank, world), moments,
                           {{"optimizer", "adamw"},
                            {"step", std::to_string(step)},
                            {"rank", std::to_string(rank)},
                            {"world_size", std::to_string(world)},
                            {"segments", segments.dump()}});
}

Status load_optimizer_shards(const std::string& dir, AdamW& adamw, size_t num_floats) {
  std::vector<ShardFile> files;
  int world = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    ShardFile f{entry.path().string()};
    if (checkpoint_file::parse_optimizer_shard(entry.path().filename().string(), &f.rank, &f.world)) {
      if (world != 0 && f.world != world) {
        return Status::corruption("{}: optimizer files from runs on {} and {} ranks", dir, world, f.world);
      }
      world = f.world;
      files.push_back(f);
    }
  }
  if (ec) return Status::io_error("{}: cannot list: {}", dir, ec.message());
  if (files.empty()) return Status::corruption("{}: no optimizer-*-of-*.safetensors files", dir);
  if (files.size() != static_cast<size_t>(world)) {
    return Status::corruption("{}: {} of the {} optimizer files are present", dir, files.size(), world);
  }

  size_t wanted = 0, copied = 0;
  for (const OwnedSegment& mine : adamw.segments()) {
    wanted += std::min(mine.end, num_floats) - std::min(mine.begin, num_floats);
  }
  for (const ShardFile& f : files) {
    SC_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(f.path));
    SC_ASSIGN_OR_RETURN(const TensorView* m, file.get("adamw.m"));
    SC_ASSIGN_OR_RETURN(const TensorView* v, file.get("adamw.v"));
    if (m->dtype != DType::kF32 || v->dtype != DType::kF32 || m->shape.size() != 1 || m->shape != v->shape) {
      return Status::corruption("{}: adamw.m and adamw.v must be F32 vectors of one length", f.path);
    }
    const size_t moments = static_cast<size_t>(m->shape[0]);
    SC_ASSIGN_OR_RETURN(const std::vector<OwnedSegment> segments, read_segments(file, moments));
    const float* m_data = reinterpret_cast<const float*>(m->data);
    const float* v_data = reinterpret_cast<const float*>(v->data);
    for (const OwnedSegment& theirs : segments) {
      for (const OwnedSegment& mine : adamw.segments()) {
        const size_t begin = std::max(theirs.begin, mine.begin);
        const size_t end = std::min({theirs.end, mine.end, num_floats});
        if (begin >= end) continue;
        std::memcpy(adamw.m() + mine.local + (begin - mine.begin), m_data + theirs.local + (begin - theirs.begin),
                    (end - begin) * sizeof(float));
        std::memcpy(adamw.v() + mine.local + (begin - mine.begin), v_data + theirs.local + (begin - theirs.begin),
                    (end - begin) * sizeof(float));
        copied += end - begin;
      }
    }
  }
  if (copied != wanted) {
    return Status::corruption("{}: the optimizer files hold {} of the {} moments this rank needs", dir, copied,
                              wanted);
  }
  return Status();
}

}  // namespace sc
