// Watches the tokens each expert of each MoE layer receives per step and
// says when one has received none for `patience` steps in a row (router
// collapse: the expert's parameters stop learning, capacity is wasted).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sc {

class RouterHealth {
 public:
  RouterHealth(size_t layers, size_t experts, int64_t patience) : idle_(layers, std::vector<int64_t>(experts, 0)), patience_(patience) {}

  // counts[layer][expert] of one step. Returns one message per expert that
  // has just reached `patience` idle steps (said once until it recovers).
  std::vector<std::string> update(const std::vector<std::vector<int64_t>>& counts);

  // The busiest expert's load over the mean load, worst layer (1.0: perfect balance).
  static double balance(const std::vector<std::vector<int64_t>>& counts);

 private:
  std::vector<std::vector<int64_t>> idle_;
  int64_t patience_;
};

}  // namespace sc
