#include "run/run_paths.h"

#include <fmt/format.h>

#include <cstdio>

namespace sc::checkpoint_file {

std::string optimizer_shard(int rank, int world) {
  return fmt::format("optimizer-{:05d}-of-{:05d}.safetensors", rank, world);
}

bool parse_optimizer_shard(const std::string& name, int* rank, int* world) {
  return std::sscanf(name.c_str(), "optimizer-%5d-of-%5d.safetensors", rank, world) == 2 &&
         name == optimizer_shard(*rank, *world);
}

}  // namespace sc::checkpoint_file
