#include "train/loss_guard.h"

#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_reader.h"

namespace sc {

LossGuard::Verdict LossGuard::check(double loss, double grad_norm, std::string* why) {
  std::string problem;
  if (!std::isfinite(loss)) {
    problem = fmt::format("non-finite loss ({}, gradient norm {:.4g})", loss, grad_norm);
  } else if (!std::isfinite(grad_norm)) {
    problem = fmt::format("non-finite gradient norm ({}, loss {:.4f})", grad_norm, loss);
  } else if (options_.spike_factor > 0 && static_cast<int>(recent_.size()) * 2 >= options_.window) {
    // Summed afresh each time (20 numbers): the same bits after a resume.
    double sum = 0;
    for (double l : recent_) sum += l;
    const double mean = sum / static_cast<double>(recent_.size());
    if (loss > options_.spike_factor * mean) {
      problem = fmt::format("loss spike: {:.4f} is more than {} x the mean {:.4f} of the last {} steps", loss,
                            options_.spike_factor, mean, recent_.size());
    }
  }
  if (problem.empty()) {
    bad_in_row_ = 0;
    recent_.push_back(loss);
    if (static_cast<int>(recent_.size()) > options_.window) recent_.pop_front();
    return Verdict::kApply;
  }
  if (why) *why = problem;
  if (++bad_in_row_ >= options_.max_bad_in_row) {
    bad_in_row_ = 0;
    return Verdict::kRollback;
  }
  return Verdict::kSkip;
}

nlohmann::json LossGuard::state() const { return {{"recent_losses", recent_}, {"bad_in_row", bad_in_row_}}; }

Status LossGuard::restore(const nlohmann::json& state, const std::string& source) {
  recent_.clear();
  bad_in_row_ = 0;
  if (state.is_null()) return Status();
  SC_ASSIGN_OR_RETURN(const JsonReader reader, JsonReader::of(state, source));
  if (reader.has("recent_losses")) {
    SC_ASSIGN_OR_RETURN(const nlohmann::json* losses, reader.array("recent_losses"));
    if (losses->size() > static_cast<size_t>(options_.window)) {
      return Status::invalid("{}: 'recent_losses' holds {} losses, more than the {} the guard keeps", source,
                             losses->size(), options_.window);
    }
    for (const nlohmann::json& loss : *losses) {
      if (!loss.is_number()) {
        return Status::invalid("{}: 'recent_losses' must hold numbers (got {})", source, describe_json(loss));
      }
      recent_.push_back(loss.get<double>());
    }
  }
  // A resumed run may have lowered --max-bad-steps: any count the flag allows.
  SC_ASSIGN_OR_RETURN(const int64_t bad, reader.integer_or("bad_in_row", 0, 0, 1'000'000));
  bad_in_row_ = static_cast<int>(bad);
  return Status();
}

}  // namespace sc
